import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_CHECKIN_INTERVAL_MS } from "../../protocol/messages";
import { checkin, connectRuntime, connectViewer, outputArrived, runInSession, runtimeIdentity, sessionStub, TEST_APPROVER, type TestSocket, viewerIdentity, waitForMail, endpointIdsFor, settled } from "./socket";

const freshEndpoint = endpointIdsFor("ep_deadline_test");
/** Comfortably past any result deadline the session could compute for a 1 s command. */
const LONG_AGO = () => Date.now() - 10 * DEFAULT_CHECKIN_INTERVAL_MS;

const sql = (endpointId: string, query: string, ...bindings: unknown[]) =>
  runInSession(sessionStub(endpointId), (_instance, state) => state.storage.sql.exec(query, ...bindings).toArray());

const runtimeValue = async (endpointId: string, key: string) =>
  ((await sql(endpointId, "SELECT value FROM runtime_state WHERE key = ?", key))[0] as { value: string } | undefined)?.value;

const auditKinds = async (endpointId: string) => (await sql(endpointId, "SELECT kind FROM audit_log ORDER BY seq")).map((r: any) => r.kind as string);

const nextAlarm = (endpointId: string): Promise<number | null> => runInSession(sessionStub(endpointId), (_instance, state) => state.storage.getAlarm());

async function dispatchOne(viewer: TestSocket, runtime: TestSocket, text: string): Promise<string> {
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "sh", timeoutMs: 1_000 });
  const dispatch = await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === text);
  return dispatch.command.commandId;
}

