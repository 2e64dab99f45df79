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
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { signIn, Stack, waitUntil } from "../tests/faults/stack";
import { DEMO_ORG, DEMO_RUNTIME_TOKEN } from "./seed.mjs";
import { machineDescription, summarise, writeBenchmarkSection } from "./bench-report.mjs";

const { values: options } = parseArgs({
  options: {
    runtimes: { type: "string", default: "1000" },
    rate: { type: "string", default: "200" },
    "sustained-endpoints": { type: "string", default: "200" },
    seconds: { type: "string", default: "20" },
    endpoints: { type: "string", default: "10000" },
    port: { type: "string", default: "8797" },
  },
});
const RUNTIMES = Number(options.runtimes);
const RATE = Number(options.rate);
const SECONDS = Number(options.seconds);
// Each endpoint runs one command at a time: the sustained load is spread so that the figure is the stack's, not one queue's.
const SUSTAINED_ENDPOINTS = Number(options["sustained-endpoints"]);
const LIST_ENDPOINTS = Number(options.endpoints);
const STATE_DIR = ".wrangler/bench-scale-state";
const GOALS = { connected: 1000, fleetP99Ms: 10_000, commandsPerSecond: 200, commandP99Ms: 50, listP50Ms: 50 };

const stack = new Stack(Number(options.port), STATE_DIR);

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

