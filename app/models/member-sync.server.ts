// Tenants and members follow Clerk (docs/decisions/0020-tenant-onboarding.md).
// Two paths, one rule each:
// - Just in time: a verified session token for an organisation or member the
//   directory does not know yet provisions them from the token's claims (the
//   organisation's first signed-in member creates the tenant row), unless the
//   member was removed after the token was issued.
// - Webhooks: Clerk's organisation and membership events (verified with the
//   signing secret) create, update and remove members; a removal is remembered,
//   so a token minted before it provisions nothing.
import { verifyWebhook } from "@clerk/backend/webhooks";
import { and, eq, isNotNull } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { createDb } from "~/db/client.server";
import { endpoints, memberRemovals, members, type Role } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import { memberRemovedAnswerSchema, SESSION_PATHS } from "@protocol/session-contract";
import { callSessionAsDirectory } from "./session-call.server";
import { sessionAddress, sessionPlacementColumns } from "./session-placement.server";

export const CLERK_ROLE_TO_ROLE: Record<string, Role> = {
  "org:admin": "admin",
  "org:technician": "technician",
  "org:noc": "noc",
};

/**
 * Custom session claims Caisey needs from Clerk (Dashboard → Sessions → Customize session token):
 * `{"email": "{{user.primary_email_address}}", "name": "{{user.full_name}}", "org_name": "{{org.name}}"}`.
 * Offline mode mints the same claims.
 */
export const caiseySessionClaimsSchema = z.object({
  email: z.email().max(320),
  name: z.string().trim().min(1).max(200),
  org_name: z.string().trim().min(1).max(200),
});
export type CaiseySessionClaims = z.infer<typeof caiseySessionClaimsSchema>;

export type ProvisionOutcome =
  | { provisioned: true }
  | { provisioned: false; message: string };

/**
 * Creates the tenant (first sign-in of an organisation) and the member from a
 * verified token. `issuedAtMs` is the token's iat: a removal at or after it wins.
 */
export async function provisionFromToken(
  db: Database,
  token: { userId: string; orgId: string; orgSlug: string | null | undefined; role: Role; issuedAtMs: number; claims: unknown },
): Promise<ProvisionOutcome> {
  const [removal] = await db
    .select({ removedAt: memberRemovals.removedAt })
    .from(memberRemovals)
    .where(and(eq(memberRemovals.orgId, token.orgId), eq(memberRemovals.userId, token.userId)));
  if (removal && removal.removedAt >= token.issuedAtMs) {
    return { provisioned: false, message: "Your access to this organisation was removed. Ask an admin to invite you again." };
  }
  const claims = caiseySessionClaimsSchema.safeParse(token.claims);
  if (!claims.success) {
    return {
      provisioned: false,
      message: "Your account is not provisioned for this organisation, and the session token lacks the email, name and org_name claims Caisey needs to do it (docs/deploy.md, Clerk setup).",
    };
  }
  const d1 = db.$client;
  await d1.batch([
    d1.prepare("INSERT OR IGNORE INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(token.orgId, claims.data.org_name, token.orgSlug || token.orgId),
    d1
      .prepare("INSERT OR IGNORE INTO members (org_id, user_id, name, email, role) VALUES (?, ?, ?, ?, ?)")
      .bind(token.orgId, token.userId, claims.data.name, claims.data.email.toLowerCase(), token.role),
    d1.prepare("DELETE FROM member_removals WHERE org_id = ? AND user_id = ?").bind(token.orgId, token.userId),
  ]);
  return { provisioned: true };
}

// ---------------------------------------------------------------------------
// Webhooks

const organizationSchema = z.object({ id: z.string().min(1), name: z.string().min(1).max(200), slug: z.string().min(1).max(200).nullable().optional() });
const membershipSchema = z.object({
  role: z.string(),
  /** When Clerk changed the membership (ms): orders a retried older event behind a newer removal. */
  updated_at: z.number().int().optional(),
  created_at: z.number().int().optional(),
  organization: organizationSchema,
  public_user_data: z.object({
    user_id: z.string().min(1),
    first_name: z.string().nullable().optional(),
    last_name: z.string().nullable().optional(),
    identifier: z.string().max(320),
  }),
});
const clerkEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("organization.created"), data: organizationSchema }),
  z.object({ type: z.literal("organization.updated"), data: organizationSchema }),
  z.object({ type: z.literal("organization.deleted"), data: z.object({ id: z.string().min(1) }) }),
  z.object({ type: z.literal("organizationMembership.created"), data: membershipSchema }),
  z.object({ type: z.literal("organizationMembership.updated"), data: membershipSchema }),
  z.object({ type: z.literal("organizationMembership.deleted"), data: membershipSchema }),
]);
export type ClerkEvent = z.infer<typeof clerkEventSchema>;

