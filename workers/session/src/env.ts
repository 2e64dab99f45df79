/** Bindings and variables of the session worker (workers/session/wrangler.toml + .dev.vars / secrets). */
export interface SessionEnv {
  DB: D1Database;
  /** The console's public origin (https://console.example): approval links are built from it, never from a Host header. */
  PUBLIC_ORIGIN?: string;
  /** HMAC key for audit checkpoints (hex or any long random string); a secret. */
  AUDIT_MAC_KEY?: string;
  /** "resend" | "cloudflare" | "capture" (capture: local dev and CI only). */
  APPROVAL_MAIL_PROVIDER?: string;
  /** Sender address, e.g. "Caisey approvals <approvals@msp.example>". */
  APPROVAL_MAIL_FROM?: string;
  RESEND_API_KEY?: string;
  /** Cloudflare Email Service binding ([[send_email]] name = "EMAIL"). */
  EMAIL?: { send(message: { from: string; to: string; subject: string; text: string; html: string }): Promise<unknown> };
  /** "1" in local dev and CI; the capture mailer refuses to run without it. */
  CAISEY_OFFLINE_AUTH?: string;
  /** R2 bucket for the nightly archive of the D1 audit replica (docs/decisions/0029-retention.md). */
  AUDIT_ARCHIVE?: R2Bucket;
  /** "production" on deployed environments. */
  CAISEY_ENV?: string;
}
