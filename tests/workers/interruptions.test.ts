// The session's side of ADR 0018: a sequence step that ends `interrupted`
// pauses the sequence; retry / skip / abort resume it (a retry is a new
// command); an idempotent step is retried once on its own; skip reasons name
// the step that actually failed; anything else is refused, audited, and
// changes nothing.
import { describe, expect, it } from "vitest";
import { connectRuntime, connectViewer, result, sessionAudit, type TestSocket, viewerIdentity, endpointIdsFor } from "./socket";

const freshEndpoint = endpointIdsFor("ep_interrupt_test");

function queueSequence(viewer: TestSocket, steps: { text: string; idempotent?: boolean }[], extra: Record<string, unknown> = {}) {
  viewer.send({ type: "run_sequence", requestId: crypto.randomUUID(), name: "Patch night", steps, stopOnFailure: true, ...extra });
}

function interrupted(commandId: string, output = "") {
  return { ...result(commandId, "failed", output), status: "interrupted", exitCode: null, error: "interrupted: the runtime stopped (SIGTERM) while this command was running" };
}

const dispatches = (runtime: TestSocket) => runtime.messages.filter((m) => m.type === "dispatch").map((m) => m.command);

async function nthDispatch(runtime: TestSocket, n: number) {
  await runtime.waitFor(() => dispatches(runtime).length >= n);
  return dispatches(runtime)[n - 1];
}

async function setup() {
  const endpointId = freshEndpoint();
  const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
  const runtime = await connectRuntime(endpointId);
  return { endpointId, viewer, runtime };
}

