import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { checkin, connectRuntime, connectViewer, result, runInSession, sessionStub, type TestSocket, viewerIdentity, endpointIdsFor, settled } from "./socket";

const freshEndpoint = endpointIdsFor("ep_sequence_test");

function queueSequence(viewer: TestSocket, steps: string[], extra: Record<string, unknown> = {}) {
  const message = { type: "run_sequence", requestId: crypto.randomUUID(), name: "Morning checks", steps: steps.map((text) => ({ text })), ...extra };
  viewer.send(message);
  return message;
}

async function finishedStatuses(viewer: TestSocket, count: number) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const finished = viewer.events().filter((e) => e.kind === "command.finished");
    if (finished.length >= count) return finished.map((e) => e.status);
    if (Date.now() > deadline) throw new Error(`only ${finished.length} finished`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("queued work and diagnostic sequences", () => {
  it("queues a sequence for an offline endpoint and runs its steps one at a time, in order, once the runtime connects", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const request = queueSequence(viewer, ["hostname", "uptime", "df -h"]);
    const queued = await viewer.waitFor((m) => m.type === "events" && m.events.filter((e: any) => e.kind === "command.queued").length === 3);
    viewer.send(request); // resent after a reconnect: not queued twice
    await settled(viewer);
    expect(viewer.events().filter((e) => e.kind === "command.queued")).toHaveLength(3);
    expect(queued.events.filter((e: any) => e.kind === "command.queued").map((e: any) => [e.text, e.sequence.step, e.sequence.steps])).toEqual([
      ["hostname", 0, 3],
      ["uptime", 1, 3],
      ["df -h", 2, 3],
    ]);

    const runtime = await connectRuntime(endpointId);
    for (const [index, text] of ["hostname", "uptime", "df -h"].entries()) {
      const dispatch = await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === text);
      expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(index + 1); // the next step waits for this one
      runtime.send({ type: "result", result: result(dispatch.command.commandId, "succeeded", `${text} ok\n`) });
    }
    expect(await finishedStatuses(viewer, 3)).toEqual(["succeeded", "succeeded", "succeeded"]);
  });

  it("skips the remaining steps after a failure when the sequence stops on failure", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    queueSequence(viewer, ["false", "echo never", "echo never again"], { stopOnFailure: true });
    const first = await runtime.waitFor((m) => m.type === "dispatch");
    runtime.send({ type: "result", result: result(first.command.commandId, "failed") });
    expect(await finishedStatuses(viewer, 3)).toEqual(["failed", "skipped", "skipped"]);
    expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(1);
  });

  it("holds work until its maintenance window opens, and expires work whose expiry passes first", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const in1h = Date.now() + 3_600_000;
    queueSequence(viewer, ["echo window"], { notBefore: in1h, expiresAt: in1h + 3_600_000 });
    queueSequence(viewer, ["echo too late"], { notBefore: in1h, expiresAt: in1h + 60_000 });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.text === "echo too late"));
    expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(0);

    // Time passes: the window opens for the first; the second's expiry has passed too.
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE commands SET not_before = ? WHERE text = 'echo window'", Date.now() - 1);
      state.storage.sql.exec("UPDATE commands SET not_before = ?, expires_at = ? WHERE text = 'echo too late'", Date.now() - 2, Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
    expect(dispatch.command.text).toBe("echo window");
    const expired = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.status === "expired"));
    expect(expired).toBeTruthy();
    expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(1);
  });

  it("serves the same work over HTTPS check-in: due steps in order, idempotent results, cancels", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    queueSequence(viewer, ["echo one", "echo two"]);
    await viewer.waitFor((m) => m.type === "events" && m.events.filter((e: any) => e.kind === "command.queued").length === 2);

    const bad = await checkin(endpointId, { protocol: 9 });
    expect(bad.status).toBe(400);

    const first = await checkin(endpointId, {});
    expect(first.status).toBe(200);
    expect(first.body.dispatch.map((c: any) => c.text)).toEqual(["echo one"]);
    const one = first.body.dispatch[0].commandId;
    const online = await viewer.waitFor((m) => m.type === "runtime" && m.runtime.online);
    expect(online.runtime.transport).toBe("checkin");

    const second = await checkin(endpointId, { started: [{ commandId: one, startedAt: Date.now() }], results: [result(one, "succeeded", "one\n")] });
    expect(second.body.acks).toEqual([one]);
    expect(second.body.dispatch.map((c: any) => c.text)).toEqual(["echo two"]);
    const two = second.body.dispatch[0].commandId;

    // The same result again (its ack was lost) is acknowledged and stored once.
    const third = await checkin(endpointId, { results: [result(one, "succeeded", "one\n"), result(two, "failed", "two\n")] });
    expect(third.body.acks).toEqual([one, two]);
    expect(third.body.dispatch).toEqual([]);
    const statuses = await finishedStatuses(viewer, 2);
    expect(statuses).toEqual(["succeeded", "failed"]);
    expect(viewer.events().filter((e) => e.kind === "command.output").map((e) => e.data)).toEqual(["one\n", "two\n"]);

    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "sleep 600", shell: "sh" });
    // Queued only after the session reads the approval policy; check in once it is there.
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.text === "sleep 600"));
    const sleeper = (await checkin(endpointId, {})).body.dispatch[0].commandId;
    viewer.send({ type: "cancel", commandId: sleeper });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.cancel_requested"));
    expect((await checkin(endpointId, {})).body.cancel).toEqual([sleeper]);
  });
});
