// Scale: many connected runtimes, one fleet run to all of them, sustained single
// commands, and the endpoints list at 10,000 endpoints, against the real local
// stack (wrangler + workerd, tests/faults/stack.ts). The runtimes are
// lightweight in-process WebSocket clients speaking the runtime protocol (hello,
// clock echo, an immediate result per dispatch): 1,000 real runtime processes do
// not fit on this machine, and what is measured here is the server side.
//
//   npm run bench:scale [-- --runtimes 1000 --rate 250 --seconds 20]
// Run it under `flock /tmp/caisey-stack.lock` when others share the machine.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { signIn, Stack, waitUntil } from "../tests/faults/stack";
import { DEMO_ORG, DEMO_RUNTIME_TOKEN } from "./seed.mjs";
import { machineDescription, summarise, writeBenchmarkSection } from "./bench-report.mjs";
import { readProcStat } from "./proc-stat.mjs";

const { values: options } = parseArgs({
  options: {
    runtimes: { type: "string", default: "1000" },
    rate: { type: "string", default: "200" },
    "sustained-endpoints": { type: "string", default: "200" },
    seconds: { type: "string", default: "20" },
    endpoints: { type: "string", default: "10000" },
    port: { type: "string", default: "8797" },
    warmup: { type: "string", default: "3" },
    // The session's SQLite (and D1) on tmpfs: see the note the report prints. "--disk-state" repeats the sustained load with them on disk.
    state: { type: "string", default: existsSync("/dev/shm") ? "/dev/shm/caisey-bench-scale" : ".wrangler/bench-scale-state" },
    "disk-state": { type: "string", default: ".wrangler/bench-scale-state" },
    "no-disk-comparison": { type: "boolean", default: false },
  },
});
const RUNTIMES = Number(options.runtimes);
const RATE = Number(options.rate);
const SECONDS = Number(options.seconds);
const WARMUP_SECONDS = Number(options.warmup);
const FLEET_SETTLE_MS = 5_000;
const IDLE_SAMPLE_MS = 10_000;
// Each endpoint runs one command at a time: the sustained load is spread so that the figure is the stack's, not one queue's.
const SUSTAINED_ENDPOINTS = Number(options["sustained-endpoints"]);
const LIST_ENDPOINTS = Number(options.endpoints);
const STATE_DIR = options.state!;
const GOALS = { connected: 1000, fleetP99Ms: 10_000, commandsPerSecond: 200, commandP99Ms: 50, listP50Ms: 50 };

const PORT = Number(options.port);
const stack = new Stack(PORT, STATE_DIR);
const benchStarted = performance.now();
/** Progress on stderr, so a long run says where it is (the report itself goes to stdout and docs). */
const progress = (step: string) => console.error(`[bench:scale +${((performance.now() - benchStarted) / 1000).toFixed(1)} s] ${step}`);

/** A runtime reduced to its protocol: hello, clock echo, and a result the moment work is dispatched. */
class LightRuntime {
  ws: WebSocket | null = null;
  connected = false;
  /** Per command: when its result was sent (ms, performance clock). */
  readonly finishedAt = new Map<string, number>();
  readonly dispatchedTexts: string[] = [];

  constructor(readonly endpointId: string, readonly credential: string) {}