describe("interrupted sequence steps", () => {
  it("pauses on an interrupted step and, on retry, runs the step again as a new command, then the rest, each once", async () => {
    const { endpointId, viewer, runtime } = await setup();
    queueSequence(viewer, [{ text: "echo one" }, { text: "echo two" }, { text: "echo three" }]);
    const first = await nthDispatch(runtime, 1);
    runtime.send({ type: "result", result: interrupted(first.commandId, "half of one\n") });

    const paused = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "sequence.paused"));
    const pause = paused.events.find((e: any) => e.kind === "sequence.paused");
    expect(pause).toMatchObject({ commandId: first.commandId, step: 0, name: "Patch night" });
    const finished = viewer.events().find((e) => e.kind === "command.finished" && e.commandId === first.commandId);
    expect(finished).toMatchObject({ status: "interrupted" });
    expect(viewer.events().some((e) => e.kind === "command.output" && e.commandId === first.commandId && e.data === "half of one\n")).toBe(true);

    // Paused: nothing more is sent until someone decides. A refused result is answered on the same socket
    // after anything the interrupted result caused, so once its error is here a dispatch would be too.
    runtime.send({ type: "result", result: result("cmd_unknown") });
    await runtime.waitFor((m) => m.type === "error" && m.message.includes("cmd_unknown"));
    expect(dispatches(runtime)).toHaveLength(1);

    viewer.send({ type: "sequence_action", sequenceId: pause.sequenceId, action: "retry" });
    const retry = await nthDispatch(runtime, 2);
    expect(retry.commandId).not.toBe(first.commandId);
    expect(retry.text).toBe("echo one");
    await viewer.waitFor(() => viewer.events().some((e) => e.kind === "command.queued" && e.commandId === retry.commandId));
    const resumed = viewer.events().find((e) => e.kind === "sequence.resumed");
    expect(resumed).toMatchObject({ action: "retry", by: { userId: "user_tech" }, retryCommandId: retry.commandId, commandId: first.commandId });
    expect(viewer.events().find((e) => e.kind === "command.queued" && e.commandId === retry.commandId)).toMatchObject({ retryOf: first.commandId, sequence: { step: 0 } });

    runtime.send({ type: "result", result: result(retry.commandId) });
    const second = await nthDispatch(runtime, 3);
    expect(second.text).toBe("echo two");
    runtime.send({ type: "result", result: result(second.commandId) });
    const third = await nthDispatch(runtime, 4);
    expect(third.text).toBe("echo three");
    runtime.send({ type: "result", result: result(third.commandId) });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.commandId === third.commandId));
    expect(dispatches(runtime).map((c) => c.text)).toEqual(["echo one", "echo one", "echo two", "echo three"]);
    expect(new Set(dispatches(runtime).map((c) => c.commandId)).size).toBe(4);

    const audit = await sessionAudit(endpointId);
    expect(audit.map((e: any) => e.kind)).toEqual(expect.arrayContaining(["sequence.paused", "sequence.resumed"]));
    expect(audit.find((e: any) => e.kind === "sequence.resumed")).toMatchObject({ actorId: "user_tech", commandId: first.commandId });
  });

  it("on skip goes on with the next step even when the sequence stops on failure", async () => {
    const { viewer, runtime } = await setup();
    queueSequence(viewer, [{ text: "echo one" }, { text: "echo two" }]);
    const first = await nthDispatch(runtime, 1);
    runtime.send({ type: "result", result: interrupted(first.commandId) });
    const pause = (await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "sequence.paused"))).events.find(
      (e: any) => e.kind === "sequence.paused",
    );
    viewer.send({ type: "sequence_action", sequenceId: pause.sequenceId, action: "skip" });
    const second = await nthDispatch(runtime, 2);
    expect(second.text).toBe("echo two");
    expect(dispatches(runtime)).toHaveLength(2);
  });

  it("on abort ends the remaining steps as skipped, saying who aborted after which step", async () => {
    const { viewer, runtime } = await setup();
    queueSequence(viewer, [{ text: "echo one" }, { text: "echo two" }, { text: "echo three" }]);
    const first = await nthDispatch(runtime, 1);
    runtime.send({ type: "result", result: interrupted(first.commandId) });
    const pause = (await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "sequence.paused"))).events.find(
      (e: any) => e.kind === "sequence.paused",
    );
    viewer.send({ type: "sequence_action", sequenceId: pause.sequenceId, action: "abort" });
    await viewer.waitFor(() => viewer.events().filter((e) => e.kind === "command.finished" && e.status === "skipped").length === 2);
    for (const skipped of viewer.events().filter((e) => e.kind === "command.finished" && e.status === "skipped")) {
      expect(skipped.error).toBe("Skipped: Tess Tech aborted the sequence after step 1 (echo one) was interrupted");
      expect(skipped.by).toMatchObject({ userId: "user_tech" });
      expect(skipped.timings).toBeNull();
    }
    expect(dispatches(runtime)).toHaveLength(1);
  });

  it("retries an idempotent step once on its own, and pauses if the retry is interrupted too", async () => {
    const { viewer, runtime } = await setup();
    queueSequence(viewer, [{ text: "uptime", idempotent: true }, { text: "echo two" }]);
    const first = await nthDispatch(runtime, 1);
    runtime.send({ type: "result", result: interrupted(first.commandId) });
    const retry = await nthDispatch(runtime, 2);
    expect(retry.text).toBe("uptime");
    await viewer.waitFor(() => viewer.events().some((e) => e.kind === "sequence.resumed"));
    expect(viewer.events().find((e) => e.kind === "sequence.resumed")).toMatchObject({ action: "auto_retry", by: null, retryCommandId: retry.commandId });
    expect(viewer.events().some((e) => e.kind === "sequence.paused")).toBe(false);

    runtime.send({ type: "result", result: interrupted(retry.commandId) });
    const pause = (await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "sequence.paused"))).events.find(
      (e: any) => e.kind === "sequence.paused",
    );
    expect(pause.commandId).toBe(retry.commandId);
    expect(dispatches(runtime)).toHaveLength(2);
  });

  it("names the step that actually failed in every skip of a stop-on-failure cascade", async () => {
    const { viewer, runtime } = await setup();
    queueSequence(viewer, [{ text: "false" }, { text: "echo two" }, { text: "echo three" }, { text: "echo four" }]);
    const first = await nthDispatch(runtime, 1);
    runtime.send({ type: "result", result: result(first.commandId, "failed") });
    await viewer.waitFor(() => viewer.events().filter((e) => e.kind === "command.finished" && e.status === "skipped").length === 3);
    const reasons = viewer.events().filter((e) => e.kind === "command.finished" && e.status === "skipped").map((e) => e.error);
    expect(reasons).toEqual(Array(3).fill("Skipped: step 1 (false) ended failed"));
  });

  it("refuses, audits and ignores answers to a sequence that is not paused, a second answer, and a viewer who cannot run", async () => {
    const { endpointId, viewer, runtime } = await setup();
    queueSequence(viewer, [{ text: "echo one" }, { text: "echo two" }]);
    const first = await nthDispatch(runtime, 1);
    await viewer.waitFor(() => viewer.events().some((e) => e.kind === "command.queued"));
    const sequenceId = viewer.events().find((e) => e.kind === "command.queued").sequence.id;

    viewer.send({ type: "sequence_action", sequenceId, action: "retry" }); // running, not paused
    expect(await viewer.waitFor((m) => m.type === "error")).toMatchObject({ code: "conflict", message: "This sequence is not waiting for a decision" });
    viewer.send({ type: "sequence_action", sequenceId: "seq_nope", action: "skip" });
    await viewer.waitFor((m) => m.type === "error" && m.code === "not_found");

    runtime.send({ type: "result", result: interrupted(first.commandId) });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "sequence.paused"));
    const watcher = await connectViewer(endpointId, viewerIdentity(endpointId, { userId: "user_watch", role: "noc", canRun: false }));
    watcher.send({ type: "sequence_action", sequenceId, action: "retry" });
    await watcher.waitFor((m) => m.type === "error" && m.code === "forbidden");

    viewer.send({ type: "sequence_action", sequenceId, action: "retry" });
    viewer.send({ type: "sequence_action", sequenceId, action: "retry" }); // a double click: one retry only
    await viewer.waitFor(() => viewer.messages.filter((m) => m.type === "error" && m.code === "conflict").length === 2);
    const retry = await nthDispatch(runtime, 2);
    await viewer.waitFor(() => viewer.events().some((e) => e.kind === "sequence.resumed"));
    expect(viewer.events().filter((e) => e.kind === "sequence.resumed")).toHaveLength(1);
    expect(viewer.events().filter((e) => e.kind === "command.queued" && e.retryOf)).toHaveLength(1);
    expect(retry.text).toBe("echo one");
    viewer.send({ type: "sequence_action", sequenceId, action: "boom" });
    await viewer.waitFor((m) => m.type === "error" && m.code === "invalid_message");

    const refused = (await sessionAudit(endpointId)).filter((e: any) => e.kind === "sequence.action_refused");
    expect(refused.map((e: any) => JSON.parse(e.detail).reason)).toEqual([
      "This sequence is not waiting for a decision",
      "No sequence seq_nope",
      "This sequence is not waiting for a decision",
    ]);
    expect(dispatches(runtime)).toHaveLength(2);
  });

  it("says who cancelled a queued command and gives it no round trip", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "echo later", shell: "sh" });
    const queued = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued"));
    const commandId = queued.events.find((e: any) => e.kind === "command.queued").commandId;
    viewer.send({ type: "cancel", commandId });
    const finished = (await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished"))).events.find(
      (e: any) => e.kind === "command.finished",
    );
    expect(finished).toMatchObject({ status: "cancelled", by: { userId: "user_tech", name: "Tess Tech" }, timings: null, error: "Cancelled by Tess Tech before it was sent" });
  });
});
