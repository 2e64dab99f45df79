// WAN simulation: where the session lives decides what a technician waits for.
// Technician and endpoint reach the local stack through delaying relays that
// stand for their network paths (access hop + the distance to the session's
// location); everything else is the real stack and a real runtime process.
// Compares the session near the endpoint with the session at a distant central
// point, for the seed's example: technician in Sydney, endpoint in Melbourne,
// central point in Dallas.
//
//   npm run bench:wan   [-- --commands 40 --port 8799]
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { DelayingRelay, Runtime, signIn, Stack, waitUntil } from "../tests/faults/stack";
import { machineDescription, summarise, writeBenchmarkSection } from "./bench-report.mjs";

const { values: options } = parseArgs({
  options: {
    commands: { type: "string", default: "40" },
    warmup: { type: "string", default: "5" },
    port: { type: "string", default: "8799" },
  },
});
const COMMANDS = Number(options.commands);
const WARMUP = Number(options.warmup);

/** One-way delays in ms. Access = device to its nearest Cloudflare colo; the rest are colo-to-colo. */
const ACCESS_MS = 2;
const ONE_WAY_MS = { sydneyMelbourne: 7, sydneyDallas: 88, melbourneDallas: 92 };

interface Scenario {
  name: string;
  technicianOneWayMs: number;
  runtimeOneWayMs: number;
}

const SCENARIOS: Scenario[] = [
  { name: "loopback (no WAN): Caisey's own round trip", technicianOneWayMs: 0, runtimeOneWayMs: 0 },
  { name: "(a) session near the endpoint (Melbourne)", technicianOneWayMs: ACCESS_MS + ONE_WAY_MS.sydneyMelbourne, runtimeOneWayMs: ACCESS_MS },
  { name: "(b) session at a central point (Dallas)", technicianOneWayMs: ACCESS_MS + ONE_WAY_MS.sydneyDallas, runtimeOneWayMs: ACCESS_MS + ONE_WAY_MS.melbourneDallas },
];

const stack = new Stack(Number(options.port), ".wrangler/bench-wan-state");
const relays: DelayingRelay[] = [];
let runtime: Runtime | undefined;

/** A technician's socket that timestamps every event on arrival. */
class TimedTechnician {
  private ws!: WebSocket;
  readonly queuedAt = new Map<string, string>(); // requestId → commandId
  readonly finishedAt = new Map<string, { at: number; status: string; timings: { queuedMs: number; onEndpointMs: number; serverRoundTripMs: number } | null }>();
  runtimeOnline = false;

  async connect(origin: string, cookie: string, endpointId: string) {
    this.ws = new WebSocket(`${origin.replace("http", "ws")}/parties/endpoint/${endpointId}`, { headers: { cookie }, perMessageDeflate: false });
    this.ws.on("message", (data) => {
      const at = performance.now();
      const message = JSON.parse(String(data));
      if (message.type === "runtime") this.runtimeOnline = message.runtime.online;
      if (message.type !== "events") return;
      for (const event of message.events) {
        if (event.kind === "command.queued" && event.requestId) this.queuedAt.set(event.requestId, event.commandId);
        if (event.kind === "command.finished") this.finishedAt.set(event.commandId, { at, status: event.status, timings: event.timings ?? null });
      }
    });
    await new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
    this.ws.send(JSON.stringify({ type: "sync", afterSeq: 0 }));
  }

  /** Sends `echo hi` and resolves with the round trip (send → the finished event on this socket) and the server's split. */
  async roundTrip(): Promise<{ ms: number; serverMs: number; onEndpointMs: number }> {
    const requestId = crypto.randomUUID();
    const sentAt = performance.now();
    this.ws.send(JSON.stringify({ type: "run", requestId, text: "echo hi", shell: "sh" }));
    const finished = await waitUntil(
      "the command to finish",
      () => {
        const commandId = this.queuedAt.get(requestId);
        return commandId ? this.finishedAt.get(commandId) : undefined;
      },
      30_000,
    );
    if (finished.status !== "succeeded") throw new Error(`echo hi ended ${finished.status}`);
    return { ms: finished.at - sentAt, serverMs: finished.timings?.serverRoundTripMs ?? NaN, onEndpointMs: finished.timings?.onEndpointMs ?? NaN };
  }

  close() {
    this.ws.close();
  }
}

/** What `echo hi` costs on this machine without any of Caisey: the spawn floor. */
function spawnFloorMs(): number {
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    spawnSync("/bin/sh", ["-c", "echo hi"]);
    samples.push(performance.now() - started);
  }
  return summarise("spawn", samples).p50;
}

type Measured = { p50: number; p95: number; propagation: number; serverP50: number; onEndpointP50: number };

