import { sha256Hex } from "./hash";
import {
  auditEventFromRow,
  auditMacKeyProblem,
  canonicalAuditPayload,
  computeCheckpointMac,
  GENESIS_HASH,
  type AuditEvent,
  type AuditKind,
  type AuditRow,
  type UnhashedAuditEvent,
} from "../../../protocol/audit";

/** Events per D1 batch; D1 caps statements per batch well above this. */
export const REPLICATION_BATCH = 100;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 5 * 60_000;
/** Let a burst of events gather into one batch before replicating. */
const REPLICATION_DELAY_MS = 500;
/**
 * A busy endpoint replicates at most this often: each replication is an alarm
 * and a D1 batch, and at one of those per command they were most of the
 * local stack's work per command under sustained load (docs/benchmarks.md).
 * An isolated event still reaches D1 after REPLICATION_DELAY_MS.
 */
export const MIN_REPLICATION_INTERVAL_MS = 2_000;

export interface AuditEntry {
  kind: AuditKind;
  actorId?: string | null;
  actorName?: string | null;
  actorAddress?: string | null;
  commandId?: string | null;
  status?: string | null;
  detail?: Record<string, unknown>;
}

export type ReplicationOutcome =
  | { replicated: number; remaining: number }
  | { failed: string; retryInMs: number };

/**
 * The endpoint's hash-chained audit trail, kept in the DO's SQLite and
 * replicated to D1 by alarm. Appending is synchronous and local, so it never
 * waits on D1; replication retries with backoff and is idempotent because
 * D1's primary key is (endpoint_id, seq).
 */
export class AuditLog {
  constructor(
    private readonly sql: SqlStorage,
    private readonly identity: () => { endpointId: string; orgId: string | null },
    /** Asks the owner to (re)set its one alarm; the owner reads `audit_alarm_at`. */
    private readonly requestAlarm: () => void,
  ) {}

  /** When this instance last started a replication (0 after a wake from hibernation: the next one is not held back). */
  private lastReplicationAt = 0;
  /**
   * This instance's pace, within ±25 % of MIN_REPLICATION_INTERVAL_MS: sessions that got busy at the same moment
   * (a fleet run) would otherwise replicate in step, every one of them in the same instant.
   */
  private readonly replicationInterval = MIN_REPLICATION_INTERVAL_MS * (0.75 + Math.random() * 0.5);
  private endpointStamped = false;

