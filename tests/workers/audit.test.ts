import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditEventFromRow, verifyAuditChain, type AuditEvent, type AuditRow } from "../../protocol/audit";
import { connectDirect, connectRuntime, connectViewer, runInSession, sessionStub, viewerIdentity } from "./socket";

let counter = 0;
const freshEndpoint = () => `ep_audit_test_${Date.now()}_${counter++}`;

/** Drives one command through the real DO: requested → dispatched → finished. */
async function runCommandThroughSession(endpointId: string, text: string, status: "succeeded" | "failed" = "succeeded") {
  const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
  const runtime = await connectRuntime(endpointId);
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "default" });
  const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
  const commandId = dispatch.command.commandId;
  runtime.send({
    type: "result",
    result: { commandId, status, exitCode: status === "succeeded" ? 0 : 3, startedAt: Date.now(), finishedAt: Date.now(), durationMs: 1, tail: [], truncated: false, error: null },
  });
  await runtime.waitFor((m) => m.type === "ack");
  viewer.close();
  runtime.close();
  return commandId as string;
}

async function localAudit(endpointId: string): Promise<{ events: AuditEvent[]; pending: number }> {
  return runInSession(sessionStub(endpointId), (instance: any) => ({ events: instance.audit.all(), pending: instance.audit.pendingCount() }));
}

async function d1Audit(endpointId: string): Promise<AuditEvent[]> {
  const { results } = await env.DB.prepare("SELECT * FROM audit_events WHERE endpoint_id = ? ORDER BY seq").bind(endpointId).all<AuditRow>();
  return results.map((row) => auditEventFromRow(row));
}

async function waitForLocalCount(endpointId: string, atLeast: number) {
  for (let i = 0; i < 100; i++) {
    const { events } = await localAudit(endpointId);
    if (events.length >= atLeast) return events;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("audit events did not appear");
}

describe("audit trail", () => {
  it("records who did what, when and from where, as an intact hash chain", async () => {
    const endpointId = freshEndpoint();
    const commandId = await runCommandThroughSession(endpointId, "ipconfig /all");
    const events = await waitForLocalCount(endpointId, 5);
    expect(events.map((e) => e.kind)).toEqual(["runtime.connected", "command.requested", "command.dispatched", "command.finished", "runtime.disconnected"]);
    const requested = events.find((e) => e.kind === "command.requested")!;
    expect(requested).toMatchObject({ actorId: "user_tech", actorName: "Tess Tech", actorAddress: "203.0.113.7", commandId, status: "queued" });
    const finished = events.find((e) => e.kind === "command.finished")!;
    expect(finished.status).toBe("succeeded");
    expect(JSON.parse(finished.detail)).toMatchObject({ text: "ipconfig /all", exitCode: 0 });
    expect(JSON.parse(finished.detail).sentAt).toBeTypeOf("number");
    expect(await verifyAuditChain(events)).toMatchObject({ ok: true, checked: events.length });
  });

  it("replicates to D1 by alarm, once per event even when a batch is sent again", async () => {
    const endpointId = freshEndpoint();
    await runCommandThroughSession(endpointId, "whoami");
    const local = await waitForLocalCount(endpointId, 4);
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const replicated = await d1Audit(endpointId);
    expect(replicated.map((e) => e.hash)).toEqual((await localAudit(endpointId)).events.map((e) => e.hash));
    expect((await localAudit(endpointId)).pending).toBe(0);
    expect(await verifyAuditChain(replicated)).toMatchObject({ ok: true });
    expect(local.length).toBeGreaterThan(0);

    // Mark everything unsent (as if the acknowledgement of a batch was lost) and replicate again.
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE audit_log SET replicated = 0");
    });
    await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB));
    const again = await d1Audit(endpointId);
    expect(again).toHaveLength(replicated.length);
  });

  it("keeps events through a D1 outage and delivers each exactly once when D1 recovers", async () => {
    const endpointId = freshEndpoint();
    const trigger = `fail_audit_${endpointId}`;
    await env.DB.prepare(
      `CREATE TRIGGER ${trigger} BEFORE INSERT ON audit_events WHEN NEW.endpoint_id = '${endpointId}'
       BEGIN SELECT RAISE(ABORT, 'simulated D1 outage'); END`,
    ).run();
    try {
      await runCommandThroughSession(endpointId, "Get-Service", "failed");
      await runCommandThroughSession(endpointId, "Get-Process");
      const before = await waitForLocalCount(endpointId, 10); // two commands × (connected, requested, dispatched, finished, disconnected)
      const outcome = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB));
      expect(outcome.failed).toMatch(/simulated D1 outage/);
      expect(outcome.retryInMs).toBeGreaterThan(0);
      const second = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB));
      expect(second.retryInMs).toBeGreaterThan(outcome.retryInMs * 1.2); // backs off
      expect(await d1Audit(endpointId)).toHaveLength(0);
      expect((await localAudit(endpointId)).pending).toBe(before.length);
    } finally {
      await env.DB.prepare(`DROP TRIGGER IF EXISTS ${trigger}`).run();
    }
    // An alarm inside the backoff window leaves the events waiting...
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    expect((await localAudit(endpointId)).pending).toBeGreaterThan(0);
    // ...and the one at the end of it delivers them.
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE runtime_state SET value = ? WHERE key = 'audit_alarm_at'", String(Date.now() - 1));
    });
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    const { events: local, pending } = await localAudit(endpointId);
    expect(pending).toBe(0);
    const replicated = await d1Audit(endpointId);
    expect(replicated.map((e) => e.seq)).toEqual(local.map((e) => e.seq));
    expect(await verifyAuditChain(replicated)).toMatchObject({ ok: true, checked: local.length });
  });

  it("detects an edited or deleted event in the replica and names the first broken link", async () => {
    const endpointId = freshEndpoint();
    await runCommandThroughSession(endpointId, "Get-NetIPConfiguration");
    await waitForLocalCount(endpointId, 4);
    await runDurableObjectAlarm(sessionStub(endpointId));
    const requested = (await d1Audit(endpointId)).find((e) => e.kind === "command.requested")!;
    await env.DB.prepare("UPDATE audit_events SET detail = ? WHERE endpoint_id = ? AND seq = ?")
      .bind(JSON.stringify({ text: "echo harmless", shell: "default" }), endpointId, requested.seq)
      .run();
    expect(await verifyAuditChain(await d1Audit(endpointId))).toMatchObject({ ok: false, brokenAtSeq: requested.seq, reason: expect.stringMatching(/edited/) });

    await env.DB.prepare("DELETE FROM audit_events WHERE endpoint_id = ? AND seq = ?").bind(endpointId, requested.seq).run();
    expect(await verifyAuditChain(await d1Audit(endpointId))).toMatchObject({ ok: false, brokenAtSeq: requested.seq, reason: expect.stringMatching(/missing/) });
  });

  it("binds the session to one tenant: another tenant's identity is refused", async () => {
    const endpointId = freshEndpoint();
    await connectViewer(endpointId, viewerIdentity(endpointId));
    const intruder = await connectDirect(endpointId, viewerIdentity(endpointId, { orgId: "org_intruder" }));
    expect((await intruder.waitForClose()).code).toBe(4403);
  });
});
