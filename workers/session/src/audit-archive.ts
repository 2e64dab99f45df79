// Nightly archive of the D1 audit replica to R2 (docs/decisions/0029-retention.md).
// Per tenant, events older than its retention are written as one dated JSONL
// object, HMAC-signed over its exact bytes, read back and checked, and only
// then deleted from D1, in the same batch that moves each endpoint's prune
// anchor (MACed) forward. Fail closed: without a usable key, without the
// bucket, or when a write or read-back fails, nothing is deleted.
import {
  auditEventFromRow,
  auditMacKeyProblem,
  computePruneAnchorMac,
  DAY_MS,
  GENESIS_HASH,
  hmacSha256Hex,
  verifyAuditChain,
  type AuditEvent,
  type AuditRow,
} from "../../../protocol/audit";

/** Events per archive object; a larger backlog is worked off in further objects of the same run. */
export const ARCHIVE_CHUNK_EVENTS = 10_000;
const MAX_CHUNKS_PER_TENANT = 10;

export interface ArchiveEnv {
  DB: D1Database;
  AUDIT_MAC_KEY?: string;
  AUDIT_ARCHIVE?: R2Bucket;
}

export type TenantArchiveOutcome =
  | { orgId: string; archived: number; objects: string[] }
  | { orgId: string; failed: string; archived: number; objects: string[] };

/** The object key of one tenant's archive written on `now`'s UTC date (`part` > 0 for further objects that day). */
export function archiveKey(orgId: string, now: number, part = 0): string {
  const date = new Date(now).toISOString().slice(0, 10);
  return `audit/${orgId}/${date}${part ? `.${part}` : ""}.jsonl`;
}

export async function archiveAuditReplica(env: ArchiveEnv, now = Date.now()): Promise<TenantArchiveOutcome[]> {
  const keyProblem = auditMacKeyProblem(env.AUDIT_MAC_KEY);
  const tenants = (await env.DB.prepare("SELECT id, retention_days FROM organisations ORDER BY id").all<{ id: string; retention_days: number }>()).results;
  const outcomes: TenantArchiveOutcome[] = [];
  for (const tenant of tenants) {
    if (keyProblem || !env.AUDIT_ARCHIVE) {
      outcomes.push({ orgId: tenant.id, failed: keyProblem ?? "no AUDIT_ARCHIVE bucket is bound", archived: 0, objects: [] });
      continue;
    }
    outcomes.push(await archiveTenant({ db: env.DB, bucket: env.AUDIT_ARCHIVE, key: env.AUDIT_MAC_KEY! }, tenant.id, now - tenant.retention_days * DAY_MS, now));
  }
  for (const outcome of outcomes) {
    if ("failed" in outcome) console.error(`audit archive for ${outcome.orgId} failed, nothing more deleted: ${outcome.failed}`);
  }
  return outcomes;
}

interface Target {
  db: D1Database;
  bucket: R2Bucket;
  key: string;
}

async function archiveTenant(target: Target, orgId: string, cutoff: number, now: number): Promise<TenantArchiveOutcome> {
  const objects: string[] = [];
  let archived = 0;
  let part = 0;
  try {
    for (let chunk = 0; chunk < MAX_CHUNKS_PER_TENANT; chunk++) {
      const events = await selectChunk(target.db, orgId, cutoff);
      if (events.length === 0) break;
      let key = archiveKey(orgId, now, part);
      // A second run the same day (or a further chunk) never overwrites an archive whose events are already gone.
      while (await target.bucket.head(key)) key = archiveKey(orgId, now, ++part);
      await writeArchive(target, key, events);
      await deleteArchived(target, orgId, key, events, now);
      objects.push(key);
      archived += events.length;
      if (events.length < ARCHIVE_CHUNK_EVENTS) break;
    }
  } catch (error) {
    return { orgId, failed: error instanceof Error ? error.message : String(error), archived, objects };
  }
  return { orgId, archived, objects };
}

/**
 * Up to a chunk of the tenant's events due for archiving: per endpoint, the
 * prefix of its chain through its newest event older than the cutoff, checked
 * to continue from the endpoint's anchor (a broken chain is kept in D1 as evidence).
 */
