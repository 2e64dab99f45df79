// Client approval of privileged commands: the policy shape (and the copy of it
// each endpoint's session keeps), the approval link format, and the bodies
// exchanged between the public approval page and the session Durable Object.
import * as z from "zod";

export { isValidTimeZone } from "./time";
import { maintenanceWindowSchema } from "./maintenance-windows";

/** Deny-list patterns offered to clients that choose the advisory mode. */
export const DEFAULT_APPROVAL_PATTERNS = [
  "\\bRestart-Computer\\b",
  "\\bStop-Computer\\b",
  "\\bnet\\s+user\\b",
  "\\bnet\\s+localgroup\\b",
  "\\breg\\s+(add|delete)\\b",
  "\\bshutdown\\b",
  "\\breboot\\b",
  "\\bsudo\\b",
] as const;
export const DEFAULT_LINK_TTL_HOURS = 24;

/**
 * "allowlist": only the listed command lines run without the client's consent;
 * everything else asks. "denylist": only commands matching a pattern ask. A
 * deny-list is advisory (`su''do` or `$(printf sud)o` evade any pattern), so
 * the allow-list is the default.
 */
export const APPROVAL_MODES = ["allowlist", "denylist"] as const;
export type ApprovalMode = (typeof APPROVAL_MODES)[number];
export const DEFAULT_APPROVAL_MODE: ApprovalMode = "allowlist";

export const MAX_ALLOWED_COMMANDS = 200;
export const MAX_ALLOWED_COMMAND_LENGTH = 500;

export const approverSchema = z.object({ name: z.string().trim().min(1).max(100), email: z.email().max(200) });
export type Approver = z.infer<typeof approverSchema>;

/** "Name <email>", as approvers are typed into a policy and addressed in mail. */
export function formatApprover(approver: Approver): string {
  return `${approver.name} <${approver.email}>`;
}

/** "p•••@acme.test": enough for the requester to see where a request went, not a contact list. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at <= 0) return "•••";
  return `${email.slice(0, 1)}•••${email.slice(at)}`;
}

export const approvalPolicySchema = z.object({
  mode: z.enum(APPROVAL_MODES).default(DEFAULT_APPROVAL_MODE),
  allowedCommands: z.array(z.string().trim().min(1).max(MAX_ALLOWED_COMMAND_LENGTH)).max(MAX_ALLOWED_COMMANDS).default([]),
  patterns: z
    .array(z.string().trim().min(1).max(200))
    .max(50)
    .refine((patterns) => patterns.every(isValidPattern), "every pattern must be a valid regular expression"),
  approvers: z.array(approverSchema).max(10),
  linkTtlHours: z.number().int().min(1).max(24 * 7),
});
export type ApprovalPolicy = z.output<typeof approvalPolicySchema>;

/**
 * What an endpoint's session keeps of its client's policy, so no command waits
 * on the central database. The console pushes it when an admin saves a policy;
 * a copy with a lower `version` never replaces a newer one.
 */
export const sessionPolicySchema = approvalPolicySchema.extend({
  /** When the policy was last changed (ms); 0 for a client still on the defaults. */
  version: z.number().int().nonnegative(),
  clientName: z.string().max(200),
  hostname: z.string().max(255),
  /** IANA time zone of the client, for the approval page and email, and the zone its maintenance windows are in. */
  timeZone: z.string().min(1).max(64),
  /** The client's and the endpoint's tags' recurring maintenance windows (ADR 0026). */
  maintenanceWindows: z.array(maintenanceWindowSchema).max(50).default([]),
  /** The tenant's retention (docs/decisions/0029-retention.md); a copy saved before it existed means the default. */
  retentionDays: z.number().int().min(7).max(3650).default(90),
});
export type SessionPolicy = z.output<typeof sessionPolicySchema>;

export function isValidPattern(pattern: string): boolean {
  try {
    new RegExp(pattern, "i");
    return true;
  } catch {
    return false;
  }
}

/** The pattern that makes `text` need approval, or null. */
export function matchingPattern(text: string, patterns: readonly string[]): string | null {
  for (const pattern of patterns) {
    if (isValidPattern(pattern) && new RegExp(pattern, "i").test(text)) return pattern;
  }
  return null;
}

/** Why a command needs the client's consent, or null when it may run without. */
export function approvalRule(policy: Pick<ApprovalPolicy, "mode" | "allowedCommands" | "patterns">, text: string): string | null {
  if (policy.mode === "allowlist") {
    // Exact lines only: any rewriting here would be a way around the list.
    return policy.allowedCommands.includes(text.trim()) ? null : "not on the client's allow-list";
  }
  const pattern = matchingPattern(text, policy.patterns);
  return pattern === null ? null : `matches /${pattern}/`;
}

// ---------------------------------------------------------------------------
// Links: /approve/<endpointId>~<secret>. The endpoint id routes the request to
// the right Durable Object; only the secret's SHA-256 is stored there, on the
// one approver the link was minted for.

export const APPROVAL_TOKEN_SEPARATOR = "~";

export function parseApprovalToken(token: string): { endpointId: string; secret: string } | null {
  const index = token.lastIndexOf(APPROVAL_TOKEN_SEPARATOR);
  if (index <= 0) return null;
  const endpointId = token.slice(0, index);
  const secret = token.slice(index + 1);
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(endpointId) || !/^[A-Za-z0-9_-]{32,128}$/.test(secret)) return null;
  return { endpointId, secret };
}

/** "withdrawn": the technician cancelled the request before anyone decided. */
export const approvalStateSchema = z.enum(["pending", "approved", "denied", "expired", "withdrawn"]);
export type ApprovalState = z.infer<typeof approvalStateSchema>;

/** What the public page shows; the DO answers it only for a valid link. */
export const approvalViewSchema = z.object({
  commandId: z.string(),
  /** The technician's plain-language reason; always present on a request. */
  reason: z.string(),
  text: z.string(),
  shell: z.string(),
  /** Set when the command is a step of a sequence. */
  sequence: z.object({ name: z.string(), step: z.number().int().nonnegative(), steps: z.number().int().positive() }).nullable(),
  requestedBy: z.string(),
  requestedAt: z.number(),
  expiresAt: z.number(),
  state: approvalStateSchema,
  decidedBy: z.string().nullable(),
  decidedAt: z.number().nullable(),
  /** The approver this link was issued to: the page acts for them, never for a typed name. */
  approver: approverSchema,
  endpointId: z.string(),
  hostname: z.string(),
  clientName: z.string(),
  timeZone: z.string(),
});
export type ApprovalView = z.infer<typeof approvalViewSchema>;

export const approvalDecisionSchema = z.object({
  token: z.string().min(1).max(300),
  decision: z.enum(["approve", "deny"]),
});
export type ApprovalDecision = z.infer<typeof approvalDecisionSchema>;

export const approvalLookupSchema = z.object({ token: z.string().min(1).max(300) });

// ---------------------------------------------------------------------------
// Delivery: each approver gets their own link by email. A failed send is
// retried with a freshly minted secret (the session never stores a link).

export const approvalEmailSchema = z.object({
  to: approverSchema,
  subject: z.string().min(1).max(300),
  text: z.string().min(1),
  html: z.string().min(1),
});
export type ApprovalEmail = z.infer<typeof approvalEmailSchema>;
