// The edge's side of the rate limits on unauthenticated routes: asks the
// session worker's EdgeRateLimiter (one Durable Object per key) over typed RPC.
// Fails closed: a limiter that cannot be asked refuses the request, because
// an overloaded limiter must not become a way around it.
// See docs/decisions/0011-edge-rate-limits.md.
import type { Env } from "./env.server";
import { isOfflineMode } from "./offline-auth.server";
import { rateLimitVerdictSchema, type RateLimitPolicy } from "@protocol/session-contract";

export type RateLimitCheck = {
  /** An instance name from RATE_LIMIT_KEYS. */
  key: string;
  policy: RateLimitPolicy;
};

export type RateLimitOutcome =
  | { ok: true }
  | { ok: false; reason: "limited"; retryAfterSeconds: number }
  | { ok: false; reason: "unavailable" };

/**
 * Counts one request against each check in turn; stops at the first refusal,
 * so a request refused by an earlier check is not counted by later ones.
 */
export async function takeRateLimits(env: Env, checks: readonly RateLimitCheck[]): Promise<RateLimitOutcome> {
  if (rateLimitsDisabled(env)) return { ok: true };
  for (const { key, policy } of checks) {
    let verdict: unknown;
    try {
      const stub = env.EDGE_RATE_LIMITER.get(env.EDGE_RATE_LIMITER.idFromName(key));
      verdict = await stub.take({ policy });
    } catch (error) {
      console.error(`rate limit ${policy}: limiter unreachable`, error);
      return { ok: false, reason: "unavailable" };
    }
    const parsed = rateLimitVerdictSchema.safeParse(verdict);
    if (!parsed.success) {
      console.error(`rate limit ${policy}: unexpected answer from the limiter`, parsed.error.issues);
      return { ok: false, reason: "unavailable" };
    }
    if (!parsed.data.ok) return { ok: false, reason: "limited", retryAfterSeconds: parsed.data.retryAfterSeconds };
  }
  return { ok: true };
}

/** CAISEY_RATE_LIMITS=off counts only in offline mode, which itself refuses to run in production. */
function rateLimitsDisabled(env: Env): boolean {
  return env.CAISEY_RATE_LIMITS?.trim().toLowerCase() === "off" && isOfflineMode(env);
}

/** "about 2 minutes" for people reading a page, not a number of seconds. */
export function describeWait(seconds: number): string {
  if (seconds <= 10) return "a few seconds";
  if (seconds < 60) return "less than a minute";
  const minutes = Math.ceil(seconds / 60);
  return minutes === 1 ? "about a minute" : `about ${minutes} minutes`;
}
