// The public approval page's calls to the endpoint's session Durable Object.
// The link (/approve/<endpointId>~<secret>) is the approver's only credential:
// the DO checks the secret; we only route by the endpoint id, and a malformed
// token or one naming an unknown endpoint never reaches a DO. The link is bound
// to one approver, so no name is ever typed here: the DO records the approver
// it minted the link for.
import * as z from "zod";
import type { Env } from "~/lib/env.server";
import { describeWait, takeRateLimits } from "~/lib/rate-limit.server";
import { callSession, type SessionAddress, type SessionCallResult } from "~/models/session-call.server";
import { sessionAddress, type SessionPlacementColumns } from "~/models/session-placement.server";
import {
  approvalViewSchema,
  parseApprovalToken,
  type ApprovalDecision,
  type ApprovalView,
} from "@protocol/approvals";
import { RATE_LIMIT_KEYS, SESSION_PATHS, type PeerIdentity, type RateLimitPolicy } from "@protocol/session-contract";

export const INVALID_LINK_MESSAGE = "This approval link is not valid.";
export const WITHDRAWN_MESSAGE = "The technician withdrew this request before it was decided, so nothing was changed and it will not run.";

export type ViewApprovalResult =
  /** `mspName`: the MSP whose technician asks, from the directory ("" if unknown). */
  | { ok: true; view: ApprovalView; mspName: string }
  | { ok: false; reason: "invalid"; error: string }
  | { ok: false; reason: "unavailable"; error: string }
  | RateLimited;

export type DecideApprovalResult =
  /** Decided by this call. */
  | { ok: true; view: ApprovalView }
  /** Already decided (single use), withdrawn by the technician, or expired: the DO says what happened. */
  | { ok: false; reason: "used" | "withdrawn" | "expired"; error: string; view: ApprovalView }
  | { ok: false; reason: "invalid"; error: string }
  | { ok: false; reason: "bad_request"; error: string }
  | { ok: false; reason: "unavailable"; error: string }
  | RateLimited;

/** Too many requests from this address: nothing was looked up or changed. */
export type RateLimited = { ok: false; reason: "rate_limited"; error: string; retryAfterSeconds: number };

const errorBodySchema = z.object({ error: z.string() });
const errorWithViewSchema = z.object({ error: z.string(), view: approvalViewSchema });
const decidedBodySchema = z.object({ view: approvalViewSchema });

export async function viewApproval(env: Env, token: string, address: string | null): Promise<ViewApprovalResult> {
  const limited = await rateLimit(env, "approval_view", address);
  if (limited) return limited;
  const link = await routeLink(env, token);
  if ("ok" in link) return link;
  const response = await callAsApprover(env, link.session, SESSION_PATHS.approvalView, { token }, address);
  if (!response.answered) return unavailableBecause("view", response.reason);
  const body = response.body;
  if (response.status === 200) {
    const view = approvalViewSchema.safeParse(body);
    if (view.success && view.data.endpointId === link.endpointId) return { ok: true, view: view.data, mspName: link.mspName };
    console.error("approval view: unexpected response from the session", response.status);
    return unavailable();
  }
  if (response.status === 404 || response.status === 400) {
    return { ok: false, reason: "invalid", error: errorBodySchema.safeParse(body).data?.error ?? INVALID_LINK_MESSAGE };
  }
  console.error("approval view: session answered", response.status);
  return unavailable();
}

export async function decideApproval(
  env: Env,
  token: string,
  decision: ApprovalDecision["decision"],
  address: string | null,
): Promise<DecideApprovalResult> {
  const limited = await rateLimit(env, "approval_decide", address);
  if (limited) return limited;
  const link = await routeLink(env, token);
  if ("ok" in link) return link;
  const body: ApprovalDecision = { token, decision };
  const response = await callAsApprover(env, link.session, SESSION_PATHS.approvalDecide, body, address);
  if (!response.answered) return unavailableBecause("decide", response.reason);
  const answer = response.body;
  switch (response.status) {
    case 200: {
      const decided = decidedBodySchema.safeParse(answer);
      if (decided.success && decided.data.view.endpointId === link.endpointId) return { ok: true, view: decided.data.view };
      break;
    }
    case 409:
    case 410: {
      const failed = errorWithViewSchema.safeParse(answer);
      if (failed.success && failed.data.view.endpointId === link.endpointId) {
        const { view } = failed.data;
        if (response.status === 410) return { ok: false, reason: "expired", error: failed.data.error, view };
        // The DO's wording is for logs; the approver gets a sentence about their request.
        return view.state === "withdrawn"
          ? { ok: false, reason: "withdrawn", error: WITHDRAWN_MESSAGE, view }
          : { ok: false, reason: "used", error: failed.data.error, view };
      }
      break;
    }
    case 404:
      return { ok: false, reason: "invalid", error: errorBodySchema.safeParse(answer).data?.error ?? INVALID_LINK_MESSAGE };
    case 400:
      return { ok: false, reason: "bad_request", error: errorBodySchema.safeParse(answer).data?.error ?? "The decision was not valid." };
  }
  console.error("approval decide: unexpected response from the session", response.status);
  return unavailable();
}

