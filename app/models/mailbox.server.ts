// The capture mailbox: approval emails the session worker stored in D1 instead
// of sending (APPROVAL_MAIL_PROVIDER=capture, local dev and CI only).
//
// Deliberately no sign-in: a client contact reading their mail is not a
// console user, and the e2e test follows the link as one would. What keeps it
// safe is that it exists only in offline mode, which resolveAuthMode refuses
// to enable anywhere CAISEY_ENV is "production"; everywhere else it is a 404.
import type { TypedResponse } from "@remix-run/cloudflare";
import { and, desc, eq, type SQL } from "drizzle-orm";
import type { Database } from "~/db/client.server";
import { captureMailbox } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import { isOfflineMode } from "~/lib/offline-auth.server";

export const MAILBOX_HEADERS = { "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" } as const;
export const MAILBOX_PAGE_SIZE = 100;

export interface CapturedMailSummary {
  id: string;
  to: string;
  subject: string;
  createdAt: number;
}

export interface CapturedMail extends CapturedMailSummary {
  text: string;
  html: string;
}

/**
 * A JSON loader response with the mailbox headers. Plain Response.json rather
 * than Remix's deprecated json(): same wire format, and it also works where
 * the route module is loaded outside Remix (the workers tests).
 */
export function mailboxJson<T>(data: T): TypedResponse<T> {
  return Response.json(data, { headers: MAILBOX_HEADERS }) as TypedResponse<T>;
}

/** True only when offline auth is on and valid; a misconfigured offline mode counts as off. */
export function isMailboxEnabled(env: Env): boolean {
  return isOfflineMode(env);
}

/** Throws a 404 unless offline mode is on, so the page does not even admit to existing elsewhere. */
export function requireMailbox(env: Env): void {
  if (!isMailboxEnabled(env)) {
    throw new Response("Not Found", { status: 404, statusText: "Not Found", headers: MAILBOX_HEADERS });
  }
}

/** Newest first; `to` filters on the recipient address (case-insensitive, exact). */
export async function listCapturedMail(
  db: Database,
  options: { to?: string | null; limit?: number } = {},
): Promise<CapturedMailSummary[]> {
  const filters: SQL[] = [];
  const to = options.to?.trim().toLowerCase();
  if (to) filters.push(eq(captureMailbox.to, to));
  return db
    .select({
      id: captureMailbox.id,
      to: captureMailbox.to,
      subject: captureMailbox.subject,
      createdAt: captureMailbox.createdAt,
    })
    .from(captureMailbox)
    .where(filters.length ? and(...filters) : undefined)
    .orderBy(desc(captureMailbox.createdAt), desc(captureMailbox.id))
    .limit(Math.min(Math.max(options.limit ?? MAILBOX_PAGE_SIZE, 1), 500));
}

export async function getCapturedMail(db: Database, id: string): Promise<CapturedMail | null> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return null;
  const [row] = await db.select().from(captureMailbox).where(eq(captureMailbox.id, id)).limit(1);
  return row ?? null;
}

/** Every http(s) URL in a plain-text body, in order, without duplicates or trailing punctuation. */
export function extractLinks(text: string): string[] {
  const links: string[] = [];
  for (const match of text.matchAll(/https?:\/\/[^\s<>"'`]+/gi)) {
    const url = match[0].replace(/[).,;:!?\]]+$/, "");
    try {
      new URL(url);
    } catch {
      continue;
    }
    if (!links.includes(url)) links.push(url);
  }
  return links;
}
