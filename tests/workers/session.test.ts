import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_OUTPUT_BYTES } from "../../protocol/messages";
import { eventually, outputArrived, result, roundTrip, connectDirect, sessionSql, connectRuntime, connectViewer, registerEndpoint, replayAll, runInSession, runtimeIdentity, sessionStub, type TestSocket, viewerIdentity } from "./socket";

let counter = 0;
const freshEndpoint = () => `ep_session_test_${Date.now()}_${counter++}`;

async function runOneCommand(viewer: TestSocket, runtime: TestSocket, text: string, requestId = crypto.randomUUID()) {
  viewer.send({ type: "run", requestId, text, shell: "default" });
  const dispatch = await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === text);
  return dispatch.command.commandId as string;
}

const syncAll = replayAll;

describe("endpoint session Durable Object", () => {
  it("runs a command end to end and streams ordered events to every viewer", async () => {
    const endpointId = freshEndpoint();
    const viewerA = await connectViewer(endpointId, viewerIdentity(endpointId));
    const viewerB = await connectViewer(endpointId, viewerIdentity(endpointId, { userId: "user_b", userName: "Bea", canRun: false }));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");

    const commandId = await runOneCommand(viewerA, runtime, "echo hello");
    runtime.send({ type: "started", commandId, startedAt: Date.now() });
    // Each frame after the previous one's effect: the in-process test socket can reorder back-to-back frames.
    await viewerA.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.started"));
    runtime.send({ type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "hel" } });
    await outputArrived(viewerA, commandId);
    runtime.send({
      type: "result",
      result: {
        commandId,
        status: "succeeded",
        exitCode: 0,
        startedAt: Date.now(),
        finishedAt: Date.now(),
        durationMs: 1.5,
        tail: [{ stream: "stdout", data: "lo\n" }],
        truncated: false,
        error: null,
      },
    });
    await runtime.waitFor((m) => m.type === "ack" && m.commandId === commandId);

    for (const viewer of [viewerA, viewerB]) {
      await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished"));
      const events = viewer.events();
      expect(events.map((e) => e.kind)).toEqual([
        "command.queued",
        "command.dispatched",
        "command.started",
        "command.output",
        "command.output",
        "command.finished",
      ]);
      const seqs = events.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(events.filter((e) => e.kind === "command.output").map((e) => e.data).join("")).toBe("hello\n");
      const finished = events.at(-1);
      expect(finished).toMatchObject({ status: "succeeded", exitCode: 0 });
      expect(finished.timings.onEndpointMs).toBeCloseTo(1.5);
    }
    const presence = viewerA.messages.filter((m) => m.type === "presence").at(-1);
    expect(presence.viewers.map((v: any) => v.name).sort()).toEqual(["Bea", "Tess Tech"]);
  });

  it("replays only events after the requested seq, so a reconnecting viewer resyncs", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const one = await runOneCommand(viewer, runtime, "echo one");
    const first = await syncAll(viewer);
    const checkpoint = first.lastSeq;
    expect(first.events.length).toBe(2); // queued + dispatched
    runtime.send({ type: "result", result: result(one) }); // commands run one at a time: finish it first
    await runtime.waitFor((m) => m.type === "ack");
    const afterOne = (await syncAll(viewer)).lastSeq;
    await runOneCommand(viewer, runtime, "echo two");

    const late = await connectDirect(endpointId, viewerIdentity(endpointId, { userId: "user_late" }));
    const replay = await syncAll(late, afterOne);
    expect(replay.events.map((e: any) => e.kind)).toEqual(["command.queued", "command.dispatched"]);
    expect((await syncAll(late, checkpoint)).events.map((e: any) => e.kind)).toEqual(["command.started", "command.finished", "command.queued", "command.dispatched"]);
    expect(replay.events[0].text).toBe("echo two");
    expect(replay.events.every((e: any) => e.seq > afterOne)).toBe(true);
  });

  it("withholds live events from a viewer until its replay, so joining mid-stream leaves no gap", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const commandId = await runOneCommand(viewer, runtime, "stream");
    runtime.send({ type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "a" } });
    await viewer.waitFor((m) => m.type === "events" && m.events[0]?.kind === "command.output");

    const joiner = await connectDirect(endpointId, viewerIdentity(endpointId, { userId: "user_join" }));
    await joiner.waitFor((m) => m.type === "presence");
    runtime.send({ type: "output", commandId, index: 1, chunk: { stream: "stdout", data: "b" } });
    await viewer.waitFor((m) => m.type === "events" && m.events[0]?.data === "b");
    expect(joiner.messages.filter((m) => m.type === "events")).toEqual([]);

    joiner.send({ type: "sync", afterSeq: 0 });
    runtime.send({ type: "output", commandId, index: 2, chunk: { stream: "stdout", data: "c" } });
    // "c" may reach the session before or after the sync: in the replay or live, it arrives exactly once.
    await joiner.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.data === "c"));
    const seqs = joiner.events().map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(joiner.events().filter((e) => e.kind === "command.output").map((e) => e.data).join("")).toBe("abc");
  });

  it("answers malformed or unknown messages with an error and changes nothing", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectDirect(endpointId, viewerIdentity(endpointId));
    for (const bad of ["not json", { type: "run" }, { type: "run", requestId: "r1", text: "   " }, { type: "drop_tables" }, { type: "sync", afterSeq: -1 }]) {
      const before = viewer.messages.length;
      viewer.send(bad);
      const error = await viewer.waitFor((m) => m.type === "error", 5_000, before);
      expect(error.code).toBe("invalid_message");
    }
    const runtime = await connectDirect(endpointId, runtimeIdentity(endpointId));
    runtime.send({ type: "result", result: { commandId: "x" } });
    expect((await runtime.waitFor((m) => m.type === "error")).code).toBe("invalid_message");
    expect((await syncAll(viewer)).events).toEqual([]);
  });

  it("rejects unauthenticated peers, identities for another endpoint, and runs by roles that may only watch", async () => {
    const endpointId = freshEndpoint();
    const anonymous = await connectDirect(endpointId, null);
    expect((await anonymous.waitForClose()).code).toBe(4401);

    const wrongEndpoint = await connectDirect(endpointId, viewerIdentity("ep_someone_else"));
    expect((await wrongEndpoint.waitForClose()).code).toBe(4403);

    const noc = await connectDirect(endpointId, viewerIdentity(endpointId, { userId: "user_noc", canRun: false }));
    noc.send({ type: "run", requestId: "noc-1", text: "whoami", shell: "default" });
    const error = await noc.waitFor((m) => m.type === "error");
    expect(error).toMatchObject({ code: "forbidden", requestId: "noc-1" });
    expect((await syncAll(noc)).events).toEqual([]);
  });

  it("accepts results and output idempotently and redelivers unfinished work to a reconnecting runtime", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const commandId = await runOneCommand(viewer, runtime, "hostname");
    const queued = await viewer.waitFor((m) => m.type === "events" && m.events[0]?.kind === "command.queued");
    // The same run request resent after a viewer reconnect is not queued twice.
    viewer.send({ type: "run", requestId: queued.events[0].requestId, text: "hostname", shell: "default" });

    runtime.close();
    const again = await connectRuntime(endpointId);
    const redelivered = await again.waitFor((m) => m.type === "dispatch");
    expect(redelivered.command.commandId).toBe(commandId);

    const chunk = { type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "host\n" } };
    // Each frame after the previous one was handled: workerd's in-process test client may reorder back-to-back frames.
    again.send(chunk);
    await outputArrived(viewer, commandId);
    again.send(chunk);
    await roundTrip(again);
    const result = {
      type: "result",
      result: { commandId, status: "succeeded", exitCode: 0, startedAt: Date.now(), finishedAt: Date.now(), durationMs: 2, tail: [], truncated: false, error: null },
    };
    again.send(result);
    await again.waitFor((m) => m.type === "ack");
    again.send(result);
    await eventually("the repeated result acknowledged too", async () => again.messages.filter((m) => m.type === "ack").length === 2);
    await roundTrip(again);
    expect(again.messages.filter((m) => m.type === "ack")).toHaveLength(2);

    const all = (await syncAll(viewer)).events;
    expect(all.filter((e: any) => e.kind === "command.queued")).toHaveLength(1);
    expect(all.filter((e: any) => e.kind === "command.output")).toHaveLength(1);
    expect(all.filter((e: any) => e.kind === "command.finished")).toHaveLength(1);
  });

  it("caps stored output with a truncation marker", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId);
    const viewer = await connectDirect(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const commandId = await runOneCommand(viewer, runtime, "yes");
    const chunk = "y\n".repeat(16 * 1024); // 32 KiB
    const chunks = Math.ceil(DEFAULT_MAX_OUTPUT_BYTES / chunk.length) + 2;
    for (let index = 0; index < chunks; index++) {
      runtime.send({ type: "output", commandId, index, chunk: { stream: "stdout", data: chunk } });
      // workerd's in-process test client may reorder back-to-back frames (a real runtime's share one ordered TCP
      // stream): the next chunk goes once this one is stored, or once the cap was reached and it was dropped.
      await eventually(`chunk ${index} handled`, async () => {
        const [row] = await sessionSql(endpointId, "SELECT truncated, (SELECT MAX(chunk_index) FROM events WHERE command_id = ?) AS last FROM commands WHERE id = ?", commandId, commandId);
        return row.truncated === 1 || row.last === index;
      });
    }
    runtime.send({
      type: "result",
      result: { commandId, status: "cancelled", exitCode: null, startedAt: Date.now(), finishedAt: Date.now(), durationMs: 5, tail: [], truncated: true, error: null },
    });
    await runtime.waitFor((m) => m.type === "ack");
    const events = (await syncAll(viewer)).events;
    const stored = events.filter((e: any) => e.kind === "command.output").reduce((n: number, e: any) => n + e.data.length, 0);
    expect(stored).toBe(DEFAULT_MAX_OUTPUT_BYTES);
    expect(events.filter((e: any) => e.kind === "command.truncated")).toEqual([expect.objectContaining({ keptBytes: DEFAULT_MAX_OUTPUT_BYTES })]);
  });

  it("says so when the runtime capped output on the endpoint, in the transcript and the audit trail", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const commandId = await runOneCommand(viewer, runtime, "cat /var/log/huge.log");
    runtime.send({ type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "first part\n" } });
    await outputArrived(viewer, commandId);
    runtime.send({
      type: "result",
      result: { commandId, status: "succeeded", exitCode: 0, startedAt: Date.now(), finishedAt: Date.now(), durationMs: 5, tail: [{ stream: "stdout", data: "last part\n" }], tailStartIndex: 1, truncated: true, error: null },
    });
    await runtime.waitFor((m) => m.type === "ack");
    const events = (await syncAll(viewer)).events;
    expect(events.filter((e: any) => e.kind === "command.truncated")).toEqual([expect.objectContaining({ commandId, keptBytes: 21, reason: "runtime_cap" })]);
    const finished = await runInSession(sessionStub(endpointId), (instance: any) => instance.audit.all().find((e: any) => e.kind === "command.finished"));
    expect(JSON.parse(finished.detail).truncated).toEqual({ keptBytes: 21, reason: "runtime_cap" });
  });

  it("cancels queued work without sending it, and forwards cancel for running work", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    viewer.send({ type: "run", requestId: "queued-1", text: "sleep 100", shell: "sh" });
    const queued = await viewer.waitFor((m) => m.type === "events" && m.events[0]?.kind === "command.queued");
    const commandId = queued.events[0].commandId;
    viewer.send({ type: "cancel", commandId });
    await viewer.waitFor((m) => m.type === "events" && m.events[0]?.kind === "command.finished");

    const runtime = await connectRuntime(endpointId);
    const running = await runOneCommand(viewer, runtime, "sleep 200");
    expect(runtime.messages.filter((m) => m.type === "dispatch").map((m) => m.command.commandId)).toEqual([running]);
    viewer.send({ type: "cancel", commandId: running });
    await runtime.waitFor((m) => m.type === "cancel" && m.commandId === running);
  });
});
