import { expect, test } from "@playwright/test";
import { join } from "node:path";
import { runtimeForSpec } from "./runtime";
import { confirmInDialog, signIn } from "./support";

const runtime = runtimeForSpec("interrupt");

test("a sequence step cut short by a runtime stop shows as interrupted with its output so far, and Retry resumes the sequence", async ({ page }) => {
  await signIn(page, "technician", `/endpoints/${runtime().endpointId}`);
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "true", { timeout: 20_000 });
  const marker = join(runtime().stateDir, "step1.marker");

  await page.getByRole("button", { name: "Queue a diagnostic sequence…" }).click();
  await page.getByLabel("Sequence name").fill("Patch night");
  await page.getByLabel("Sequence shell").selectOption("sh");
  // Hangs the first time only, so the retry finishes.
  await page.getByLabel("Steps", { exact: true }).fill(`if [ -e ${marker} ]; then echo again; else touch ${marker}; echo partial; sleep 30; fi\necho second-step`);
  await page.getByRole("button", { name: "Queue sequence" }).click();

  const entries = page.getByTestId("command-entry");
  await expect(entries).toHaveCount(2);
  await expect(entries.nth(1).getByTestId("queue-position")).toHaveText("1 ahead in line");
  await expect(entries.nth(0).getByTestId("command-output")).toHaveText("partial\n", { timeout: 20_000 });

  await runtime().stop(); // SIGTERM: a service stop
  await expect(entries.nth(0)).toHaveAttribute("data-status", "interrupted");
  await expect(entries.nth(0).getByTestId("interrupted")).toContainText("Interrupted: runtime stopped");
  await expect(entries.nth(0).getByTestId("interrupted")).toContainText("the output above is what it printed so far");
  await expect(entries.nth(0).getByTestId("command-timing")).toHaveCount(1); // it ran: its timing stays
  const prompt = entries.nth(0).getByTestId("sequence-paused");
  await expect(prompt).toContainText("“Patch night” is paused: step 1 of 2 was interrupted");
  await expect(entries.nth(1)).toHaveAttribute("data-status", "queued");
  await expect(entries.nth(1).getByTestId("queue-position")).toHaveCount(0); // waits for a decision, not its turn

  runtime().start();
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "true", { timeout: 20_000 });
  await prompt.getByTestId("sequence-retry").click();
  await expect(entries).toHaveCount(3);
  await expect(entries.nth(0).getByTestId("sequence-resumed")).toContainText("Retried by Tom Technician");
  await expect(entries.nth(2).getByTestId("retry-of")).toBeVisible();
  await expect(entries.nth(2)).toHaveAttribute("data-status", "succeeded", { timeout: 20_000 });
  await expect(entries.nth(2).getByTestId("command-output")).toHaveText("again\n");
  await expect(entries.nth(1)).toHaveAttribute("data-status", "succeeded", { timeout: 20_000 });
  await expect(entries.nth(1).getByTestId("command-output")).toHaveText("second-step\n");
});

test("a cancelled queued command says who cancelled it and when, with no returned time or round trip", async ({ page }) => {
  await signIn(page, "technician", `/endpoints/${runtime().endpointId}`);
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "true", { timeout: 20_000 });
  const entries = page.getByTestId("command-entry");
  const before = await entries.count();
  await page.getByLabel("Command").fill("sleep 20");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await page.getByLabel("Command").fill("echo never");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await expect(entries).toHaveCount(before + 2);
  const waiting = entries.nth(before + 1);
  await expect(waiting.getByTestId("queue-position")).toHaveText("1 ahead in line");
  await waiting.getByRole("button", { name: "Cancel" }).click();
  await confirmInDialog(page, "Cancel command");
  await expect(waiting).toHaveAttribute("data-status", "cancelled");
  await expect(waiting.getByTestId("cancelled-by")).toContainText("Cancelled by Tom Technician at");
  await expect(waiting).not.toContainText("returned");
  await expect(waiting.getByTestId("command-timing")).toHaveCount(0);
  await entries.nth(before).getByRole("button", { name: "Cancel" }).click();
  await confirmInDialog(page, "Cancel command");
  await expect(entries.nth(before)).toHaveAttribute("data-status", "cancelled", { timeout: 10_000 });
});