describe("server-side deadlines and liveness", () => {
  it("takes a check-in runtime offline once it misses its check-ins, and audits it", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    expect((await checkin(endpointId, {})).status).toBe(200);
    await viewer.waitFor((m) => m.type === "runtime" && m.runtime.online);
    expect(await nextAlarm(endpointId)).toBeGreaterThan(Date.now()); // liveness is checked when the window closes

    await sql(endpointId, "UPDATE runtime_state SET value = ? WHERE key = 'checkin_offline_at'", String(Date.now() - 1));
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const offline = await viewer.waitFor((m) => m.type === "runtime" && !m.runtime.online);
    expect(offline.runtime.transport).toBeNull();
    expect(await runtimeValue(endpointId, "checkin_offline_at")).toBe("");
    expect(await auditKinds(endpointId)).toEqual(["runtime.connected", "runtime.disconnected"]);
  });

  it("keeps a socket-connected runtime online when an old check-in window closes, without re-arming the alarm for the past", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");
    await viewer.waitFor((m) => m.type === "runtime" && m.runtime.online);
    const seenBefore = viewer.messages.length;
    // A check-in that raced the socket left a window that has now passed.
    await sql(endpointId, "INSERT OR REPLACE INTO runtime_state (key, value) VALUES ('checkin_offline_at', ?)", String(Date.now() - 1));
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    expect(await runtimeValue(endpointId, "checkin_offline_at")).toBe("");
    const alarm = await nextAlarm(endpointId);
    expect(alarm === null || alarm > Date.now()).toBe(true);
    await settled(viewer);
    expect(viewer.messages.slice(seenBefore).filter((m) => m.type === "runtime" && !m.runtime.online)).toHaveLength(0);
    expect(await auditKinds(endpointId)).not.toContain("runtime.disconnected");
  });

  it("times out work an online runtime never reports, but keeps waiting while the runtime is offline", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const lost = await dispatchOne(viewer, runtime, "echo lost");
    expect(await nextAlarm(endpointId)).toBeGreaterThan(Date.now()); // armed for the result deadline
    await sql(endpointId, "UPDATE commands SET dispatched_at = ? WHERE id = ?", LONG_AGO(), lost);
    await sql(endpointId, "UPDATE runtime_state SET value = ? WHERE key = 'online_since'", String(LONG_AGO()));
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const finished = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.commandId === lost));
    expect(finished.events.find((e: any) => e.kind === "command.finished")).toMatchObject({ status: "timed_out", error: expect.stringMatching(/did not report a result/) });

    // Offline: its result may be waiting in the runtime's outbox, so nothing is given up.
    const held = await dispatchOne(viewer, runtime, "echo held");
    runtime.close();
    await viewer.waitFor((m) => m.type === "runtime" && !m.runtime.online);
    await sql(endpointId, "UPDATE commands SET dispatched_at = ? WHERE id = ?", LONG_AGO(), held);
    await runDurableObjectAlarm(sessionStub(endpointId));
    expect((await sql(endpointId, "SELECT status FROM commands WHERE id = ?", held))[0]).toEqual({ status: "dispatched" });

    // Back online: the reconnect restarts the clock, so the outbox gets its chance to deliver.
    const again = await connectRuntime(endpointId);
    await again.waitFor((m) => m.type === "dispatch" && m.command.commandId === held);
    await runDurableObjectAlarm(sessionStub(endpointId));
    expect((await sql(endpointId, "SELECT status FROM commands WHERE id = ?", held))[0]).toEqual({ status: "dispatched" });
  });

  it("ends an approval nobody decided as expired when its links expire", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "shutdown -r now", shell: "sh", reason: "Patch reboot" });
    const requested = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_requested"));
    const commandId = requested.events.find((e: any) => e.kind === "command.approval_requested").commandId;
    await waitForMail(TEST_APPROVER.email, endpointId);
    // Once the audit trail is replicated, the next thing the alarm waits for is the request's expiry.
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const [approval] = await sql(endpointId, "SELECT expires_at FROM approval_requests WHERE command_id = ?", commandId);
    expect(await nextAlarm(endpointId)).toBe(approval.expires_at);
    await sql(endpointId, "UPDATE approval_requests SET expires_at = ? WHERE command_id = ?", Date.now() - 1, commandId);
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const finished = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished"));
    expect(finished.events.find((e: any) => e.kind === "command.finished")).toMatchObject({ commandId, status: "expired" });
    expect((await sql(endpointId, "SELECT state FROM approval_requests WHERE command_id = ?", commandId))[0]).toEqual({ state: "expired" });
  });

  it("binds the session to the tenant of its first check-in and refuses another tenant's", async () => {
    const endpointId = freshEndpoint();
    expect((await checkin(endpointId, {})).status).toBe(200);
    expect(await runtimeValue(endpointId, "org_id")).toBe("org_test");
    expect(await auditKinds(endpointId)).toEqual(["runtime.connected"]);
    const foreign = await checkin(endpointId, {}, { ...runtimeIdentity(endpointId), orgId: "org_intruder" });
    expect(foreign.status).toBe(403);
    expect(await auditKinds(endpointId)).toEqual(["runtime.connected"]);
  });

  it("stores a result's tail at its own output indices and marks a gap left by a lost chunk", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const commandId = await dispatchOne(viewer, runtime, "seq 3");
    runtime.send({ type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "1\n" } });
    await outputArrived(viewer, commandId);
    // Chunk 1 ("2\n") was lost in transit; the tail says it starts at 2.
    const now = Date.now();
    runtime.send({
      type: "result",
      result: { commandId, status: "succeeded", exitCode: 0, startedAt: now, finishedAt: now, durationMs: 1, tail: [{ stream: "stdout", data: "3\n" }], tailStartIndex: 2, truncated: false, error: null },
    });
    await runtime.waitFor((m) => m.type === "ack");
    const chunks = await sql(endpointId, "SELECT chunk_index, body FROM events WHERE command_id = ? AND chunk_index IS NOT NULL ORDER BY chunk_index", commandId);
    expect(chunks.map((c: any) => [c.chunk_index, JSON.parse(c.body).data])).toEqual([
      [0, "1\n"],
      [2, "3\n"],
    ]);
    expect((await sql(endpointId, "SELECT truncated FROM commands WHERE id = ?", commandId))[0]).toEqual({ truncated: 1 });
    const gap = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.truncated"));
    expect(gap.events.find((e: any) => e.kind === "command.truncated")).toMatchObject({ commandId, reason: "lost_in_transit", keptBytes: 2 });
  });
});
