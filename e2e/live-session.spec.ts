import { expect, test } from "@playwright/test";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { runCommand, signIn } from "./support";

const runtime = runtimeForSpec("live");

test("a technician runs `echo hello` on a real runtime and sees the output and its round-trip time", async ({ page }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const entry = await runCommand(page, "echo hello");
  await expect(entry).toHaveAttribute("data-status", "succeeded");
  await expect(entry.getByTestId("command-output")).toHaveText("hello\n");
  await expect(entry.getByTestId("command-rtt")).toHaveText(/^round trip \d+(\.\d)? ms$/);
  await expect(entry.getByTestId("command-timing")).toContainText("on endpoint");
  await expect(entry).toContainText("exit 0");
});

test("two technicians watching one endpoint see the same transcript and each other", async ({ page, browser }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await signIn(admin, "admin");
  await openEndpoint(admin, runtime().endpointId);
  await expect(page.getByTestId("presence")).toContainText("Ada Admin");
  await expect(page.getByTestId("presence")).toContainText("Tom Technician");

  const marker = `shared-${Date.now()}`;
  const mine = await runCommand(page, `echo ${marker}`);
  await expect(mine).toHaveAttribute("data-status", "succeeded");
  const theirs = admin.getByTestId("command-entry").filter({ hasText: `echo ${marker}` });
  await expect(theirs).toHaveAttribute("data-status", "succeeded");
  await expect(theirs.getByTestId("command-output")).toHaveText(`${marker}\n`);
  await expect(theirs).toContainText("Tom Technician");
  await adminContext.close();
  await expect(page.getByTestId("presence")).not.toContainText("Ada Admin");
});

test("refreshing the page while a command streams loses nothing", async ({ page }) => {
  await signIn(page, "technician");
  await openEndpoint(page, runtime().endpointId);
  const text = "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.4; done";
  const entry = await runCommand(page, text);
  await expect(entry.getByTestId("command-output")).toContainText("line2");
  await page.reload();
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  const after = page.getByTestId("command-entry").filter({ hasText: text }).last();
  await expect(after).toHaveAttribute("data-status", "succeeded", { timeout: 15_000 });
  await expect(after.getByTestId("command-output")).toHaveText("line1\nline2\nline3\nline4\nline5\nline6\n");
});

test("NOC staff can watch and queue sequences but not run live commands", async ({ page }) => {
  await signIn(page, "noc");
  await openEndpoint(page, runtime().endpointId);
  await expect(page.getByLabel("Command")).toHaveCount(0);
  await expect(page.getByTestId("cannot-run")).toHaveText("Your role can queue diagnostic sequences (below) but not run live commands.");
});

test("a long transcript loads its newest 50 commands and pages back to older ones when scrolled to the top", async ({ page }) => {
  await signIn(page, "technician");
  // A seeded Acme endpoint without a runtime: its commands stay queued, which is all this needs.
  const endpointId = "ep_acme_07";
  await openEndpoint(page, endpointId, { runtimeOnline: false });
  // Queue 60 commands over the page's own socket: three 20-step sequences (the session caps a page's message rate).
  await page.evaluate(async (room) => {
    const socket = new WebSocket(`${location.origin.replace("http", "ws")}/parties/endpoint/${room}`);
    await new Promise((resolve) => socket.addEventListener("open", resolve));
    for (let batch = 0; batch < 3; batch++) {
      const steps = Array.from({ length: 20 }, (_, i) => ({ text: `echo history-${String(batch * 20 + i).padStart(2, "0")}`, shell: "sh" }));
      socket.send(JSON.stringify({ type: "run_sequence", requestId: crypto.randomUUID(), name: `history ${batch}`, steps, stopOnFailure: false }));
    }
    // Left open: the reload below closes it, after the page has seen the last command arrive.
  }, endpointId);
  await expect(page.getByTestId("command-entry").filter({ hasText: "echo history-59" })).toHaveCount(1);

  await page.reload();
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  const entries = page.getByTestId("command-entry").filter({ hasText: /echo history-\d\d/ });
  await expect(entries.filter({ hasText: "echo history-59" })).toHaveCount(1);
  await expect(entries.filter({ hasText: "echo history-00" })).toHaveCount(0);
  // Scrolled to the top, the earlier page arrives.
  await page.getByTestId("transcript").evaluate((element) => element.scrollTo(0, 0));
  await expect(entries.filter({ hasText: "echo history-00" })).toHaveCount(1);
  await expect(entries).toHaveCount(60);
  await expect(page.getByTestId("load-older")).toHaveCount(0);
});
