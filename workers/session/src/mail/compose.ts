// The approval email, written for a client contact who is often not technical
// and reads it on a phone: the technician's reason first, then what and where,
// the decision link, and the exact command last for those who read it.
//
// The only link is the approver's own approval URL. Every other value comes
// from a technician or a policy, so it is HTML-escaped, and anything in it that
// looks like a URL is defanged ("https[:]//"), so no mail client turns a
// technician's text into a second link. No images, no tracking.
import type { Approver, ApprovalEmail } from "../../../../protocol/approvals";
import { resolveTimeZone, zonedParts } from "../../../../protocol/time";

export interface ApprovalEmailInput {
  approver: Approver;
  /** The approver's own approval link (their credential). */
  url: string;
  /** The technician's plain-language reason. */
  reason: string;
  /** The exact command line. */
  text: string;
  shell: string;
  /** `step` is 0-based, as stored on the command. */
  sequence: { name: string; step: number; steps: number } | null;
  requestedBy: string;
  hostname: string;
  clientName: string;
  /** IANA time zone of the client; an unknown zone falls back to UTC. */
  timeZone: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

const SUBJECT_MAX = 300;

export function composeApprovalEmail(input: ApprovalEmailInput): ApprovalEmail {
  const url = approvalUrl(input.url);
  const technician = oneLine(input.requestedBy) || "A technician";
  const hostname = oneLine(input.hostname) || "a computer";
  const clientName = oneLine(input.clientName);
  const name = oneLine(input.approver.name);
  const email = oneLine(input.approver.email);
  const reason = input.reason.trim() || "(no reason given)";
  const shell = oneLine(input.shell) || "shell";
  const expiry = formatExpiry(input.expiresAt, input.timeZone);
  const step = input.sequence
    ? `step ${input.sequence.step + 1} of ${input.sequence.steps} in "${oneLine(input.sequence.name)}"`
    : null;
  const where = clientName ? `"${hostname}" (${clientName})` : `"${hostname}"`;

  const subject = truncate(defang(`Approval needed: ${technician} wants to run a command on ${hostname}`), SUBJECT_MAX);

  const text = [
    `Hello ${defang(name)},`,
    "",
    `${defang(technician)} from your IT support team asks for your approval. Their reason:`,
    "",
    indent(defang(reason)),
    "",
    `What: run a command on the computer ${defang(where)}.`,
    ...(step ? [`Part of: ${defang(step)}.`] : []),
    `Decide by: ${expiry}. Nothing runs until an approver decides; after that time the request expires.`,
    "",
    "Approve or deny here (the page shows the details before you choose):",
    url,
    "",
    `The exact command, for those who read it (${defang(shell)}):`,
    "",
    indent(defang(input.text)),
    "",
    `If you did not expect this, do not approve; the link works only for you (${defang(email)}).`,
    "",
  ].join("\n");

  const h = (value: string) => escapeHtml(defang(value));
  const muted = "font-size:14px;color:#52525b;";
  const html = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${h(subject)}</title></head>`,
    '<body style="margin:0;padding:0;background:#ffffff;">',
    '<div style="max-width:560px;margin:0 auto;padding:24px 16px;font-family:-apple-system,\'Segoe UI\',Roboto,Helvetica,Arial,sans-serif;color:#18181b;font-size:16px;line-height:1.5;">',
    `<p style="margin:0 0 16px;">Hello ${h(name)},</p>`,
    `<p style="margin:0 0 8px;"><strong>${h(technician)}</strong> from your IT support team asks for your approval. Their reason:</p>`,
    `<blockquote style="margin:0 0 20px;padding:12px 16px;border-left:4px solid #1d4ed8;background:#eff6ff;white-space:pre-wrap;">${h(reason)}</blockquote>`,
    `<p style="margin:0 0 8px;"><strong>What:</strong> run a command on the computer ${h(where)}.</p>`,
    ...(step ? [`<p style="margin:0 0 8px;"><strong>Part of:</strong> ${h(step)}.</p>`] : []),
    `<p style="margin:0 0 8px;"><strong>Decide by:</strong> ${escapeHtml(expiry)}. Nothing runs until an approver decides; after that time the request expires.</p>`,
    '<p style="margin:28px 0;">',
    `<a href="${escapeHtml(url)}" rel="noreferrer" style="display:inline-block;background:#1d4ed8;color:#ffffff;padding:14px 24px;border-radius:8px;text-decoration:none;font-weight:600;">Review and decide</a>`,
    "</p>",
    `<p style="margin:0 0 24px;${muted}">If the button does not work, copy this address into your browser:<br><span style="word-break:break-all;">${escapeHtml(url)}</span></p>`,
    `<p style="margin:0 0 8px;${muted}">The exact command, for those who read it (${h(shell)}):</p>`,
    `<pre style="margin:0 0 24px;padding:12px;background:#f4f4f5;border-radius:6px;font-size:13px;white-space:pre-wrap;word-break:break-word;">${h(input.text)}</pre>`,
    `<p style="margin:0;${muted}">If you did not expect this, do not approve; the link works only for you (${h(email)}).</p>`,
    "</div></body></html>",
  ].join("\n");

  return { to: { name: input.approver.name, email: input.approver.email }, subject, text, html };
}

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"] as const;
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"] as const;

/**
 * "Tuesday 24 November 2026, 09:15 (America/Chicago)": the client's own wall
 * clock with the zone named, like the approval page. Built from numeric parts,
 * so the result does not depend on the runtime's ICU locale data.
 */
export function formatExpiry(at: number, timeZone: string): string {
  const zone = resolveTimeZone(timeZone);
  const { year, month, day, hour, minute, weekday } = zonedParts(at, zone);
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${WEEKDAYS[weekday]} ${day} ${MONTHS[month - 1]} ${year}, ${pad(hour)}:${pad(minute)} (${zone})`;
}

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** "https://x" -> "https[:]//x": readable, but no longer a link any mail client recognises. */
export function defang(value: string): string {
  return value.replace(/([a-z][a-z0-9+.-]*):\/\//gi, "$1[:]//");
}

function approvalUrl(value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new Error("composeApprovalEmail: the approval URL is not a valid absolute URL");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new Error("composeApprovalEmail: the approval URL must be http(s)");
  }
  // The string the caller built, not a re-serialisation: it is what the approval route parses.
  if (/\s/.test(value)) throw new Error("composeApprovalEmail: the approval URL contains whitespace");
  return value;
}

/** Control characters and line breaks collapsed: these values sit inside single lines (and the subject header). */
function oneLine(value: string): string {
  return (value ?? "").replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ").replace(/\s+/g, " ").trim();
}

function indent(value: string): string {
  return value
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}

function truncate(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}
