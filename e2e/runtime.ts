import { expect, test, type Page } from "@playwright/test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { DEMO_RUNTIME_TOKEN } from "../scripts/seed.mjs";
import { E2E_ORIGIN } from "./origin";

const CLI = join(process.cwd(), "runtime/bin/caisey-runtime.mjs");

/** A real endpoint runtime process, enrolled against the stack under test. */
export class RuntimeProcess {
  readonly stateDir = mkdtempSync(join(tmpdir(), "caisey-e2e-runtime-"));
  endpointId = "";
  private child: ChildProcess | null = null;
  log = "";

  constructor(readonly server: string, readonly hostname: string) {}

  enroll(token: string) {
    const result = spawnSync(
      process.execPath,
      [CLI, "enroll", "--server", this.server, "--token", token, "--state-dir", this.stateDir, "--hostname", this.hostname],
      { encoding: "utf8" },
    );
    if (result.status !== 0) throw new Error(`enroll failed (${result.status}): ${result.stderr}${result.stdout}`);
    this.endpointId = JSON.parse(readFileSync(join(this.stateDir, "identity.json"), "utf8")).endpointId;
    return this.endpointId;
  }

  start(args: string[] = []) {
    this.child = spawn(process.execPath, [CLI, "run", "--state-dir", this.stateDir, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d) => (this.log += d));
    this.child.stderr!.on("data", (d) => (this.log += d));
  }

  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }

  async dispose() {
    await this.stop();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/**
 * A runtime enrolled (and, unless `start` is false, running) for the specs in
 * one file; disposed after them.
 */
export function runtimeForSpec(name: string, { start = true } = {}): () => RuntimeProcess {
  let runtime: RuntimeProcess | undefined;
  test.beforeAll(() => {
    runtime = new RuntimeProcess(E2E_ORIGIN, `e2e-${name}-${Date.now()}`);
    runtime.enroll(DEMO_RUNTIME_TOKEN);
    if (start) runtime.start();
  });
  test.afterAll(async () => {
    await runtime?.dispose();
  });
  return () => runtime!;
}

/** Opens an endpoint's page and waits for its live socket (and, by default, its runtime). */
export async function openEndpoint(page: Page, endpointId: string, { runtimeOnline = true } = {}) {
  await page.goto(`/endpoints/${endpointId}`);
  await expect(page.getByTestId("socket-status")).toHaveAttribute("data-status", "live");
  await expect(page.getByTestId("runtime-state")).toHaveAttribute("data-online", String(runtimeOnline), { timeout: 20_000 });
}
