#!/usr/bin/env node
// Review page loader benchmark: 100,000 audit events (20 endpoints of the demo
// tenant × 5,000) in a fresh local D1, then timed GETs of the /review loader
// (`?_data=routes/_console.review`) for the default window, a failed-status
// filter and a 7-day window. Also times `npm run audit:verify` and the page's
// "verify chains" action over the same events once each. Writes the
// "## Review page loader" section of docs/benchmarks.md.
//
//   node scripts/bench-review.mjs [--runs 50] [--port 8796] [--state .wrangler/bench-review-state]
//
// Needs a built console (`npx remix build`); it starts the stack with --no-build.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { computeAuditHash, computeCheckpointMac, GENESIS_HASH, loadMacKey } from "./audit-verify.mjs";
import { machineDescription, summarise, writeBenchmarkSection } from "./bench-report.mjs";
import { DEMO_ORG, demoEndpoints } from "./seed.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: options } = parseArgs({
  options: {
    runs: { type: "string", default: "50" },
    port: { type: "string", default: "8796" },
    state: { type: "string", default: ".wrangler/bench-review-state" },
  },
});
const RUNS = Math.max(1, Number(options.runs));
const WARMUP = 5;
const ENDPOINTS = 20;
const EVENTS_PER_ENDPOINT = 5000;
const SPREAD_MS = 7 * 86_400_000; // events spread evenly over the last 7 days
const origin = `http://127.0.0.1:${options.port}`;
const stateDir = resolve(root, options.state);
const wrangler = join(root, "node_modules", ".bin", "wrangler");
const log = (message) => console.log(`[bench-review] ${message}`);

// ---------------------------------------------------------------------------
// The stack (its own process group, so every process it starts is stopped)

let server = null;
let serverOutput = "";
function stopServer() {
  if (!server || server.exitCode !== null) return;
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    // already gone
  }
}
process.on("exit", stopServer);
process.on("SIGINT", () => process.exit(130));
process.on("SIGTERM", () => process.exit(143));

function startServer() {
  server = spawn(
    process.execPath,
    [join(root, "scripts/dev.mjs"), "--port", options.port, "--state", options.state, "--fresh", "--no-build", "--no-demo-runtime"],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  server.stdout.on("data", (d) => (serverOutput += d));
  server.stderr.on("data", (d) => (serverOutput += d));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`stack did not start:\n${serverOutput.slice(-3000)}`)), 180_000);
    const check = () => {
      if (serverOutput.includes("Console ready")) {
        clearTimeout(timer);
        resolvePromise();
      }
    };
    server.stdout.on("data", check);
    server.on("exit", (code) => reject(new Error(`stack exited (${code}):\n${serverOutput.slice(-3000)}`)));
  });
}

async function waitForExit(child, timeoutMs) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, timeoutMs))]);
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------
// Seed: 20 × 5,000 events with valid hash chains, written as a SQL file

