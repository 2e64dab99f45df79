import { expect, test } from "@playwright/test";
import { RuntimeProcess } from "./runtime";
import { E2E_ORIGIN } from "./origin";
import { DEMO_RUNTIME_TOKEN } from "../scripts/seed.mjs";
import { signIn } from "./support";

// Two real runtimes of one client whose hostnames share a prefix a saved filter selects.
const prefix = `e2e-fleet-${Date.now()}`;
const online = new RuntimeProcess(E2E_ORIGIN, `${prefix}-a`);
const offline = new RuntimeProcess(E2E_ORIGIN, `${prefix}-b`);

test.beforeAll(() => {
  online.enroll(DEMO_RUNTIME_TOKEN);
  offline.enroll(DEMO_RUNTIME_TOKEN);
  online.start();
});
test.afterAll(async () => {
  await online.dispose();
  await offline.dispose();
});

test("a fleet run over two endpoints: the online one finishes, the offline one completes after its runtime starts, counts update live", async ({ page }) => {
  await signIn(page, "technician", "/fleet");
  const filter = page.getByRole("form", { name: "Save an endpoint filter" });
  await filter.getByLabel("Filter name").fill(prefix);
  await filter.getByLabel("Search text").fill(prefix);
  await filter.getByRole("button", { name: "Save filter" }).click();
  await expect(page.getByText(`Saved filter “${prefix}”.`)).toBeVisible();

  const start = page.getByRole("form", { name: "Start a fleet run" });
  await start.getByLabel("Run name").fill("Fleet hello");
  await start.getByLabel("Commands").fill("echo fleet-ok");
  await start.getByLabel("Saved filter").selectOption({ label: `${prefix} (q: ${prefix})` });
  await start.getByRole("button", { name: "Start fleet run" }).click();
  await expect(page).toHaveURL(/\/fleet\/fleet_/);
  await expect(page.getByTestId("fleet-target")).toHaveCount(2);

  // The running runtime's target finishes; the stopped one waits, queued, as offline.
  await expect(page.getByTestId("count-done")).toHaveAttribute("data-count", "1", { timeout: 20_000 });
  await expect(page.getByTestId("count-offline")).toHaveAttribute("data-count", "1");
  await expect(page.locator(`[data-endpoint="${offline.endpointId}"]`)).toHaveAttribute("data-state", "offline");

  // Its runtime starts later: the queued work runs and the page's counts change without a reload.
  const url = page.url();
  offline.start();
  await expect(page.getByTestId("count-done")).toHaveAttribute("data-count", "2", { timeout: 30_000 });
  await expect(page.getByTestId("count-offline")).toHaveAttribute("data-count", "0");
  expect(page.url()).toBe(url);

  // Each target links to its transcript, where the command and its output are.
  await page.locator(`[data-endpoint="${offline.endpointId}"]`).getByRole("link").click();
  const entry = page.getByTestId("command-entry").filter({ hasText: "echo fleet-ok" });
  await expect(entry).toHaveAttribute("data-status", "succeeded");
  await expect(entry.getByTestId("command-output")).toHaveText("fleet-ok\n");
});
