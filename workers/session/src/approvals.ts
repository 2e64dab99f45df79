import { randomBytes } from "node:crypto";
import {
  APPROVAL_TOKEN_SEPARATOR,
  DEFAULT_APPROVAL_PATTERNS,
  DEFAULT_LINK_TTL_HOURS,
  formatApprover,
  parseApprovalToken,
  type ApprovalState,
} from "../../../protocol/approvals";
import { sha256Hex } from "./hash";

export type ApprovalRow = {
  command_id: string;
  secret_hash: string;
  binding_hash: string;
  reason: string;
  requested_at: number;
  expires_at: number;
  state: ApprovalState;
  decided_by: string | null;
  decided_at: number | null;
  decided_address: string | null;
};

export interface EndpointPolicy {
  patterns: string[];
  approvers: { name: string; email: string }[];
  linkTtlHours: number;
  hostname: string;
  clientName: string;
}

/**
 * Binds an approval to exactly this command: if the stored command text,
 * endpoint or requester no longer match, the link is treated as tampered.
 */
export function approvalBindingHash(endpointId: string, commandId: string, text: string, requesterId: string): string {
  return sha256Hex(JSON.stringify([endpointId, commandId, text, requesterId]));
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

/**
 * The endpoint's approval policy from D1. If D1 cannot answer, the defaults
 * apply: privileged commands still need approval (fail safe, not open).
 */
export async function loadEndpointPolicy(db: D1Database, endpointId: string): Promise<EndpointPolicy> {
  const fallback: EndpointPolicy = {
    patterns: [...DEFAULT_APPROVAL_PATTERNS],
    approvers: [],
    linkTtlHours: DEFAULT_LINK_TTL_HOURS,
    hostname: endpointId,
    clientName: "",
  };
  try {
    const row = await db
      .prepare(
        `SELECT e.hostname, c.name AS client_name, c.contact_name, c.contact_email,
                p.patterns, p.approvers, p.link_ttl_hours
         FROM endpoints e JOIN clients c ON c.id = e.client_id
         LEFT JOIN approval_policies p ON p.client_id = e.client_id
         WHERE e.id = ?`,
      )
      .bind(endpointId)
      .first<Record<string, string | number | null>>();
    if (!row) return fallback;
    const contact = row.contact_name && row.contact_email ? [{ name: String(row.contact_name), email: String(row.contact_email) }] : [];
    return {
      patterns: row.patterns ? (JSON.parse(String(row.patterns)) as string[]) : [...DEFAULT_APPROVAL_PATTERNS],
      approvers: row.approvers ? (JSON.parse(String(row.approvers)) as EndpointPolicy["approvers"]) : contact,
      linkTtlHours: Number(row.link_ttl_hours ?? DEFAULT_LINK_TTL_HOURS),
      hostname: String(row.hostname),
      clientName: String(row.client_name),
    };
  } catch (error) {
    console.error("approval policy lookup failed; using defaults", error);
    return fallback;
  }
}

/** Where approval requests go. Production would email; locally they are logged. */
export interface ApprovalNotifier {
  requestApproval(request: { approvers: EndpointPolicy["approvers"]; url: string; command: string; requestedBy: string; hostname: string; clientName: string; expiresAt: number }): Promise<void>;
}

/**
 * Logs who would be emailed, never the link itself: logs are read by more
 * people than the approver, and the link is the approver's only credential.
 * The requesting technician sees the link in the console to pass on.
 */
export const loggingNotifier: ApprovalNotifier = {
  async requestApproval(request) {
    const to = request.approvers.map(formatApprover).join(", ") || "(no approver contacts configured)";
    console.log(
      `[approval] to ${to}: ${request.requestedBy} asks to run \`${request.command}\` on ${request.hostname} (${request.clientName}); ` +
        `link ${redactedApprovalUrl(request.url)} (expires ${new Date(request.expiresAt).toISOString()})`,
    );
  },
};

export function redactedApprovalUrl(url: string): string {
  const separator = url.lastIndexOf(APPROVAL_TOKEN_SEPARATOR);
  return separator < 0 ? "(link withheld)" : `${url.slice(0, separator + 1)}…`;
}
