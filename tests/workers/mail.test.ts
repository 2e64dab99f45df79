// Approval email delivery: provider selection from the session worker's
// environment, the capture mailbox in real D1, the composed message, and the
// dev-only mailbox pages that read it back.
import { env } from "cloudflare:test";
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { describe, expect, it } from "vitest";
import { loader as mailboxLoader } from "~/routes/dev.mailbox";
import { loader as messageLoader } from "~/routes/dev.mailbox.$messageId";
import { extractLinks } from "~/models/mailbox.server";
import type { ApprovalEmail } from "../../protocol/approvals";
import type { SessionEnv } from "../../workers/session/src/env";
import { composeApprovalEmail, formatExpiry, type ApprovalEmailInput } from "../../workers/session/src/mail/compose";
import {
  MailDeliveryError,
  createCloudflareMailer,
  createResendMailer,
  mailerFromEnv,
  type Mailer,
  type SendEmailBinding,
} from "../../workers/session/src/mail/mailer";

const sessionEnv = (overrides: Partial<SessionEnv> = {}): SessionEnv => ({ ...(env as unknown as SessionEnv), ...overrides });

function mailer(overrides: Partial<SessionEnv> = {}): Mailer {
  const result = mailerFromEnv(sessionEnv(overrides));
  if ("error" in result) throw new Error(`expected a mailer, got: ${result.error}`);
  return result;
}

function configError(overrides: Partial<SessionEnv>): string {
  const result = mailerFromEnv(sessionEnv(overrides));
  if (!("error" in result)) throw new Error(`expected a configuration error, got provider ${result.provider}`);
  return result.error;
}

let counter = 0;
function input(overrides: Partial<ApprovalEmailInput> = {}): ApprovalEmailInput {
  counter += 1;
  return {
    approver: { name: "Pat Plant", email: `pat.${counter}.${Date.now()}@client.test` },
    url: `https://console.caisey.test/approve/ep_mail~${"s".repeat(40)}${counter}`,
    reason: "The label printer on line 2 stopped; restarting its spooler fixes it.",
    text: "Restart-Service Spooler",
    shell: "powershell",
    sequence: null,
    requestedBy: "Tom Technician",
    hostname: "LINE2-PC",
    clientName: "Acme Manufacturing",
    timeZone: "America/Chicago",
    expiresAt: Date.UTC(2026, 10, 24, 15, 15),
    ...overrides,
  };
}

const URL_PATTERN = /[a-z][a-z0-9+.-]*:\/\/[^\s<>"']+/gi;

describe("mailerFromEnv", () => {
  it("refuses a missing or unknown provider with a clear message", () => {
    expect(configError({ APPROVAL_MAIL_PROVIDER: undefined })).toMatch(/APPROVAL_MAIL_PROVIDER is not set/);
    expect(configError({ APPROVAL_MAIL_PROVIDER: "  " })).toMatch(/APPROVAL_MAIL_PROVIDER is not set/);
    expect(configError({ APPROVAL_MAIL_PROVIDER: "smtp" })).toMatch(/"smtp" is not supported.*resend, cloudflare, capture/);
  });

  it("needs the API key and a valid sender for Resend", () => {
    expect(configError({ APPROVAL_MAIL_PROVIDER: "resend", RESEND_API_KEY: undefined })).toMatch(/RESEND_API_KEY/);
    expect(configError({ APPROVAL_MAIL_PROVIDER: "resend", RESEND_API_KEY: "re_x", APPROVAL_MAIL_FROM: undefined })).toMatch(
      /APPROVAL_MAIL_FROM is not set/,
    );
    expect(configError({ APPROVAL_MAIL_PROVIDER: "resend", RESEND_API_KEY: "re_x", APPROVAL_MAIL_FROM: "not an address" })).toMatch(
      /APPROVAL_MAIL_FROM is not a valid sender/,
    );
    expect(
      configError({ APPROVAL_MAIL_PROVIDER: "resend", RESEND_API_KEY: "re_x", APPROVAL_MAIL_FROM: "a@b.test\r\nBcc: x@evil.test" }),
    ).toMatch(/single line/);
    expect(mailer({ APPROVAL_MAIL_PROVIDER: "Resend", RESEND_API_KEY: "re_x" }).provider).toBe("resend");
  });

  it("needs the EMAIL binding for Cloudflare Email Service", () => {
    expect(configError({ APPROVAL_MAIL_PROVIDER: "cloudflare", EMAIL: undefined })).toMatch(/\[\[send_email\]\] binding named "EMAIL"/);
    const binding: SendEmailBinding = { send: async () => ({ messageId: "m" }) };
    expect(mailer({ APPROVAL_MAIL_PROVIDER: "cloudflare", EMAIL: binding }).provider).toBe("cloudflare");
  });

  it("refuses the capture mailbox in production and outside offline mode", () => {
    expect(configError({ CAISEY_ENV: "production" })).toMatch(/refused because CAISEY_ENV is "production"/);
    expect(configError({ CAISEY_ENV: " Production " })).toMatch(/production/);
    expect(configError({ CAISEY_OFFLINE_AUTH: undefined })).toMatch(/needs CAISEY_OFFLINE_AUTH=1/);
    expect(configError({ CAISEY_OFFLINE_AUTH: "true" })).toMatch(/needs CAISEY_OFFLINE_AUTH=1/);
    expect(mailer().provider).toBe("capture");
  });
});

describe("capture mailer (D1)", () => {
  it("stores the message under a random id, addressed to the approver", async () => {
    const email = composeApprovalEmail(input());
    await mailer().send(email);
    await mailer().send(composeApprovalEmail(input({ approver: email.to })));
    const { results } = await env.DB.prepare("SELECT * FROM capture_mailbox WHERE `to` = ? ORDER BY created_at")
      .bind(email.to.email)
      .all<{ id: string; to: string; subject: string; text: string; html: string; created_at: number }>();
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ to: email.to.email, subject: email.subject, text: email.text, html: email.html });
    expect(results[0].id).toMatch(/^[0-9a-f]{32}$/);
    expect(results[1].id).not.toBe(results[0].id);
    expect(results[0].created_at).toBeGreaterThan(Date.now() - 60_000);
  });

  it("rejects a malformed email as permanent, naming fields but not values", async () => {
    const email: ApprovalEmail = { ...composeApprovalEmail(input()), subject: "" };
    const error = await mailer().send(email).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MailDeliveryError);
    expect((error as MailDeliveryError).permanent).toBe(true);
    expect((error as MailDeliveryError).message).toContain("subject");
    expect((error as MailDeliveryError).message).not.toContain("approve/");
  });
});