async function main() {
  const rows: string[] = [];
  const notes: string[] = [];
  await stack.start(true);
  const cookie = await signIn(stack.origin);
  const prefix = `scale-${Date.now()}`;

  // Enrollment (the runtime's own first contact places each session).
  const runtimes: LightRuntime[] = [];
  const enrollStarted = performance.now();
  await pool(Array.from({ length: RUNTIMES }, (_, i) => i), 8, async (i) => {
    const response = await fetch(`${stack.origin}/agent/enroll`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: DEMO_RUNTIME_TOKEN, hostname: `${prefix}-${String(i).padStart(5, "0")}`, os: "linux" }),
    });
    if (!response.ok) throw new Error(`enroll ${i}: ${response.status} ${await response.text()}`);
    const body = (await response.json()) as { endpointId: string; credential: string };
    runtimes[i] = new LightRuntime(body.endpointId, body.credential);
  });
  const enrollSeconds = (performance.now() - enrollStarted) / 1000;

  // Connect them all; memory is workerd's RSS before and after, per connected runtime.
  const rssBefore = workerdRssKiB();
  const connectTimes: number[] = [];
  const connectStarted = performance.now();
  await pool(runtimes, 50, async (runtime) => {
    const started = performance.now();
    await runtime.connect(stack.origin);
    connectTimes.push(performance.now() - started);
  });
  const connectWall = (performance.now() - connectStarted) / 1000;
  await new Promise((r) => setTimeout(r, 2_000)); // let presence writes settle before reading memory
  const rssAfter = workerdRssKiB();
  const connected = runtimes.filter((r) => r.connected).length;
  const connect = summarise("connect", connectTimes);

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
  const completion: number[] = [];
  await waitUntil("the fleet run to finish", () => runtimes.every((r) => r.dispatchedTexts.includes("echo three")), 180_000).catch(() => undefined);
  for (const runtime of runtimes) {
    const last = [...runtime.finishedAt.values()].sort((a, b) => b - a)[0];
    if (runtime.dispatchedTexts.includes("echo three") && last !== undefined) completion.push(last - fleetStarted);
  }
  const fleet = summarise("fleet", completion);

  // Sustained single commands: technician sockets on a spread of endpoints, RATE commands/s for SECONDS.
  const viewers = runtimes.slice(0, Math.min(SUSTAINED_ENDPOINTS, runtimes.length)).map((runtime) => ({ runtime, ws: null as WebSocket | null, sent: new Map<string, number>(), latencies: [] as number[] }));
  await Promise.all(
    viewers.map(
      (viewer) =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`${stack.origin.replace("http", "ws")}/parties/endpoint/${viewer.runtime.endpointId}`, { headers: { cookie } });
          viewer.ws = ws;
          ws.once("error", reject);
          ws.on("open", () => {
            ws.send(JSON.stringify({ type: "sync", afterSeq: 0 }));
            resolve();
          });
          ws.on("message", (data) => {
            const message = JSON.parse(String(data));
            if (message.type !== "events") return;
            for (const event of message.events) {
              if (event.kind === "command.queued" && viewer.sent.has(event.requestId)) viewer.sent.set(event.commandId, viewer.sent.get(event.requestId)!);
              if (event.kind === "command.finished" && viewer.sent.has(event.commandId)) viewer.latencies.push(performance.now() - viewer.sent.get(event.commandId)!);
            }
          });
        }),
    ),
  );
  const total = RATE * SECONDS;
  const sustainedStarted = performance.now();
  for (let i = 0; i < total; i++) {
    const due = sustainedStarted + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const viewer = viewers[i % viewers.length]!;
    const requestId = crypto.randomUUID();
    viewer.sent.set(requestId, performance.now());
    viewer.ws!.send(JSON.stringify({ type: "run", requestId, text: `echo s${i}`, shell: "sh" }));
  }
  const sendSeconds = (performance.now() - sustainedStarted) / 1000;
  await waitUntil("sustained commands to finish", () => viewers.reduce((n, v) => n + v.latencies.length, 0) >= total, 60_000).catch(() => undefined);
  const sustainedWall = (performance.now() - sustainedStarted) / 1000;
  const latencies = viewers.flatMap((v) => v.latencies);
  const sustained = summarise("sustained", latencies);
  for (const viewer of viewers) viewer.ws?.close();

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

  const ms = (value: number) => (Number.isFinite(value) ? Math.round(value).toString() : "–");
  const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
  const rate = latencies.length / sustainedWall;
  rows.push(
    "| measure | result | goal | |",
    "| --- | ---: | ---: | --- |",
    `| runtimes connected | ${connected} of ${RUNTIMES} | ${GOALS.connected} | ${verdict(connected >= GOALS.connected)} |`,
    `| enrollment of ${RUNTIMES} runtimes (8 at a time) | ${enrollSeconds.toFixed(1)} s | – | |`,
    `| connect (50 at a time): p50 / p99 per runtime | ${ms(connect.p50)} / ${ms(connect.p99)} ms; all in ${connectWall.toFixed(1)} s | – | |`,
    `| workerd RSS per connected runtime | ${((rssAfter - rssBefore) / Math.max(1, connected)).toFixed(1)} KiB (${(rssBefore / 1024).toFixed(0)} → ${(rssAfter / 1024).toFixed(0)} MiB) | – | |`,
    `| fleet run hand-over (console action, ${RUNTIMES} sessions) | ${ms(handedOverMs)} ms | – | |`,
    `| fleet run of a 3-step sequence: completion p50 / p99 (${completion.length} of ${RUNTIMES} finished) | ${ms(fleet.p50)} / ${ms(fleet.p99)} ms | p99 < ${GOALS.fleetP99Ms} ms | ${verdict(completion.length === RUNTIMES && fleet.p99 < GOALS.fleetP99Ms)} |`,
    `| sustained single commands (${total} offered at ${RATE}/s over ${viewers.length} endpoints; sent in ${sendSeconds.toFixed(1)} s) | ${rate.toFixed(0)} commands/s, ${latencies.length} finished | ≥ ${GOALS.commandsPerSecond}/s | ${verdict(rate >= GOALS.commandsPerSecond && latencies.length === total)} |`,
    `| sustained command latency (viewer send → finished): p50 / p99 | ${ms(sustained.p50)} / ${ms(sustained.p99)} ms | p99 < ${GOALS.commandP99Ms} ms | ${verdict(sustained.p99 < GOALS.commandP99Ms)} |`,
    `| endpoints list loader, ${have + extra} endpoints: p50 / p99 | ${ms(list.p50)} / ${ms(list.p99)} ms | p50 < ${GOALS.listP50Ms} ms | ${verdict(list.p50 < GOALS.listP50Ms)} |`,
    `| endpoints search loader (q=bulk-0042): p50 / p99 | ${ms(search.p50)} / ${ms(search.p99)} ms | p50 < ${GOALS.listP50Ms} ms | ${verdict(search.p50 < GOALS.listP50Ms)} |`,
  );
  notes.push(
    `Machine: ${machineDescription()}.`,
    `Real local stack (scripts/dev.mjs: wrangler pages dev + the session worker in workerd, local D1). Runtimes are lightweight in-process WebSocket clients`,
    `speaking the runtime protocol (hello, clock echo, an immediate "succeeded" result per dispatch), enrolled through /agent/enroll so each session is placed`,
    `by its runtime's first contact. Loader times are full HTTP round trips of the signed-in page (HTML), measured after 5 warm-up requests.`,
  );
  const body = `${notes.join("\n")}\n\n${rows.join("\n")}\n`;
  writeBenchmarkSection("Scale: 1,000 runtimes, a fleet run, sustained commands, 10,000 endpoints", body);
  console.log(body);
}

main()
  .catch((error) => {
    console.error(error);
    console.error(stack.output.slice(-3000));
    process.exitCode = 1;
  })
  .finally(async () => {
    await stack.stop();
  });
