// Tamper-evident audit trail: each endpoint's events form a SHA-256 chain
// (every event carries the previous event's hash). Written by the endpoint's
// Durable Object, replicated to D1, and verified by the same code everywhere.
import * as z from "zod";

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
  "approval.delivered",
  "approval.delivery_failed",
  "approval.reissued",
  "approval.withdrawn",
  "runtime.refused",
  "policy.updated",
  "runtime.revoked",
  "session.placed",
  "runtime.reinstated",
  "endpoint.decommissioned",
  "sequence.paused",
  "sequence.resumed",
  "sequence.action_refused",
  /** Runtime self-update (docs/decisions/0016-runtime-updates.md). */
  "runtime.update_target",
  "runtime.update_offered",
  "runtime.update_status",
  "runtime.update_refused",
  /** A request beyond the caller's role (protocol/permissions.ts); nothing changed. */
  "permission.refused",
  /** Retention pruned old history from the session (docs/decisions/0029-retention.md). */
  "retention.pruned",
  /** A removed member's live sockets to this session were closed (docs/decisions/0020-tenant-onboarding.md). */
  "viewer.access_removed",
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

// ---------------------------------------------------------------------------
// Keyed checkpoints (docs/decisions/0008-audit-checkpoints.md)
//
// The chain alone proves only that a replica is self-consistent: anyone who can
// write D1 can recompute every hash, or drop the newest events. So with each
// replicated batch the session also writes the head it vouches for, MACed with
// a key D1 never holds. scripts/audit-verify.mjs has a node:crypto twin of
// these two functions; tests/unit/audit-verify.test.ts proves both agree.

export interface AuditCheckpoint {
  endpointId: string;
  orgId: string;
  seq: number;
  hash: string;
  /** When the session wrote the checkpoint (ms since epoch). */
  at: number;
}

/** Below this the key is a typo or a placeholder, not a secret. */
export const AUDIT_MAC_KEY_MIN_LENGTH = 32;

/**
 * The exact bytes that are MACed. The domain tag keeps a checkpoint MAC from
 * ever being valid as some other message under the same key, and the endpoint
 * and org stop a genuine checkpoint being replayed onto another chain.
 */
export function canonicalCheckpointPayload(checkpoint: AuditCheckpoint): string {
  return JSON.stringify(["caisey.audit-checkpoint.v1", checkpoint.endpointId, checkpoint.orgId, checkpoint.seq, checkpoint.hash, checkpoint.at]);
}

/** Why a key is unusable, or null when it is fine. */
export function auditMacKeyProblem(key: string | undefined | null): string | null {
  if (!key) return "AUDIT_MAC_KEY is not set";
  if (key.length < AUDIT_MAC_KEY_MIN_LENGTH) return `AUDIT_MAC_KEY is shorter than ${AUDIT_MAC_KEY_MIN_LENGTH} characters`;
  return null;
}

/** HMAC-SHA256 over the canonical payload with the key's UTF-8 bytes, hex. */
export async function computeCheckpointMac(key: string, checkpoint: AuditCheckpoint): Promise<string> {
  const encoder = new TextEncoder();
  const cryptoKey = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(canonicalCheckpointPayload(checkpoint)));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Constant-time comparison, so a verifier exposed to callers does not leak how much of a MAC matched. */
export async function verifyCheckpointMac(key: string, checkpoint: AuditCheckpoint, mac: string): Promise<boolean> {
  const expected = await computeCheckpointMac(key, checkpoint);
  if (expected.length !== mac.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ mac.charCodeAt(i);
  return diff === 0;
}

export type CheckpointVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Compares a replica's verified chain (its last seq and hash) with its
 * checkpoint row, without the key: the MAC is checked by whoever holds it. The
 * checkpoint is written in the same D1 batch as the events it covers, so an
 * untouched replica ends exactly at it. A batch committed between reading the
 * events and reading the checkpoint also makes them disagree: re-read before
 * calling a live replica broken.
 */
export function compareReplicaToCheckpoint(
  replica: { lastSeq: number; lastHash: string },
  checkpoint: { seq: number; hash: string } | null,
): CheckpointVerdict {
  if (!checkpoint) {
    return replica.lastSeq === 0 ? { ok: true } : { ok: false, reason: "replica has events but no session checkpoint" };
  }
  if (replica.lastSeq < checkpoint.seq) {
    return { ok: false, reason: `replica ends at seq ${replica.lastSeq} but the session checkpointed seq ${checkpoint.seq} (events deleted)` };
  }
  if (replica.lastSeq > checkpoint.seq) {
    return { ok: false, reason: `replica has events after the session's checkpoint at seq ${checkpoint.seq} (events added)` };
  }
  if (replica.lastHash !== checkpoint.hash) {
    return { ok: false, reason: `replica does not match the session's checkpoint at seq ${checkpoint.seq} (events rewritten)` };
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------
// Retention (docs/decisions/0029-retention.md)
//
// Pruning deletes a chain's oldest events. What remains still verifies from a
// prune anchor, the seq and hash of the last deleted event, instead of from the
// genesis: the first kept event's prevHash must equal the anchor's hash. The D1
// replica's anchors are MACed like checkpoints, so whoever can write D1 cannot
// move an anchor forward to hide deleted events.

export const RETENTION_DAYS = { default: 90, min: 7, max: 3650 } as const;
export const DAY_MS = 24 * 60 * 60_000;

export interface PruneAnchor {
  endpointId: string;
  orgId: string;
  seq: number;
  hash: string;
  /** When the anchor was written (ms). */
  at: number;
  /** The R2 object holding the archived events up to `seq`. */
  archiveKey: string;
}

export function canonicalPruneAnchorPayload(anchor: PruneAnchor): string {
  return JSON.stringify(["caisey.audit-prune-anchor.v1", anchor.endpointId, anchor.orgId, anchor.seq, anchor.hash, anchor.at, anchor.archiveKey]);
}

export async function hmacSha256Hex(key: string, bytes: BufferSource | string): Promise<string> {
  const encoder = new TextEncoder();
  const cryptoKey = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", cryptoKey, typeof bytes === "string" ? encoder.encode(bytes) : bytes);
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function computePruneAnchorMac(key: string, anchor: PruneAnchor): Promise<string> {
  return hmacSha256Hex(key, canonicalPruneAnchorPayload(anchor));
}
