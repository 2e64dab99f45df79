// Endpoint lifecycle with a real runtime process: an admin revokes its
// credential (the process is disconnected and exits), rotates it (the command
// the page shows re-enrolls the same endpoint from the same state directory),
// and decommissions the endpoint (read-only, kept, hidden from the fleet list).
import { expect, test, type Page } from "@playwright/test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO_RUNTIME_TOKEN, FOREIGN_ENDPOINT_ID } from "../scripts/seed.mjs";
import { E2E_ORIGIN } from "./origin";
import { openEndpoint, RuntimeProcess } from "./runtime";
import { runCommand, signIn } from "./support";

const CLI = join(process.cwd(), "runtime/bin/caisey-runtime.mjs");
const ROUTE_DATA = `?_data=${encodeURIComponent("routes/_console.endpoints.$endpointId")}`;
/** The exit status the runtime uses when the server refuses its credential (runtime/src/run.ts). */
const EXIT_CREDENTIAL_REJECTED = 2;

test.describe.configure({ mode: "serial" });

/** `caisey-runtime run` on the spec's state directory, with its exit status observable. */
class RunningRuntime {
  readonly exited: Promise<number | null>;
  log = "";
  private readonly child: ChildProcess;

  constructor(stateDir: string) {
    this.child = spawn(process.execPath, [CLI, "run", "--state-dir", stateDir], { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d) => (this.log += d));
    this.child.stderr!.on("data", (d) => (this.log += d));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

let endpoint: RuntimeProcess;
let running: RunningRuntime | null = null;

test.beforeAll(() => {
  endpoint = new RuntimeProcess(E2E_ORIGIN, `e2e-lifecycle-${Date.now()}`);
  endpoint.enroll(DEMO_RUNTIME_TOKEN);
  running = new RunningRuntime(endpoint.stateDir);
});

test.afterAll(async () => {
  await running?.stop();
  await endpoint?.dispose();
});

/** A form post as the console's own page sends it (same origin), so only the role and tenant checks decide. */
function postLifecycle(page: Page, endpointId: string, form: Record<string, string>) {
  return page.request.post(`/endpoints/${endpointId}${ROUTE_DATA}`, {
    form,
    headers: { origin: E2E_ORIGIN, "sec-fetch-site": "same-origin" },
    maxRedirects: 0,
  });
}

test("only admins of the endpoint's own tenant see or use the lifecycle actions", async ({ page, browser }) => {
  await signIn(page, "technician");
  await page.goto("/endpoints/ep_acme_03");
  await expect(page.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "active");
  await expect(page.getByTestId("lifecycle-actions")).toHaveCount(0);
  const forms: Record<string, string>[] = [{ intent: "revoke-credential" }, { intent: "rotate-credential" }, { intent: "decommission", confirmHostname: "acme-lnx-03" }];
  for (const form of forms) {
    expect((await postLifecycle(page, "ep_acme_03", form)).status(), `technician ${form.intent}`).toBe(403);
  }

  const noc = await browser.newPage();
  await signIn(noc, "noc");
  expect((await postLifecycle(noc, "ep_acme_03", { intent: "revoke-credential" })).status()).toBe(403);
  await noc.close();

  const contoso = await browser.newContext();
  const other = await contoso.newPage();
  await signIn(other, "otherTenantAdmin");
  expect((await postLifecycle(other, "ep_acme_03", { intent: "revoke-credential" })).status()).toBe(404);
  await contoso.close();

  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await signIn(admin, "admin");
  expect((await postLifecycle(admin, FOREIGN_ENDPOINT_ID, { intent: "revoke-credential" })).status()).toBe(404);
  await admin.goto("/endpoints/ep_acme_03");
  await expect(admin.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "active");
  await adminContext.close();
});

test("an admin revokes the credential: the runtime is disconnected at once and exits; the page shows it revoked", async ({ page }) => {
  page.on("dialog", (dialog) => void dialog.accept());
  await signIn(page, "admin");
  await openEndpoint(page, endpoint.endpointId);
  const before = await runCommand(page, "echo before-revoke");
  await expect(before).toHaveAttribute("data-status", "succeeded");

  await page.getByRole("button", { name: "Revoke credential" }).click();
  await expect(page.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "revoked");
  await expect(page.getByTestId("lifecycle-warning")).toHaveCount(0);
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", "false");
  expect(await running!.exited).toBe(EXIT_CREDENTIAL_REJECTED);
  expect(running!.log).toContain("rejected this runtime's credential");
});

test("rotating gives a one-time command that re-enrolls the same endpoint; it comes back online and runs commands", async ({ page }) => {
  page.on("dialog", (dialog) => void dialog.accept());
  await signIn(page, "admin");
  await openEndpoint(page, endpoint.endpointId, { runtimeOnline: false });
  await page.getByRole("button", { name: "Rotate credential" }).click();
  const command = (await page.getByTestId("rotation-command").textContent())!.trim();
  // The installed runtime on the endpoint, as root, then its service restarted (this spec's runtime reports Linux
  // and is not a service: the enroll part is run as shown, and the spec starts `run` itself).
  const shown = command.match(/^sudo caisey-runtime (enroll --server (\S+) --token (cae_\S+) --force) && sudo systemctl restart caisey-runtime$/);
  expect(shown, command).not.toBeNull();
  expect(shown![2]).toBe(E2E_ORIGIN);

  // The command as shown, run on "the endpoint": its state directory, and the hostname that machine reports.
  const args = [...shown![1]!.split(" "), "--state-dir", endpoint.stateDir, "--hostname", endpoint.hostname];
  const wrongMachine = spawnSync(process.execPath, [CLI, ...args.slice(0, -1), "someone-elses-pc"], { encoding: "utf8" });
  expect(wrongMachine.status).not.toBe(0);
  expect(wrongMachine.stderr).toContain("HTTP 409");
  const enrolled = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  expect(enrolled.status, enrolled.stderr).toBe(0);
  expect(JSON.parse(readFileSync(join(endpoint.stateDir, "identity.json"), "utf8")).endpointId).toBe(endpoint.endpointId);

  running = new RunningRuntime(endpoint.stateDir);
  await openEndpoint(page, endpoint.endpointId);
  await expect(page.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "active");
  await expect(page.getByTestId("command-entry").filter({ hasText: "echo before-revoke" })).toHaveCount(1);
  const after = await runCommand(page, "echo after-rotation");
  await expect(after).toHaveAttribute("data-status", "succeeded");
  await expect(after.getByTestId("command-output")).toHaveText("after-rotation\n");
});

test("decommissioning needs the hostname typed; the endpoint turns read-only, stays readable, and leaves the fleet list", async ({ page }) => {
  page.on("dialog", (dialog) => void dialog.accept());
  await signIn(page, "admin");
  await openEndpoint(page, endpoint.endpointId);
  await page.getByRole("button", { name: "Decommission…" }).click();
  await page.getByLabel(/to decommission it for good/).fill("not-this-one");
  await page.getByRole("button", { name: "Decommission endpoint" }).click();
  await expect(page.getByTestId("lifecycle-error")).toContainText("Type the endpoint's hostname");
  await expect(page.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "active");

  await page.getByLabel(/to decommission it for good/).fill(endpoint.hostname);
  await page.getByRole("button", { name: "Decommission endpoint" }).click();
  await expect(page.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "decommissioned");
  await expect(page.getByTestId("lifecycle-state")).toContainText("transcript, exports and audit trail stay readable");
  expect(await running!.exited).toBe(EXIT_CREDENTIAL_REJECTED);

  // Read-only: no run form, no lifecycle buttons; the transcript and its export are still there.
  await page.goto(`/endpoints/${endpoint.endpointId}`);
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  await expect(page.getByTestId("lifecycle-state")).toHaveAttribute("data-state", "decommissioned");
  await expect(page.getByLabel("Command")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Rotate credential" })).toHaveCount(0);
  await expect(page.getByTestId("command-entry").filter({ hasText: "echo after-rotation" })).toHaveCount(1);
  await expect
    .poll(async () => (await page.request.get(`/endpoints/${endpoint.endpointId}/export?format=txt`)).text(), { timeout: 15_000 })
    .toContain("echo after-rotation");

  await page.goto(`/endpoints?q=${encodeURIComponent(endpoint.hostname)}`);
  await expect(page.getByTestId("endpoint-row")).toHaveCount(0);
  await page.goto(`/endpoints?q=${encodeURIComponent(endpoint.hostname)}&status=decommissioned`);
  await expect(page.getByTestId("endpoint-row")).toHaveCount(1);
  await expect(page.getByTestId("endpoint-row").getByTestId("lifecycle-badge")).toHaveText("decommissioned");
});
