import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  auditEventFromRow,
  compareReplicaToCheckpoint,
  GENESIS_HASH,
  verifyAuditChain,
  verifyCheckpointMac,
  type AuditEvent,
  type AuditRow,
} from "../../protocol/audit";
import { createDb } from "~/db/client.server";
import { verifyTenantAuditChains } from "~/models/audit-chains.server";
import { relinkAuditChain } from "../audit-chain";
import { connectDirect, connectViewer, runCommandToEnd, runInSession, sessionStub, viewerIdentity, endpointIdsFor } from "./socket";

const freshEndpoint = endpointIdsFor("ep_audit_test");

async function localAudit(endpointId: string): Promise<{ events: AuditEvent[]; pending: number }> {
  return runInSession(sessionStub(endpointId), (instance: any) => ({ events: instance.audit.all(), pending: instance.audit.pendingCount() }));
}

async function d1Audit(endpointId: string): Promise<AuditEvent[]> {
  const { results } = await env.DB.prepare("SELECT * FROM audit_events WHERE endpoint_id = ? ORDER BY seq").bind(endpointId).all<AuditRow>();
  return results.map((row) => auditEventFromRow(row));
}

type CheckpointRow = { endpoint_id: string; org_id: string; seq: number; hash: string; at: number; mac: string };

async function d1Checkpoint(endpointId: string): Promise<CheckpointRow | null> {
  return env.DB.prepare("SELECT * FROM audit_checkpoints WHERE endpoint_id = ?").bind(endpointId).first<CheckpointRow>();
}

const macValid = (row: CheckpointRow) =>
  verifyCheckpointMac(env.AUDIT_MAC_KEY!, { endpointId: row.endpoint_id, orgId: row.org_id, seq: row.seq, hash: row.hash, at: row.at }, row.mac);

/** What a reader of D1 alone concludes: the chain, then whether it ends at the checkpoint. */
async function replicaVerdict(endpointId: string, reference?: { seq: number; hash: string } | null) {
  const events = await d1Audit(endpointId);
  const chain = await verifyAuditChain(events);
  if (!chain.ok) return chain;
  const last = { lastSeq: events.at(-1)?.seq ?? 0, lastHash: events.at(-1)?.hash ?? GENESIS_HASH };
  return compareReplicaToCheckpoint(last, reference === undefined ? await d1Checkpoint(endpointId) : reference);
}

/** What the review page reports for this endpoint (D1 only, no key). */
async function reviewVerdict(endpointId: string) {
  const orgId = (await d1Checkpoint(endpointId))?.org_id ?? (await d1Audit(endpointId))[0]!.orgId;
  return (await verifyTenantAuditChains(createDb(env.DB), orgId)).find((v) => v.endpointId === endpointId);
}

