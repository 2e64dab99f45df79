import { expect, test } from "@playwright/test";
import { runtimeForSpec } from "./runtime";
import { signIn } from "./support";

const runtime = runtimeForSpec("offline", { start: false });

test("a sequence queued for an offline endpoint completes, in order, once its runtime starts", async ({ page }) => {
  await signIn(page, "technician", `/endpoints/${runtime().endpointId}`);
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "false");

  await page.getByRole("button", { name: "Queue a diagnostic sequence…" }).click();
  await page.getByLabel("Sequence name").fill("Morning checks");
  await page.getByLabel("Steps", { exact: true }).fill("echo first-step\necho second-step");
  await page.getByRole("button", { name: "Save as template" }).click();
  await expect(page.getByText("Saved template “Morning checks”.")).toBeVisible();
  await page.getByRole("button", { name: "Queue sequence" }).click();

  const entries = page.getByTestId("command-entry");
  await expect(entries).toHaveCount(2);
  await expect(entries.nth(0)).toHaveAttribute("data-status", "queued");
  await expect(entries.nth(0).getByTestId("sequence-step")).toHaveText("Morning checks · step 1/2");
  await expect(entries.nth(1).getByTestId("sequence-step")).toHaveText("Morning checks · step 2/2");

  runtime().start();
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "true", { timeout: 20_000 });
  await expect(entries.nth(0)).toHaveAttribute("data-status", "succeeded");
  await expect(entries.nth(1)).toHaveAttribute("data-status", "succeeded");
  await expect(entries.nth(0).getByTestId("command-output")).toHaveText("first-step\n");
  await expect(entries.nth(1).getByTestId("command-output")).toHaveText("second-step\n");
  for (const label of ["sent", "dispatched", "executed", "returned"]) await expect(entries.nth(1)).toContainText(label);

  // The template is there for the next visit.
  await page.reload();
  await page.getByRole("button", { name: "Queue a diagnostic sequence…" }).click();
  await page.getByLabel("Load template").selectOption({ label: "Morning checks" });
  await expect(page.getByLabel("Steps", { exact: true })).toHaveValue("echo first-step\necho second-step");
});
