// Tamper-evident audit trail: each endpoint's events form a SHA-256 chain
// (every event carries the previous event's hash). Written by the endpoint's
// Durable Object, replicated to D1, and verified by the same code everywhere.
import { z } from "zod";

export const GENESIS_HASH = "0".repeat(64);

export const AUDIT_KINDS = [
  "command.requested",
  "command.dispatched",
  "command.finished",
  "command.cancel_requested",
  "runtime.connected",
  "runtime.disconnected",
  "approval.requested",
  "approval.viewed",
  "approval.decided",
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export const auditEventSchema = z.object({
  endpointId: z.string().min(1),
  orgId: z.string().min(1),
  seq: z.number().int().positive(),
  at: z.number().int().nonnegative(),
  kind: z.enum(AUDIT_KINDS),
  actorId: z.string().nullable(),
  actorName: z.string().nullable(),
  /** Where the actor acted from (IP address), when known. */
  actorAddress: z.string().nullable(),
  commandId: z.string().nullable(),
  /** Command status after this event (queued, succeeded, failed, timed_out, cancelled, pending_approval, …). */
  status: z.string().nullable(),
  /** Event-specific facts as a JSON object string (command text, exit code, reason, …). */
  detail: z.string(),
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type AuditEvent = z.infer<typeof auditEventSchema>;
export type UnhashedAuditEvent = Omit<AuditEvent, "hash">;

/** The exact bytes that are hashed: every field but `hash`, in a fixed order. */
export function canonicalAuditPayload(event: UnhashedAuditEvent): string {
  return JSON.stringify([
    event.endpointId,
    event.orgId,
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
  ]);
}

export async function computeAuditHash(event: UnhashedAuditEvent): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonicalAuditPayload(event)));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export type ChainVerdict =
  | { ok: true; checked: number; lastHash: string }
  | { ok: false; checked: number; brokenAtSeq: number; reason: string };

/**
 * Verifies one endpoint's events, in seq order, starting after `previous`
 * (the genesis when verifying from seq 1). Reports the first broken link.
 */
export async function verifyAuditChain(
  events: readonly AuditEvent[],
  previous: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
): Promise<ChainVerdict> {
  let expectedSeq = previous.seq + 1;
  let prevHash = previous.hash;
  let checked = 0;
  for (const event of events) {
    if (event.seq !== expectedSeq) {
      return { ok: false, checked, brokenAtSeq: expectedSeq, reason: `event ${expectedSeq} is missing (found ${event.seq})` };
    }
    if (event.prevHash !== prevHash) {
      return { ok: false, checked, brokenAtSeq: event.seq, reason: "previous-hash link does not match the event before it" };
    }
    const { hash, ...unhashed } = event;
    if ((await computeAuditHash(unhashed)) !== hash) {
      return { ok: false, checked, brokenAtSeq: event.seq, reason: "contents do not match the event's hash (edited)" };
    }
    prevHash = hash;
    expectedSeq += 1;
    checked += 1;
  }
  return { ok: true, checked, lastHash: prevHash };
}

/** An audit event as stored in SQL (the DO's audit_log omits endpoint_id and org_id; D1's audit_events has them). */
export type AuditRow = {
  endpoint_id?: string;
  org_id?: string;
  seq: number;
  at: number;
  kind: string;
  actor_id: string | null;
  actor_name: string | null;
  actor_address: string | null;
  command_id: string | null;
  status: string | null;
  detail: string;
  prev_hash: string;
  hash: string;
};

export function auditEventFromRow(row: AuditRow, owner?: { endpointId: string; orgId: string }): AuditEvent {
  return {
    endpointId: row.endpoint_id ?? owner?.endpointId ?? "",
    orgId: row.org_id ?? owner?.orgId ?? "",
    seq: row.seq,
    at: row.at,
    kind: row.kind as AuditKind,
    actorId: row.actor_id,
    actorName: row.actor_name,
    actorAddress: row.actor_address,
    commandId: row.command_id,
    status: row.status,
    detail: row.detail,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
