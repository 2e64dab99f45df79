import type { AppLoadContext } from "@remix-run/cloudflare";

/** Bindings and variables of the Pages project (wrangler.toml + .dev.vars / secrets). */
export interface Env {
  DB: D1Database;
  ENDPOINT_SESSION: DurableObjectNamespace;
  CLERK_PUBLISHABLE_KEY: string;
  CLERK_SECRET_KEY: string;
  CLERK_JWT_KEY?: string;
  CLERK_PROXY_URL?: string;
  CLERK_SIGN_IN_URL?: string;
  /** "1" turns on offline auth (local dev and CI only); see docs/decisions/0002-auth.md. */
  CAISEY_OFFLINE_AUTH?: string;
  /** PKCS#8 PEM private key that mints offline session tokens; never set in production. */
  CAISEY_OFFLINE_SIGNING_KEY?: string;
  /** "production" on deployed environments; offline auth refuses to run there. */
  CAISEY_ENV?: string;
}

export function getEnv(context: AppLoadContext): Env {
  return (context as unknown as { cloudflare: { env: Env } }).cloudflare.env;
}
