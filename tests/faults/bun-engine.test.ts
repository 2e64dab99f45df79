// darwin-arm64 ships as a Bun executable (ADR 0012) and cannot run here, so the
// same engine is tested on this machine: the runtime compiled with Bun for the
// host, against the real stack, over the WebSocket (where Bun differs most from
// Node: its built-in ws), through a cut connection and a hard kill mid-command.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CuttableRelay, Runtime, signIn, Stack, Viewer, waitUntil } from "./stack";

const stack = new Stack(Number(process.env.FAULTS_PORT ?? 8797), ".wrangler/faults-state");
const out = join(process.cwd(), ".cache/runtime-bun");
let executable = "";
let cookie = "";

beforeAll(async () => {
  const built = execFileSync(process.execPath, ["scripts/build-runtime.mjs", "--platforms", "host", "--engine", "bun", "--out", out, "--no-script-bundle"], { encoding: "utf8" });
  const match = /: (\S+caisey-runtime) \(/.exec(built.split("\n").filter((l) => l.includes("caisey-runtime (")).at(-1) ?? "");
  if (!match) throw new Error(`no Bun executable in the build output:\n${built}`);
  executable = join(process.cwd(), match[1]);
  await stack.start(true);
  cookie = await signIn(stack.origin);
}, 240_000);

afterAll(async () => {
  await stack.stop();
});

it("a Bun-compiled runtime connects over the WebSocket, survives a cut and a kill mid-command, and runs nothing twice", async () => {
  const runtime = new Runtime(executable);
  runtime.enroll(stack.origin, `fault-bun-${Date.now()}`);
  const relay = new CuttableRelay(stack.port);
  runtime.useServer(await relay.listen());
  const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
  await viewer.connect();
  runtime.start(["--transport", "websocket"]);
  const run = (text: string) => viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "sh" });

  run(`echo one >> ${runtime.ledger}; sleep 0.3; echo OUT-ONE`);
  await waitUntil("the first command to start", () => runtime.ledgerLines().includes("one"));
  relay.cut();
  await waitUntil("the first command to finish", () => viewer.finished().length === 1, 30_000);
  expect(viewer.finished()[0], runtime.log).toMatchObject({ status: "succeeded" });

  run(`echo long >> ${runtime.ledger}; sleep 30`);
  await waitUntil("the long command to start", () => runtime.ledgerLines().includes("long"));
  await runtime.kill("SIGKILL");
  run(`echo after >> ${runtime.ledger}`);
  runtime.start(["--transport", "websocket"]);
  await waitUntil("all three to finish", () => viewer.finished().length === 3, 30_000);
  const [, interrupted, after] = viewer.finished();
  expect(interrupted).toMatchObject({ status: "interrupted", error: expect.stringMatching(/not run again/) });
  expect(after).toMatchObject({ status: "succeeded" });
  expect(runtime.ledgerLines()).toEqual(["one", "long", "after"]);
  expect(viewer.events.filter((e) => e.kind === "command.output").map((e) => e.data).join("")).toBe("OUT-ONE\n");
  viewer.close();
  relay.close();
  await runtime.kill();
}, 90_000);
