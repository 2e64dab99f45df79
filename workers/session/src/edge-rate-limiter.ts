// Rate limits for the Pages edge's unauthenticated routes (enrollment, the
// public approval page): one instance per key (RATE_LIMIT_KEYS), called over
// RPC before the edge does any work. See docs/decisions/0011-edge-rate-limits.md.
//
// A sliding-window log in the object's SQLite, not the session's in-memory
// TokenBucket: these windows last up to an hour, far longer than an idle
// object stays in memory, so a bucket that starts full after eviction would
// reset the limit every minute or two; and a 429 must say exactly when to
// retry, which the log answers (the oldest counted request's expiry). The log
// holds at most `limit` rows per policy, and an alarm deletes everything once
// the window is empty, so idle addresses cost no storage.
import { DurableObject } from "cloudflare:workers";
import {
  RATE_LIMIT_POLICIES,
  rateLimitTakeSchema,
  type EdgeRateLimiterRpc,
  type RateLimitPolicy,
  type RateLimitTake,
  type RateLimitVerdict,
} from "../../../protocol/session-contract";
import type { SessionEnv } from "./env";

export class EdgeRateLimiter extends DurableObject<SessionEnv> implements EdgeRateLimiterRpc {
  async take(request: RateLimitTake): Promise<RateLimitVerdict> {
    const { policy } = rateLimitTakeSchema.parse(request);
    const { limit, windowSeconds } = RATE_LIMIT_POLICIES[policy];
    const windowMs = windowSeconds * 1000;
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    // Here rather than in the constructor: the alarm's deleteAll() drops the table while the object may stay in memory.
    sql.exec("CREATE TABLE IF NOT EXISTS hits (policy TEXT NOT NULL, at INTEGER NOT NULL)");
    sql.exec("DELETE FROM hits WHERE policy = ? AND at <= ?", policy, now - windowMs);
    const { counted, oldest } = sql
      .exec<{ counted: number; oldest: number | null }>("SELECT COUNT(*) AS counted, MIN(at) AS oldest FROM hits WHERE policy = ?", policy)
      .one();
    if (counted >= limit) {
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(((oldest ?? now) + windowMs - now) / 1000)) };
    }
    sql.exec("INSERT INTO hits (policy, at) VALUES (?, ?)", policy, now);
    // Clean up when the last counted request leaves its window (policies sharing a key may differ in window).
    const cleanUpAt = now + windowMs;
    const scheduled = await this.ctx.storage.getAlarm();
    if (scheduled === null || scheduled < cleanUpAt) await this.ctx.storage.setAlarm(cleanUpAt);
    return { ok: true, remaining: limit - counted - 1 };
  }

  /** Set by take() after a counted request, so the table exists when it runs. */
  async alarm(): Promise<void> {
    const now = Date.now();
    // A policy sharing this key with a longer window may still have live rows: keep them, and wake again then.
    const live = this.ctx.storage.sql
      .exec<{ policy: string; last: number }>("SELECT policy, MAX(at) AS last FROM hits GROUP BY policy")
      .toArray()
      .map(({ policy, last }) => last + (RATE_LIMIT_POLICIES[policy as RateLimitPolicy]?.windowSeconds ?? 0) * 1000)
      .filter((expiry) => expiry > now);
    if (live.length === 0) await this.ctx.storage.deleteAll();
    else await this.ctx.storage.setAlarm(Math.max(...live));
  }
}
