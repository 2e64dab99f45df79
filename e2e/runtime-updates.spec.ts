// Runtime updates in the console (docs/decisions/0016-runtime-updates.md): the
// endpoint page shows what the runtime reported, only admins reach the target
// version page, and a version the release store does not have is refused with a
// clear message. The update itself runs in tests/faults/runtime-update.test.ts
// with real executables.
import { expect, test } from "@playwright/test";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { signIn } from "./support";

test.describe.configure({ mode: "serial" });

const runtime = runtimeForSpec("updates");

test("the endpoint page shows the runtime's version and platform as it reported them", async ({ page }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  // Run from source: the package version and this host's platform.
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("runtime-version")).toContainText(/\d+\.\d+\.\d+ \(linux-x64\)/, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
});

test("only admins see and use the target version page", async ({ page }) => {
  await signIn(page, "technician");
  await expect(page.getByRole("link", { name: "Runtime updates" })).toHaveCount(0);
  const forbidden = await page.request.get("/runtime-updates");
  expect(forbidden.status()).toBe(403);
});

test("an admin cannot target a version the release store does not have; nothing is saved", async ({ page }) => {
  await signIn(page, "admin");
  await page.getByRole("link", { name: "Runtime updates" }).click();
  await expect(page.getByTestId("runtime-target")).toContainText("No target version");
  await page.getByLabel("Target version").fill("9.9.9");
  await page.getByRole("button", { name: "Save target" }).click();
  await expect(page.getByRole("alert")).toContainText(/release store/);
  await page.reload();
  await expect(page.getByTestId("runtime-target")).toContainText("No target version");
  await page.getByLabel("Target version").fill("not-a-version");
  await page.getByRole("button", { name: "Save target" }).click();
  await expect(page.getByRole("alert")).toContainText("a version like 1.2.3");
});