async function selectChunk(db: D1Database, orgId: string, cutoff: number): Promise<AuditEvent[]> {
  const due = (
    await db
      .prepare(
        `SELECT e.endpoint_id, MAX(e.seq) AS through, a.seq AS anchor_seq, a.hash AS anchor_hash
         FROM audit_events e LEFT JOIN audit_prune_anchors a ON a.endpoint_id = e.endpoint_id
         WHERE e.org_id = ? AND e.at < ? GROUP BY e.endpoint_id ORDER BY e.endpoint_id`,
      )
      .bind(orgId, cutoff)
      .all<{ endpoint_id: string; through: number; anchor_seq: number | null; anchor_hash: string | null }>()
  ).results;
  const events: AuditEvent[] = [];
  for (const endpoint of due) {
    const budget = ARCHIVE_CHUNK_EVENTS - events.length;
    if (budget <= 0) break;
    const rows = (
      await db
        .prepare("SELECT * FROM audit_events WHERE endpoint_id = ? AND org_id = ? AND seq <= ? ORDER BY seq LIMIT ?")
        .bind(endpoint.endpoint_id, orgId, endpoint.through, budget)
        .all<AuditRow>()
    ).results.map((row) => auditEventFromRow(row));
    const verdict = await verifyAuditChain(rows, { seq: endpoint.anchor_seq ?? 0, hash: endpoint.anchor_hash ?? GENESIS_HASH });
    if (!verdict.ok) throw new Error(`the replica of ${endpoint.endpoint_id} is broken at seq ${verdict.brokenAtSeq} (${verdict.reason}); nothing of it is archived or deleted`);
    events.push(...rows);
  }
  return events;
}

/** One event per line, as auditEventSchema has it; every line re-hashes to its event's `hash`. */
export function archiveBytes(events: readonly AuditEvent[]): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(events.map((event) => `${JSON.stringify(event)}\n`).join(""));
}

async function writeArchive(target: Target, key: string, events: AuditEvent[]): Promise<void> {
  const bytes = archiveBytes(events);
  const signature = await hmacSha256Hex(target.key, bytes);
  const sha256 = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
  await target.bucket.put(key, bytes, {
    sha256,
    httpMetadata: { contentType: "application/x-ndjson" },
    customMetadata: { hmacSha256: signature, events: String(events.length), format: "caisey.audit-archive.v1" },
  });
  // Read back before anything is deleted: the bytes and signature D1 is about to rely on must be the ones stored.
  const stored = await target.bucket.get(key);
  if (!stored) throw new Error(`archive ${key} is missing right after it was written`);
  const readBack = new Uint8Array(await stored.arrayBuffer());
  if (stored.customMetadata?.hmacSha256 !== signature || (await hmacSha256Hex(target.key, readBack)) !== signature) {
    throw new Error(`archive ${key} does not read back as written`);
  }
}

/** Deletes the archived events and moves each endpoint's anchor to its last archived event, in one D1 transaction. */
async function deleteArchived(target: Target, orgId: string, key: string, events: AuditEvent[], now: number): Promise<void> {
  const lastByEndpoint = new Map<string, AuditEvent>();
  for (const event of events) lastByEndpoint.set(event.endpointId, event);
  const statements: D1PreparedStatement[] = [];
  for (const [endpointId, last] of lastByEndpoint) {
    const anchor = { endpointId, orgId, seq: last.seq, hash: last.hash, at: now, archiveKey: key };
    const mac = await computePruneAnchorMac(target.key, anchor);
    statements.push(
      target.db.prepare("DELETE FROM audit_events WHERE endpoint_id = ? AND org_id = ? AND seq <= ?").bind(endpointId, orgId, last.seq),
      target.db
        .prepare(
          `INSERT INTO audit_prune_anchors (endpoint_id, org_id, seq, hash, at, archive_key, mac) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (endpoint_id) DO UPDATE SET org_id = excluded.org_id, seq = excluded.seq, hash = excluded.hash, at = excluded.at,
             archive_key = excluded.archive_key, mac = excluded.mac
           WHERE excluded.seq > audit_prune_anchors.seq`,
        )
        .bind(endpointId, orgId, anchor.seq, anchor.hash, anchor.at, anchor.archiveKey, mac),
    );
  }
  await target.db.batch(statements);
}
