// Per-client approval policy: which commands need the client's consent, who is
// asked, and how long an approval link stays valid. A missing row means the
// defaults from protocol/approvals.ts; the session DO applies the same rule when
// it reads its copy (workers/session/src/approvals.ts#readSessionPolicy).
import { and, eq } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { approvalPolicies, clients, members } from "~/db/schema";
import {
  APPROVAL_MODES,
  DEFAULT_APPROVAL_MODE,
  DEFAULT_APPROVAL_PATTERNS,
  DEFAULT_LINK_TTL_HOURS,
  MAX_ALLOWED_COMMANDS,
  MAX_ALLOWED_COMMAND_LENGTH,
  approvalPolicySchema,
  approverSchema,
  formatApprover,
  isValidPattern,
  type ApprovalPolicy,
  type Approver,
} from "@protocol/approvals";
import { describeZodError } from "@protocol/messages";

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

/**
 * The defaults for a client: allow-list mode with nothing listed (every command
 * asks), the built-in patterns ready for an admin who switches to the deny-list,
 * and the client's contact as approver.
 */
export function defaultApprovalPolicy(client: { contactName: string | null; contactEmail: string | null }): ApprovalPolicy {
  // Same rule as the session DO: the contact is an approver only with both a name and an email.
  const contact = approverSchema.safeParse({ name: client.contactName ?? "", email: client.contactEmail ?? "" });
  return {
    mode: DEFAULT_APPROVAL_MODE,
    allowedCommands: [],
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
      mode: approvalPolicies.mode,
      allowedCommands: approvalPolicies.allowedCommands,
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
  if (row.patterns === null || row.approvers === null || row.linkTtlHours === null) {
    return { ...defaultApprovalPolicy(row), isDefault: true, updatedBy: null, updatedAt: null };
  }
  const stored = approvalPolicySchema.safeParse({
    mode: row.mode ?? DEFAULT_APPROVAL_MODE,
    allowedCommands: safeJson(row.allowedCommands ?? "[]"),
    patterns: safeJson(row.patterns),
    approvers: safeJson(row.approvers),
    linkTtlHours: row.linkTtlHours,
  });
  if (!stored.success) {
    // Never expected (every write is validated). The page shows what it can so an
    // admin can fix it; the session refuses to run on it (it fails closed).
    console.error(`approval policy for ${clientId} is malformed: ${describeZodError(stored.error)}`);
    return {
      mode: row.mode === "denylist" ? "denylist" : DEFAULT_APPROVAL_MODE,
      allowedCommands: stringArray(safeJson(row.allowedCommands ?? "[]")),
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
 * invalid or an approver who is one of the MSP's own members, 404 client not in
 * this organisation) before writing anything. `approverLines` (the form's line
 * number of each approver) lets the error name the line the admin typed.
 */
export async function saveApprovalPolicy(
  db: Database,
  orgId: string,
  clientId: string,
  policy: z.input<typeof approvalPolicySchema>,
  updatedBy: string,
  options: { approverLines?: readonly number[] } = {},
): Promise<ClientApprovalPolicy> {
  const parsed = approvalPolicySchema.safeParse(policy);
  if (!parsed.success) throw new ApprovalPolicyError(400, describePolicyError(policy, parsed.error));
  const [client] = await db
    .select({ id: clients.id })
    .from(clients)
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)));
  if (!client) throw new ApprovalPolicyError(404, "No such client in your organisation.");
  await refuseStaffApprovers(db, orgId, parsed.data.approvers, options.approverLines);
  const values = {
    mode: parsed.data.mode,
    allowedCommands: JSON.stringify(parsed.data.allowedCommands),
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

/**
 * Separation of duties: an approver speaks for the client, so nobody who works
 * for the MSP (any member of this organisation, whatever their role) may be one.
 * Compared case-insensitively in JS rather than SQL, whose lower() is ASCII-only.
 */
async function refuseStaffApprovers(db: Database, orgId: string, approvers: readonly Approver[], lines?: readonly number[]): Promise<void> {
  if (approvers.length === 0) return;
  const staffEmails = await staffEmailsOf(db, orgId);
  const index = approvers.findIndex((approver) => staffEmails.has(normaliseEmail(approver.email)));
  if (index < 0) return;
  const where = lines?.[index] !== undefined ? `on line ${lines[index]}` : `${index + 1}`;
  throw new ApprovalPolicyError(
    400,
    `Approver ${where} (${formatApprover(approvers[index]!)}) is a member of your organisation. Approvers must be the client's own people, never staff.`,
  );
}

async function staffEmailsOf(db: Database, orgId: string): Promise<Set<string>> {
  const staff = await db.select({ email: members.email }).from(members).where(eq(members.orgId, orgId));
  return new Set(staff.map((member) => normaliseEmail(member.email)));
}

/** The same separation-of-duties rule for a client's contact, who is its default approver. */
export async function isStaffAddress(db: Database, orgId: string, email: string): Promise<boolean> {
  return (await staffEmailsOf(db, orgId)).has(normaliseEmail(email));
}

function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

// ---------------------------------------------------------------------------
// The edit form: allowed commands, patterns and approvers one per line.

export const policyFormSchema = z.object({
  mode: z.enum(APPROVAL_MODES, { error: "Choose the allow-list or the deny-list mode." }).default(DEFAULT_APPROVAL_MODE),
  allowedCommands: z.string().max(MAX_ALLOWED_COMMANDS * (MAX_ALLOWED_COMMAND_LENGTH + 2)).default(""),
  patterns: z.string().max(20_000).default(""),
  approvers: z.string().max(20_000).default(""),
  linkTtlHours: z.string().max(10).default(""),
});

export type PolicyFormResult =
  /** `approverLines`: the textarea line of each approver, so later checks can name it. */
  | { ok: true; policy: ApprovalPolicy; approverLines: number[] }
  | { ok: false; error: string };

/** Turns the form into a policy, naming the first bad line. Blank lines are ignored. */
export function parsePolicyForm(form: z.input<typeof policyFormSchema>): PolicyFormResult {
  const fields = policyFormSchema.safeParse(form);
  if (!fields.success) return { ok: false, error: describeZodError(fields.error) };
  const { mode } = fields.data;

  const allowedCommands: string[] = [];
  for (const [index, raw] of splitLines(fields.data.allowedCommands).entries()) {
    const line = raw.trim();
    if (!line) continue;
    if (line.length > MAX_ALLOWED_COMMAND_LENGTH) {
      return { ok: false, error: `Allowed command on line ${index + 1} is longer than ${MAX_ALLOWED_COMMAND_LENGTH} characters.` };
    }
    // The session compares exact lines, so a duplicate adds nothing.
    if (!allowedCommands.includes(line)) allowedCommands.push(line);
  }
  if (allowedCommands.length > MAX_ALLOWED_COMMANDS) return { ok: false, error: `At most ${MAX_ALLOWED_COMMANDS} allowed commands.` };

  const patterns: string[] = [];
  for (const [index, raw] of splitLines(fields.data.patterns).entries()) {
    const line = raw.trim();
    if (!line) continue;
    if (line.length > 200) return { ok: false, error: `Pattern on line ${index + 1} is longer than 200 characters.` };
    if (!isValidPattern(line)) return { ok: false, error: `Invalid regular expression on line ${index + 1} of the patterns: ${line}` };
    patterns.push(line);
  }
  if (patterns.length > 50) return { ok: false, error: "At most 50 patterns." };

  const approvers: Approver[] = [];
  const approverLines: number[] = [];
  for (const [index, raw] of splitLines(fields.data.approvers).entries()) {
    const line = raw.trim();
    if (!line) continue;
    const match = line.match(/^(.*?)\s*<([^<>]*)>$/);
    const candidate = match ? { name: match[1]!.trim(), email: match[2]!.trim() } : null;
    const approver = candidate ? approverSchema.safeParse(candidate) : null;
    if (!approver?.success) {
      return { ok: false, error: `Approver on line ${index + 1} must look like "Name <email@example.com>": ${line}` };
    }
    if (approvers.some((a) => normaliseEmail(a.email) === normaliseEmail(approver.data.email))) {
      return { ok: false, error: `Approver on line ${index + 1} repeats ${approver.data.email}.` };
    }
    approvers.push(approver.data);
    approverLines.push(index + 1);
  }
  if (approvers.length > 10) return { ok: false, error: "At most 10 approvers." };

  const ttlText = fields.data.linkTtlHours.trim();
  const linkTtlHours = /^\d+$/.test(ttlText) ? Number(ttlText) : NaN;
  if (!Number.isInteger(linkTtlHours) || linkTtlHours < 1 || linkTtlHours > 24 * 7) {
    return { ok: false, error: `Link lifetime must be a whole number of hours from 1 to ${24 * 7}.` };
  }

  const policy = approvalPolicySchema.safeParse({ mode, allowedCommands, patterns, approvers, linkTtlHours });
  if (!policy.success) return { ok: false, error: describeZodError(policy.error) };
  return { ok: true, policy: policy.data, approverLines };
}

function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

function describePolicyError(policy: z.input<typeof approvalPolicySchema>, error: z.ZodError): string {
  const patterns: unknown[] = Array.isArray(policy?.patterns) ? policy.patterns : [];
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
