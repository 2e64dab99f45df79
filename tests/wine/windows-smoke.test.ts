// End-to-end smoke test of the windows-x64 executable under wine: the artifact
// we ship for Windows enrolls against the real local stack, connects, runs a
// cmd command, and after a hard kill while the server is unreachable comes
// back with journal and outbox intact: the result produced during the outage
// is delivered after the restart and the command never runs twice.
// Needs `npm run build` (console + executables) first.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DEMO_RUNTIME_TOKEN } from "../../scripts/seed.mjs";
import { Outbox } from "../../runtime/src/outbox";
import { CuttableRelay, runtimeExecutablePath, signIn, Stack, Viewer, waitUntil } from "../faults/stack";
import { Wine, windowsPath } from "./wine";

const stack = new Stack(Number(process.env.WINE_PORT ?? 8796), ".wrangler/wine-state");
const exe = runtimeExecutablePath("windows-x64");
const wine = new Wine();
const dir = mkdtempSync(join(tmpdir(), "caisey-wine-"));
const stateDir = join(dir, "state");
const ledger = join(dir, "ledger.txt");
const go = join(dir, "go.txt");
const logFile = join(dir, "runtime.log");
let cookie = "";

beforeAll(async () => {
  if (!existsSync(exe)) throw new Error(`${exe} is missing: run npm run build`);
  wine.prepare();
  await stack.start(true);
  cookie = await signIn(stack.origin);
}, 240_000);

afterAll(async () => {
  wine.shutdown();
  await stack.stop();
});

const ledgerLines = () => (existsSync(ledger) ? readFileSync(ledger, "utf8").split(/\r?\n/).map((l) => l.trim()).filter(Boolean) : []);
const outboxEntries = () => (existsSync(join(stateDir, "outbox")) ? readdirSync(join(stateDir, "outbox")) : []);
/**
 * Results durably in the outbox, counted as the runtime's `status` counts them:
 * a file still being written has a temporary name until its rename, and a kill
 * before then rightly loses the result (it is reported interrupted after the restart).
 */
const savedResults = () => Outbox.count(join(stateDir, "outbox"));
/** A wait whose failure carries what the runtime logged and what is left in its outbox: a CI failure must explain itself. */
const waitWithLog = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) => {
  try {
    await waitUntil(what, check, timeoutMs);
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "(no runtime log)";
    throw new Error(`${(error as Error).message}\noutbox: ${JSON.stringify(outboxEntries())}\nruntime log:\n${log}`);
  }
};
const output = (viewer: Viewer, commandId: string) =>
  viewer.events.filter((e) => e.kind === "command.output" && e.commandId === commandId).map((e) => e.data).join("");

it("the windows-x64 executable enrolls, runs cmd, and keeps journal and outbox across a kill during an outage", async () => {
  const version = await wine.run(exe, ["--version"], join(dir, "version.log"));
  expect(version.output.trim()).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);

  const relay = new CuttableRelay(stack.port);
  const viaRelay = await relay.listen();
  const enroll = await wine.run(exe, ["enroll", "--server", viaRelay, "--token", DEMO_RUNTIME_TOKEN, "--state-dir", windowsPath(stateDir), "--hostname", `wine-${Date.now()}`], join(dir, "enroll.log"));
  expect(enroll.status, enroll.output).toBe(0);
  const identityPath = join(stateDir, "identity.json");
  const { endpointId } = JSON.parse(readFileSync(identityPath, "utf8"));

  const viewer = new Viewer(stack.origin, cookie, endpointId);
  await viewer.connect();
  let runtime = wine.start(exe, ["run", "--state-dir", windowsPath(stateDir), "--transport", "websocket"], logFile);
  const run = (text: string) => viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "cmd" });

  // 1. Connected: a cmd command runs on "Windows" and its output comes back.
  run(`echo one>> ${windowsPath(ledger)} & echo OUT-ONE %OS%`);
  await waitWithLog("the first cmd command to finish", () => viewer.finished().length === 1, 90_000);
  const [first] = viewer.finished();
  expect(first, readFileSync(logFile, "utf8")).toMatchObject({ status: "succeeded", exitCode: 0 });
  expect(output(viewer, first.commandId)).toMatch(/^OUT-ONE Windows_NT\s*$/);

  // 2. A command that finishes only after the server has become unreachable: its result can only go to the outbox.
  run(`echo two>> ${windowsPath(ledger)} & echo OUT-TWO & for /l %i in (0,0,1) do @if exist ${windowsPath(go)} exit 0`);
  await waitWithLog("the second command to start", () => ledgerLines().includes("two"), 60_000);
  relay.close();
  writeFileSync(go, "");
  await waitWithLog("the result to be saved in the outbox", async () => (await savedResults()) > 0, 30_000);
  expect(viewer.finished()).toHaveLength(1);

  // 3. Hard kill (like a crash or power loss), then restart against a reachable server.
  runtime.kill("SIGKILL");
  await new Promise((r) => (runtime.exitCode !== null || runtime.signalCode !== null ? r(null) : runtime.once("exit", r)));
  writeFileSync(identityPath, JSON.stringify({ ...JSON.parse(readFileSync(identityPath, "utf8")), server: stack.origin }));
  runtime = wine.start(exe, ["run", "--state-dir", windowsPath(stateDir), "--transport", "websocket"], logFile);
  await waitWithLog("the outage's result to be delivered after the restart", () => viewer.finished().length === 2, 90_000);
  const second = viewer.finished()[1];
  expect(second, readFileSync(logFile, "utf8")).toMatchObject({ status: "succeeded", exitCode: 0 });
  expect(output(viewer, second.commandId)).toMatch(/OUT-TWO/);
  await waitWithLog("the outbox to drain once acknowledged", () => outboxEntries().length === 0, 30_000);
  expect(ledgerLines()).toEqual(["one", "two"]);

  runtime.kill("SIGKILL");
  viewer.close();
}, 300_000);
