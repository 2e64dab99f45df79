// Per-tenant retention in the session (docs/decisions/0029-retention.md): about
// once a day, finished commands, their transcript and output, and audit events
// D1 already holds are deleted once older than the tenant's retention. Work not
// finished and approvals still pending are never touched. The audit chain stays
// verifiable: the audit log records its prune anchor before deleting.
import { COMMAND_OUTCOMES } from "../../../protocol/messages";
import { DAY_MS } from "../../../protocol/audit";
import type { AuditLog } from "./audit-log";
import type { EventLog } from "./event-log";
import type { SessionStore } from "./session-store";

/** Commands deleted per step, so one wake stays short; a backlog is worked off in later wakes minutes apart. */
export const PRUNE_BATCH = 500;
const BACKLOG_RETRY_MS = 60_000;
/** Daily, spread over an hour either way so a fleet's sessions do not all wake together. */
const JITTER_MS = 60 * 60_000;

export interface RetentionHost {
  store: SessionStore;
  events: EventLog;
  audit: AuditLog;
  /** The tenant's retention from the session's policy copy; null when the session has no copy (then nothing is pruned). */
  retentionDays: () => number | null;
  random?: () => number;
}

export interface PruneReport {
  commands: number;
  events: number;
  auditEvents: number;
  anchor: { seq: number; hash: string } | null;
  backlog: boolean;
}

const FINISHED = COMMAND_OUTCOMES.map((status) => `'${status}'`).join(", ");

export class Retention {
  constructor(private readonly host: RetentionHost) {}

  /** Never before the oldest event could be older than the retention: a young or empty session is not woken for it. */
  nextWakeAt(now: number): number | null {
    const days = this.host.retentionDays();
    const oldest = this.oldestRecordAt();
    if (days === null || oldest === null) return null;
    let scheduled = Number(this.host.store.value("retention_next_at") || 0);
    if (!scheduled) {
      // First time: somewhere in the coming day, so sessions created together do not prune together.
      scheduled = now + Math.floor(this.random() * DAY_MS);
      this.host.store.setValue("retention_next_at", String(scheduled));
    }
    return Math.max(scheduled, oldest + days * DAY_MS);
  }

  /** The oldest transcript or audit record still kept (both logs grow in seq order). */
  private oldestRecordAt(): number | null {
    const event = this.host.store.one<{ at: number }>("SELECT at FROM events ORDER BY seq LIMIT 1")?.at;
    const audit = this.host.store.one<{ at: number }>("SELECT at FROM audit_log ORDER BY seq LIMIT 1")?.at;
    const times = [event, audit].filter((at): at is number => typeof at === "number");
    return times.length ? Math.min(...times) : null;
  }

  wake(now: number): void {
    const due = Number(this.host.store.value("retention_next_at") || 0);
    if (due && due > now) return;
    const report = this.prune(now);
    const next = report?.backlog ? now + BACKLOG_RETRY_MS : now + DAY_MS + Math.floor((this.random() * 2 - 1) * JITTER_MS);
    this.host.store.setValue("retention_next_at", String(next));
  }

  /**
   * Deletes what is older than the retention; null without a policy copy. All
   * in one synchronous step: the Durable Object commits it atomically.
   */
  prune(now: number): PruneReport | null {
    const days = this.host.retentionDays();
    if (days === null) return null;
    const cutoff = now - days * DAY_MS;
    const { store } = this.host;
    // Finished before the cutoff (server time of the result), and not a step of a sequence that still has work.
    const commandIds = store
      .all<{ id: string }>(
        `SELECT c.id FROM commands c
         WHERE c.status IN (${FINISHED}) AND COALESCE(c.received_at, c.created_at) < ?
           AND (c.sequence_id IS NULL OR NOT EXISTS (
             SELECT 1 FROM commands s WHERE s.sequence_id = c.sequence_id AND s.status NOT IN (${FINISHED})))
         ORDER BY c.created_at LIMIT ?`,
        cutoff,
        PRUNE_BATCH + 1,
      )
      .map((row) => row.id);
    const backlog = commandIds.length > PRUNE_BATCH;
    const batch = JSON.stringify(commandIds.slice(0, PRUNE_BATCH));
    const inBatch = "SELECT value FROM json_each(?)";
    const deleted = (query: string, ...bindings: unknown[]) => store.all(`${query} RETURNING 1`, ...bindings).length;
    const events =
      deleted(`DELETE FROM events WHERE command_id IN (${inBatch})`, batch) + deleted("DELETE FROM events WHERE command_id IS NULL AND at < ?", cutoff);
    store.exec(`DELETE FROM approval_links WHERE command_id IN (${inBatch})`, batch);
    store.exec(`DELETE FROM approval_requests WHERE command_id IN (${inBatch})`, batch);
    const commands = deleted(`DELETE FROM commands WHERE id IN (${inBatch})`, batch);
    const audit = this.host.audit.pruneReplicatedBefore(cutoff);
    if (commands === 0 && events === 0 && !audit) return { commands, events, auditEvents: 0, anchor: null, backlog };
    if (commands > 0 || events > 0) this.host.events.append("transcript.pruned", { before: cutoff, retentionDays: days, commands });
    this.host.audit.append({
      kind: "retention.pruned",
      detail: { retentionDays: days, before: cutoff, commands, events, auditEvents: audit?.deleted ?? 0, anchor: audit?.anchor ?? null },
    });
    return { commands, events, auditEvents: audit?.deleted ?? 0, anchor: audit?.anchor ?? null, backlog };
  }

  private random(): number {
    return (this.host.random ?? Math.random)();
  }
}
