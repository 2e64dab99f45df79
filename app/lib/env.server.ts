import type { AppLoadContext } from "@remix-run/cloudflare";
import type { PagesEnv } from "../../worker-configuration";

/**
 * Bindings and variables of the Pages project. The bindings and the vars in
 * wrangler.toml are generated (`npm run types`, worker-configuration.d.ts,
 * checked by tests/unit/wrangler-types.test.ts); below are only what
 * wrangler.toml cannot show: secrets (set in Cloudflare, `wrangler pages secret
 * put`) and local dev/CI variables (.dev.vars).
 */
export interface Env extends PagesEnv {
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
  /**
   * Local dev and tests without R2: a URL serving a build's --out directory
   * (<url>/<version>/manifest.json, <url>/<version>/<platform>/<file>). Runtimes then download from it.
   */
  CAISEY_RUNTIME_RELEASES_URL?: string;
}

/**
 * What server.ts's getLoadContext hands Remix (the part loaders read): the
 * Pages context, whose env is the Env above, and the per-request CSP nonce
 * (app/lib/security-headers.server.ts).
 */
declare module "@remix-run/cloudflare" {
  interface AppLoadContext {
    /** waitUntil: work that may finish after the response (Pages' context; absent in unit tests). */
    cloudflare: { env: Env; waitUntil?: (promise: Promise<unknown>) => void };
    cspNonce?: string;
  }
}

export function getEnv(context: AppLoadContext): Env {
  return context.cloudflare.env;
}

/** The per-request CSP nonce server.ts puts in the load context (see app/lib/security-headers.server.ts). */
export function getCspNonce(context: AppLoadContext): string | undefined {
  return context.cspNonce;
}