const q = (v) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`);
const TECHS = [
  ["user_demo_tech", "Tom Technician"],
  ["user_demo_admin", "Ada Admin"],
];
const TEXTS = ["ipconfig /all", "Get-Service spooler", "systemctl status nginx", "df -h", "Get-EventLog -LogName System -Newest 50", "whoami", "ping -n 4 10.0.0.1", "Restart-Service wuauserv"];

/** Command lifecycles (requested, dispatched, finished; now and then an approval) until `count` events. */
function endpointEvents(endpointId, count, now, endpointIndex) {
  const events = [];
  let n = 0;
  const step = SPREAD_MS / count;
  const at = () => Math.round(now - SPREAD_MS + (events.length + 0.5) * step);
  while (events.length < count) {
    const [actorId, actorName] = TECHS[n % TECHS.length];
    const commandId = `bench_${endpointIndex}_${n}`;
    const text = TEXTS[(n + endpointIndex) % TEXTS.length];
    const actor = { actorId, actorName, actorAddress: "203.0.113.7", commandId };
    const roll = (n * 7919 + endpointIndex * 104729) % 100;
    if (roll < 3) {
      events.push({ ...actor, at: at(), kind: "command.requested", status: "pending_approval", detail: JSON.stringify({ text, shell: "powershell" }) });
      events.push({ ...actor, at: at(), kind: "approval.requested", status: "pending_approval", detail: "{}" });
      if (roll < 2) events.push({ ...actor, actorId: null, actorName: "Client contact", at: at(), kind: "approval.decided", status: roll < 1 ? "denied" : "approved", detail: "{}" });
    } else {
      const status = roll < 13 ? "failed" : roll < 16 ? "timed_out" : roll < 18 ? "cancelled" : "succeeded";
      const sentAt = at();
      events.push({ ...actor, at: sentAt, kind: "command.requested", status: "queued", detail: JSON.stringify({ text, shell: "default" }) });
      events.push({ ...actor, actorId: null, actorName: null, actorAddress: null, at: at(), kind: "command.dispatched", status: "dispatched", detail: "{}" });
      const finishedAt = at();
      events.push({
        ...actor,
        at: finishedAt,
        kind: "command.finished",
        status,
        detail: JSON.stringify({ text, exitCode: status === "succeeded" ? 0 : status === "failed" ? 1 : null, sentAt, dispatchedAt: sentAt + 5, executedAt: sentAt + 20, returnedAt: finishedAt }),
      });
    }
    n += 1;
  }
  return events.slice(0, count);
}

function seedFile(now) {
  const endpoints = demoEndpoints(now).filter((e) => e.org_id === DEMO_ORG.id).slice(0, ENDPOINTS);
  const columns = "endpoint_id, seq, org_id, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash";
  const statements = [];
  let rows = [];
  let total = 0;
  // Each chain ends in the checkpoint its session would have written, so the verifiers see an intact replica.
  const { key } = loadMacKey(root);
  if (!key) throw new Error("no AUDIT_MAC_KEY in workers/session/.dev.vars: start the stack with scripts/dev.mjs first");
  const checkpoints = [];
  endpoints.forEach((endpoint, index) => {
    let prevHash = GENESIS_HASH;
    let last = null;
    endpointEvents(endpoint.id, EVENTS_PER_ENDPOINT, now, index).forEach((event, i) => {
      const unhashed = { endpointId: endpoint.id, orgId: DEMO_ORG.id, seq: i + 1, ...event, prevHash };
      const hash = computeAuditHash(unhashed);
      prevHash = hash;
      last = { seq: unhashed.seq, hash, at: unhashed.at };
      const e = unhashed;
      rows.push(`(${[e.endpointId, e.seq, e.orgId, e.at, e.kind, e.actorId, e.actorName, e.actorAddress, e.commandId, e.status, e.detail, e.prevHash, hash].map(q).join(", ")})`);
      total += 1;
      if (rows.length === 100) {
        statements.push(`INSERT INTO audit_events (${columns}) VALUES\n${rows.join(",\n")};`);
        rows = [];
      }
    });
    if (last) {
      const checkpoint = { endpointId: endpoint.id, orgId: DEMO_ORG.id, ...last };
      const values = [checkpoint.endpointId, checkpoint.orgId, checkpoint.seq, checkpoint.hash, checkpoint.at, computeCheckpointMac(key, checkpoint)];
      checkpoints.push(`INSERT OR REPLACE INTO audit_checkpoints (endpoint_id, org_id, seq, hash, at, mac) VALUES (${values.map(q).join(", ")});`);
    }
  });
  if (rows.length) statements.push(`INSERT INTO audit_events (${columns}) VALUES\n${rows.join(",\n")};`);
  statements.push(...checkpoints);
  const file = join(stateDir, "bench-review-audit.sql");
  writeFileSync(file, `${statements.join("\n")}\n`);
  return { file, total, endpoints: endpoints.length };
}

// ---------------------------------------------------------------------------
// HTTP

async function signIn() {
  const response = await fetch(`${origin}/offline/sign-in`, {
    method: "POST",
    body: new URLSearchParams({ userId: "user_demo_noc", orgId: DEMO_ORG.id, redirect_url: "/review" }),
    redirect: "manual",
  });
  const cookies = response.headers.getSetCookie().map((c) => c.split(";")[0]);
  if (response.status !== 302 || cookies.length === 0) throw new Error(`sign-in failed: ${response.status} ${await response.text()}`);
  return cookies.join("; ");
}

/** fetch, retried once when a kept-alive socket was closed by the server while idle. */
async function fetchOnce(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    if (error?.cause?.code !== "UND_ERR_SOCKET") throw error;
    return fetch(url, init);
  }
}

async function timeLoader(cookie, query, path = "/review", routeId = "routes/_console.review") {
  const url = `${origin}${path}?${new URLSearchParams({ ...query, _data: routeId })}`;
  const started = performance.now();
  const response = await fetchOnce(url, { headers: { cookie }, redirect: "manual" });
  const body = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}: ${body.slice(0, 500)}`);
  return { ms, data: JSON.parse(body) };
}

async function scenario(cookie, name, query, path, routeId) {
  for (let i = 0; i < WARMUP; i++) await timeLoader(cookie, query, path, routeId);
  const samples = [];
  let last = null;
  for (let i = 0; i < RUNS; i++) {
    const { ms, data } = await timeLoader(cookie, query, path, routeId);
    samples.push(ms);
    last = data;
  }
  const summary = summarise(name, samples);
  const rows = last.page.rows.length;
  log(`${name}: p50 ${summary.p50.toFixed(1)} ms, p95 ${summary.p95.toFixed(1)} ms, max ${summary.max.toFixed(1)} ms (${rows} rows${last.unreviewedFailures === undefined ? "" : `, ${last.unreviewedFailures} unreviewed failures`})`);
  return { ...summary, rows, more: Boolean(last.page.nextCursor), unreviewed: last.unreviewedFailures ?? "–" };
}

