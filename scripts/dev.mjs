#!/usr/bin/env node
// Starts the whole local stack in one workerd: the Pages console + edge routes
// and the session worker's Durable Objects, with D1 migrated and seeded, plus a
// demo endpoint runtime enrolled against it.
//
//   node scripts/dev.mjs [--port 8788] [--state .wrangler/state] [--fresh]
//                        [--no-build] [--no-demo-runtime] [--no-rate-limits]
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SESSION_DEV_VARS_PATH, ensureDevVars, ensureSessionDevVars } from "./dev-keys.mjs";
import { hostPlatform } from "./build-runtime.mjs";
import { publishRuntime } from "./publish-runtime.mjs";
import { seedStateFromTemplate } from "./stack-template.mjs";
import { acquireStartLock } from "./start-lock.mjs";
import { lowerPriorityOf } from "./watcher-priority.mjs";
import { DEMO_MEMBERS, DEMO_RUNTIME_TOKEN, seedSql } from "./seed.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: options } = parseArgs({
  options: {
    port: { type: "string", default: process.env.PORT ?? "8788" },
    state: { type: "string", default: ".wrangler/state" },
    fresh: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    "no-demo-runtime": { type: "boolean", default: false },
    // Test stacks only: every local runtime and browser shares 127.0.0.1, so one
    // suite would exhaust the per-address edge limits (tests/workers/rate-limits.test.ts covers them).
    "no-rate-limits": { type: "boolean", default: false },
  },
});
const port = Number(options.port);
const stateDir = resolve(root, options.state);
const origin = `http://127.0.0.1:${port}`;
const bin = (name) => join(root, "node_modules", ".bin", name);
const log = (message) => console.log(`\x1b[36m[caisey]\x1b[0m ${message}`);

function run(command, args, label) {
  log(label);
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", env: cleanEnv() });
  if (result.status !== 0) {
    console.error(`\n[caisey] ${label} failed (exit ${result.status}).`);
    process.exit(result.status ?? 1);
  }
}

/**
 * Clerk reads process.env before bindings; a stray CLERK_* here would override .dev.vars. Each stack gets its own
 * wrangler dev registry: two stacks at once (the suite's fault and browser lanes) both register "caisey" and
 * "caisey-session", and neither may ever see the other's.
 */
function cleanEnv() {
  const env = { ...process.env, WRANGLER_REGISTRY_PATH: join(stateDir, "dev-registry") };
  for (const key of Object.keys(env)) if (key.startsWith("CLERK_") || key.startsWith("CAISEY_OFFLINE")) delete env[key];
  return env;
}

if (options.fresh) rmSync(stateDir, { recursive: true, force: true });
const startingEmpty = !existsSync(stateDir);
mkdirSync(stateDir, { recursive: true });
// .dev.vars carry this stack's PUBLIC_ORIGIN and wrangler reads them once, at its start: another stack starting at the
// same time (another port) must not rewrite them in between. Held until this stack answers.
const releaseStartLock = await acquireStartLock(join(root, ".wrangler", "stack-start.lock"));
ensureDevVars(join(root, ".dev.vars"), { origin });
// The session worker reads its own .dev.vars (next to its wrangler.toml), not the root one.
ensureSessionDevVars(join(root, SESSION_DEV_VARS_PATH), { origin });

if (!options["no-build"]) {
  run(bin("remix"), ["build"], "Building the console (remix build)");
  run(process.execPath, [join(root, "scripts/build-runtime.mjs")], "Building the endpoint runtime");
}

