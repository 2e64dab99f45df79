// One interface for delivering approval emails, whichever provider carries
// them. The email body holds the approver's link, which is their credential:
// nothing here logs a body or puts one in an error message.
import { Resend } from "resend";
import { approvalEmailSchema, type ApprovalEmail } from "../../../../protocol/approvals";
import type { SessionEnv } from "../env";

export interface Mailer {
  readonly provider: string;
  /** Resolves once the provider accepted the message; throws MailDeliveryError otherwise. */
  send(email: ApprovalEmail): Promise<void>;
}

export const MAIL_PROVIDERS = ["resend", "cloudflare", "capture"] as const;
export type MailProvider = (typeof MAIL_PROVIDERS)[number];

/**
 * A send that did not go out. `permanent` means retrying the same message
 * cannot help (bad sender, rejected recipient, invalid key); the caller still
 * decides what to do. `message` is safe to log and to show to the requester.
 */
export class MailDeliveryError extends Error {
  readonly permanent: boolean;
  readonly provider: string;
  constructor(provider: string, message: string, permanent: boolean) {
    super(`${provider}: ${message}`);
    this.name = "MailDeliveryError";
    this.provider = provider;
    this.permanent = permanent;
  }
}

export const RESEND_API_BASE_URL = "https://api.resend.com";
/** A send that hangs would hold the Durable Object's delivery pass; the next pass retries. */
export const SEND_TIMEOUT_MS = 15_000;

/**
 * The mailer APPROVAL_MAIL_PROVIDER selects, or why there is none. A missing
 * or unusable configuration is an error, never a silent no-op: the session
 * records it as a failed delivery the requester can see.
 */
export function mailerFromEnv(env: SessionEnv): Mailer | { error: string } {
  const provider = (env.APPROVAL_MAIL_PROVIDER ?? "").trim().toLowerCase();
  if (!provider) {
    return {
      error: `APPROVAL_MAIL_PROVIDER is not set, so approval emails cannot be delivered (expected one of: ${MAIL_PROVIDERS.join(", ")})`,
    };
  }
  if (!(MAIL_PROVIDERS as readonly string[]).includes(provider)) {
    return { error: `APPROVAL_MAIL_PROVIDER "${provider.slice(0, 40)}" is not supported (expected one of: ${MAIL_PROVIDERS.join(", ")})` };
  }

  if (provider === "capture") {
    const refusal = captureRefusal(env);
    if (refusal) return { error: refusal };
    if (!env.DB) return { error: "the capture mailbox needs the DB (D1) binding" };
    return createCaptureMailer(env.DB);
  }

  const from = parseSender(env.APPROVAL_MAIL_FROM);
  if ("error" in from) return from;

  if (provider === "resend") {
    const apiKey = (env.RESEND_API_KEY ?? "").trim();
    if (!apiKey) return { error: "APPROVAL_MAIL_PROVIDER is resend but the RESEND_API_KEY secret is not set" };
    return createResendMailer({ apiKey, from });
  }
  if (!env.EMAIL || typeof env.EMAIL.send !== "function") {
    return { error: 'APPROVAL_MAIL_PROVIDER is cloudflare but there is no [[send_email]] binding named "EMAIL"' };
  }
  return createCloudflareMailer(env.EMAIL, from);
}

/** Why the capture mailbox may not run here, or null. It stores credentials in D1 for anyone with dev access to read. */
export function captureRefusal(env: Pick<SessionEnv, "CAISEY_OFFLINE_AUTH" | "CAISEY_ENV">): string | null {
  if ((env.CAISEY_ENV ?? "").trim().toLowerCase() === "production") {
    return 'the capture mailbox is refused because CAISEY_ENV is "production"';
  }
  if (env.CAISEY_OFFLINE_AUTH !== "1") {
    return "the capture mailbox is for local dev and CI only and needs CAISEY_OFFLINE_AUTH=1";
  }
  return null;
}

// ---------------------------------------------------------------- sender

export interface Sender {
  email: string;
  name: string | null;
}