  connect(origin: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${origin.replace("http", "ws")}/agent/connect`, { headers: { authorization: `Bearer ${this.credential}` } });
      this.ws = ws;
      ws.once("error", reject);
      ws.on("open", () => ws.send(JSON.stringify({ type: "hello", protocol: 1, runtimeVersion: "bench", hostname: this.endpointId, os: "linux", clock: Date.now() })));
      ws.on("message", (data) => {
        const message = JSON.parse(String(data));
        if (message.type === "clock") {
          ws.send(JSON.stringify({ type: "clock", serverTime: message.serverTime, runtimeTime: Date.now() }));
          this.connected = true;
          resolve();
        } else if (message.type === "dispatch") {
          const now = Date.now();
          this.dispatchedTexts.push(message.command.text);
          ws.send(
            JSON.stringify({
              type: "result",
              result: { commandId: message.command.commandId, status: "succeeded", exitCode: 0, startedAt: now, finishedAt: now, durationMs: 0, tail: [{ stream: "stdout", data: "ok\n" }], truncated: false, error: null },
            }),
          );
          this.finishedAt.set(message.command.commandId, performance.now());
        }
      });
    });
  }

  close() {
    this.ws?.close();
  }
}

async function pool<T>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  }));
}

/** Resident memory of the stack's workerd processes, in KiB. */
function workerdRssKiB(): number {
  const out = spawnSync("ps", ["-eo", "rss=,comm="], { encoding: "utf8" }).stdout;
  return out
    .split("\n")
    .filter((line) => line.trim().endsWith("workerd"))
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
}

/** CPU time (user + system) the stack's workerd processes have used so far, in ms (Linux /proc). */
function workerdCpuMs(): number {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const pids = spawnSync("pgrep", ["-x", "workerd"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  let ticks = 0;
  for (const pid of pids) {
    const stat = readProcStat(Number(pid)); // null: exited meanwhile
    if (stat) ticks += Number(stat.fields[11]) + Number(stat.fields[12]);
  }
  return (ticks * 1000) / ticksPerSecond;
}

/** Enrolls `count` runtimes through /agent/enroll (the runtime's own first contact places each session). */
async function enroll(origin: string, count: number, prefix: string): Promise<{ runtimes: LightRuntime[]; seconds: number }> {
  const runtimes: LightRuntime[] = [];
  const started = performance.now();
  await pool(Array.from({ length: count }, (_, i) => i), 8, async (i) => {
    const response = await fetch(`${origin}/agent/enroll`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: DEMO_RUNTIME_TOKEN, hostname: `${prefix}-${String(i).padStart(5, "0")}`, os: "linux" }),
    });
    if (!response.ok) throw new Error(`enroll ${i}: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { endpointId: string; credential: string };
    runtimes[i] = new LightRuntime(body.endpointId, body.credential);
  });
  return { runtimes, seconds: (performance.now() - started) / 1000 };
}

async function connectAll(origin: string, runtimes: LightRuntime[]): Promise<{ times: number[]; seconds: number }> {
  const times: number[] = [];
  const started = performance.now();
  await pool(runtimes, 50, async (runtime) => {
    const t = performance.now();
    await runtime.connect(origin);
    times.push(performance.now() - t);
  });
  return { times, seconds: (performance.now() - started) / 1000 };
}

type Sent = { sentAt: number; measured: boolean };
type Viewer = { runtime: LightRuntime; ws: WebSocket | null; sent: Map<string, Sent>; finished: (Sent & { finishedAt: number })[] };

/**
 * RATE single commands a second from technician sockets spread over the runtimes: first WARMUP_SECONDS whose
 * results are not counted (the isolate's JIT and the sessions' first writes), then SECONDS that are.
 */
async function sustainedLoad(origin: string, cookie: string, runtimes: LightRuntime[]) {
  const viewers: Viewer[] = runtimes.slice(0, Math.min(SUSTAINED_ENDPOINTS, runtimes.length)).map((runtime) => ({ runtime, ws: null, sent: new Map(), finished: [] }));
  await Promise.all(
    viewers.map(
      (viewer) =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`${origin.replace("http", "ws")}/parties/endpoint/${viewer.runtime.endpointId}`, { headers: { cookie } });
          viewer.ws = ws;
          ws.once("error", reject);
          ws.on("open", () => ws.send(JSON.stringify({ type: "sync", afterSeq: 0 })));
          ws.on("message", (data) => {
            const message = JSON.parse(String(data));
            if (message.type !== "events") return;
            // Connected once the session has answered the page's sync with its replay: a technician opening the page
            // (the edge's auth, the transcript replay) is not part of the sustained load.
            if (message.replay) resolve();
            for (const event of message.events) {
              if (event.kind === "command.queued" && viewer.sent.has(event.requestId)) viewer.sent.set(event.commandId, viewer.sent.get(event.requestId)!);
              if (event.kind === "command.finished" && viewer.sent.has(event.commandId)) viewer.finished.push({ ...viewer.sent.get(event.commandId)!, finishedAt: performance.now() });
            }
          });
        }),
    ),
  );
  const warmup = RATE * WARMUP_SECONDS;
  const total = warmup + RATE * SECONDS;
  const loadStarted = performance.now();
  const measuredFrom = loadStarted + WARMUP_SECONDS * 1000;
  let cpuAtMeasuredStart = NaN;
  for (let i = 0; i < total; i++) {
    if (i === warmup) cpuAtMeasuredStart = workerdCpuMs();
    const wait = loadStarted + (i * 1000) / RATE - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const viewer = viewers[i % viewers.length]!;
    const requestId = crypto.randomUUID();
    viewer.sent.set(requestId, { sentAt: performance.now(), measured: i >= warmup });
    viewer.ws!.send(JSON.stringify({ type: "run", requestId, text: `echo s${i}`, shell: "sh" }));
  }
  const sendSeconds = (performance.now() - measuredFrom) / 1000;
  await waitUntil("sustained commands to finish", () => viewers.reduce((n, v) => n + v.finished.length, 0) >= total, 60_000).catch(() => undefined);
  const cpuMs = workerdCpuMs() - cpuAtMeasuredStart;
  for (const viewer of viewers) viewer.ws?.close();
  const finished = viewers.flatMap((v) => v.finished).filter((f) => f.measured);
  const latencies = finished.map((f) => f.finishedAt - f.sentAt);
  // Completed per second from the first measured send to the last result: a stack that keeps up completes at the offered rate.
  const wall = finished.length ? (Math.max(...finished.map((f) => f.finishedAt)) - measuredFrom) / 1000 : Infinity;
  if (process.env.BENCH_DEBUG) {
    for (let second = 0; second < SECONDS; second++) {
      const inSecond = finished.filter((f) => Math.floor((f.sentAt - measuredFrom) / 1000) === second).map((f) => f.finishedAt - f.sentAt);
      const s = summarise(String(second), inSecond);
      console.error(`debug: second ${second}: ${inSecond.length} finished; p50 ${s.p50.toFixed(0)} p99 ${s.p99.toFixed(0)} max ${s.max.toFixed(0)} ms`);
    }
  }
  return {
    offered: RATE * SECONDS,
    endpoints: viewers.length,
    finished: finished.length,
    sendSeconds,
    rate: finished.length / wall,
    latency: summarise("sustained", latencies),
    // Both workerd processes (console and sessions), from the first measured send until every command finished.
    cpuMsPerCommand: finished.length ? cpuMs / finished.length : NaN,
  };
}