describe("provider request shaping", () => {
  it("Cloudflare: bare recipient address, named sender, and a log-safe error", async () => {
    const sent: Parameters<SendEmailBinding["send"]>[0][] = [];
    const email = composeApprovalEmail(input());
    const ok = createCloudflareMailer({ send: async (message) => void sent.push(message) }, { email: "approvals@msp.test", name: "Caisey approvals" });
    await ok.send(email);
    expect(sent).toEqual([
      { from: { email: "approvals@msp.test", name: "Caisey approvals" }, to: email.to.email, subject: email.subject, text: email.text, html: email.html },
    ]);

    const failing = (message: string) =>
      createCloudflareMailer({ send: async () => Promise.reject(new Error(message)) }, { email: "approvals@msp.test", name: null });
    const permanent = await failing(`sender domain not verified for ${"https://x.test/approve/secret"}`).send(email).catch((e) => e);
    expect(permanent).toBeInstanceOf(MailDeliveryError);
    expect(permanent.permanent).toBe(true);
    expect(permanent.message).not.toContain("secret");
    const transient = await failing("internal error, try again").send(email).catch((e) => e);
    expect(transient.permanent).toBe(false);
  });

  it("Resend runs inside workerd and reports an unreachable API as a transient failure", async () => {
    const resend = createResendMailer({
      apiKey: "re_test",
      from: { email: "approvals@msp.test", name: null },
      baseUrl: "http://127.0.0.1:9",
    });
    const error = await resend.send(composeApprovalEmail(input())).catch((e) => e);
    expect(error).toBeInstanceOf(MailDeliveryError);
    expect(error.permanent).toBe(false);
    expect(error.message).toMatch(/^resend: /);
  });
});

