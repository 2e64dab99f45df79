import { expect, test, type Page } from "@playwright/test";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { confirmInDialog, expectAccessible, expectNoHorizontalOverflow, runCommand, signIn } from "./support";

const runtime = runtimeForSpec("console");

test("a running command shows its elapsed time ticking; finished, every viewer sees duration and round trip, after a refresh too", async ({ page, browser }) => {
  // Two browsers, a reload and a 3 s command on the spec's first runtime connection: more than the default minute on a loaded machine.
  test.setTimeout(120_000);
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const entry = await runCommand(page, "sleep 3; echo slept");
  const elapsed = entry.getByTestId("command-elapsed");
  await expect(elapsed).toHaveText(/^running \d+ s$/);
  const first = Number(await elapsed.getAttribute("data-elapsed-ms"));
  await expect.poll(async () => Number(await elapsed.getAttribute("data-elapsed-ms"))).toBeGreaterThan(first + 900);
  await expect(entry).toHaveAttribute("data-status", "succeeded", { timeout: 15_000 });
  await expect(elapsed).toHaveCount(0);
  await expect(entry.getByTestId("command-duration")).toHaveText(/^took \d+(\.\d)? ms$/);
  expect(Number(await entry.getByTestId("command-duration").getAttribute("data-duration-ms"))).toBeGreaterThanOrEqual(2900);
  await expect(entry.getByTestId("command-server-rtt")).toHaveText(/^server round trip \d+ ms$/);
  // The submitter's own browser adds its leg.
  await expect(entry.getByTestId("command-rtt")).toBeVisible();
  await expect(entry.getByTestId("command-browser-leg")).toHaveText(/your link \d+(\.\d)? ms/);
  // A screen reader hears it finish, once, politely.
  await expect(page.getByTestId("transcript-announcement")).toHaveText("Finished: sleep 3; echo slept — succeeded, exit 0");
  await expect(page.getByRole("log", { name: "Transcript" })).toBeVisible();

  const context = await browser.newContext();
  const colleague = await context.newPage();
  await signIn(colleague, "admin");
  await openEndpoint(colleague, runtime().endpointId);
  const theirs = colleague.getByTestId("command-entry").filter({ hasText: "sleep 3; echo slept" }).last();
  await expect(theirs.getByTestId("command-server-rtt")).toHaveText(/^server round trip \d+ ms$/);
  await expect(theirs.getByTestId("command-duration")).toBeVisible();
  await expect(theirs.getByTestId("command-rtt")).toHaveCount(0);
  await context.close();

  await page.reload();
  const after = page.getByTestId("command-entry").filter({ hasText: "sleep 3; echo slept" }).last();
  await expect(after.getByTestId("command-server-rtt")).toHaveText(/^server round trip \d+ ms$/);
  await expect(after.getByTestId("command-duration")).toBeVisible();
});

test("command history per technician: ArrowUp/ArrowDown, Ctrl-R, re-run and copy, shortcuts under ?", async ({ page, browser }) => {
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const marker = Date.now();
  for (const word of ["alpha", "bravo"]) {
    await expect(await runCommand(page, `echo ${word}-${marker}`)).toHaveAttribute("data-status", "succeeded");
  }
  const input = page.getByLabel("Command");
  await expect(input).toBeFocused();
  await input.fill("draft");
  await input.press("ArrowUp");
  await expect(input).toHaveValue(`echo bravo-${marker}`);
  await input.press("ArrowUp");
  await expect(input).toHaveValue(`echo alpha-${marker}`);
  await input.press("ArrowDown");
  await expect(input).toHaveValue(`echo bravo-${marker}`);
  await input.press("ArrowDown");
  await expect(input).toHaveValue("draft");

  // Kept by the session, not the page: a refresh (or another browser) still has it.
  await page.reload();
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  await expect(page.getByTestId("command-entry").filter({ hasText: `echo bravo-${marker}` })).toHaveCount(1);
  await input.click();
  await input.press("ArrowUp");
  await expect(input).toHaveValue(`echo bravo-${marker}`);

  // Ctrl-R: reverse search, Enter takes the match.
  await input.fill("");
  await input.press("Control+r");
  const search = page.getByLabel("reverse search");
  await expect(search).toBeFocused();
  await search.fill(`alpha-${marker}`);
  await expect(page.getByTestId("history-search-match")).toHaveText(`echo alpha-${marker}`);
  await search.press("Enter");
  await expect(input).toHaveValue(`echo alpha-${marker}`);
  await expect(input).toBeFocused();
  await input.fill("");

  // Re-run and copy on the entry.
  const alpha = page.getByTestId("command-entry").filter({ hasText: `echo alpha-${marker}` });
  await alpha.first().getByTestId("command-rerun").click();
  await expect(alpha).toHaveCount(2);
  await expect(alpha.last()).toHaveAttribute("data-status", "succeeded");
  await expect(input).toBeFocused();
  await alpha.first().getByTestId("command-copy").click();
  await expect(alpha.first().getByTestId("command-copy")).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`echo alpha-${marker}`);

  // Another technician's history is their own.
  const context = await browser.newContext();
  const admin = await context.newPage();
  await signIn(admin, "admin");
  await openEndpoint(admin, runtime().endpointId);
  await admin.getByLabel("Command").click();
  await admin.getByLabel("Command").press("ArrowUp");
  await expect(admin.getByLabel("Command")).not.toHaveValue(`echo alpha-${marker}`);
  await context.close();

  // "?" outside a text field lists the shortcuts.
  await page.getByRole("heading", { level: 1 }).click();
  await page.keyboard.press("?");
  const dialog = page.getByRole("dialog", { name: "Keyboard shortcuts" });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText("Ctrl + R");
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
});

