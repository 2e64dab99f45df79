// Page loads as a technician makes them: the server time of each console page
// and the D1 round trips its loaders make (the console reports them in
// `X-D1-Round-Trips`; app/lib/d1-metering.server.ts). The member lookup on
// every page reads from the nearest D1 replica (Sessions API); locally there is
// one database, so the times here are the floor, not a WAN figure.
//
//   npm run bench:pages   [-- --loads 40 --port 8797]
import { parseArgs } from "node:util";
import { signIn, Stack } from "../tests/faults/stack";
import { machineDescription, summarise, writeBenchmarkSection } from "./bench-report.mjs";

const { values: options } = parseArgs({
  options: { loads: { type: "string", default: "40" }, warmup: { type: "string", default: "5" }, port: { type: "string", default: "8797" } },
});
const LOADS = Number(options.loads);
const WARMUP = Number(options.warmup);

const PAGES: { name: string; path: string }[] = [
  { name: "Endpoints list", path: "/endpoints" },
  { name: "Endpoints search (`?q=acme`)", path: "/endpoints?q=acme" },
  { name: "Endpoint page", path: "/endpoints/ep_acme_01" },
  { name: "Clients list", path: "/clients" },
  { name: "Client page", path: "/clients/cl_acme" },
  { name: "NOC review", path: "/review" },
];

async function main() {
  const stack = new Stack(Number(options.port), ".wrangler/bench-pages-state");
  await stack.start(true);
  const rows: string[] = [];
  try {
    for (const page of PAGES) {
      // Offline session tokens are short-lived like Clerk's: sign in afresh for each page's run.
      const cookie = await signIn(stack.origin);
      const samples: number[] = [];
      const roundTrips = new Set<string>();
      for (let i = 0; i < LOADS + WARMUP; i++) {
        const started = performance.now();
        const response = await fetch(`${stack.origin}${page.path}`, { headers: { cookie }, redirect: "manual" });
        await response.text();
        const elapsed = performance.now() - started;
        if (response.status !== 200) throw new Error(`${page.path} answered ${response.status}`);
        if (i < WARMUP) continue;
        samples.push(elapsed);
        roundTrips.add(response.headers.get("X-D1-Round-Trips") ?? "?");
      }
      const s = summarise(page.name, samples);
      rows.push(`| ${page.name} | \`${page.path}\` | ${[...roundTrips].join(", ")} | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} |`);
      process.stdout.write(`${page.name}: p50 ${s.p50.toFixed(1)} ms, D1 round trips ${[...roundTrips].join(", ")}\n`);
    }
  } finally {
    await stack.stop();
  }
  writeBenchmarkSection(
    "Page loads and D1 round trips per page",
    `Machine: ${machineDescription()}. ${LOADS} loads per page (after ${WARMUP} warm-up), signed in as a technician of the seeded tenant, full HTML document with its loaders, over loopback.

| page | path | D1 round trips | p50 ms | p95 ms |
| --- | --- | --- | --- | --- |
${rows.join("\n")}

Each count includes the member lookup (one read, served by the nearest D1 replica in production through the Sessions API; ADR 0019) and the page's own loader queries. Nothing on a command's path reads D1 (tests/workers/no-central-round-trips.test.ts).`,
  );
}

await main();