export type WebhookOutcome = { status: number; body: { ok: true; applied: string } | { ok: false; error: string } };

/**
 * POST /webhooks/clerk: verified with CLERK_WEBHOOK_SIGNING_SECRET, validated, applied; anything else changes nothing.
 * A removal also closes the member's live sockets in every session of the tenant; `defer` (the request's waitUntil)
 * lets Clerk have its answer first. Without it the closing is awaited.
 */
export async function handleClerkWebhook(
  env: Env,
  request: Request,
  options: { now?: number; defer?: (work: Promise<unknown>) => void } = {},
): Promise<WebhookOutcome> {
  const now = options.now ?? Date.now();
  if (!env.CLERK_WEBHOOK_SIGNING_SECRET) return { status: 503, body: { ok: false, error: "Clerk webhooks are not configured (CLERK_WEBHOOK_SIGNING_SECRET)" } };
  let event: unknown;
  try {
    event = await verifyWebhook(request, { signingSecret: env.CLERK_WEBHOOK_SIGNING_SECRET });
  } catch {
    return { status: 401, body: { ok: false, error: "Webhook signature could not be verified; nothing was changed" } };
  }
  const type = (event as { type?: unknown }).type;
  const parsed = clerkEventSchema.safeParse(event);
  if (!parsed.success) {
    // Verified, but not an event we act on (or not in the shape we expect): acknowledged so Clerk stops retrying.
    return { status: 200, body: { ok: true, applied: `ignored ${typeof type === "string" ? type : "event"}` } };
  }
  const applied = await applyClerkEvent(createDb(env.DB), parsed.data, now);
  const removal = accessRemovedBy(parsed.data);
  if (removal) {
    const closing = closeRemovedMemberSockets(env, removal);
    if (options.defer) options.defer(closing);
    else await closing;
  }
  return { status: 200, body: { ok: true, applied } };
}

/** Whose access an event ends: one member, or everyone in a deleted organisation (userId null). */
export function accessRemovedBy(event: ClerkEvent): { orgId: string; userId: string | null } | null {
  switch (event.type) {
    case "organization.deleted":
      return { orgId: event.data.id, userId: null };
    case "organizationMembership.deleted":
      return { orgId: event.data.organization.id, userId: event.data.public_user_data.user_id };
    case "organizationMembership.created":
    case "organizationMembership.updated":
      return CLERK_ROLE_TO_ROLE[event.data.role] ? null : { orgId: event.data.organization.id, userId: event.data.public_user_data.user_id };
    default:
      return null;
  }
}

const CLOSE_CONCURRENCY = 8;
const CLOSE_TIMEOUT_MS = 10_000;

export interface SocketsClosed {
  /** Sessions asked (every placed session of the tenant, decommissioned ones too: they still serve transcripts). */
  sessions: number;
  socketsClosed: number;
  /** Sessions that did not answer; their sockets close when the edge next authorises them. */
  failed: string[];
}

/**
 * Access was authorised when each socket opened, so a removal must reach the sessions that hold them. There is no
 * central list of who watches what (sessions live near their endpoints), so every placed session of the tenant is
 * asked; one that holds none of the member's sockets changes and audits nothing.
 */
export async function closeRemovedMemberSockets(env: Pick<Env, "DB" | "ENDPOINT_SESSION">, removal: { orgId: string; userId: string | null }): Promise<SocketsClosed> {
  const sessions = await createDb(env.DB)
    .select({ id: endpoints.id, ...sessionPlacementColumns })
    .from(endpoints)
    .where(and(eq(endpoints.orgId, removal.orgId), isNotNull(endpoints.placedAt)));
  const outcome: SocketsClosed = { sessions: sessions.length, socketsClosed: 0, failed: [] };
  let next = 0;
  const worker = async () => {
    while (next < sessions.length) {
      const session = sessions[next++]!;
      const answer = await callSessionAsDirectory(env, {
        session: sessionAddress(session),
        orgId: removal.orgId,
        path: SESSION_PATHS.memberRemoved,
        body: { userId: removal.userId },
        actor: { userId: null, name: "Clerk (access removed)" },
        timeoutMs: CLOSE_TIMEOUT_MS,
      });
      const parsed = answer.answered && answer.status === 200 ? memberRemovedAnswerSchema.safeParse(answer.body) : null;
      if (parsed?.success) outcome.socketsClosed += parsed.data.closed;
      else outcome.failed.push(session.id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CLOSE_CONCURRENCY, sessions.length) }, worker));
  if (outcome.failed.length) console.warn(`closing removed member's sockets: ${outcome.failed.length} of ${outcome.sessions} sessions did not answer`);
  return outcome;
}