async function main() {
  const rows: string[] = [];
  const notes: string[] = [];
  progress("starting the local stack");
  await stack.start(true);
  const cookie = await signIn(stack.origin);
  const prefix = `scale-${Date.now()}`;

  progress(`enrolling ${RUNTIMES} runtimes`);
  const { runtimes, seconds: enrollSeconds } = await enroll(stack.origin, RUNTIMES, prefix);

  progress(`enrolled in ${enrollSeconds.toFixed(1)} s; connecting`);
  // Connect them all; memory is workerd's RSS before and after, per connected runtime.
  const rssBefore = workerdRssKiB();
  const { times: connectTimes, seconds: connectWall } = await connectAll(stack.origin, runtimes);
  await new Promise((r) => setTimeout(r, 2_000)); // let presence writes settle before reading memory
  const rssAfter = workerdRssKiB();
  // What the connected fleet costs while nothing is asked of it (keep-alives, presence), over IDLE_SAMPLE_MS.
  const idleCpuBefore = workerdCpuMs();
  await new Promise((r) => setTimeout(r, IDLE_SAMPLE_MS));
  const idleCpuShare = (workerdCpuMs() - idleCpuBefore) / IDLE_SAMPLE_MS;
  const connected = runtimes.filter((r) => r.connected).length;
  const connect = summarise("connect", connectTimes);
  progress(`${connected} connected in ${connectWall.toFixed(1)} s; starting the fleet run`);

  // One fleet run of a 3-step sequence to every runtime, through the console's own form action.
  const form = (fields: Record<string, string>) =>
    fetch(`${stack.origin}/fleet?index`, { method: "POST", redirect: "manual", headers: { cookie, origin: stack.origin }, body: new URLSearchParams(fields) });
  await form({ intent: "save-filter", name: prefix, q: prefix });
  const filterId = await (async () => {
    const page = await (await fetch(`${stack.origin}/fleet`, { headers: { cookie } })).text();
    const match = new RegExp(`value="(flt_[^"]+)"[^>]*>${prefix}`).exec(page);
    if (!match) throw new Error("saved filter not found on the fleet page");
    return match[1]!;
  })();
  const fleetStarted = performance.now();
  const started = await form({ intent: "start", name: "Scale sequence", steps: "echo one\necho two\necho three", shell: "sh", stopOnFailure: "on", schedule: "now", filterId });
  const handedOverMs = performance.now() - fleetStarted;
  if (started.status !== 302) throw new Error(`fleet run not started: ${started.status} ${(await started.text()).slice(0, 500)}`);
  progress(`fleet run handed over in ${Math.round(handedOverMs)} ms; waiting for every runtime's third step`);
  const completion: number[] = [];
  await waitUntil("the fleet run to finish", () => runtimes.every((r) => r.dispatchedTexts.includes("echo three")), 180_000).catch(() => undefined);
  for (const runtime of runtimes) {
    const last = [...runtime.finishedAt.values()].sort((a, b) => b - a)[0];
    if (runtime.dispatchedTexts.includes("echo three") && last !== undefined) completion.push(last - fleetStarted);
  }
  const fleet = summarise("fleet", completion);
  progress(`fleet run: ${completion.length} of ${RUNTIMES} finished; sustained load next`);

  // The fleet run's sessions replicate its last events for a few seconds after their results (ADR 0005): let that
  // settle, so the sustained figures are of sustained commands and not of the fleet run's tail.
  await new Promise((r) => setTimeout(r, FLEET_SETTLE_MS));
  const sustained = await sustainedLoad(stack.origin, cookie, runtimes);
  progress(`sustained: ${sustained.finished} of ${sustained.offered} finished; seeding ${LIST_ENDPOINTS} endpoints for the list loader`);

  // The endpoints list and search loader with LIST_ENDPOINTS endpoints in the tenant (seeded straight into D1).
  const have = Number(
    JSON.parse(execFileSync("npx", ["wrangler", "d1", "execute", "caisey-db", "--local", "--persist-to", STATE_DIR, "--json", "--command", `SELECT COUNT(*) AS n FROM endpoints WHERE org_id = '${DEMO_ORG.id}'`], { encoding: "utf8" }))[0].results[0].n,
  );
  const extra = Math.max(0, LIST_ENDPOINTS - have);
  execFileSync("npx", [
    "wrangler", "d1", "execute", "caisey-db", "--local", "--persist-to", STATE_DIR, "--command",
    // SQLite's OFFSET cannot see the outer row, so clients are numbered once and joined round-robin.
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${extra}),
          c AS (SELECT id, ROW_NUMBER() OVER (ORDER BY id) - 1 AS k, COUNT(*) OVER () AS total FROM clients WHERE org_id = '${DEMO_ORG.id}')
     INSERT INTO endpoints (id, org_id, client_id, hostname, os, online)
     SELECT printf('ep_bulk_%05d', i), '${DEMO_ORG.id}', c.id,
            printf('bulk-%05d', (i * 7919) % ${extra}), CASE i % 3 WHEN 0 THEN 'windows' WHEN 1 THEN 'linux' ELSE 'macos' END, i % 2
     FROM n JOIN c ON c.k = n.i % c.total`,
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const timeLoader = async (path: string) => {
    const samples: number[] = [];
    for (let i = 0; i < 25; i++) {
      const t = performance.now();
      const response = await fetch(`${stack.origin}${path}`, { headers: { cookie } });
      await response.text();
      if (!response.ok) throw new Error(`${path}: ${response.status}`);
      if (i >= 5) samples.push(performance.now() - t); // the first few warm the isolate
    }
    return summarise(path, samples);
  };
  const list = await timeLoader("/endpoints");
  const search = await timeLoader("/endpoints?q=bulk-0042");

  for (const runtime of runtimes) runtime.close();
  await stack.stop();

  // The same sustained load with the session's storage on this machine's disk, so the note below is a measurement.
  let onDisk: Awaited<ReturnType<typeof sustainedLoad>> | null = null;
  if (!options["no-disk-comparison"]) {
    progress(`the same sustained load with state on disk (${options["disk-state"]})`);
    diskStack = new Stack(PORT, options["disk-state"]!);
    await diskStack.start(true);
    const diskCookie = await signIn(diskStack.origin);
    const { runtimes: diskRuntimes } = await enroll(diskStack.origin, SUSTAINED_ENDPOINTS, `${prefix}-disk`);
    await connectAll(diskStack.origin, diskRuntimes);
    onDisk = await sustainedLoad(diskStack.origin, diskCookie, diskRuntimes);
    for (const runtime of diskRuntimes) runtime.close();
  }

  const ms = (value: number) => (Number.isFinite(value) ? Math.round(value).toString() : "–");
  const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
  const sustainedRow = (label: string, load: Awaited<ReturnType<typeof sustainedLoad>>, judged: boolean) => [
    // Kept up: every command finished, and completions (first send → last result) did not fall behind the offered rate.
    `| ${label}: ${load.offered} offered at ${RATE}/s over ${load.endpoints} endpoints after ${WARMUP_SECONDS} s of warm-up (sent in ${load.sendSeconds.toFixed(1)} s) | ${load.finished} finished; completed at ${load.rate.toFixed(1)}/s | ≥ ${GOALS.commandsPerSecond}/s | ${judged ? verdict(RATE >= GOALS.commandsPerSecond && load.finished === load.offered && load.rate >= RATE * 0.98) : "for comparison"} |`,
    `| ${label}: latency (viewer send → finished) p50 / p99 | ${ms(load.latency.p50)} / ${ms(load.latency.p99)} ms | p99 < ${GOALS.commandP99Ms} ms | ${judged ? verdict(load.latency.p99 < GOALS.commandP99Ms) : "for comparison"} |`,
    `| ${label}: CPU of the stack's workerd processes per command | ${load.cpuMsPerCommand.toFixed(2)} ms | – | |`,
  ];
  rows.push(
    "| measure | result | goal | |",
    "| --- | ---: | ---: | --- |",
    `| runtimes connected | ${connected} of ${RUNTIMES} | ${GOALS.connected} | ${verdict(connected >= GOALS.connected)} |`,
    `| enrollment of ${RUNTIMES} runtimes (8 at a time) | ${enrollSeconds.toFixed(1)} s | – | |`,
    `| connect (50 at a time): p50 / p99 per runtime | ${ms(connect.p50)} / ${ms(connect.p99)} ms; all in ${connectWall.toFixed(1)} s | – | |`,
    `| workerd CPU with ${connected} runtimes connected and idle (${IDLE_SAMPLE_MS / 1000} s) | ${(idleCpuShare * 100).toFixed(1)} % of one core | – | |`,
    `| workerd RSS per connected runtime | ${((rssAfter - rssBefore) / Math.max(1, connected)).toFixed(1)} KiB (${(rssBefore / 1024).toFixed(0)} → ${(rssAfter / 1024).toFixed(0)} MiB) | – | |`,
    `| fleet run hand-over (console action, ${RUNTIMES} sessions) | ${ms(handedOverMs)} ms | – | |`,
    `| fleet run of a 3-step sequence: completion p50 / p99 (${completion.length} of ${RUNTIMES} finished) | ${ms(fleet.p50)} / ${ms(fleet.p99)} ms | p99 < ${GOALS.fleetP99Ms} ms | ${verdict(completion.length === RUNTIMES && fleet.p99 < GOALS.fleetP99Ms)} |`,
    ...sustainedRow("sustained single commands", sustained, true),
    ...(onDisk ? sustainedRow("the same with session storage on disk", onDisk, false) : []),
    `| endpoints list loader, ${have + extra} endpoints: p50 / p99 | ${ms(list.p50)} / ${ms(list.p99)} ms | p50 < ${GOALS.listP50Ms} ms | ${verdict(list.p50 < GOALS.listP50Ms)} |`,
    `| endpoints search loader (q=bulk-0042): p50 / p99 | ${ms(search.p50)} / ${ms(search.p99)} ms | p50 < ${GOALS.listP50Ms} ms | ${verdict(search.p50 < GOALS.listP50Ms)} |`,
  );
  notes.push(
    `Machine: ${machineDescription()}.`,
    `Real local stack (scripts/dev.mjs: wrangler pages dev + the session worker in workerd, local D1). Runtimes are lightweight in-process WebSocket clients`,
    `speaking the runtime protocol (hello, clock echo, an immediate "succeeded" result per dispatch), enrolled through /agent/enroll so each session is placed`,
    `by its runtime's first contact. The sustained load starts ${FLEET_SETTLE_MS / 1000} s after the fleet run finished (its sessions' last replications) and`,
    `counts only the commands sent after its ${WARMUP_SECONDS} s warm-up; all ${RUNTIMES} runtimes stay connected throughout.`,
    `Loader times are full HTTP round trips of the signed-in page (HTML), measured after 5 warm-up requests.`,
    `State (the sessions' SQLite, local D1): ${STATE_DIR}. Local workerd commits each Durable Object's SQLite with a WAL sync on the one thread that also`,
    `runs every session, which production Durable Object storage does not do on the isolate's thread; on tmpfs that sync costs nothing. The row "on disk"`,
    `repeats the sustained load on a second stack with its state in ${options["disk-state"]}, so the cost of this machine's disk is shown, not assumed.`,
  );
  const body = `${notes.join("\n")}\n\n${rows.join("\n")}\n`;
  writeBenchmarkSection("Scale: 1,000 runtimes, a fleet run, sustained commands, 10,000 endpoints", body);
  console.log(body);
}

let diskStack: Stack | null = null;

main()
  .catch((error) => {
    console.error(error);
    console.error((diskStack ?? stack).output.slice(-3000));
    process.exitCode = 1;
  })
  .finally(async () => {
    await stack.stop();
    await diskStack?.stop();
  });
