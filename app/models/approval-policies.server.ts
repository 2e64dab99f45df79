// Per-client approval policy: which commands need the client's consent, who is
// asked, and how long an approval link stays valid. A missing row means the
// defaults from protocol/approvals.ts (the session DO applies the same rule in
// workers/session/src/approvals.ts#loadEndpointPolicy).
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "~/db/client.server";
import { approvalPolicies, clients } from "~/db/schema";
import {
  DEFAULT_APPROVAL_PATTERNS,
  DEFAULT_LINK_TTL_HOURS,
  approvalPolicySchema,
  approverSchema,
  isValidPattern,
  type ApprovalPolicy,
  type Approver,
} from "../../protocol/approvals";
import { describeZodError } from "../../protocol/messages";

export type ClientApprovalPolicy = ApprovalPolicy & {
  /** True when the client has no policy row and the defaults apply. */
  isDefault: boolean;
  updatedBy: string | null;
  updatedAt: number | null;
};

/** Thrown for an invalid policy or a client outside the organisation; nothing is saved. */
export class ApprovalPolicyError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
    this.name = "ApprovalPolicyError";
  }
}

/** The defaults for a client: built-in patterns, the client's contact as approver. */
export function defaultApprovalPolicy(client: { contactName: string | null; contactEmail: string | null }): ApprovalPolicy {
  // Same rule as the session DO: the contact is an approver only with both a name and an email.
  const contact = approverSchema.safeParse({ name: client.contactName ?? "", email: client.contactEmail ?? "" });
  return {
    patterns: [...DEFAULT_APPROVAL_PATTERNS],
    approvers: contact.success ? [contact.data] : [],
    linkTtlHours: DEFAULT_LINK_TTL_HOURS,
  };
}

/**
 * The client's policy, or null when the client does not belong to `orgId`
 * (callers answer 404 so other tenants' ids are not disclosed).
 */
export async function getApprovalPolicy(db: Database, orgId: string, clientId: string): Promise<ClientApprovalPolicy | null> {
  const [row] = await db
    .select({
      contactName: clients.contactName,
      contactEmail: clients.contactEmail,
      patterns: approvalPolicies.patterns,
      approvers: approvalPolicies.approvers,
      linkTtlHours: approvalPolicies.linkTtlHours,
      updatedBy: approvalPolicies.updatedBy,
      updatedAt: approvalPolicies.updatedAt,
    })
    .from(clients)
    .leftJoin(approvalPolicies, and(eq(approvalPolicies.clientId, clients.id), eq(approvalPolicies.orgId, clients.orgId)))
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)));
  if (!row) return null;
  const fallback = defaultApprovalPolicy(row);
  if (row.patterns === null || row.approvers === null || row.linkTtlHours === null) {
    return { ...fallback, isDefault: true, updatedBy: null, updatedAt: null };
  }
  const stored = approvalPolicySchema.safeParse({
    patterns: safeJson(row.patterns),
    approvers: safeJson(row.approvers),
    linkTtlHours: row.linkTtlHours,
  });
  if (!stored.success) {
    // Never expected (every write is validated); show the stored row as best we can rather than fail the page.
    console.error(`approval policy for ${clientId} is malformed: ${describeZodError(stored.error)}`);
    return {
      patterns: stringArray(safeJson(row.patterns)),
      approvers: [],
      linkTtlHours: row.linkTtlHours,
      isDefault: false,
      updatedBy: row.updatedBy,
      updatedAt: row.updatedAt,
    };
  }
  return { ...stored.data, isDefault: false, updatedBy: row.updatedBy, updatedAt: row.updatedAt };
}

/**
 * Validates and upserts the client's policy. Throws ApprovalPolicyError (400
 * invalid, 404 client not in this organisation) before writing anything.
 */