  append(entry: AuditEntry, now = Date.now()): AuditEvent | null {
    const { endpointId, orgId } = this.identity();
    if (!orgId) return null; // not yet bound to a tenant: nothing has happened worth auditing
    // The DO's storage is the reference copy of this chain; recording whose
    // chain it is lets audit:verify read it offline, without the DO's name.
    if (!this.endpointStamped) {
      if (this.getMeta("endpoint_id") === undefined) this.setMeta("endpoint_id", endpointId);
      this.endpointStamped = true; // written once, never changed: not read again by this instance
    }
    // After retention pruned every row, the chain continues from the prune anchor, never from the genesis again.
    const last = this.sql.exec<{ seq: number; hash: string }>("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").toArray()[0] ?? this.prunedThrough();
    const unhashed: UnhashedAuditEvent = {
      endpointId,
      orgId,
      seq: (last?.seq ?? 0) + 1,
      at: now,
      kind: entry.kind,
      actorId: entry.actorId ?? null,
      actorName: entry.actorName ?? null,
      actorAddress: entry.actorAddress ?? null,
      commandId: entry.commandId ?? null,
      status: entry.status ?? null,
      detail: JSON.stringify(entry.detail ?? {}),
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    const event: AuditEvent = { ...unhashed, hash: sha256Hex(canonicalAuditPayload(unhashed)) };
    this.sql.exec(
      `INSERT INTO audit_log (seq, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      event.seq,
      event.at,
      event.kind,
      event.actorId,
      event.actorName,
      event.actorAddress,
      event.commandId,
      event.status,
      event.detail,
      event.prevHash,
      event.hash,
    );
    this.scheduleReplication(Math.max(now + REPLICATION_DELAY_MS, this.lastReplicationAt + this.replicationInterval));
    return event;
  }

  /**
   * Where the kept chain starts: the last event retention deleted (seq and
   * hash), or the genesis. Verify `all()` from here (verifyAuditChain's `previous`).
   */
  anchor(): { seq: number; hash: string } {
    return this.prunedThrough() ?? { seq: 0, hash: GENESIS_HASH };
  }

  /**
   * Deletes the events D1 already holds (replicated) that are older than
   * `cutoff`, oldest first and without gaps. The anchor is recorded in the same
   * synchronous step, before the rows go, so the kept chain stays verifiable.
   */
  pruneReplicatedBefore(cutoff: number): { deleted: number; anchor: { seq: number; hash: string } } | null {
    // The newest event that may go: every event up to it must be replicated and old (seq order is append order).
    const through = this.sql
      .exec<{ seq: number; hash: string }>(
        `SELECT seq, hash FROM audit_log WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_log WHERE replicated = 0 OR at >= ?), 9007199254740991)
         ORDER BY seq DESC LIMIT 1`,
        cutoff,
      )
      .toArray()[0];
    if (!through) return null;
    const anchor = { seq: through.seq, hash: through.hash };
    this.setMeta("audit_prune_anchor", JSON.stringify(anchor));
    const deleted = this.sql.exec("DELETE FROM audit_log WHERE seq <= ? AND replicated = 1 RETURNING 1", anchor.seq).toArray().length;
    return { deleted, anchor };
  }

  private prunedThrough(): { seq: number; hash: string } | null {
    const stored = this.getMeta("audit_prune_anchor");
    return stored ? (JSON.parse(stored) as { seq: number; hash: string }) : null;
  }

  /** Every event kept, in seq order, starting after `anchor()` (for verification and export from the DO itself). */
  all(): AuditEvent[] {
    const { endpointId, orgId } = this.identity();
    return this.sql
      .exec<AuditRow>("SELECT * FROM audit_log ORDER BY seq")
      .toArray()
      .map((row) => auditEventFromRow(row, { endpointId, orgId: orgId ?? "" }));
  }

  /** Pending events are sent at any alarm, except while backing off after a D1 failure. */
  replicationDue(now = Date.now()): boolean {
    if (this.pendingCount() === 0) return false;
    const backingOff = Number(this.getMeta("audit_retry_attempts") ?? 0) > 0;
    return !backingOff || Number(this.getMeta("audit_alarm_at") || 0) <= now;
  }

  pendingCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM audit_log WHERE replicated = 0").one().n;
  }

  /** The newest event D1 has acknowledged: what the replica must at least contain. */
  replicatedHead(): { seq: number; hash: string } | null {
    return this.sql.exec<{ seq: number; hash: string }>("SELECT seq, hash FROM audit_log WHERE replicated = 1 ORDER BY seq DESC LIMIT 1").toArray()[0] ?? this.prunedThrough();
  }

  /**
   * Sends the oldest unreplicated batch to D1 together with a checkpoint of
   * its last event, MACed with `macKey`; called from the DO's alarm. Without
   * a usable key it fails closed: an unsigned replica could not be told apart
   * from a forged one, so the events wait in the DO until the key is set.
   */
  async replicate(db: D1Database, macKey: string | undefined, now = Date.now()): Promise<ReplicationOutcome> {
    const { endpointId, orgId } = this.identity();
    this.lastReplicationAt = now;
    this.setMeta("audit_alarm_at", ""); // this replication is under way; appends from here on schedule the next
    const rows = this.sql
      .exec<AuditRow>("SELECT * FROM audit_log WHERE replicated = 0 ORDER BY seq LIMIT ?", REPLICATION_BATCH)
      .toArray();
    if (rows.length === 0 || !orgId) return { replicated: 0, remaining: 0 };
    try {
      const keyProblem = auditMacKeyProblem(macKey);
      if (keyProblem) throw new Error(`${keyProblem}: audit events stay in the session, unreplicated, until it is configured`);
      const last = rows[rows.length - 1]!;
      const checkpoint = { endpointId, orgId, seq: last.seq, hash: last.hash, at: now };
      const mac = await computeCheckpointMac(macKey!, checkpoint);
      await db.batch([
        ...rows.map((row) =>
          db
            .prepare(
              `INSERT OR IGNORE INTO audit_events
                 (endpoint_id, seq, org_id, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .bind(endpointId, row.seq, orgId, row.at, row.kind, row.actor_id, row.actor_name, row.actor_address, row.command_id, row.status, row.detail, row.prev_hash, row.hash),
        ),
        // Only forward: a batch sent again after a lost acknowledgement must not
        // move the checkpoint behind events that later batches already covered.
        db
          .prepare(
            `INSERT INTO audit_checkpoints (endpoint_id, org_id, seq, hash, at, mac) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (endpoint_id) DO UPDATE SET org_id = excluded.org_id, seq = excluded.seq, hash = excluded.hash, at = excluded.at, mac = excluded.mac
             WHERE excluded.seq >= audit_checkpoints.seq`,
          )
          .bind(checkpoint.endpointId, checkpoint.orgId, checkpoint.seq, checkpoint.hash, checkpoint.at, mac),
      ]);
    } catch (error) {
      const attempts = Number(this.getMeta("audit_retry_attempts") ?? 0) + 1;
      this.setMeta("audit_retry_attempts", String(attempts));
      const retryInMs = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempts - 1)) * (0.8 + Math.random() * 0.4);
      this.scheduleReplication(now + retryInMs, true);
      return { failed: error instanceof Error ? error.message : String(error), retryInMs };
    }
    this.sql.exec("UPDATE audit_log SET replicated = 1 WHERE replicated = 0 AND seq <= ?", rows[rows.length - 1]!.seq);
    if (this.getMeta("audit_retry_attempts") !== "0") this.setMeta("audit_retry_attempts", "0"); // a read, not a write, per healthy batch
    const remaining = this.pendingCount();
    if (remaining > 0) this.scheduleReplication(now, true);
    return { replicated: rows.length, remaining };
  }

  /** When replication is due (soon after an append, or after a backoff). */
  nextWakeAt(): number | null {
    return Number(this.getMeta("audit_alarm_at") || 0) || null;
  }

  /** The alarm's turn: replicate one batch if due; a failure is logged and retried by backoff. */
  async wake(db: D1Database, macKey: string | undefined): Promise<void> {
    if (!this.replicationDue()) return;
    const outcome = await this.replicate(db, macKey);
    if ("failed" in outcome) console.error(`audit replication failed, retrying in ${Math.round(outcome.retryInMs)} ms: ${outcome.failed}`);
  }

  /** Ensures an alarm is set; `force` moves it (used for backoff). */
  private scheduleReplication(at: number, force = false): void {
    const current = Number(this.getMeta("audit_alarm_at") || 0);
    if (!force && current > 0) return;
    this.setMeta("audit_alarm_at", String(at));
    this.requestAlarm();
  }

  private getMeta(key: string): string | undefined {
    return this.sql.exec<{ value: string }>("SELECT value FROM runtime_state WHERE key = ?", key).toArray()[0]?.value;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO runtime_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }
}
