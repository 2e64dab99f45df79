// Signed self-update with rollback (docs/decisions/0016-runtime-updates.md), with
// real processes: the local stack, runtime executables built here at several
// versions (scripts/build-runtime.mjs, signed with the dev key), a plain HTTP
// server serving the release directory (what R2 serves in production), and the
// admin setting the tenant's target in the console. A small supervisor restarts
// the runtime when it exits with status 75, as the installed service does.
//
// Versions: 0.9.0 (installed), 0.9.1 (good), 0.9.2 (test build that crashes at
// start), 0.9.3 (test build that never connects), 0.9.4 (0.9.1's bytes under a
// manifest signed with a key the runtime does not trust).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_RUNTIME_TOKEN } from "../../scripts/seed.mjs";
import { runtimeSignatureMessage } from "../../protocol/runtime-release";
import { signIn, Stack, Viewer, waitUntil } from "./stack";

const root = resolve(process.cwd());
const releases = mkdtempSync(join(tmpdir(), "caisey-releases-"));
const installDir = mkdtempSync(join(tmpdir(), "caisey-install-"));
const stateDir = mkdtempSync(join(tmpdir(), "caisey-update-state-"));
const executable = join(installDir, "caisey-runtime");
const stack = new Stack(Number(process.env.FAULTS_PORT ?? 8797), ".wrangler/faults-state");
const TRIAL_SECONDS = 8;

let releaseServer: http.Server;
/** Versions whose executable the release server serves with one byte flipped (a tampered mirror). */
const tampered = new Set<string>();
let adminCookie = "";
let techCookie = "";
let endpointId = "";

function build(version: string, broken?: "crash" | "no-connect") {
  const env = { ...process.env, ...(broken ? { CAISEY_BUILD_TEST_BROKEN_START: broken } : {}) };
  const result = spawnSync(process.execPath, ["scripts/build-runtime.mjs", "--platforms", "linux-x64", "--version", version, "--out", releases, "--no-script-bundle"], { cwd: root, env, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`build ${version} failed: ${result.stderr}${result.stdout}`);
}

const artifactOf = (version: string) => join(releases, version, "linux-x64", "caisey-runtime");
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** 0.9.1's executable re-published as 0.9.4 with a signature by a key no runtime was built with. */
function publishWithForeignKey() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  mkdirSync(join(releases, "0.9.4", "linux-x64"), { recursive: true });
  copyFileSync(artifactOf("0.9.1"), artifactOf("0.9.4"));
  const hash = sha256(artifactOf("0.9.4"));
  const manifest = {
    version: "0.9.4",
    builtAt: new Date().toISOString(),
    publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64"),
    artifacts: [
      {
        platform: "linux-x64",
        file: "caisey-runtime",
        size: statSync(artifactOf("0.9.4")).size,
        sha256: hash,
        signature: sign(null, Buffer.from(runtimeSignatureMessage("0.9.4", "linux-x64", hash)), privateKey).toString("base64"),
      },
    ],
  };
  writeFileSync(join(releases, "0.9.4", "manifest.json"), JSON.stringify(manifest));
}