// ---------------------------------------------------------------------------

async function main() {
  mkdirSync(stateDir, { recursive: true });
  log(`starting the stack on ${origin} (state ${options.state})`);
  await startServer();

  const now = Date.now();
  const seeded = seedFile(now);
  log(`seeding ${seeded.total} audit events (${seeded.endpoints} endpoints) with wrangler d1 execute --file`);
  const seedStarted = performance.now();
  const result = spawnSync(wrangler, ["d1", "execute", "caisey-db", "--local", "--persist-to", stateDir, "--file", seeded.file], { cwd: root, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`seeding failed:\n${result.stderr}\n${result.stdout}`);
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  rmSync(seeded.file, { force: true });

  const cookie = await signIn();
  const sevenDays = new Date(now - SPREAD_MS).toISOString().slice(0, 16);
  const baseline = await scenario(cookie, "baseline: /endpoints loader (auth + one page of endpoints)", {}, "/endpoints", "routes/_console.endpoints._index");
  const scenarios = [
    await scenario(cookie, "default window (since 18:00 UTC yesterday)", {}),
    await scenario(cookie, "default window, status = failed", { status: "failed" }),
    await scenario(cookie, "7-day window (all 100,000 events)", { from: sevenDays }),
  ];

  // One run each of the two chain verifiers over the same 100,000 events.
  const actionStarted = performance.now();
  const action = await fetchOnce(`${origin}/review?_data=routes%2F_console.review`, {
    method: "POST",
    headers: { cookie },
    body: new URLSearchParams({ intent: "verify-chains" }),
    redirect: "manual",
  });
  const actionBody = await action.json();
  const actionSeconds = (performance.now() - actionStarted) / 1000;
  const intact = Array.isArray(actionBody.verdicts) && actionBody.verdicts.every((v) => v.ok);
  log(`verify-chains action: ${action.status} in ${actionSeconds.toFixed(1)} s, ${actionBody.verdicts?.length} endpoints, intact ${intact}`);

  const verifyStarted = performance.now();
  const verify = spawnSync(process.execPath, [join(root, "scripts/audit-verify.mjs"), "--state", options.state], { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const cliSeconds = (performance.now() - verifyStarted) / 1000;
  const cliSummary = verify.stdout.trim().split("\n").at(-1);
  log(`audit:verify exit ${verify.status} in ${cliSeconds.toFixed(1)} s: ${cliSummary}`);

  const fmt = (ms) => ms.toFixed(1);
  const body = [
    `Machine: ${machineDescription()}.`,
    "",
    `${seeded.total.toLocaleString("en")} audit events in the local D1 (${seeded.endpoints} endpoints of the demo tenant × ${EVENTS_PER_ENDPOINT.toLocaleString("en")}, spread evenly over the last 7 days; ` +
      "command lifecycles with ~10% failed, 3% timed out, 2% cancelled, 3% approval requests), seeded with valid hash chains in " +
      `${seedSeconds.toFixed(1)} s. Each figure: ${RUNS} sequential GET /review?_data=routes/_console.review (after ${WARMUP} warm-up requests) as the NOC member, ` +
      "through the whole local stack (wrangler pages dev, workerd, local D1); the loader runs the page query (first 100 rows, keyset), the unreviewed-failures count and the filter options.",
    "",
    "| loader request | rows | more pages | unreviewed failures | p50 ms | p95 ms | max ms |",
    "| --- | ---: | :---: | ---: | ---: | ---: | ---: |",
    ...[baseline, ...scenarios].map((s) => `| ${s.name} | ${s.rows} | ${s.more ? "yes" : "no"} | ${s.unreviewed} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.max)} |`),
    "",
    `Chain verification over the same events, one run each: \`npm run audit:verify\` (local D1 through one Miniflare, pages of 20,000) ${cliSeconds.toFixed(1)} s, exit ${verify.status} ("${cliSummary}"); ` +
      `the review page's "Verify audit chains" action (pages of 1,000, WebCrypto in workerd) ${actionSeconds.toFixed(1)} s, ${intact ? "all intact" : "NOT intact"}.`,
    "",
    "Reproduce: `npx remix build && node scripts/bench-review.mjs` (state in `.wrangler/bench-review-state`, port 8796).",
  ].join("\n");
  writeBenchmarkSection("Review page loader", body);
  log("wrote the \"Review page loader\" section of docs/benchmarks.md");
}

try {
  await main();
} catch (error) {
  console.error(error);
  console.error(`--- stack output (tail) ---\n${serverOutput.slice(-4000)}`);
  process.exitCode = 1;
} finally {
  stopServer();
  await waitForExit(server, 10_000);
}