export async function saveApprovalPolicy(
  db: Database,
  orgId: string,
  clientId: string,
  policy: ApprovalPolicy,
  updatedBy: string,
): Promise<ClientApprovalPolicy> {
  const parsed = approvalPolicySchema.safeParse(policy);
  if (!parsed.success) throw new ApprovalPolicyError(400, describePolicyError(policy, parsed.error));
  const [client] = await db
    .select({ id: clients.id })
    .from(clients)
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)));
  if (!client) throw new ApprovalPolicyError(404, "No such client in your organisation.");
  const values = {
    patterns: JSON.stringify(parsed.data.patterns),
    approvers: JSON.stringify(parsed.data.approvers),
    linkTtlHours: parsed.data.linkTtlHours,
    updatedBy,
    updatedAt: Date.now(),
  };
  await db
    .insert(approvalPolicies)
    .values({ clientId, orgId, ...values })
    .onConflictDoUpdate({ target: approvalPolicies.clientId, set: values, setWhere: eq(approvalPolicies.orgId, orgId) });
  const saved = await getApprovalPolicy(db, orgId, clientId);
  if (!saved || saved.isDefault) throw new ApprovalPolicyError(404, "No such client in your organisation.");
  return saved;
}

// ---------------------------------------------------------------------------
// The edit form: patterns and approvers one per line.

export const policyFormSchema = z.object({
  patterns: z.string().max(20_000).default(""),
  approvers: z.string().max(20_000).default(""),
  linkTtlHours: z.string().max(10).default(""),
});

export type PolicyFormResult = { ok: true; policy: ApprovalPolicy } | { ok: false; error: string };

/** Turns the textarea contents into a policy, naming the first bad line. Blank lines are ignored. */
export function parsePolicyForm(form: z.infer<typeof policyFormSchema>): PolicyFormResult {
  const patterns: string[] = [];
  const patternLines = splitLines(form.patterns);
  for (const [index, raw] of patternLines.entries()) {
    const line = raw.trim();
    if (!line) continue;
    if (line.length > 200) return { ok: false, error: `Pattern on line ${index + 1} is longer than 200 characters.` };
    if (!isValidPattern(line)) return { ok: false, error: `Invalid regular expression on line ${index + 1} of the patterns: ${line}` };
    patterns.push(line);
  }
  if (patterns.length > 50) return { ok: false, error: "At most 50 patterns." };

  const approvers: Approver[] = [];
  for (const [index, raw] of splitLines(form.approvers).entries()) {
    const line = raw.trim();
    if (!line) continue;
    const match = line.match(/^(.*?)\s*<([^<>]*)>$/);
    const candidate = match ? { name: match[1]!.trim(), email: match[2]!.trim() } : null;
    const approver = candidate ? approverSchema.safeParse(candidate) : null;
    if (!approver?.success) {
      return { ok: false, error: `Approver on line ${index + 1} must look like "Name <email@example.com>": ${line}` };
    }
    approvers.push(approver.data);
  }
  if (approvers.length > 10) return { ok: false, error: "At most 10 approvers." };

  const ttlText = form.linkTtlHours.trim();
  const linkTtlHours = /^\d+$/.test(ttlText) ? Number(ttlText) : NaN;
  if (!Number.isInteger(linkTtlHours) || linkTtlHours < 1 || linkTtlHours > 24 * 7) {
    return { ok: false, error: `Link lifetime must be a whole number of hours from 1 to ${24 * 7}.` };
  }

  const policy = approvalPolicySchema.safeParse({ patterns, approvers, linkTtlHours });
  if (!policy.success) return { ok: false, error: describeZodError(policy.error) };
  return { ok: true, policy: policy.data };
}

/** How a policy is shown in the edit form. */
function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

function describePolicyError(policy: ApprovalPolicy, error: z.ZodError): string {
  const patterns = Array.isArray(policy?.patterns) ? policy.patterns : [];
  const bad = patterns.findIndex((p) => typeof p !== "string" || !isValidPattern(p));
  if (bad >= 0) return `Invalid regular expression in pattern ${bad + 1}: ${String(patterns[bad])}`;
  return describeZodError(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}
