import type { SessionWorkerEnv } from "../worker-configuration";

/**
 * Bindings and variables of the session worker. The bindings and the vars in
 * workers/session/wrangler.toml are generated (`npm run types`,
 * workers/session/worker-configuration.d.ts, checked by
 * tests/unit/wrangler-types.test.ts); below are only what wrangler.toml cannot
 * show: secrets (`wrangler secret put`), the optional Email Service binding
 * (commented out in wrangler.toml until a sender domain is onboarded) and the
 * local dev/CI variable (.dev.vars).
 */
export interface SessionEnv extends SessionWorkerEnv {
  /** HMAC key for audit checkpoints (hex or any long random string); a secret. */
  AUDIT_MAC_KEY?: string;
  /** Resend API key (sending only) when APPROVAL_MAIL_PROVIDER is "resend"; a secret. */
  RESEND_API_KEY?: string;
  /** Cloudflare Email Service binding ([[send_email]] name = "EMAIL"). */
  EMAIL?: { send(message: { from: string; to: string; subject: string; text: string; html: string }): Promise<unknown> };
  /** "1" in local dev and CI; the capture mailer refuses to run without it. */
  CAISEY_OFFLINE_AUTH?: string;
}