export async function applyClerkEvent(db: Database, event: ClerkEvent, now = Date.now()): Promise<string> {
  const d1 = db.$client;
  // verifyWebhook returns type and data only; a membership carries its own change time, anything else is "now".
  const at = "role" in event.data ? (event.data.updated_at ?? event.data.created_at ?? now) : now;
  switch (event.type) {
    case "organization.created":
    case "organization.updated":
      await d1
        .prepare("INSERT INTO organisations (id, name, slug) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name")
        .bind(event.data.id, event.data.name, event.data.slug || event.data.id)
        .run();
      return `${event.type} ${event.data.id}`;
    case "organization.deleted":
      // The tenant's data stays (transcripts and audit are records); nobody can act in it any more.
      await d1.batch([
        d1.prepare("INSERT OR REPLACE INTO member_removals (org_id, user_id, removed_at) SELECT org_id, user_id, ? FROM members WHERE org_id = ?").bind(at, event.data.id),
        d1.prepare("DELETE FROM members WHERE org_id = ?").bind(event.data.id),
      ]);
      return `${event.type} ${event.data.id}`;
    case "organizationMembership.created":
    case "organizationMembership.updated": {
      const { organization, public_user_data: user } = event.data;
      const role = CLERK_ROLE_TO_ROLE[event.data.role];
      if (!role) return removeMember(db, organization.id, user.user_id, at, `${event.type}: role ${event.data.role} has no access`);
      const [removal] = await db
        .select({ removedAt: memberRemovals.removedAt })
        .from(memberRemovals)
        .where(and(eq(memberRemovals.orgId, organization.id), eq(memberRemovals.userId, user.user_id)));
      // A retried "created" that Clerk sent before a removal must not undo it.
      if (removal && removal.removedAt > at) return `${event.type} ignored: older than the removal`;
      const name = [user.first_name, user.last_name].filter(Boolean).join(" ").trim() || user.identifier;
      await d1.batch([
        d1.prepare("INSERT OR IGNORE INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(organization.id, organization.name, organization.slug || organization.id),
        d1
          .prepare(
            "INSERT INTO members (org_id, user_id, name, email, role) VALUES (?, ?, ?, ?, ?) ON CONFLICT (org_id, user_id) DO UPDATE SET name = excluded.name, email = excluded.email, role = excluded.role",
          )
          .bind(organization.id, user.user_id, name, user.identifier.toLowerCase(), role),
        d1.prepare("DELETE FROM member_removals WHERE org_id = ? AND user_id = ?").bind(organization.id, user.user_id),
      ]);
      return `${event.type} ${organization.id}/${user.user_id} as ${role}`;
    }
    case "organizationMembership.deleted":
      return removeMember(db, event.data.organization.id, event.data.public_user_data.user_id, at, event.type);
  }
}

async function removeMember(db: Database, orgId: string, userId: string, at: number, why: string): Promise<string> {
  const d1 = db.$client;
  await d1.batch([
    d1
      .prepare("INSERT INTO member_removals (org_id, user_id, removed_at) VALUES (?, ?, ?) ON CONFLICT (org_id, user_id) DO UPDATE SET removed_at = MAX(removed_at, excluded.removed_at)")
      .bind(orgId, userId, at),
    d1.prepare("DELETE FROM members WHERE org_id = ? AND user_id = ?").bind(orgId, userId),
  ]);
  return `${why} ${orgId}/${userId} removed`;
}

/** For the members page: whether a member row exists (used by tests and the admin mirror). */
export async function memberExists(db: Database, orgId: string, userId: string): Promise<boolean> {
  const [row] = await db.select({ userId: members.userId }).from(members).where(and(eq(members.orgId, orgId), eq(members.userId, userId)));
  return Boolean(row);
}

