// Retention (docs/decisions/0029-retention.md): the session prunes old finished
// work and old replicated audit events behind a prune anchor; the nightly cron
// archives the D1 replica to R2 as signed JSONL before deleting it.
import { createExecutionContext, createScheduledController, env, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditEventFromRow, auditEventSchema, computeAuditHash, DAY_MS, hmacSha256Hex, verifyAuditChain, type AuditRow } from "../../protocol/audit";
import { createDb } from "~/db/client.server";
import { verifyTenantAuditChains } from "~/models/audit-chains.server";
import worker from "../../workers/session/src/index";
import { archiveAuditReplica, archiveKey } from "../../workers/session/src/audit-archive";
import { migrate } from "../../workers/session/src/schema";
import { getRetention, RetentionSettingError, setRetention } from "~/models/retention.server";
import { connectViewer, freshEndpoint, refreshSessionPolicy, registerEndpoint, replayAll, runCommandToEnd, runInSession, sessionSql, sessionStub, viewerIdentity } from "./socket";

const OLD = Date.now() - 30 * DAY_MS;
const OLD_AUDIT_EVENTS = 3;
const archive = () => env.AUDIT_ARCHIVE!;

/** A tenant whose endpoint's audit chain starts with three genuinely old events (hashed with their old times). */
async function tenantWithEndpoint(retentionDays: number) {
  const endpointId = freshEndpoint("ep_retention");
  const orgId = `org_${endpointId}`;
  await registerEndpoint(endpointId, undefined, { orgId });
  await env.DB.prepare("UPDATE organisations SET retention_days = ? WHERE id = ?").bind(retentionDays, orgId).run();
  await runInSession(sessionStub(endpointId), (instance, state) => {
    migrate(state.storage.sql); // a fresh instance reached this way has not run onStart yet
    instance.presence.bindTenant(viewerIdentity(endpointId, { orgId }));
    for (let i = 0; i < OLD_AUDIT_EVENTS; i++) instance.audit.append({ kind: "policy.updated", detail: { old: i } }, OLD + i);
  });
  return { endpointId, orgId };
}

async function replicateNow(endpointId: string) {
  await sessionSql(endpointId, "UPDATE runtime_state SET value = ? WHERE key = 'audit_alarm_at'", String(Date.now() - 1));
  expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
  expect(await sessionSql(endpointId, "SELECT seq FROM audit_log WHERE replicated = 0")).toEqual([]);
}

/** The session's own chain, verified from its anchor with the same verifier as everywhere else. */
function sessionChain(endpointId: string) {
  return runInSession(sessionStub(endpointId), (instance) => verifyAuditChain(instance.audit.all(), instance.audit.anchor()));
}

/** A session with one old finished command, one recent one, and old unfinished and pending work, all audit replicated. */
async function sessionWithHistory(retentionDays = 7) {
  const tenant = await tenantWithEndpoint(retentionDays);
  const { endpointId } = tenant;
  const oldCommand = await runCommandToEnd(endpointId, "echo old", { orgId: tenant.orgId });
  const oldAuditThrough = OLD_AUDIT_EVENTS;
  // Transcript rows are not hashed: their times can be moved into the past.
  await sessionSql(endpointId, "UPDATE commands SET created_at = ?, received_at = ? WHERE id = ?", OLD, OLD, oldCommand);
  await sessionSql(endpointId, "UPDATE events SET at = ? WHERE command_id = ?", OLD, oldCommand);
  const recentCommand = await runCommandToEnd(endpointId, "echo recent", { orgId: tenant.orgId });
  await replicateNow(endpointId);
  // Old unfinished work (held for a window that has not opened) and an old pending approval are never pruned.
  for (const [id, status] of [["cmd_old_queued", "queued"], ["cmd_old_pending", "pending_approval"]] as const) {
    await sessionSql(
      endpointId,
      `INSERT INTO commands (id, request_id, text, shell, timeout_ms, requested_by_id, requested_by_name, status, created_at, not_before)
       VALUES (?, ?, 'echo waiting', 'default', 60000, 'u1', 'Tom', ?, ?, ?)`,
      id,
      `req_${id}`,
      status,
      OLD,
      Date.now() + 10 * DAY_MS,
    );
  }
  return { ...tenant, oldCommand, recentCommand, oldAuditThrough };
}

async function pruneNow(endpointId: string) {
  await sessionSql(endpointId, "INSERT INTO runtime_state (key, value) VALUES ('retention_next_at', '1') ON CONFLICT (key) DO UPDATE SET value = '1'");
  // Through the alarm arbiter, as the Durable Object's alarm runs it.
  await runInSession(sessionStub(endpointId), (instance) => instance.wakeUps.fire());
}