const EMAIL_PATTERN = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+\.[^\s@<>()",;:\\[\]]+$/;

/** Parses "Name <addr@domain>" or "addr@domain"; refuses anything that could smuggle a header. */
export function parseSender(value: string | undefined): Sender | { error: string } {
  const raw = (value ?? "").trim();
  if (!raw) return { error: 'APPROVAL_MAIL_FROM is not set (e.g. "Caisey approvals <approvals@msp.example>")' };
  if (/[\r\n]/.test(raw)) return { error: "APPROVAL_MAIL_FROM must be a single line" };
  const named = /^(.*?)\s*<([^<>]+)>$/.exec(raw);
  const email = (named ? named[2] : raw).trim();
  const name = named ? named[1].trim().replace(/^"(.*)"$/, "$1").trim() : "";
  if (!EMAIL_PATTERN.test(email)) {
    return { error: 'APPROVAL_MAIL_FROM is not a valid sender (expected "Name <address@domain>" or "address@domain")' };
  }
  if (/["<>]/.test(name)) return { error: "APPROVAL_MAIL_FROM has a display name with quotes or angle brackets" };
  return { email, name: name || null };
}

function formatSender(sender: Sender): string {
  return sender.name ? `${sender.name} <${sender.email}>` : sender.email;
}

// ---------------------------------------------------------------- providers

/** Resend through its official library (plain fetch, so it runs in workerd). */
export function createResendMailer(options: { apiKey: string; from: Sender; baseUrl?: string }): Mailer {
  // An explicit base URL: the library would otherwise honour RESEND_BASE_URL from process.env.
  const client = new Resend(options.apiKey, { baseUrl: options.baseUrl ?? RESEND_API_BASE_URL });
  const from = formatSender(options.from);
  return {
    provider: "resend",
    async send(email) {
      const valid = checkEmail("resend", email);
      let result: Awaited<ReturnType<typeof client.emails.send>>;
      try {
        result = await client.emails.send(
          { from, to: [valid.to.email], subject: valid.subject, text: valid.text, html: valid.html },
          { signal: AbortSignal.timeout(SEND_TIMEOUT_MS) },
        );
      } catch {
        throw new MailDeliveryError("resend", "the Resend API could not be reached", false);
      }
      if (result.error) {
        const { statusCode, name } = result.error;
        throw new MailDeliveryError(
          "resend",
          `rejected (${statusCode ?? "no response"} ${name}): ${logSafe(result.error.message)}`,
          !isTransientStatus(statusCode),
        );
      }
    },
  };
}

/** The subset of Cloudflare's SendEmail binding used here; `from` may carry a display name. */
export interface SendEmailBinding {
  send(message: {
    from: string | { email: string; name: string };
    to: string;
    subject: string;
    text: string;
    html: string;
  }): Promise<unknown>;
}

/**
 * Cloudflare Email Service ([[send_email]] binding). The sender's domain must
 * be onboarded to Email Sending; the binding must not restrict destination
 * addresses, or only verified addresses could be reached.
 */
export function createCloudflareMailer(binding: SendEmailBinding, from: Sender): Mailer {
  const sender = from.name ? { email: from.email, name: from.name } : from.email;
  return {
    provider: "cloudflare",
    async send(email) {
      const valid = checkEmail("cloudflare", email);
      try {
        await binding.send({ from: sender, to: valid.to.email, subject: valid.subject, text: valid.text, html: valid.html });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const code = typeof (error as { code?: unknown })?.code === "string" ? (error as { code: string }).code : null;
        // The binding throws plain Errors; only configuration and address
        // problems are worth giving up on, anything else may pass next time.
        const permanent = /not (verified|allowed|permitted|entitled)|invalid|forbidden|unauthori[sz]ed/i.test(
          `${code ?? ""} ${message}`,
        );
        throw new MailDeliveryError("cloudflare", `send failed${code ? ` (${code})` : ""}: ${logSafe(message)}`, permanent);
      }
    },
  };
}

/** Local dev and CI: the message goes to D1's capture_mailbox, read at /dev/mailbox. */
export function createCaptureMailer(db: D1Database): Mailer {
  return {
    provider: "capture",
    async send(email) {
      const valid = checkEmail("capture", email);
      try {
        await db
          .prepare("INSERT INTO capture_mailbox (id, `to`, subject, text, html, created_at) VALUES (?, ?, ?, ?, ?, ?)")
          .bind(randomId(), valid.to.email.toLowerCase(), valid.subject, valid.text, valid.html, Date.now())
          .run();
      } catch {
        throw new MailDeliveryError("capture", "the capture mailbox could not be written (is migration 0004 applied?)", false);
      }
    },
  };
}

// ---------------------------------------------------------------- helpers

function checkEmail(provider: string, email: ApprovalEmail): ApprovalEmail {
  const parsed = approvalEmailSchema.safeParse(email);
  if (!parsed.success) {
    // Field names only: the values include the link.
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join(".") || "(root)"))].join(", ");
    throw new MailDeliveryError(provider, `the approval email is malformed (${fields})`, true);
  }
  return parsed.data;
}

/** 429, 5xx, a conflicting concurrent request or no response at all: worth another try. */
function isTransientStatus(status: number | null | undefined): boolean {
  return status == null || status === 409 || status === 429 || status >= 500;
}

/** A provider's message without anything that looks like a URL, on one line and short. */
export function logSafe(message: string | undefined): string {
  const cleaned = (message ?? "")
    .replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, "[url]")
    .replace(/\s+/g, " ")
    .trim();
  return (cleaned || "no detail").slice(0, 200);
}

function randomId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
