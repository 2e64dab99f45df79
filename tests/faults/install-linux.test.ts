// The Linux one-line installer end to end against the real local stack: the
// console serves install.sh and the executable from local R2, the script
// checks the SHA-256, enrolls, writes config and the systemd unit, and the
// installed runtime comes online. Staged with --root (no systemd here: the
// unit is checked with systemd-analyze verify, and the service manager's
// restart is stood in for by starting the installed executable again).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_RUNTIME_TOKEN } from "../../scripts/seed.mjs";
import { runtimeExecutablePath, signIn, Stack, waitForRuntimeOnline } from "./stack";

const stack = new Stack(Number(process.env.INSTALL_FAULTS_PORT ?? 8798), ".wrangler/install-state");
const scratch = mkdtempSync(join(tmpdir(), "caisey-install-"));
const children: ChildProcess[] = [];
let script = "";
let cookie = "";

beforeAll(async () => {
  await stack.start(true);
  cookie = await signIn(stack.origin);
  const response = await fetch(`${stack.origin}/install.sh`);
  expect(response.status).toBe(200);
  script = join(scratch, "install.sh");
  writeFileSync(script, await response.text());
}, 150_000);

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await stack.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * `curl … | sh -s -- ARGS`, as the one-liner runs it (sh reads the script from standard input).
 * Asynchronous: a relay in this process must keep serving while the script downloads through it.
 */
function installer(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn("sh", ["-s", "--", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (status) => resolvePromise({ status, output }));
    child.stdin.end(readFileSync(script));
  });
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const mode = (path: string) => statSync(path).mode & 0o777;