describe("session retention", () => {
  it("reaches the session with the policy refresh, then prunes only old finished work and old replicated audit events", async () => {
    const { endpointId, orgId, oldCommand, recentCommand, oldAuditThrough } = await sessionWithHistory(90);
    expect((await runInSession(sessionStub(endpointId), (instance) => instance.policyCopy.current())).retentionDays).toBe(90);
    await pruneNow(endpointId);
    expect(await sessionSql(endpointId, "SELECT id FROM commands WHERE id = ?", oldCommand)).toHaveLength(1); // 90 days: nothing is old enough

    await env.DB.prepare("UPDATE organisations SET retention_days = 7 WHERE id = ?").bind(orgId).run();
    expect((await refreshSessionPolicy(endpointId, orgId)).status).toBe(200);
    expect((await runInSession(sessionStub(endpointId), (instance) => instance.policyCopy.current())).retentionDays).toBe(7);
    await pruneNow(endpointId);

    const ids = (await sessionSql(endpointId, "SELECT id FROM commands ORDER BY id")).map((row) => row.id);
    expect(ids).toEqual(["cmd_old_pending", "cmd_old_queued", recentCommand].sort());
    expect(await sessionSql(endpointId, "SELECT seq FROM events WHERE command_id = ?", oldCommand)).toEqual([]);
    expect(await sessionSql(endpointId, "SELECT seq FROM events WHERE command_id = ?", recentCommand)).not.toEqual([]);
    const kept = await sessionSql(endpointId, "SELECT seq, prev_hash FROM audit_log ORDER BY seq");
    expect(kept[0].seq).toBe(oldAuditThrough + 1);
    const anchor = await runInSession(sessionStub(endpointId), (instance) => instance.audit.anchor());
    expect(anchor.seq).toBe(oldAuditThrough);
    expect(kept[0].prev_hash).toBe(anchor.hash);
    const pruned = (await runInSession(sessionStub(endpointId), (instance) => instance.audit.all())).find((e: any) => e.kind === "retention.pruned");
    expect(JSON.parse(pruned.detail)).toMatchObject({ retentionDays: 7, commands: 1, auditEvents: oldAuditThrough, anchor });
    expect(await sessionChain(endpointId)).toMatchObject({ ok: true });

    // A viewer syncing from the start gets what remains and is told older history was pruned.
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId }));
    const { events } = await replayAll(viewer);
    viewer.close();
    expect(events.some((e) => e.commandId === oldCommand)).toBe(false);
    expect(events.some((e) => e.commandId === recentCommand)).toBe(true);
    expect(events.find((e) => e.kind === "transcript.pruned")).toMatchObject({ retentionDays: 7, commands: 1 });
  });

  it("still reports tampering after pruning: a deleted middle event, an edited one, a moved anchor", async () => {
    const { endpointId, orgId } = await sessionWithHistory();
    await runCommandToEnd(endpointId, "echo more", { orgId });
    await pruneNow(endpointId);
    expect(await sessionChain(endpointId)).toMatchObject({ ok: true });
    const seqs = (await sessionSql(endpointId, "SELECT seq FROM audit_log ORDER BY seq")).map((row) => row.seq);
    const middle = seqs[Math.floor(seqs.length / 2)];

    await sessionSql(endpointId, "UPDATE audit_log SET detail = '{}' WHERE seq = ?", middle);
    expect(await sessionChain(endpointId)).toMatchObject({ ok: false, brokenAtSeq: middle, reason: expect.stringMatching(/edited/) });
    await sessionSql(endpointId, "DELETE FROM audit_log WHERE seq = ?", middle);
    expect(await sessionChain(endpointId)).toMatchObject({ ok: false, brokenAtSeq: middle, reason: expect.stringMatching(/missing/) });

    const { endpointId: other } = await sessionWithHistory();
    await pruneNow(other);
    await sessionSql(other, "UPDATE runtime_state SET value = ? WHERE key = 'audit_prune_anchor'", JSON.stringify({ seq: 1, hash: "f".repeat(64) }));
    expect(await sessionChain(other)).toMatchObject({ ok: false });
  });
});

async function replicaWithOldEvents(retentionDays = 7) {
  const { endpointId, orgId } = await tenantWithEndpoint(retentionDays);
  await runCommandToEnd(endpointId, "echo kept", { orgId });
  await replicateNow(endpointId);
  return { endpointId, orgId, through: OLD_AUDIT_EVENTS };
}

const d1Rows = async (endpointId: string) =>
  (await env.DB.prepare("SELECT * FROM audit_events WHERE endpoint_id = ? ORDER BY seq").bind(endpointId).all<AuditRow>()).results;
const reviewVerdict = async (orgId: string, endpointId: string) => (await verifyTenantAuditChains(createDb(env.DB), orgId)).find((v) => v.endpointId === endpointId);

