// Soak: many runtimes, many commands, random connection cuts. Every runtime
// reaches the stack through a relay this process cuts at random; commands
// count their own runs in a ledger on the endpoint. Reports throughput,
// completion latency, and — the point — lost and duplicated commands.
//
//   npm run bench:soak   (or as part of npm run bench)
import { parseArgs } from "node:util";
import { CuttableRelay, Runtime, signIn, Stack, Viewer, waitUntil } from "../tests/faults/stack";
import { machineDescription, summarise, writeBenchmarkSection } from "./bench-report.mjs";

const { values: options } = parseArgs({
  options: {
    runtimes: { type: "string", default: "20" },
    commands: { type: "string", default: "500" },
    port: { type: "string", default: "8798" },
    seed: { type: "string", default: "42" },
  },
});
const RUNTIMES = Number(options.runtimes);
const COMMANDS = Number(options.commands);
const DEADLINE_MS = 240_000;

// Deterministic pseudo-random choices, so a run can be repeated.
let state = Number(options.seed);
const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

const stack = new Stack(Number(options.port), ".wrangler/bench-soak-state");
const relays: CuttableRelay[] = [];
const runtimes: Runtime[] = [];
const viewers: Viewer[] = [];

async function main() {
  await stack.start(true);
  const cookie = await signIn(stack.origin);
  for (let i = 0; i < RUNTIMES; i++) {
    const runtime = new Runtime();
    runtime.enroll(stack.origin, `soak-${i}-${Date.now()}`);
    const relay = new CuttableRelay(stack.port);
    runtime.useServer(await relay.listen());
    runtime.start();
    const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    runtimes.push(runtime);
    relays.push(relay);
    viewers.push(viewer);
  }

  // Spread the commands over the endpoints: a quarter as 5-step sequences, the rest single commands.
  const perRuntime = Math.ceil(COMMANDS / RUNTIMES);
  const started = performance.now();
  let cuts = 0;
  let cutAttempts = 0;
  const cutter = setInterval(() => {
    cutAttempts += 1;
    // Only a relay that carried a connection counts as a cut; an idle tick is not one.
    if (relays[Math.floor(random() * relays.length)]!.cut() > 0) cuts += 1;
  }, 250);
  let queued = 0;
  for (const [i, viewer] of viewers.entries()) {
    const ledger = runtimes[i]!.ledger;
    let n = 0;
    while (n < perRuntime && queued < COMMANDS) {
      if (random() < 0.25 && perRuntime - n >= 5 && COMMANDS - queued >= 5) {
        const steps = Array.from({ length: 5 }, (_, k) => ({ text: `echo c${n + k} >> ${ledger}`, shell: "sh" }));
        viewer.send({ type: "run_sequence", requestId: crypto.randomUUID(), name: `soak ${n}`, steps, stopOnFailure: false });
        n += 5;
        queued += 5;
      } else {
        viewer.send({ type: "run", requestId: crypto.randomUUID(), text: `echo c${n} >> ${ledger}`, shell: "sh" });
        n += 1;
        queued += 1;
      }
    }
  }
  const total = queued;
  const finishedCount = () => viewers.reduce((sum, v) => sum + v.finished().length, 0);
  try {
    // Progress every 5 s while the soak runs, so a long run is visibly alive.
    const reporter = setInterval(() => console.log(`bench:soak: ${finishedCount()}/${total} commands finished`), 5_000);
    try {
      await waitUntil("every command to finish", () => finishedCount() >= total, DEADLINE_MS);
    } finally {
      clearInterval(reporter);
    }
  } catch {
    // Reported below as lost.
  }
  clearInterval(cutter);
  const wallMs = performance.now() - started;

  // Re-read every transcript from the server, as a NOC reviewer would.
  const seenLive = viewers.map((v) => v.finished().length);
  for (const viewer of viewers) {
    viewer.close();
    await viewer.connect();
  }
  await waitUntil("every transcript to replay", () => viewers.every((v, i) => v.finished().length >= seenLive[i]!), 30_000).catch(() => {});
  const latencies: number[] = [];
  const statuses = new Map<string, number>();
  for (const viewer of viewers) {
    const queuedAt = new Map(viewer.events.filter((e) => e.kind === "command.queued").map((e) => [e.commandId, e.at]));
    for (const finished of viewer.finished()) {
      statuses.set(finished.status, (statuses.get(finished.status) ?? 0) + 1);
      const at = queuedAt.get(finished.commandId);
      if (at !== undefined) latencies.push(finished.at - at);
    }
  }
  let duplicates = 0;
  let ran = 0;
  for (const runtime of runtimes) {
    const lines = runtime.ledgerLines();
    // Each command appends its own unique line: distinct lines are commands that really ran.
    ran += new Set(lines).size;
    duplicates += lines.length - new Set(lines).size;
  }
  const finished = finishedCount();
  // Lost = accepted but never run on its endpoint, whatever the transcript says (a timed_out that never ran is lost).
  const lost = total - ran;
  const notSucceeded = [...statuses].filter(([status]) => status !== "succeeded").reduce((sum, [, n]) => sum + n, 0);
  const latency = summarise("completion latency", latencies);
  const table = [
    "| runtimes | commands | connection cuts | wall time s | commands/s | finished | ran on endpoints | lost | run twice | completion p50 ms | p95 ms | p99 ms |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    `| ${RUNTIMES} | ${total} | ${cuts} | ${(wallMs / 1000).toFixed(1)} | ${(total / (wallMs / 1000)).toFixed(1)} | ${finished} | ${ran} | ${lost} | ${duplicates} | ${latency.p50.toFixed(0)} | ${latency.p95.toFixed(0)} | ${latency.p99.toFixed(0)} |`,
  ].join("\n");
  const body = `Machine: ${machineDescription()}.
${RUNTIMES} runtime processes, each behind a loopback relay; every 250 ms the bench picks one at random and cuts its
connections (${cuts} of ${cutAttempts} ticks found a connection to cut; only those count as cuts); ${total} commands
(single commands and 5-step sequences) queued at once through technician sockets. Every command appends to a ledger on
its endpoint, so "run twice" counts real executions. Statuses: ${[...statuses].map(([s, n]) => `${s} ${n}`).join(", ")}.

${table}
`;
  writeBenchmarkSection("Soak: queue delivery under random disconnects", body);
  console.log(table);
  // Nothing lost, nothing twice, and every command (all are `echo`) must have succeeded.
  if (lost > 0 || duplicates > 0 || finished < total || notSucceeded > 0) process.exitCode = 1;
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const runtime of runtimes) await runtime.kill();
    for (const relay of relays) relay.close();
    await stack.stop();
    process.exit();
  });