function serveReleases(): Promise<string> {
  releaseServer = http.createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    const file = join(releases, path);
    if (!file.startsWith(releases) || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404).end();
      return;
    }
    const version = path.split("/")[1] ?? "";
    response.writeHead(200, { "content-length": statSync(file).size });
    if (tampered.has(version) && path.endsWith("/caisey-runtime")) {
      const bytes = readFileSync(file);
      bytes[bytes.length - 100] ^= 0xff;
      response.end(bytes);
      return;
    }
    createReadStream(file).pipe(response);
  });
  return new Promise((r) => releaseServer.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(releaseServer.address() as AddressInfo).port}`)));
}

/** What a service manager does with the runtime: restart it (from the same path) when it exits with status 75. */
class Supervisor {
  child: ChildProcess | null = null;
  log = "";
  starts = 0;
  private stopped = false;

  start() {
    this.starts += 1;
    const child = spawn(executable, ["run", "--state-dir", stateDir], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CAISEY_UPDATE_TRIAL_SECONDS: String(TRIAL_SECONDS) },
    });
    this.child = child;
    child.stdout!.on("data", (d) => (this.log += d));
    child.stderr!.on("data", (d) => (this.log += d));
    child.once("exit", (code) => {
      this.log += `\n[supervisor] exited with ${code}\n`;
      if (code === 75 && !this.stopped) this.start();
    });
  }

  async stop() {
    this.stopped = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  }
}

const supervisor = new Supervisor();

/**
 * A stack that stops answering must fail the test with the request named, not
 * hold it until the test's own timeout (seen once under a loaded machine).
 */
function answerWithin(what: string, ms = 20_000): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error(`${what} got no answer from the stack within ${ms} ms`)), ms).unref();
  return controller.signal;
}

async function setTarget(version: string) {
  const response = await fetch(`${stack.origin}/runtime-updates?_data=routes/_console.runtime-updates`, {
    signal: answerWithin("POST /runtime-updates"),
    method: "POST",
    headers: { cookie: adminCookie, origin: stack.origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ version }),
  });
  const body = (await response.json()) as any;
  expect(response.status, JSON.stringify(body)).toBe(200);
  // Every live session of the demo tenant is told, this endpoint's among them.
  expect(body.saved).toMatchObject({ version, failed: [] });
  expect(body.saved.pushed).toBeGreaterThan(0);
}

async function endpointRuntime(): Promise<{ version: string | null; platform: string | null; update: { version: string; phase: string; detail: string } | null }> {
  const response = await fetch(`${stack.origin}/endpoints/${endpointId}?_data=${encodeURIComponent("routes/_console.endpoints.$endpointId")}`, {
    headers: { cookie: adminCookie },
    signal: answerWithin(`GET /endpoints/${endpointId}`),
  });
  return ((await response.json()) as any).runtime;
}

function auditRows(): { kind: string; status: string | null; detail: string }[] {
  const result = spawnSync(
    join(root, "node_modules/.bin/wrangler"),
    ["d1", "execute", "caisey-db", "--local", "--persist-to", stack.stateDir, "--json", "--command", `SELECT kind, status, detail FROM audit_events WHERE endpoint_id = '${endpointId}' AND kind LIKE 'runtime.update%' ORDER BY seq`],
    { cwd: root, encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`wrangler d1 execute failed: ${result.stderr}`);
  return JSON.parse(result.stdout)[0].results;
}

beforeAll(async () => {
  // Executables only: runtime/dist (what runtime/bin runs) stays the suite's build, which the browser lane's runtimes use.
  build("0.9.0");
  build("0.9.1");
  build("0.9.2", "crash");
  build("0.9.3", "no-connect");
  publishWithForeignKey();
  process.env.CAISEY_RUNTIME_RELEASES_URL = await serveReleases();
  await stack.start(true);
  adminCookie = await signIn(stack.origin, "user_demo_admin");
  techCookie = await signIn(stack.origin);
  copyFileSync(artifactOf("0.9.0"), executable);
  const enroll = spawnSync(executable, ["enroll", "--server", stack.origin, "--token", DEMO_RUNTIME_TOKEN, "--state-dir", stateDir, "--hostname", `update-${Date.now()}`], { encoding: "utf8" });
  if (enroll.status !== 0) throw new Error(`enroll failed: ${enroll.stderr}`);
  endpointId = JSON.parse(readFileSync(join(stateDir, "identity.json"), "utf8")).endpointId;
  supervisor.start();
  await waitUntil("0.9.0 to report itself", async () => (await endpointRuntime()).version === "0.9.0", 30_000);
}, 240_000);

afterAll(async () => {
  await supervisor.stop();
  await stack.stop();
  releaseServer?.close();
  delete process.env.CAISEY_RUNTIME_RELEASES_URL;
  for (const dir of [releases, installDir, stateDir]) rmSync(dir, { recursive: true, force: true });
});

const original = () => sha256(artifactOf("0.9.0"));

describe("runtime self-update", () => {
  it("refuses a download whose hash does not match, and keeps running the old version", async () => {
    expect((await endpointRuntime()).platform).toBe("linux-x64");
    tampered.add("0.9.1");
    await setTarget("0.9.1");
    const state = await waitUntil("the update to fail", async () => ((await endpointRuntime()).update?.phase === "failed" ? endpointRuntime() : null), 60_000);
    expect(state.update).toMatchObject({ version: "0.9.1", detail: expect.stringMatching(/SHA-256 mismatch/) });
    expect(state.version).toBe("0.9.0");
    expect(sha256(executable)).toBe(original());
    tampered.delete("0.9.1");
  });

  it("refuses an executable signed with a key the runtime was not built with", async () => {
    await setTarget("0.9.4");
    const state = await waitUntil("the update to fail", async () => {
      const s = await endpointRuntime();
      return s.update?.version === "0.9.4" && s.update.phase === "failed" ? s : null;
    }, 60_000);
    expect(state.update!.detail).toMatch(/signature does not match/);
    expect(sha256(executable)).toBe(original());
  });

  it("rolls back a version that crashes at start; the old one is back online", async () => {
    await setTarget("0.9.2");
    const state = await waitUntil("the rollback", async () => {
      const s = await endpointRuntime();
      return s.update?.version === "0.9.2" && s.update.phase === "rolled_back" ? s : null;
    }, 60_000);
    expect(state.update!.detail).toMatch(/exited \(code 1\) before connecting/);
    expect(state.version).toBe("0.9.0");
    expect(sha256(executable)).toBe(original());
    expect(existsSync(join(installDir, "caisey-runtime.new"))).toBe(false);
    await expectRunsCommands("after-crash-rollback");
  });

  it(`rolls back a version that does not connect within the trial window (${TRIAL_SECONDS} s here, 60 s by default)`, async () => {
    const started = Date.now();
    await setTarget("0.9.3");
    const state = await waitUntil("the rollback", async () => {
      const s = await endpointRuntime();
      return s.update?.version === "0.9.3" && s.update.phase === "rolled_back" ? s : null;
    }, 60_000);
    expect(state.update!.detail).toMatch(new RegExp(`did not connect within ${TRIAL_SECONDS} s`));
    expect(Date.now() - started).toBeGreaterThanOrEqual(TRIAL_SECONDS * 1000);
    expect(sha256(executable)).toBe(original());
    await expectRunsCommands("after-timeout-rollback");
    expect(supervisor.starts).toBe(1); // rollbacks never needed a restart
  });

  it("updates to a good version: verified, tried, swapped, restarted by the service, reported and audited", async () => {
    await setTarget("0.9.1");
    const state = await waitUntil("0.9.1 to be committed", async () => {
      const s = await endpointRuntime();
      return s.version === "0.9.1" && s.update?.version === "0.9.1" && s.update.phase === "committed" ? s : null;
    }, 90_000);
    expect(state.update!.detail).toMatch(/replaced 0\.9\.0/);
    expect(sha256(executable)).toBe(sha256(artifactOf("0.9.1")));
    expect(sha256(join(installDir, "caisey-runtime.previous"))).toBe(original());
    expect(supervisor.starts).toBe(2);
    expect(spawnSync(executable, ["--version"], { encoding: "utf8" }).stdout.trim()).toBe("0.9.1");
    await expectRunsCommands("after-update");

    const audit = await waitUntil("the audit to replicate", () => {
      const rows = auditRows();
      return rows.some((r) => r.kind === "runtime.update_status" && r.status === "committed") ? rows : null;
    }, 30_000);
    const steps = audit.filter((r) => JSON.parse(r.detail).version === "0.9.1").map((r) => (r.kind === "runtime.update_status" ? r.status : r.kind));
    expect(steps).toEqual(expect.arrayContaining(["runtime.update_offered", "downloading", "verified", "trial", "committed"]));
    expect(audit.filter((r) => r.status === "rolled_back").map((r) => JSON.parse(r.detail).version)).toEqual(["0.9.2", "0.9.3"]);
    expect(audit.filter((r) => r.status === "failed").map((r) => JSON.parse(r.detail).version)).toEqual(["0.9.1", "0.9.4"]);
  });
});

/** A technician's command reaches the runtime and succeeds. */
async function expectRunsCommands(marker: string) {
  const viewer = new Viewer(stack.origin, techCookie, endpointId);
  await viewer.connect();
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text: `echo ${marker}`, shell: "sh" });
  await waitUntil(`"${marker}" to run`, () => viewer.events.some((e) => e.kind === "command.output" && e.data.includes(marker)), 30_000);
  viewer.close();
}
