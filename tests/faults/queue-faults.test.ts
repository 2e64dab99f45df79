// Fault injection with real processes: the local stack in workerd, real
// runtime processes, real shell commands that count their own runs in a
// ledger file on the endpoint. Each test asserts nothing lost, nothing run
// twice, and a complete transcript.
import { beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { CLOCK_ONE_HOUR_SLOW, CuttableRelay, signIn, useFaultStack, Viewer, waitUntil } from "./stack";

const faults = useFaultStack();
const { stack, newRuntime } = faults;
let cookie = "";
beforeAll(() => {
  cookie = faults.cookie();
});

function sequence(viewer: Viewer, name: string, steps: string[], extra: Record<string, unknown> = {}) {
  viewer.send({ type: "run_sequence", requestId: crypto.randomUUID(), name, steps: steps.map((text) => ({ text, shell: "sh" })), ...extra });
}

/** The lifecycle every command that ran must show, once each and in this order (output and truncation notices may sit between). */
const RAN_LIFECYCLE = ["command.queued", "command.dispatched", "command.started", "command.finished"];

/** Every command went queued → dispatched → started → finished, in that order, exactly once each. */
function expectCompleteTranscript(viewer: Viewer, commands: number) {
  const byCommand = viewer.byCommand();
  expect(byCommand.size).toBe(commands);
  for (const [commandId, kinds] of byCommand) {
    // A sequence's pause is about the sequence, not the command's own lifecycle.
    const lifecycle = kinds.filter((k) => k !== "command.output" && k !== "command.truncated" && !k.startsWith("sequence."));
    expect({ commandId, lifecycle }).toEqual({ commandId, lifecycle: RAN_LIFECYCLE });
  }
}

describe("queue delivery under faults", () => {
  it("a runtime killed mid-command reports it interrupted after restart and never runs it again; the queue carries on", async () => {
    const runtime = newRuntime("kill");
    const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    runtime.start();
    sequence(viewer, "kill test", [`echo long >> ${runtime.ledger}; sleep 30`], { stopOnFailure: false });
    await waitUntil("the long command to start", () => runtime.ledgerLines().length === 1);
    await runtime.kill("SIGKILL");
    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: `echo after >> ${runtime.ledger}`, shell: "sh" });
    runtime.start();
    await waitUntil("both commands to finish", () => viewer.finished().length === 2, 30_000);
    const [interrupted, after] = viewer.finished();
    expect(interrupted).toMatchObject({ status: "interrupted", error: expect.stringMatching(/not run again/) });
    expect(after).toMatchObject({ status: "succeeded" });
    expect(runtime.ledgerLines()).toEqual(["long", "after"]);
    expectCompleteTranscript(viewer, 2);
    viewer.close();
    await runtime.kill();
  }, 60_000);

  it("a connection cut between steps loses nothing and runs nothing twice", async () => {
    const relay = new CuttableRelay(stack.port);
    const runtime = newRuntime("cut");
    runtime.useServer(await relay.listen());
    const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    runtime.start();
    const steps = [1, 2, 3, 4].map((n) => `echo step${n} >> ${runtime.ledger}; sleep 0.3; echo out${n}`);
    sequence(viewer, "cut test", steps);
    await waitUntil("step 1 to run", () => runtime.ledgerLines().includes("step1"));
    relay.cut();
    await waitUntil("step 3 to run", () => runtime.ledgerLines().includes("step3"), 30_000);
    relay.cut();
    await waitUntil("all steps to finish", () => viewer.finished().length === 4, 30_000);
    expect(viewer.finished().map((e) => e.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
    expect(runtime.ledgerLines()).toEqual(["step1", "step2", "step3", "step4"]);
    const outputs = viewer.events.filter((e) => e.kind === "command.output").map((e) => e.data).join("");
    expect(outputs).toBe("out1\nout2\nout3\nout4\n");
    expectCompleteTranscript(viewer, 4);
    viewer.close();
    relay.close();
    await runtime.kill();
  }, 60_000);

  it("restarting workerd mid-sequence loses nothing: the result waits in the outbox, the queue resumes", async () => {
    const runtime = newRuntime("restart");
    let viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    runtime.start();
    sequence(viewer, "restart test", [`echo a >> ${runtime.ledger}; sleep 3; echo A`, `echo b >> ${runtime.ledger}; echo B`, `echo c >> ${runtime.ledger}; echo C`]);
    await waitUntil("step 1 to start", () => runtime.ledgerLines().includes("a"));
    viewer.close();
    await stack.stop(); // step 1 is still running; its result must survive the outage
    await new Promise((r) => setTimeout(r, 3_500));
    await stack.start(false);
    cookie = await signIn(stack.origin);
    await waitUntil("the sequence to finish", async () => {
      viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
      await viewer.connect();
      await new Promise((r) => setTimeout(r, 500));
      const done = viewer.finished().length === 3;
      if (!done) viewer.close();
      return done;
    }, 60_000);
    expect(viewer.finished().map((e) => e.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect(runtime.ledgerLines()).toEqual(["a", "b", "c"]);
    expect(viewer.events.filter((e) => e.kind === "command.output").map((e) => e.data).join("")).toBe("A\nB\nC\n");
    expectCompleteTranscript(viewer, 3);
    viewer.close();
    await runtime.kill();
  }, 120_000);

  for (const transport of ["websocket", "checkin"] as const) {
    it(`runs an endpoint's commands one at a time in the order accepted, over ${transport}, unless one runs alongside`, async () => {
      const runtime = newRuntime(`order-${transport}`);
      const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
      await viewer.connect();
      runtime.start(["--transport", transport, "--checkin-interval", "1"]);
      const run = async (text: string, alongside = false) => {
        const requestId = crypto.randomUUID();
        viewer.send({ type: "run", requestId, text, shell: "sh", alongside });
        await waitUntil(`${text} to be queued`, () => viewer.events.some((e) => e.requestId === requestId));
      };
      const ledger = runtime.ledger;
      await run(`echo first-start >> ${ledger}; sleep 2; echo first-end >> ${ledger}; echo FIRST`);
      await run(`echo second >> ${ledger}; echo SECOND`);
      await waitUntil("both to finish", () => viewer.finished().length === 2, 40_000);
      expect(runtime.ledgerLines()).toEqual(["first-start", "first-end", "second"]);
      const output = viewer.events.filter((e) => e.kind === "command.output").map((e) => e.data).join("");
      expect(output).toBe("FIRST\nSECOND\n");
      if (transport === "websocket") {
        // Alongside: starts while a long command still runs.
        await run(`echo long-start >> ${ledger}; sleep 2; echo long-end >> ${ledger}`);
        await waitUntil("the long command to start", () => runtime.ledgerLines().includes("long-start"));
        await run(`echo beside >> ${ledger}`, true);
        await waitUntil("all four to finish", () => viewer.finished().length === 4, 40_000);
        expect(runtime.ledgerLines().slice(3)).toEqual(["long-start", "beside", "long-end"]);
      }
      viewer.close();
      await runtime.kill();
    }, 60_000);
  }

  it("work queued while the runtime is offline for longer than its check-in interval runs in order when it returns", async () => {
    const runtime = newRuntime("offline");
    const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    const checkinArgs = ["--transport", "checkin", "--checkin-interval", "1"];
    runtime.start(checkinArgs);
    await waitUntil("the runtime to check in", () => viewer.runtimeOnline === true);
    await runtime.kill();
    // Away for longer than its check-in interval: the work below is queued while nobody can take it.
    const awaySince = Date.now();
    sequence(viewer, "offline test", [1, 2, 3].map((n) => `echo o${n} >> ${runtime.ledger}`));
    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: `echo single >> ${runtime.ledger}`, shell: "sh" });
    await waitUntil("all four to be queued", () => viewer.events.filter((e) => e.kind === "command.queued").length === 4);
    await new Promise((r) => setTimeout(r, Math.max(0, awaySince + 2_500 - Date.now())));
    expect(runtime.ledgerLines()).toEqual([]);
    runtime.start(checkinArgs);
    await waitUntil("everything to finish", () => viewer.finished().length === 4, 40_000);
    expect(viewer.finished().every((e) => e.status === "succeeded")).toBe(true);
    const ledger = runtime.ledgerLines();
    expect([...ledger].sort()).toEqual(["o1", "o2", "o3", "single"]);
    expect(ledger.filter((l) => l.startsWith("o"))).toEqual(["o1", "o2", "o3"]);
    expectCompleteTranscript(viewer, 4);
    viewer.close();
    await runtime.kill();
  }, 60_000);

  it("after a 20 s network cut in auto mode, the next command completes over the WebSocket within 20 s of the network returning", async () => {
    const relay = new CuttableRelay(stack.port);
    const runtime = newRuntime("recovery");
    runtime.useServer(await relay.listen());
    const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    runtime.start(["--transport", "auto", "--checkin-interval", "30"]);
    await waitUntil("the runtime to connect over the WebSocket", () => viewer.runtimeOnline && viewer.runtimeTransport === "websocket");

    relay.block();
    await waitUntil("the runtime to fall back to check-in", () => runtime.log.includes("using HTTPS check-in"), 15_000);
    await new Promise((r) => setTimeout(r, 20_000)); // the outage itself: 20 s without a network
    relay.unblock();
    const networkBack = Date.now();

    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: `echo back >> ${runtime.ledger}`, shell: "sh" });
    await waitUntil("the command to finish", () => viewer.finished().length === 1, 25_000);
    const finishedAt = Date.now();
    expect(viewer.finished()[0]).toMatchObject({ status: "succeeded" });
    expect(finishedAt - networkBack).toBeLessThan(20_000);
    // It went over the WebSocket, not a 30 s check-in: the runtime left check-in mode.
    expect(runtime.log).toContain("WebSocket connected; leaving HTTPS check-in");
    expect(viewer.runtimeTransport).toBe("websocket");
    expect(runtime.ledgerLines()).toEqual(["back"]);
    viewer.close();
    relay.close();
    await runtime.kill();
  }, 90_000);

  for (const transport of ["websocket", "checkin"] as const) {
    it(`with the endpoint's clock an hour slow (${transport}), transcript, export and audit give server time, and name the skew`, async () => {
      expect(existsSync(CLOCK_ONE_HOUR_SLOW.LD_PRELOAD!), "libfaketime is missing: apt-get install faketime").toBe(true);
      const runtime = newRuntime(`skew-${transport}`);
      const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
      await viewer.connect();
      // Queued first, so the first contact takes it (a check-in runtime would otherwise wait out the 30 s interval).
      const requestId = crypto.randomUUID();
      viewer.send({ type: "run", requestId, text: "sleep 0.2; echo skewed", shell: "sh" });
      await waitUntil("the command to be queued", () => viewer.events.some((e) => e.kind === "command.queued" && e.requestId === requestId));
      runtime.start(["--transport", transport, "--checkin-interval", "1"], CLOCK_ONE_HOUR_SLOW);
      await waitUntil("the command to finish", () => viewer.finished().length === 1, 30_000).catch((error: Error) => {
        throw new Error(`${error.message}\nruntime log:\n${runtime.log}`);
      });
      const queued = viewer.events.find((e) => e.kind === "command.queued" && e.requestId === requestId);
      const started = viewer.events.find((e) => e.kind === "command.started");
      const finished = viewer.finished()[0];
      // Server time: between sending and finishing, and no more than a second off either.
      expect(started.startedAt).toBeGreaterThanOrEqual(queued.at - 1_000);
      expect(started.startedAt).toBeLessThanOrEqual(finished.at + 1_000);
      expect(finished.endpointClock.offsetMs).toBeGreaterThan(-3_600_000 - 1_000);
      expect(finished.endpointClock.offsetMs).toBeLessThan(-3_600_000 + 1_000);
      expect(Math.abs(finished.endpointClock.reportedStartedAt - (started.startedAt - 3_600_000))).toBeLessThan(1_000);

      // The export reads the audit replica: the same server time, and the endpoint's own reading beside it.
      const exported = await waitUntil("the command in the export", async () => {
        const response = await fetch(`${stack.origin}/endpoints/${runtime.endpointId}/export?format=json`, { headers: { cookie } });
        const commands = (await response.json()) as any[];
        return commands.find((c) => c.commandId === finished.commandId && c.executedAt);
      });
      expect(Math.abs(Date.parse(exported.executedAt) - started.startedAt)).toBeLessThan(1_000);
      expect(Math.abs(exported.endpointClockOffsetMs + 3_600_000)).toBeLessThan(1_000);
      // The NOC review page's own data (its loader, as the page fetches it): the same server time.
      const noc = await signIn(stack.origin, "user_demo_noc");
      const review = (await (
        await fetch(`${stack.origin}/review?endpoint=${runtime.endpointId}&_data=${encodeURIComponent("routes/_console.review")}`, { headers: { cookie: noc } })
      ).json()) as { page: { rows: { commandId: string | null; executedAt: number | null }[] } };
      const row = review.page.rows.find((r) => r.commandId === finished.commandId);
      expect(Math.abs(row!.executedAt! - started.startedAt)).toBeLessThan(1_000);
      const csv = await (await fetch(`${stack.origin}/endpoints/${runtime.endpointId}/export?format=csv`, { headers: { cookie } })).text();
      expect(csv).toContain(exported.executedAt);
      const text = await (await fetch(`${stack.origin}/endpoints/${runtime.endpointId}/export`, { headers: { cookie } })).text();
      expect(text).toMatch(/endpoint clock (59 min 5\d s|1 h) slow: the endpoint itself read/);
      viewer.close();
      await runtime.kill();
    }, 60_000);
  }
});
