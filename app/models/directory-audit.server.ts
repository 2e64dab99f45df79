// The audit trail of directory changes admins make (clients created, edited,
// archived or restored; endpoint names and tags). Endpoint events live in each
// endpoint's session chain (protocol/audit.ts), but these changes have no
// session to record them: a client may have no endpoint yet, and a tag edit
// needs nothing from the session. So the tenant has one more chain, in D1,
// built the same way (SHA-256 over every field and the previous hash).
//
// Atomicity: the audit row is the last statement of the same D1 batch (one
// transaction) as the change, and is inserted only if the statement before it
// changed a row, so there is never a change without its record nor a record of
// a change that did not happen. (org_id, seq) is the primary key: a writer that
// lost a race for the next seq fails the whole batch and retries from the new head.
import { and, asc, desc, eq } from "drizzle-orm";
import type { Database } from "~/db/client.server";
import { directoryAudit, type Role } from "~/db/schema";
import type { SignedInMember } from "~/lib/auth.server";
import { callerAddress } from "~/lib/request.server";
import { GENESIS_HASH } from "@protocol/audit";

export const DIRECTORY_AUDIT_KINDS = [
  "client.created",
  "client.updated",
  "client.archived",
  "client.restored",
  "endpoint.details_updated",
] as const;
export type DirectoryAuditKind = (typeof DIRECTORY_AUDIT_KINDS)[number];

/** The signed-in admin acting, as the route resolved them (role and tenant are checked again by each model). */
export interface DirectoryActor {
  userId: string;
  name: string;
  role: Role;
  orgId: string;
  address: string | null;
}

export function directoryActorOf(member: SignedInMember, request: Request): DirectoryActor {
  return { userId: member.userId, name: member.name, role: member.role, orgId: member.org.id, address: callerAddress(request) };
}

/** For routes: 403 and 404 are thrown as responses (nothing about the id is disclosed); 400 and 409 are the form's to show. */
export function directoryErrorResponse(error: unknown): { status: 400 | 409; message: string } {
  if (!(error instanceof DirectoryError)) throw error;
  if (error.status === 403 || error.status === 404) {
    throw new Response(error.message, { status: error.status, statusText: error.status === 403 ? "Forbidden" : "Not Found" });
  }
  return { status: error.status, message: error.message };
}

/** Refused before anything changes: 403 role, 404 not in this tenant, 400 invalid, 409 conflicting state. */
export class DirectoryError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403 | 404 | 409,
  ) {
    super(message);
    this.name = "DirectoryError";
  }
}

export interface DirectoryAuditEntry {
  kind: DirectoryAuditKind;
  subjectType: "client" | "endpoint";
  subjectId: string;
  detail: Record<string, unknown>;
}

type Row = typeof directoryAudit.$inferSelect;

function canonical(row: Omit<Row, "hash">): string {
  return JSON.stringify([
    row.orgId,
    row.seq,
    row.at,
    row.kind,
    row.actorId,
    row.actorName,
    row.actorAddress,
    row.subjectType,
    row.subjectId,
    row.detail,
    row.prevHash,
  ]);
}

/** The chain hash of a directory_audit row (scripts/audit-verify.mjs computes the same with node:crypto). */
export async function hashOf(row: Omit<Row, "hash">): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical(row)));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const MAX_ATTEMPTS = 5;

/**
 * Runs `change` (its statements in order; the LAST one decides whether anything
 * changed) and appends the audit entry in the same batch. `applied` is false
 * when the last statement matched no row (nothing recorded); `results` are the
 * change statements' own results.
 */
export async function changeWithAudit(
  db: Database,
  actor: DirectoryActor,
  entry: DirectoryAuditEntry,
  change: (d1: D1Database) => D1PreparedStatement[],
  now = Date.now(),
): Promise<{ applied: boolean; results: D1Result[] }> {
  const d1 = db.$client;
  for (let attempt = 1; ; attempt++) {
    const [head] = await db
      .select({ seq: directoryAudit.seq, hash: directoryAudit.hash })
      .from(directoryAudit)
      .where(eq(directoryAudit.orgId, actor.orgId))
      .orderBy(desc(directoryAudit.seq))
      .limit(1);
    const unhashed = {
      orgId: actor.orgId,
      seq: (head?.seq ?? 0) + 1,
      at: now,
      kind: entry.kind,
      actorId: actor.userId,
      actorName: actor.name,
      actorAddress: actor.address,
      subjectType: entry.subjectType,
      subjectId: entry.subjectId,
      detail: JSON.stringify(entry.detail),
      prevHash: head?.hash ?? GENESIS_HASH,
    };
    const hash = await hashOf(unhashed);
    const statements = change(d1);
    try {
      const results = await d1.batch([
        ...statements,
        d1
          .prepare(
            `INSERT INTO directory_audit (org_id, seq, at, kind, actor_id, actor_name, actor_address, subject_type, subject_id, detail, prev_hash, hash)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() > 0`,
          )
          .bind(
            unhashed.orgId,
            unhashed.seq,
            unhashed.at,
            unhashed.kind,
            unhashed.actorId,
            unhashed.actorName,
            unhashed.actorAddress,
            unhashed.subjectType,
            unhashed.subjectId,
            unhashed.detail,
            unhashed.prevHash,
            hash,
          ),
      ]);
      const audit = results.pop()!;
      return { applied: audit.meta.changes > 0, results };
    } catch (error) {
      // Another admin's change took this seq first; the batch rolled back as a whole.
      const lostRace = String(error).includes("directory_audit.org_id, directory_audit.seq");
      if (!lostRace || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}

export interface DirectoryAuditEvent {
  seq: number;
  at: number;
  kind: string;
  actorName: string;
  subjectType: string;
  subjectId: string;
  detail: Record<string, unknown>;
}

/** Newest first: what admins changed about one client or endpoint. */
export async function listDirectoryAudit(
  db: Database,
  orgId: string,
  subject: { type: "client" | "endpoint"; id: string },
  limit = 20,
): Promise<DirectoryAuditEvent[]> {
  const rows = await db
    .select()
    .from(directoryAudit)
    .where(and(eq(directoryAudit.orgId, orgId), eq(directoryAudit.subjectType, subject.type), eq(directoryAudit.subjectId, subject.id)))
    .orderBy(desc(directoryAudit.seq))
    .limit(limit);
  return rows.map((row) => ({
    seq: row.seq,
    at: row.at,
    kind: row.kind,
    actorName: row.actorName,
    subjectType: row.subjectType,
    subjectId: row.subjectId,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  }));
}

export type DirectoryChainVerdict = { ok: true; checked: number } | { ok: false; seq: number; reason: string };

/** Recomputes the tenant's directory chain from genesis: any edited, removed or reordered row breaks it. */
export async function verifyDirectoryAudit(db: Database, orgId: string): Promise<DirectoryChainVerdict> {
  const rows = await db.select().from(directoryAudit).where(eq(directoryAudit.orgId, orgId)).orderBy(asc(directoryAudit.seq));
  let prevHash = GENESIS_HASH;
  for (const [index, row] of rows.entries()) {
    if (row.seq !== index + 1) return { ok: false, seq: row.seq, reason: `expected seq ${index + 1}` };
    if (row.prevHash !== prevHash) return { ok: false, seq: row.seq, reason: "previous hash does not match" };
    const { hash, ...unhashed } = row;
    if ((await hashOf(unhashed)) !== hash) return { ok: false, seq: row.seq, reason: "hash does not match the row" };
    prevHash = hash;
  }
  return { ok: true, checked: rows.length };
}
