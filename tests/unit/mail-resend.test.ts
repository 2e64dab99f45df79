// The Resend mailer against a local HTTP stand-in for api.resend.com (the
// official library takes a base URL): what goes on the wire, and how the
// API's answers map to permanent or transient delivery failures.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { composeApprovalEmail } from "../../workers/session/src/mail/compose";
import { MailDeliveryError, createResendMailer, parseSender } from "../../workers/session/src/mail/mailer";

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: unknown;
}

let server: Server;
let baseUrl: string;
let recorded: Recorded[] = [];
let reply: { status: number; body: string } = { status: 200, body: JSON.stringify({ id: "email_1" }) };

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => (raw += chunk));
    req.on("end", () => {
      recorded.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: raw ? JSON.parse(raw) : null });
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  recorded = [];
  reply = { status: 200, body: JSON.stringify({ id: "email_1" }) };
});

const url = `https://console.caisey.test/approve/ep_1~${"k".repeat(43)}`;
const email = composeApprovalEmail({
  approver: { name: "Pat Plant", email: "pat@client.test" },
  url,
  reason: "Printer spooler is stuck",
  text: "Restart-Service Spooler",
  shell: "powershell",
  sequence: null,
  requestedBy: "Tom Technician",
  hostname: "LINE2-PC",
  clientName: "Acme",
  timeZone: "Europe/London",
  expiresAt: Date.UTC(2026, 5, 1, 12, 0),
});

function resend() {
  const from = parseSender("Caisey approvals <approvals@msp.test>");
  if ("error" in from) throw new Error(from.error);
  return createResendMailer({ apiKey: "re_test_key", from, baseUrl });
}

describe("Resend mailer", () => {
  it("posts one email to /emails with the API key, sender and the approver's bare address", async () => {
    await resend().send(email);
    expect(recorded).toHaveLength(1);
    const [request] = recorded;
    expect(request.method).toBe("POST");
    expect(request.url).toBe("/emails");
    expect(request.headers.authorization).toBe("Bearer re_test_key");
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.body).toEqual({
      from: "Caisey approvals <approvals@msp.test>",
      to: ["pat@client.test"],
      subject: email.subject,
      text: email.text,
      html: email.html,
    });
  });

  it("treats a validation error as permanent and keeps URLs out of the message", async () => {
    reply = {
      status: 422,
      body: JSON.stringify({ statusCode: 422, name: "validation_error", message: `Invalid field near ${url}` }),
    };
    const error = await resend().send(email).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MailDeliveryError);
    expect((error as MailDeliveryError).permanent).toBe(true);
    expect((error as MailDeliveryError).message).toBe("resend: rejected (422 validation_error): Invalid field near [url]");
  });

  it("treats rate limits and server errors as transient", async () => {
    reply = { status: 429, body: JSON.stringify({ statusCode: 429, name: "rate_limit_exceeded", message: "Too many requests" }) };
    expect(((await resend().send(email).catch((e: unknown) => e)) as MailDeliveryError).permanent).toBe(false);
    reply = { status: 502, body: "<html>bad gateway</html>" };
    expect(((await resend().send(email).catch((e: unknown) => e)) as MailDeliveryError).permanent).toBe(false);
  });

  it("treats an invalid API key as permanent", async () => {
    reply = { status: 401, body: JSON.stringify({ statusCode: 401, name: "invalid_api_key", message: "API key is invalid" }) };
    expect(((await resend().send(email).catch((e: unknown) => e)) as MailDeliveryError).permanent).toBe(true);
  });
});