describe("nightly archive of the D1 audit replica", () => {
  it("writes signed JSONL that re-hashes to the chain, then deletes those events behind an anchor the verifier starts from", async () => {
    const { endpointId, orgId, through } = await replicaWithOldEvents();
    const now = Date.now();
    const ctx = createExecutionContext();
    await worker.scheduled!(createScheduledController({ scheduledTime: now, cron: "17 3 * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    const object = await archive().get(archiveKey(orgId, now));
    expect(object).not.toBeNull();
    const bytes = new Uint8Array(await object!.arrayBuffer());
    expect(object!.customMetadata?.hmacSha256).toBe(await hmacSha256Hex(env.AUDIT_MAC_KEY!, bytes));
    const lines = new TextDecoder().decode(bytes).trimEnd().split("\n").map((line) => auditEventSchema.parse(JSON.parse(line)));
    expect(lines.map((e) => e.seq)).toEqual(Array.from({ length: through }, (_, i) => i + 1));
    for (const { hash, ...unhashed } of lines) expect(await computeAuditHash(unhashed)).toBe(hash);
    expect(await verifyAuditChain(lines)).toMatchObject({ ok: true, checked: through });

    const remaining = await d1Rows(endpointId);
    expect(remaining[0]!.seq).toBe(through + 1);
    const anchor = await env.DB.prepare("SELECT * FROM audit_prune_anchors WHERE endpoint_id = ?").bind(endpointId).first<any>();
    expect(anchor).toMatchObject({ seq: through, hash: lines.at(-1)!.hash, archive_key: archiveKey(orgId, now) });
    expect(remaining[0]!.prev_hash).toBe(anchor.hash);
    expect(await reviewVerdict(orgId, endpointId)).toMatchObject({ ok: true, checked: remaining.length });

    // Tampering after the prune is still caught: a deleted middle event, and a moved anchor.
    const middle = remaining[Math.floor(remaining.length / 2)]!.seq;
    await env.DB.prepare("UPDATE audit_prune_anchors SET hash = ? WHERE endpoint_id = ?").bind("e".repeat(64), endpointId).run();
    expect(await reviewVerdict(orgId, endpointId)).toMatchObject({ ok: false, brokenAtSeq: through + 1 });
    await env.DB.prepare("UPDATE audit_prune_anchors SET hash = ? WHERE endpoint_id = ?").bind(anchor.hash, endpointId).run();
    await env.DB.prepare("DELETE FROM audit_events WHERE endpoint_id = ? AND seq = ?").bind(endpointId, middle).run();
    expect(await reviewVerdict(orgId, endpointId)).toMatchObject({ ok: false, brokenAtSeq: middle });
  });

  it("deletes nothing without a usable key or when the R2 write fails", async () => {
    const { endpointId, orgId } = await replicaWithOldEvents();
    const before = await d1Rows(endpointId);

    const noKey = await archiveAuditReplica({ ...env, AUDIT_MAC_KEY: undefined });
    expect(noKey.find((o) => o.orgId === orgId)).toMatchObject({ failed: expect.stringMatching(/AUDIT_MAC_KEY/) });
    // The real local bucket, with its writes failing (an R2 outage).
    const failingBucket: R2Bucket = new Proxy(archive(), {
      get: (bucket, property) => (property === "put" ? () => Promise.reject(new Error("R2 is unavailable")) : Reflect.get(bucket, property).bind(bucket)),
    });
    const r2Down = await archiveAuditReplica({ ...env, AUDIT_ARCHIVE: failingBucket });
    expect(r2Down.find((o) => o.orgId === orgId)).toMatchObject({ failed: "R2 is unavailable", archived: 0 });

    expect(await d1Rows(endpointId)).toEqual(before);
    expect(await env.DB.prepare("SELECT 1 FROM audit_prune_anchors WHERE endpoint_id = ?").bind(endpointId).first()).toBeNull();
    expect((await verifyAuditChain(before.map((row) => auditEventFromRow(row)))).ok).toBe(true);
  });
});

describe("the retention setting", () => {
  it("is refused to non-admins and out of range, and an admin's change reaches the sessions with the policy refresh", async () => {
    const { endpointId, orgId } = await tenantWithEndpoint(90);
    await runCommandToEnd(endpointId, "echo hi", { orgId });
    const copy = () => runInSession(sessionStub(endpointId), (instance) => instance.policyCopy.current().retentionDays);
    expect(await copy()).toBe(90);
    for (const role of ["technician", "noc"] as const) {
      await expect(setRetention(env, orgId, { userId: "u_t", name: "Tess", role: role as never }, { retentionDays: "30" })).rejects.toThrow(RetentionSettingError);
    }
    await expect(setRetention(env, orgId, { userId: "u_a", name: "Ada", role: "admin" }, { retentionDays: "3" })).rejects.toThrow(/at least 7/);
    expect((await getRetention(env, orgId)).days).toBe(90);

    const saved = await setRetention(env, orgId, { userId: "u_a", name: "Ada", role: "admin" }, { retentionDays: "30" });
    expect(saved).toMatchObject({ days: 30, refreshed: 1, failed: [] });
    expect(await getRetention(env, orgId)).toMatchObject({ days: 30, updatedBy: "Ada" });
    expect(await copy()).toBe(30);
    const audited = (await runInSession(sessionStub(endpointId), (instance) => instance.audit.all())).filter((e: any) => e.kind === "policy.updated" && e.actorName === "Ada");
    expect(JSON.parse(audited.at(-1).detail)).toMatchObject({ retentionDays: 30 });
  });
});