/**
 * Counts this request against the caller's address before any D1 read or
 * session call. Fails closed for views as well as decisions: see
 * docs/decisions/0011-edge-rate-limits.md.
 */
async function rateLimit(
  env: Env,
  policy: Extract<RateLimitPolicy, "approval_view" | "approval_decide">,
  address: string | null,
): Promise<RateLimited | ReturnType<typeof unavailable> | null> {
  const outcome = await takeRateLimits(env, [{ key: RATE_LIMIT_KEYS.approvalAddress(address), policy }]);
  if (outcome.ok) return null;
  if (outcome.reason === "unavailable") return unavailable();
  const wait = describeWait(outcome.retryAfterSeconds);
  const error =
    policy === "approval_decide"
      ? `Too many attempts from your network in a short time, so nothing was changed. Please wait ${wait}, then try again.`
      : `This page was opened too many times from your network in a short time. Please wait ${wait}, then reload the page.`;
  return { ok: false, reason: "rate_limited", error, retryAfterSeconds: outcome.retryAfterSeconds };
}

type Unroutable = { ok: false; reason: "invalid" | "unavailable"; error: string };

/**
 * The endpoint a link routes to. A malformed link, or one naming an endpoint
 * that was never enrolled, stops here, so public requests cannot create
 * Durable Objects for made-up ids.
 */
async function routeLink(env: Env, token: string): Promise<{ endpointId: string; mspName: string; session: SessionAddress } | Unroutable> {
  const parsed = parseApprovalToken(token);
  if (!parsed) return { ok: false, reason: "invalid", error: INVALID_LINK_MESSAGE };
  try {
    const known = await env.DB.prepare(
      "SELECT o.name AS msp_name, e.jurisdiction, e.location_hint, e.placed_at FROM endpoints e JOIN organisations o ON o.id = e.org_id WHERE e.id = ?",
    )
      .bind(parsed.endpointId)
      .first<{ msp_name: string; jurisdiction: SessionPlacementColumns["jurisdiction"]; location_hint: SessionPlacementColumns["locationHint"]; placed_at: number | null }>();
    // An unplaced session cannot hold an approval request, and the page must not create it where the approver is.
    return known && known.placed_at !== null
      ? {
          endpointId: parsed.endpointId,
          mspName: known.msp_name,
          session: sessionAddress({ id: parsed.endpointId, jurisdiction: known.jurisdiction, locationHint: known.location_hint, placedAt: known.placed_at }),
        }
      : { ok: false, reason: "invalid", error: INVALID_LINK_MESSAGE };
  } catch (error) {
    console.error("approval link: endpoint lookup failed", error);
    return unavailable();
  }
}

/** Nobody signed in: the link alone identifies the approver, inside the DO. */
function callAsApprover(env: Env, session: SessionAddress, path: string, body: unknown, address: string | null): Promise<SessionCallResult> {
  const identity: PeerIdentity = { peer: "approver", endpointId: session.endpointId, orgId: "", userId: null, userName: null, userEmail: null, role: null, canRun: false, address };
  return callSession(env, { session, path, body, identity });
}

function unavailableBecause(action: string, reason: string): { ok: false; reason: "unavailable"; error: string } {
  console.error(`approval ${action}: session unreachable: ${reason}`);
  return unavailable();
}

function unavailable(): { ok: false; reason: "unavailable"; error: string } {
  return { ok: false, reason: "unavailable", error: "The approval service is unavailable right now. Try again in a minute." };
}
