// Client approval of privileged commands: the policy shape, the approval link
// format, and the bodies exchanged between the public approval page and the
// endpoint's session Durable Object.
import { z } from "zod";

/** Used when a client has no policy of its own. */
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

export const approverSchema = z.object({ name: z.string().trim().min(1).max(100), email: z.email().max(200) });
export type Approver = z.infer<typeof approverSchema>;

/** "Name <email>", as approvers are typed into a policy and addressed in mail. */
export function formatApprover(approver: Approver): string {
  return `${approver.name} <${approver.email}>`;
}

export const approvalPolicySchema = z.object({
  patterns: z
    .array(z.string().trim().min(1).max(200))
    .max(50)
    .refine((patterns) => patterns.every(isValidPattern), "every pattern must be a valid regular expression"),
  approvers: z.array(approverSchema).max(10),
  linkTtlHours: z.number().int().min(1).max(24 * 7),
});
export type ApprovalPolicy = z.infer<typeof approvalPolicySchema>;

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

// ---------------------------------------------------------------------------
// Links: /approve/<endpointId>~<secret>. The endpoint id routes the request to
// the right Durable Object; only the secret's SHA-256 is stored there.

export const APPROVAL_TOKEN_SEPARATOR = "~";

export function parseApprovalToken(token: string): { endpointId: string; secret: string } | null {
  const index = token.lastIndexOf(APPROVAL_TOKEN_SEPARATOR);
  if (index <= 0) return null;
  const endpointId = token.slice(0, index);
  const secret = token.slice(index + 1);
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(endpointId) || !/^[A-Za-z0-9_-]{32,128}$/.test(secret)) return null;
  return { endpointId, secret };
}

export const approvalStateSchema = z.enum(["pending", "approved", "denied", "expired"]);
export type ApprovalState = z.infer<typeof approvalStateSchema>;

/** What the public page shows; the DO answers it only for a valid link. */
export const approvalViewSchema = z.object({
  commandId: z.string(),
  text: z.string(),
  shell: z.string(),
  reason: z.string(),
  requestedBy: z.string(),
  requestedAt: z.number(),
  expiresAt: z.number(),
  state: approvalStateSchema,
  decidedBy: z.string().nullable(),
  decidedAt: z.number().nullable(),
  endpointId: z.string(),
  hostname: z.string(),
  clientName: z.string(),
});
export type ApprovalView = z.infer<typeof approvalViewSchema>;

export const approvalDecisionSchema = z.object({
  token: z.string().min(1).max(300),
  decision: z.enum(["approve", "deny"]),
  approverName: z.string().trim().min(1, "Enter your name").max(100),
});
export type ApprovalDecision = z.infer<typeof approvalDecisionSchema>;

export const approvalLookupSchema = z.object({ token: z.string().min(1).max(300) });