async function replicateNow(endpointId: string) {
  await runInSession(sessionStub(endpointId), (_instance, state) => {
    state.storage.sql.exec("UPDATE runtime_state SET value = ? WHERE key = 'audit_alarm_at'", String(Date.now() - 1));
  });
  expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
  expect((await localAudit(endpointId)).pending).toBe(0);
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
    const commandId = await runCommandToEnd(endpointId, "ipconfig /all");
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
    await runCommandToEnd(endpointId, "whoami");
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
    await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, env.AUDIT_MAC_KEY));
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
      await runCommandToEnd(endpointId, "Get-Service", { status: "failed" });
      await runCommandToEnd(endpointId, "Get-Process");
      const before = await waitForLocalCount(endpointId, 10); // two commands × (connected, requested, dispatched, finished, disconnected)
      const outcome = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, env.AUDIT_MAC_KEY));
      expect(outcome.failed).toMatch(/simulated D1 outage/);
      expect(outcome.retryInMs).toBeGreaterThan(0);
      const second = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, env.AUDIT_MAC_KEY));
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
    await runCommandToEnd(endpointId, "Get-NetIPConfiguration");
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

  it("writes a MACed checkpoint of each batch's last event in the same D1 batch, and records whose chain the session holds", async () => {
    const endpointId = freshEndpoint();
    await runCommandToEnd(endpointId, "hostname");
    await waitForLocalCount(endpointId, 4);
    await replicateNow(endpointId);
    const replicated = await d1Audit(endpointId);
    const checkpoint = await d1Checkpoint(endpointId);
    expect(checkpoint).toMatchObject({ endpoint_id: endpointId, org_id: replicated[0]!.orgId, seq: replicated.at(-1)!.seq, hash: replicated.at(-1)!.hash });
    expect(await macValid(checkpoint!)).toBe(true);
    expect(await replicaVerdict(endpointId)).toEqual({ ok: true });
    expect(await reviewVerdict(endpointId)).toMatchObject({ ok: true, checked: replicated.length });
    const stored = await runInSession(sessionStub(endpointId), (_instance, state) =>
      state.storage.sql.exec<{ value: string }>("SELECT value FROM runtime_state WHERE key = 'endpoint_id'").one().value,
    );
    expect(stored).toBe(endpointId);

    // A batch sent again after a lost acknowledgement must not move the checkpoint back.
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE audit_log SET replicated = 0 WHERE seq <= 2");
    });
    const resent = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, env.AUDIT_MAC_KEY));
    expect(resent).toMatchObject({ replicated: 2 });
    expect(await d1Checkpoint(endpointId)).toMatchObject({ seq: checkpoint!.seq, hash: checkpoint!.hash });
    expect(await replicaVerdict(endpointId)).toEqual({ ok: true });
  });

  it("refuses to replicate without a usable key: nothing unsigned reaches D1, the events wait in the session", async () => {
    const endpointId = freshEndpoint();
    // The session's own alarm replicates too; here it must run without a key as well (a slow run would race it).
    await runInSession(sessionStub(endpointId), (instance: any) => {
      instance.env = { ...instance.env, AUDIT_MAC_KEY: undefined };
    });
    await runCommandToEnd(endpointId, "uptime");
    const local = await waitForLocalCount(endpointId, 4);
    for (const key of [undefined, "", "too-short-to-be-a-secret"]) {
      const outcome = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, key));
      expect(outcome.failed).toMatch(key ? /AUDIT_MAC_KEY is shorter than 32 characters/ : /AUDIT_MAC_KEY is not set: audit events stay in the session/);
      expect(outcome.retryInMs).toBeGreaterThan(0);
    }
    expect(await d1Audit(endpointId)).toHaveLength(0);
    expect(await d1Checkpoint(endpointId)).toBeNull();
    expect((await localAudit(endpointId)).pending).toBe(local.length);
    const outcome = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, env.AUDIT_MAC_KEY));
    expect(outcome).toMatchObject({ replicated: local.length, remaining: 0 });
    expect(await replicaVerdict(endpointId)).toEqual({ ok: true });
  });

  it("a replica rewritten with recomputed hashes no longer matches its checkpoint, and the checkpoint cannot be re-signed", async () => {
    const endpointId = freshEndpoint();
    await runCommandToEnd(endpointId, "Get-LocalUser");
    await waitForLocalCount(endpointId, 4);
    await replicateNow(endpointId);
    const events = await d1Audit(endpointId);
    const requested = events.find((e) => e.kind === "command.requested")!;
    // Edit one event and recompute every hash after it, as anyone with D1 write access could.
    const forged = await relinkAuditChain(events, requested.seq, (e) => ({ ...e, detail: JSON.stringify({ text: "echo harmless", shell: "default" }) }));
    for (const event of forged.filter((e) => e.seq >= requested.seq)) {
      await env.DB.prepare("UPDATE audit_events SET detail = ?, prev_hash = ?, hash = ? WHERE endpoint_id = ? AND seq = ?")
        .bind(event.detail, event.prevHash, event.hash, endpointId, event.seq)
        .run();
    }
    const prevHash = forged.at(-1)!.hash;
    expect(await verifyAuditChain(await d1Audit(endpointId))).toMatchObject({ ok: true }); // the chain alone is fooled
    expect(await replicaVerdict(endpointId)).toEqual({ ok: false, reason: expect.stringMatching(/does not match the session's checkpoint .*rewritten/) });
    expect(await reviewVerdict(endpointId)).toMatchObject({ ok: false, brokenAtSeq: events.at(-1)!.seq, reason: expect.stringMatching(/does not match the session's checkpoint/) });

    // Moving the checkpoint to the forged head leaves its MAC behind.
    await env.DB.prepare("UPDATE audit_checkpoints SET hash = ? WHERE endpoint_id = ?").bind(prevHash, endpointId).run();
    expect(await replicaVerdict(endpointId)).toEqual({ ok: true });
    expect(await macValid((await d1Checkpoint(endpointId))!)).toBe(false);
  });

  it("a deleted tail falls short of the checkpoint; rolled back with an older genuine checkpoint, it falls short of the session's head", async () => {
    const endpointId = freshEndpoint();
    await runCommandToEnd(endpointId, "Get-Date");
    await waitForLocalCount(endpointId, 4);
    await replicateNow(endpointId);
    const older = (await d1Checkpoint(endpointId))!; // what an attacker could have saved
    await runCommandToEnd(endpointId, "Get-ChildItem C:\\Users");
    await waitForLocalCount(endpointId, older.seq + 4);
    await replicateNow(endpointId);
    const head = await runInSession(sessionStub(endpointId), (instance: any) => instance.audit.replicatedHead());
    expect(head.seq).toBeGreaterThan(older.seq);
    expect(await d1Checkpoint(endpointId)).toMatchObject({ seq: head.seq, hash: head.hash });

    await env.DB.prepare("DELETE FROM audit_events WHERE endpoint_id = ? AND seq > ?").bind(endpointId, older.seq).run();
    expect(await verifyAuditChain(await d1Audit(endpointId))).toMatchObject({ ok: true });
    expect(await replicaVerdict(endpointId)).toEqual({ ok: false, reason: expect.stringMatching(/ends at seq \d+ but the session checkpointed seq \d+ \(events deleted\)/) });
    expect(await reviewVerdict(endpointId)).toMatchObject({ ok: false, brokenAtSeq: older.seq + 1, reason: expect.stringMatching(/events deleted/) });

    await env.DB.prepare("UPDATE audit_checkpoints SET seq = ?, hash = ?, at = ?, mac = ? WHERE endpoint_id = ?")
      .bind(older.seq, older.hash, older.at, older.mac, endpointId)
      .run();
    expect(await macValid((await d1Checkpoint(endpointId))!)).toBe(true);
    expect(await replicaVerdict(endpointId)).toEqual({ ok: true }); // D1 alone cannot tell
    expect(await reviewVerdict(endpointId)).toMatchObject({ ok: true });
    expect(await replicaVerdict(endpointId, head)).toEqual({ ok: false, reason: expect.stringMatching(/events deleted/) }); // the session's own head can
  });

  it("binds the session to one tenant: another tenant's identity is refused", async () => {
    const endpointId = freshEndpoint();
    await connectViewer(endpointId, viewerIdentity(endpointId));
    const intruder = await connectDirect(endpointId, viewerIdentity(endpointId, { orgId: "org_intruder" }));
    expect((await intruder.waitForClose()).code).toBe(4403);
  });
});