describe("composeApprovalEmail", () => {
  it("leads with the technician's reason, then what and where, and the command last", () => {
    const data = input({ sequence: { name: "Printer fix", step: 1, steps: 3 } });
    const email = composeApprovalEmail(data);
    expect(email.to).toEqual(data.approver);
    expect(email.subject).toBe("Approval needed: Tom Technician wants to run a command on LINE2-PC");
    // The HTML's <title> repeats the subject; the order that matters is the visible body's.
    for (const body of [email.text, email.html.slice(email.html.indexOf("<body"))]) {
      const reason = body.indexOf("The label printer on line 2 stopped");
      expect(reason).toBeGreaterThan(0);
      expect(reason).toBeLessThan(body.indexOf("LINE2-PC"));
      expect(body.indexOf("LINE2-PC")).toBeLessThan(body.indexOf("Restart-Service Spooler"));
      expect(body).toContain("step 2 of 3");
      expect(body).toContain("Tuesday 24 November 2026, 09:15 (America/Chicago)");
      expect(body).toContain(`the link works only for you (${data.approver.email})`);
    }
    expect(email.text).toContain(`\n${data.url}\n`);
    expect(email.html).toContain(`href="${data.url}"`);
    expect(email.html).not.toMatch(/<img|<script|src=/i);
  });

  it("escapes every interpolated value in the HTML", () => {
    const email = composeApprovalEmail(
      input({
        reason: `<script>alert("r")</script> & more`,
        text: `echo '<b>' && rm -rf "/tmp/x"`,
        requestedBy: `Eve <img src=x onerror=alert(1)>`,
        hostname: `"><svg onload=alert(2)>`,
        clientName: "Smith & Sons",
        shell: "bash<i>",
        approver: { name: "Pat <b>Plant</b>", email: "pat@client.test" },
        sequence: { name: "</pre><script>x()</script>", step: 0, steps: 1 },
      }),
    );
    expect(email.html).not.toMatch(/<script|<img|<svg|<b>|<i>|<\/pre><script/i);
    expect(email.html).toContain("&lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt; &amp; more");
    expect(email.html).toContain("echo &#39;&lt;b&gt;&#39; &amp;&amp; rm -rf &quot;/tmp/x&quot;");
    expect(email.html).toContain("Smith &amp; Sons");
    expect(email.html.match(/<a /g)).toHaveLength(1);
    // The subject is one header line whatever the technician typed.
    expect(composeApprovalEmail(input({ hostname: "a\r\nBcc: x@evil.test" })).subject).not.toMatch(/[\r\n]/);
  });

  it("contains no link but the approval URL, even when the reason or command holds URLs", () => {
    const data = input({
      reason: "See https://evil.test/phish and http://other.test for details",
      text: "curl -fsSL https://get.example.test/install.sh | sh; ftp://files.test/x",
      requestedBy: "Mallory https://evil.test/name",
      hostname: "host-http://evil.test",
    });
    const email = composeApprovalEmail(data);
    expect(email.text.match(URL_PATTERN)).toEqual([data.url]);
    expect(extractLinks(email.text)).toEqual([data.url]);
    expect([...new Set(email.html.match(URL_PATTERN))]).toEqual([data.url]);
    expect(email.text).toContain("https[:]//evil.test/phish");
  });

  it("names the zone and falls back to UTC for an unknown one", () => {
    const at = Date.UTC(2026, 0, 5, 23, 30);
    expect(formatExpiry(at, "Europe/Berlin")).toBe("Tuesday 6 January 2026, 00:30 (Europe/Berlin)");
    expect(formatExpiry(at, "Mars/Olympus")).toBe("Monday 5 January 2026, 23:30 (UTC)");
  });

  it("refuses an approval URL that is not http(s)", () => {
    expect(() => composeApprovalEmail(input({ url: "javascript:alert(1)" }))).toThrow(/http\(s\)/);
    expect(() => composeApprovalEmail(input({ url: "/approve/relative" }))).toThrow(/absolute/);
  });
});

describe("dev mailbox pages", () => {
  const args = (overrides: Partial<Cloudflare.Env>, url: string, params: Record<string, string> = {}) =>
    ({
      request: new Request(url),
      params,
      context: { cloudflare: { env: { ...env, ...overrides } } },
    }) as unknown as LoaderFunctionArgs;

  async function status(run: () => Promise<unknown>): Promise<number> {
    try {
      const response = await run();
      return response instanceof Response ? response.status : 200;
    } catch (thrown) {
      if (thrown instanceof Response) return thrown.status;
      throw thrown;
    }
  }

  it("answers 404 unless offline mode is on, and in production", async () => {
    const url = "https://console.caisey.test/dev/mailbox";
    expect(await status(() => mailboxLoader(args({ CAISEY_OFFLINE_AUTH: undefined }, url)))).toBe(404);
    expect(await status(() => mailboxLoader(args({ CAISEY_ENV: "production" }, url)))).toBe(404);
    expect(await status(() => messageLoader(args({ CAISEY_OFFLINE_AUTH: "0" }, `${url}/x`, { messageId: "x" })))).toBe(404);
    expect(await status(() => mailboxLoader(args({}, url)))).toBe(200);
  });

  it("lists captured mail newest first, filters by recipient and shows each link", async () => {
    const first = composeApprovalEmail(input());
    const second = composeApprovalEmail(input({ approver: first.to, reason: "Second request" }));
    await mailer().send(first);
    await new Promise((r) => setTimeout(r, 5));
    await mailer().send(second);

    const listResponse = await mailboxLoader(
      args({}, `https://console.caisey.test/dev/mailbox?to=${encodeURIComponent(first.to.email.toUpperCase())}`),
    );
    expect(listResponse.headers.get("Cache-Control")).toBe("no-store");
    expect(listResponse.headers.get("Referrer-Policy")).toBe("no-referrer");
    const list = (await listResponse.json()) as { messages: { id: string; to: string; subject: string }[] };
    expect(list.messages.map((m) => m.to)).toEqual([first.to.email, first.to.email]);

    const messageResponse = await messageLoader(
      args({}, `https://console.caisey.test/dev/mailbox/${list.messages[0].id}`, { messageId: list.messages[0].id }),
    );
    const { message, links } = (await messageResponse.json()) as { message: { text: string }; links: string[] };
    expect(message.text).toContain("Second request");
    expect(links).toEqual([second.text.match(URL_PATTERN)![0]]);

    expect(
      await status(() => messageLoader(args({}, "https://console.caisey.test/dev/mailbox/nope", { messageId: "nope" }))),
    ).toBe(404);
  });
});