// The console serves runtime downloads and the one-line installers from local R2, as from R2 in production.
const release = join(root, ".cache", "runtime-release");
if (!options["no-build"] && !existsSync(join(release, "latest.json"))) {
  const platforms = [...new Set([hostPlatform(), "windows-x64"])].join(",");
  run(process.execPath, [join(root, "scripts/build-runtime.mjs"), "--platforms", platforms], `Building runtime executables (${platforms}; once, kept in .cache)`);
}
if (!existsSync(join(release, "latest.json"))) {
  log("No runtime release in .cache/runtime-release: /runtime/download and the installers answer 503 (npm run build:runtime builds one).");
}
if (startingEmpty) {
  seedStateFromTemplate({ root, release, stateDir, run, log });
} else {
  if (existsSync(join(release, "latest.json"))) {
    log("Publishing the runtime release to local R2");
    publishRuntime({ release, target: { local: true, persistTo: stateDir } });
  }
  run(bin("wrangler"), ["d1", "migrations", "apply", "caisey-db", "--local", "--persist-to", stateDir], "Applying D1 migrations");
}
const seedFile = join(stateDir, "seed.sql");
writeFileSync(seedFile, seedSql());
run(bin("wrangler"), ["d1", "execute", "caisey-db", "--local", "--persist-to", stateDir, "--file", seedFile], "Seeding demo data");

log(`Starting Pages + session worker on ${origin}`);
const server = spawn(
  bin("wrangler"),
  [
    "pages", "dev",
    "-c", "wrangler.toml",
    "-c", "workers/session/wrangler.toml",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--persist-to", stateDir,
    "--show-interactive-dev-session=false",
    ...(options["no-rate-limits"] ? ["--binding", "CAISEY_RATE_LIMITS=off"] : []),
    // Runtime releases from a plain HTTP directory instead of R2 (tests/faults/runtime-update.test.ts).
    ...(process.env.CAISEY_RUNTIME_RELEASES_URL ? ["--binding", `CAISEY_RUNTIME_RELEASES_URL=${process.env.CAISEY_RUNTIME_RELEASES_URL}`] : []),
  ],
  { cwd: root, stdio: ["ignore", "inherit", "inherit"], env: cleanEnv() },
);

let runtime = null;
const shutdown = (code = 0) => {
  runtime?.kill("SIGTERM");
  server.kill("SIGTERM");
  setTimeout(() => process.exit(code), 500).unref();
};
process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));
server.on("exit", (code) => {
  log(`wrangler exited (${code})`);
  runtime?.kill("SIGTERM");
  process.exit(code ?? 1);
});

await waitForServer(`${origin}/offline/sign-in`, 90_000);
releaseStartLock();
const watchers = lowerPriorityOf(server.pid);
if (watchers.length > 0) log(`wrangler's esbuild watchers (${watchers.length}) run at the lowest CPU priority (scripts/watcher-priority.mjs)`);
log(`Console ready: ${origin}`);
log(`Approval emails are captured, not sent: read them at ${origin}/dev/mailbox`);
log(`Sign in at ${origin}/offline/sign-in as one of: ${DEMO_MEMBERS.filter((m) => m.orgId.includes("northwind")).map((m) => `${m.name} (${m.role})`).join(", ")}`);

if (!options["no-demo-runtime"]) runtime = startDemoRuntime();

function startDemoRuntime() {
  const runtimeState = join(stateDir, "demo-runtime");
  const cli = join(root, "runtime/bin/caisey-runtime.mjs");
  if (!existsSync(join(runtimeState, "identity.json"))) {
    const enrolled = spawnSync(
      process.execPath,
      [cli, "enroll", "--server", origin, "--token", DEMO_RUNTIME_TOKEN, "--state-dir", runtimeState, "--hostname", "demo-runtime-local"],
      { cwd: root, stdio: "inherit" },
    );
    if (enrolled.status !== 0) {
      log("Demo runtime could not enroll; the console still works without it.");
      return null;
    }
  }
  log("Demo runtime enrolled as demo-runtime-local (client Acme Manufacturing); open it from the endpoints list.");
  const child = spawn(process.execPath, [cli, "run", "--state-dir", runtimeState], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  child.on("exit", (code) => log(`demo runtime exited (${code})`));
  return child;
}

async function waitForServer(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { redirect: "manual" });
      if (response.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.error(`[caisey] ${url} did not answer within ${timeoutMs / 1000}s`);
  shutdown(1);
}
