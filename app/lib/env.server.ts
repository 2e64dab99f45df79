import type { AppLoadContext } from "@remix-run/cloudflare";
import type { EdgeRateLimiterRpc } from "@protocol/session-contract";

/** Bindings and variables of the Pages project (wrangler.toml + .dev.vars / secrets). */
export interface Env {
  DB: D1Database;
  ENDPOINT_SESSION: DurableObjectNamespace;
  /** The session worker's EdgeRateLimiter (typed RPC); see app/lib/rate-limit.server.ts. */
  EDGE_RATE_LIMITER: DurableObjectNamespace<EdgeRateLimiterRpc & Rpc.DurableObjectBranded>;
  /**
   * "off" disables the edge rate limits, honoured only in offline mode (local
   * dev and CI, never production): load tests enroll dozens of runtimes from
   * one address. See docs/decisions/0011-edge-rate-limits.md.
   */
  CAISEY_RATE_LIMITS?: string;
  CLERK_PUBLISHABLE_KEY?: string;
  CLERK_SECRET_KEY?: string;
  CLERK_JWT_KEY?: string;
  CLERK_PROXY_URL?: string;
  CLERK_SIGN_IN_URL?: string;
  /** Verifies Clerk's organisation and membership webhooks (whsec_…); see app/models/member-sync.server.ts. */
  CLERK_WEBHOOK_SIGNING_SECRET?: string;
  /** "1" turns on offline auth (local dev and CI only); see docs/decisions/0002-auth.md. */
  CAISEY_OFFLINE_AUTH?: string;
  /** PKCS#8 PEM private key that mints offline session tokens; never set in production. */
  CAISEY_OFFLINE_SIGNING_KEY?: string;
  /** "production" on deployed environments; offline auth refuses to run there. */
  CAISEY_ENV?: string;
  /**
   * The console's public origin (https://console.example). State-changing
   * requests must come from it and absolute URLs are built from it, never from
   * Host; required in production. See app/lib/public-origin.server.ts.
   */
  PUBLIC_ORIGIN?: string;
  /**
   * R2 bucket with the runtime releases (protocol/runtime-release.ts runtimeObjectKeys), published by
   * scripts/publish-runtime.mjs; see app/models/runtime-releases.server.ts.
   */
  RUNTIME_RELEASES?: R2Bucket;
  /**
   * Local dev and tests without R2: a URL serving a build's --out directory
   * (<url>/<version>/manifest.json, <url>/<version>/<platform>/<file>). Runtimes then download from it.
   */
  CAISEY_RUNTIME_RELEASES_URL?: string;
}

export function getEnv(context: AppLoadContext): Env {
  return (context as unknown as { cloudflare: { env: Env } }).cloudflare.env;
}

/** The per-request CSP nonce server.ts puts in the load context (see app/lib/security-headers.server.ts). */
export function getCspNonce(context: AppLoadContext): string | undefined {
  const nonce = (context as unknown as { cspNonce?: unknown }).cspNonce;
  return typeof nonce === "string" ? nonce : undefined;
}