async function measure(scenario: Scenario, cookie: string): Promise<Measured> {
  const technicianRelay = new DelayingRelay(stack.port, scenario.technicianOneWayMs);
  const runtimeRelay = new DelayingRelay(stack.port, scenario.runtimeOneWayMs);
  relays.push(technicianRelay, runtimeRelay);
  const technicianOrigin = scenario.technicianOneWayMs ? await technicianRelay.listen() : stack.origin;
  const runtimeOrigin = scenario.runtimeOneWayMs ? await runtimeRelay.listen() : stack.origin;
  await runtime!.kill("SIGTERM");
  runtime!.useServer(runtimeOrigin);
  runtime!.start(["--transport", "websocket"]);
  const technician = new TimedTechnician();
  await technician.connect(technicianOrigin, cookie, runtime!.endpointId);
  await waitUntil("the runtime to connect", () => technician.runtimeOnline, 30_000);
  for (let i = 0; i < WARMUP; i++) await technician.roundTrip();
  const samples: number[] = [];
  const server: number[] = [];
  const onEndpoint: number[] = [];
  for (let i = 0; i < COMMANDS; i++) {
    const sample = await technician.roundTrip();
    samples.push(sample.ms);
    server.push(sample.serverMs);
    onEndpoint.push(sample.onEndpointMs);
    if ((i + 1) % 10 === 0 || i + 1 === COMMANDS) console.log(`  ${i + 1}/${COMMANDS} commands`);
  }
  technician.close();
  const summary = summarise(scenario.name, samples);
  return {
    p50: summary.p50,
    p95: summary.p95,
    propagation: 2 * (scenario.technicianOneWayMs + scenario.runtimeOneWayMs),
    serverP50: summarise("server", server).p50,
    onEndpointP50: summarise("endpoint", onEndpoint).p50,
  };
}

async function main() {
  console.log("bench:wan: starting the local stack");
  await stack.start(true);
  const cookie = await signIn(stack.origin);
  runtime = new Runtime();
  runtime.enroll(stack.origin, `wan-${Date.now()}`);
  const floor = spawnFloorMs();
  const rows: string[] = [];
  const results: Record<string, Measured> = {};
  for (const scenario of SCENARIOS) {
    console.log(`bench:wan: ${scenario.name} (technician one-way ${scenario.technicianOneWayMs} ms, runtime one-way ${scenario.runtimeOneWayMs} ms)`);
    const result = await measure(scenario, cookie);
    results[scenario.name] = result;
    const overhead = result.p50 - result.propagation;
    rows.push(
      `| ${scenario.name} | ${scenario.technicianOneWayMs} | ${scenario.runtimeOneWayMs} | ${result.propagation.toFixed(0)} | ${result.p50.toFixed(1)} | ${result.p95.toFixed(1)} | ${overhead.toFixed(1)} | ${(overhead - floor).toFixed(1)} |`,
    );
  }
  const local = results[SCENARIOS[0]!.name]!;
  const near = results[SCENARIOS[1]!.name]!;
  const central = results[SCENARIOS[2]!.name]!;
  const body = `Machine: ${machineDescription()}. Real stack (workerd) and a real runtime process; each network path is a
delaying TCP relay that holds every chunk for the path's one-way delay (tc netem is not available here). Assumed one-way
delays: device to its nearest colo ${ACCESS_MS} ms, Sydney–Melbourne ${ONE_WAY_MS.sydneyMelbourne} ms, Sydney–Dallas
${ONE_WAY_MS.sydneyDallas} ms, Melbourne–Dallas ${ONE_WAY_MS.melbourneDallas} ms. A round trip is a technician socket (no browser)
sending \`run echo hi\` until its \`command.finished\` event arrives, ${COMMANDS} commands after ${WARMUP} warm-up, one at a time.
Pure propagation = 2 × (technician one-way + runtime one-way). Spawn floor (\`/bin/sh -c 'echo hi'\` alone, p50, same run):
${floor.toFixed(1)} ms.

| scenario | technician one-way ms | runtime one-way ms | pure propagation ms | round trip p50 ms | p95 ms | overhead above propagation p50 ms | overhead minus spawn floor ms |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join("\n")}

Where loopback's ${local.p50.toFixed(1)} ms goes (p50 of each part, from the session's own split): the command's own run on the endpoint
(spawn → exit, by the runtime's clock) ${local.onEndpointP50.toFixed(1)} ms; session
dispatch → result stored ${local.serverP50.toFixed(1)} ms in all (so ${(local.serverP50 - local.onEndpointP50).toFixed(1)} ms between
session and runtime, including the runtime's journal and outbox writes); technician socket → session and back ${(local.p50 - local.serverP50).toFixed(1)} ms.

Goal: overhead ≤ 5 ms p50 in (a): ${near.p50 - near.propagation <= 5 ? "met" : "NOT met"} (${(near.p50 - near.propagation).toFixed(1)} ms).
(a) beats (b) by ${(central.p50 - near.p50).toFixed(0)} ms p50; the propagation it avoids is ${(central.propagation - near.propagation).toFixed(0)} ms.
`;
  writeBenchmarkSection("WAN simulation: session near the endpoint vs central", body);
  console.log(body);
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(async () => {
    await runtime?.kill();
    for (const relay of relays) relay.close();
    await stack.stop();
    process.exit();
  });
