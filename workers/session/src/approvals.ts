import { randomBytes } from "node:crypto";
import {
  APPROVAL_TOKEN_SEPARATOR,
  DEFAULT_APPROVAL_MODE,
  DEFAULT_APPROVAL_PATTERNS,
  DEFAULT_LINK_TTL_HOURS,
  approverSchema,
  parseApprovalToken,
  sessionPolicySchema,
  type SessionPolicy,
} from "../../../protocol/approvals";
import { describeZodError } from "../../../protocol/messages";
import { sha256Hex } from "./hash";

/**
 * Binds one approver's link to exactly this command: if the stored command
 * text, endpoint, requester or approver no longer match, the link is treated
 * as tampered.
 */
export function approvalBindingHash(endpointId: string, commandId: string, text: string, requesterId: string, approverEmail: string): string {
  return sha256Hex(JSON.stringify([endpointId, commandId, text, requesterId, approverEmail.toLowerCase()]));
}

export function newApprovalSecret(endpointId: string): { token: string; secretHash: string } {
  const secret = randomBytes(32).toString("base64url");
  return { token: `${endpointId}${APPROVAL_TOKEN_SEPARATOR}${secret}`, secretHash: sha256Hex(secret) };
}

/** The stored hash for a link's secret, or null for a malformed link or one for another endpoint. */
export function secretHashFromToken(token: string, endpointId: string): string | null {
  const parsed = parseApprovalToken(token);
  if (!parsed || parsed.endpointId !== endpointId) return null;
  return sha256Hex(parsed.secret);
}

/** Thrown when the directory holds a policy that does not validate: nothing may run on a guess. */
export class PolicyUnreadableError extends Error {}

/**
 * The endpoint's approval policy as the tenant directory (D1) has it: the
 * one place it is read, by the session itself, into its own copy. Null when
 * the directory does not know the endpoint; throws when D1 fails or holds a
 * malformed policy. A client without a policy row gets the defaults: the
 * allow-list mode with nothing on the list (everything asks).
 */
export async function readSessionPolicy(db: D1Database, endpointId: string): Promise<SessionPolicy | null> {
  const row = await db
    .prepare(
      `SELECT e.hostname, c.name AS client_name, c.contact_name, c.contact_email, c.time_zone,
              p.mode, p.allowed_commands, p.patterns, p.approvers, p.link_ttl_hours, p.updated_at,
              o.retention_days
       FROM endpoints e JOIN clients c ON c.id = e.client_id JOIN organisations o ON o.id = e.org_id
       LEFT JOIN approval_policies p ON p.client_id = e.client_id AND p.org_id = e.org_id
       WHERE e.id = ?`,
    )
    .bind(endpointId)
    .first<Record<string, string | number | null>>();
  if (!row) return null;
  const contact = approverSchema.safeParse({ name: row.contact_name ?? "", email: row.contact_email ?? "" });
  const hasPolicy = row.patterns !== null;
  const candidate = {
    version: Number(row.updated_at ?? 0),
    mode: hasPolicy ? row.mode : DEFAULT_APPROVAL_MODE,
    allowedCommands: hasPolicy ? parseJson(row.allowed_commands) : [],
    patterns: hasPolicy ? parseJson(row.patterns) : [...DEFAULT_APPROVAL_PATTERNS],
    approvers: hasPolicy ? parseJson(row.approvers) : contact.success ? [contact.data] : [],
    linkTtlHours: hasPolicy ? Number(row.link_ttl_hours) : DEFAULT_LINK_TTL_HOURS,
    hostname: String(row.hostname),
    clientName: String(row.client_name),
    timeZone: String(row.time_zone ?? "UTC"),
    maintenanceWindows: await readMaintenanceWindows(db, endpointId),
    retentionDays: Number(row.retention_days ?? 90),
  };
  const parsed = sessionPolicySchema.safeParse(candidate);
  if (!parsed.success) throw new PolicyUnreadableError(`the stored approval policy is malformed: ${describeZodError(parsed.error)}`);
  // The editor refuses staff as approvers; someone who joined the MSP after the policy was saved is dropped here.
  const staff = await db
    .prepare("SELECT lower(m.email) AS email FROM members m JOIN endpoints e ON e.org_id = m.org_id WHERE e.id = ?")
    .bind(endpointId)
    .all<{ email: string }>();
  const staffEmails = new Set(staff.results.map((row) => row.email));
  return { ...parsed.data, approvers: parsed.data.approvers.filter((a) => !staffEmails.has(a.email.toLowerCase())) };
}

function parseJson(text: unknown): unknown {
  try {
    return JSON.parse(String(text));
  } catch {
    return null;
  }
}

/** The recurring windows of the endpoint's client and of its tags (ADR 0026), read with the policy. */
async function readMaintenanceWindows(db: D1Database, endpointId: string): Promise<unknown[]> {
  const rows = await db
    .prepare(
      `SELECT w.id, w.days, w.start_minute, w.duration_minutes
       FROM maintenance_windows w JOIN endpoints e ON e.id = ? AND w.org_id = e.org_id
       WHERE w.client_id = e.client_id OR w.tag_id IN (SELECT tag_id FROM endpoint_tags WHERE endpoint_id = e.id)
       ORDER BY w.id`,
    )
    .bind(endpointId)
    .all<{ id: string; days: string; start_minute: number; duration_minutes: number }>();
  return rows.results.map((row) => ({ id: row.id, days: parseJson(row.days), startMinute: row.start_minute, durationMinutes: row.duration_minutes }));
}