test("cancelling asks first in an accessible dialog; keeping it changes nothing", async ({ page }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const entry = await runCommand(page, "sleep 30");
  await expect(entry).toHaveAttribute("data-status", "running");
  const cancel = entry.getByTestId("command-cancel");
  await cancel.click();
  await expect(page.getByRole("dialog", { name: "Cancel “sleep 30”?" })).toBeVisible();
  await confirmInDialog(page, "Keep it");
  await expect(cancel).toBeFocused();
  await expect(entry).toHaveAttribute("data-status", "running");
  await cancel.click();
  await confirmInDialog(page, "Cancel command");
  await expect(entry).toHaveAttribute("data-status", "cancelled", { timeout: 15_000 });
});

test("the latency panel charts round trip and its hops over the last commands", async ({ page }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  for (const n of [1, 2, 3]) await expect(await runCommand(page, `echo latency-${n}`)).toHaveAttribute("data-status", "succeeded");
  const panel = page.getByTestId("latency-panel");
  await panel.getByRole("button", { name: /Latency of the last/ }).click();
  const chart = page.getByTestId("latency-chart");
  await expect(chart).toHaveAttribute("data-rendered", "true");
  await expect(chart.locator("canvas")).toHaveCount(1);
  expect(Number(await panel.getAttribute("data-points"))).toBeGreaterThanOrEqual(3);
  // uPlot's legend names every hop.
  for (const hop of ["round trip", "queue", "to endpoint", "on endpoint", "back"]) await expect(chart.locator(".u-legend")).toContainText(hop);
  await panel.getByText("The same as a table").click();
  await expect(page.getByTestId("latency-table").locator("tbody tr").last()).toContainText("echo latency-3");
});

test.describe("in New York", () => {
  test.use({ timezoneId: "America/New_York" });

  test("times follow the viewer's zone, labelled, with UTC on hover; the sequence window input agrees", async ({ page }) => {
    await signIn(page, "technician");
    await expect(page.getByTestId("time-zone")).toHaveText(/^Times in America\/New_York \(UTC−0[45]:00\)$/);
    // A seeded endpoint without a runtime: the sequence waits for its window.
    await openEndpoint(page, "ep_acme_07", { runtimeOnline: false });
    await page.getByRole("button", { name: "Queue a diagnostic sequence…" }).click();
    await page.getByLabel("Sequence name").fill(`nine-am-${Date.now()}`);
    await page.getByLabel("Steps", { exact: true }).fill("echo at-nine");
    await page.getByLabel("Not before").fill("2030-01-15T09:00");
    await page.getByRole("button", { name: "Queue sequence" }).click();
    const entry = page.getByTestId("command-entry").filter({ hasText: "echo at-nine" }).last();
    const notBefore = entry.getByTestId("not-before").locator("time");
    // 09:00 in New York (EST in January) is 14:00 UTC: shown as 09:00, with UTC on hover.
    await expect(notBefore).toHaveText("09:00:00 UTC−05:00");
    await expect(notBefore).toHaveAttribute("title", "2030-01-15 14:00:00 UTC");
    await expect(notBefore).toHaveAttribute("datetime", "2030-01-15T14:00:00.000Z");
    await entry.getByTestId("command-cancel").click();
    await confirmInDialog(page, "Cancel command");
    await expect(entry).toHaveAttribute("data-status", "cancelled");
    // The next server render already uses the zone (the cookie), so nothing flips after hydration.
    await page.reload();
    await expect(page.getByTestId("time-zone")).toHaveAttribute("data-zone", "America/New_York");
  });
});

/** Every console page a technician or admin opens. */
function consolePages(endpointId: string) {
  return ["/endpoints", "/clients", "/clients/cl_acme", "/review", "/runtime-updates", `/endpoints/${endpointId}`];
}

async function visit(page: Page, path: string) {
  await page.goto(path);
  await expect(page.getByTestId("current-member")).toBeVisible();
  if (path.startsWith("/endpoints/")) await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
}

for (const viewport of [
  { name: "phone", width: 390, height: 844 },
  { name: "tablet", width: 768, height: 1024 },
]) {
  test(`every console page fits a ${viewport.name} (${viewport.width} px) without sideways scrolling; the transcript and input are usable`, async ({ page }) => {
    await page.setViewportSize({ width: viewport.width, height: viewport.height });
    await signIn(page, "admin");
    for (const path of consolePages(runtime().endpointId)) {
      await visit(page, path);
      await expectNoHorizontalOverflow(page, { soft: true });
    }
    const entry = await runCommand(page, `echo ${viewport.name}-fits`);
    await expect(entry).toHaveAttribute("data-status", "succeeded");
    await expect(entry.getByTestId("command-output")).toBeInViewport();
    await expect(page.getByLabel("Command")).toBeInViewport();
    await expectNoHorizontalOverflow(page);
  });
}

test("axe-core finds no accessibility violation on any console page", async ({ page }) => {
  await signIn(page, "admin");
  await openEndpoint(page, runtime().endpointId);
  await expect(await runCommand(page, "echo axe")).toHaveAttribute("data-status", "succeeded");
  await page.getByRole("button", { name: /Latency of the last/ }).click();
  await expect(page.getByTestId("latency-chart")).toHaveAttribute("data-rendered", "true");
  await expectAccessible(page, { soft: true });
  for (const path of consolePages(runtime().endpointId)) {
    await visit(page, path);
    await expectAccessible(page, { soft: true });
  }
});