describe("install.sh (Linux)", () => {
  it("is served as plain text with the console's origin baked in", async () => {
    const response = await fetch(`${stack.origin}/install.sh`);
    expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const text = await response.text();
    expect(text.startsWith("#!/bin/sh\n")).toBe(true);
    expect(text).toContain(`SERVER='${stack.origin}'`);
    expect(text).not.toContain("@@CAISEY_SERVER@@");
  });

  it("installs: downloads from the console, verifies the SHA-256, enrolls, writes config and a valid systemd unit; the runtime comes online and again after a restart", async () => {
    const root = join(scratch, "root");
    const hostname = `install-linux-${Date.now()}`;
    const run = await installer(["--token", DEMO_RUNTIME_TOKEN, "--root", root, "--hostname", hostname, "--proxy", "http://proxy.invalid:3128", "--no-proxy", "127.0.0.1,localhost"]);
    expect(run.status, run.output).toBe(0);
    expect(run.output).toContain(`downloading the linux-x64 runtime from ${stack.origin}/runtime/download/linux-x64`);
    const artifact = runtimeExecutablePath("linux-x64");
    expect(run.output).toContain(`verified SHA-256 ${sha256(artifact)}`);
    expect(run.output).toContain("skipped (--root): systemctl enable caisey-runtime");

    const bin = join(root, "usr/local/bin/caisey-runtime");
    expect(sha256(bin)).toBe(sha256(artifact));
    expect(mode(bin)).toBe(0o755);
    const state = join(root, "var/lib/caisey-runtime");
    expect(mode(state)).toBe(0o700);
    expect(mode(join(state, "identity.json"))).toBe(0o600);
    const identity = JSON.parse(readFileSync(join(state, "identity.json"), "utf8"));
    expect(identity.server).toBe(stack.origin);
    expect(JSON.parse(readFileSync(join(state, "config.json"), "utf8"))).toEqual({ proxy: "http://proxy.invalid:3128", noProxy: "127.0.0.1,localhost" });

    const unit = join(root, "etc/systemd/system/caisey-runtime.service");
    const unitText = readFileSync(unit, "utf8");
    for (const line of ["Restart=always", "RestartPreventExitStatus=2", "KillMode=mixed", "KillSignal=SIGTERM", "TimeoutStopSec=30", "StartLimitIntervalSec=0", "WantedBy=multi-user.target"]) {
      expect(unitText).toContain(`${line}\n`);
    }
    expect(unitText).toContain("ExecStart=/usr/local/bin/caisey-runtime run --state-dir /var/lib/caisey-runtime\n");
    // systemd's own checker, on the staged root (so ExecStart resolves to the installed executable); the root
    // gets this machine's stock units, which the unit's default dependencies (sysinit.target…) need.
    cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true });
    const verify = spawnSync("systemd-analyze", ["verify", `--root=${root}`, "/etc/systemd/system/caisey-runtime.service"], { encoding: "utf8" });
    expect(verify.status, `${verify.stdout}${verify.stderr}`).toBe(0);
    expect(`${verify.stdout}${verify.stderr}`).not.toMatch(/caisey-runtime\.service:\d+/);

    // What ExecStart runs (the proxy in config.json is bypassed for 127.0.0.1 by noProxy).
    const start = () => {
      const child = spawn(bin, ["run", "--state-dir", state], { env: { ...process.env, CAISEY_RUNTIME_SERVICE: "1" }, stdio: "ignore" });
      children.push(child);
      return child;
    };
    const first = start();
    await waitForRuntimeOnline(stack.origin, cookie, identity.endpointId, true);
    // A crash, then the restart Restart=always makes.
    first.kill("SIGKILL");
    await waitForRuntimeOnline(stack.origin, cookie, identity.endpointId, false);
    start();
    await waitForRuntimeOnline(stack.origin, cookie, identity.endpointId, true);

    // Reinstalling over an enrolled machine keeps its identity (no token needed).
    const again = await installer(["--root", root]);
    expect(again.status, again.output).toBe(0);
    expect(again.output).toContain("already enrolled");
    expect(JSON.parse(readFileSync(join(state, "identity.json"), "utf8")).endpointId).toBe(identity.endpointId);

    // Uninstall keeps the state; --purge removes it.
    const removed = await installer(["--uninstall", "--root", root]);
    expect(removed.status, removed.output).toBe(0);
    expect(existsSync(bin)).toBe(false);
    expect(existsSync(unit)).toBe(false);
    expect(existsSync(join(state, "identity.json"))).toBe(true);
    const purged = await installer(["--uninstall", "--purge", "--root", root]);
    expect(purged.status, purged.output).toBe(0);
    expect(existsSync(state)).toBe(false);
  });

  it("refuses a download whose bytes do not match the published SHA-256, and installs nothing", async () => {
    // A relay that flips one byte of the executable on its way, like a corrupting mirror or a tampered object.
    const relay = http.createServer((request, response) => {
      const upstream = http.request(`${stack.origin}${request.url}`, { method: request.method, headers: request.headers }, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        let flipped = !request.url?.startsWith("/runtime/download/");
        answer.on("data", (chunk: Buffer) => {
          if (!flipped && chunk.length > 1000) {
            chunk = Buffer.from(chunk);
            chunk[1000] = chunk[1000]! ^ 0xff;
            flipped = true;
          }
          response.write(chunk);
        });
        answer.on("end", () => response.end());
      });
      request.pipe(upstream);
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    try {
      const root = join(scratch, "tampered");
      const server = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
      const run = await installer(["--token", DEMO_RUNTIME_TOKEN, "--root", root, "--server", server]);
      expect(run.status).not.toBe(0);
      expect(run.output).toContain("SHA-256 mismatch");
      expect(run.output).toContain("nothing was installed");
      expect(existsSync(join(root, "usr/local/bin/caisey-runtime"))).toBe(false);
      expect(existsSync(join(root, "var/lib/caisey-runtime"))).toBe(false);
    } finally {
      relay.close();
    }
  });

  it("--dry-run downloads and verifies but changes nothing; a missing token is refused before enrolling", async () => {
    const root = join(scratch, "dry");
    mkdirSync(root);
    const dry = await installer(["--token", DEMO_RUNTIME_TOKEN, "--root", root, "--dry-run"]);
    expect(dry.status, dry.output).toBe(0);
    expect(dry.output).toContain("verified SHA-256");
    expect(dry.output).toContain("dry run: would enroll");
    expect(spawnSync("find", [root, "-mindepth", "1"], { encoding: "utf8" }).stdout).toBe("");

    const noToken = await installer(["--root", join(scratch, "no-token")]);
    expect(noToken.status).not.toBe(0);
    expect(noToken.output).toContain("--token is required");
  });
});
