// With offline auth off, Clerk is the only way in: without its keys @clerk/remix
// would fail deep inside a loader with a generic 500 on one page and perhaps
// not another. The edge checks the keys first (guardRequest) and refuses every
// browser request with one clear answer, so a half-configured deploy serves
// nothing rather than something.
import type { Env } from "./env.server";
import { decodePublishableKeyHost } from "./offline-auth.server";
import { isProduction } from "./public-origin.server";

/** What is wrong with the Clerk configuration, or null when Clerk can run. */
export function clerkConfigProblem(env: Env): string | null {
  const publishable = (env.CLERK_PUBLISHABLE_KEY ?? "").trim();
  const secret = (env.CLERK_SECRET_KEY ?? "").trim();
  const missing = [!publishable && "CLERK_PUBLISHABLE_KEY", !secret && "CLERK_SECRET_KEY"].filter(Boolean);
  if (missing.length) return `${missing.join(" and ")} ${missing.length === 1 ? "is" : "are"} not set`;
  const host = decodePublishableKeyHost(publishable);
  if (!host) return "CLERK_PUBLISHABLE_KEY is not a Clerk publishable key (pk_live_… or pk_test_…)";
  if (host.toLowerCase().endsWith(".invalid")) return "CLERK_PUBLISHABLE_KEY is the offline development key, but offline auth is off";
  if (!/^sk_(live|test)_\S+$/.test(secret)) return "CLERK_SECRET_KEY is not a Clerk secret key (sk_live_… or sk_test_…)";
  if (publishable.slice(0, 7) !== secret.slice(0, 7).replace("sk_", "pk_")) {
    return "CLERK_PUBLISHABLE_KEY and CLERK_SECRET_KEY belong to different Clerk instances (one live, one test)";
  }
  if (isProduction(env) && !publishable.startsWith("pk_live_")) {
    return "CAISEY_ENV is production but the Clerk keys are a development instance's (pk_test_); use the production instance's keys";
  }
  return null;
}
