// An endpoint's lifecycle as admins drive it: revoke the runtime's credential,
// rotate it (revoke + a single-use re-enrollment token bound to the endpoint),
// decommission the endpoint (revoked for good, kept and readable), and the
// re-enrollment that redeems a rotation token.
//
// D1 is the authority: the edge authenticates runtimes against it, so each
// change is committed there first, in one batch. The endpoint's session is
// told afterwards so the change takes effect now (the live runtime is closed
// with 4410, viewers see it, the session audits it). If the session cannot be
// reached the change still holds for every new connection and check-in; the
// caller gets `session.reached: false` and says so.
import { and, eq } from "drizzle-orm";
import * as z from "zod";
import { createDb } from "~/db/client.server";
import { endpoints, type Role } from "~/db/schema";
import { newId, randomToken, sha256Hex } from "~/lib/crypto.server";
import type { Env } from "~/lib/env.server";
import { publicOrigin } from "~/lib/public-origin.server";
import { redeemEnrollmentToken, TOKEN_PREFIX, type RedeemedEnrollment } from "~/models/enrollment.server";
import type { EnrollRequest } from "@protocol/messages";
import { SESSION_PATHS, type LifecycleRequest } from "@protocol/session-contract";
import { callSessionAsDirectory, type DirectoryActor } from "./session-call.server";
import { placeSession, sessionAddress, sessionPlacementColumns, type SessionPlacementColumns } from "./session-placement.server";
import { edgeOriginOf, locationHintFor, type EdgeOrigin } from "@protocol/placement";

/** Only admins change whether an endpoint's runtime may connect. */
export const LIFECYCLE_ROLES: readonly Role[] = ["admin"];

/** A rotation token is for the admin's own next step, not for distribution: one use, one day. */
export const REENROLLMENT_TOKEN_TTL_HOURS = 24;

export const lifecycleIntentSchema = z.discriminatedUnion("intent", [
  z.object({ intent: z.literal("revoke-credential") }),
  z.object({ intent: z.literal("rotate-credential") }),
  /** The admin types the endpoint's hostname: decommissioning cannot be undone. */
  z.object({ intent: z.literal("decommission"), confirmHostname: z.string().trim().max(255).default("") }),
]);
export type LifecycleIntent = z.infer<typeof lifecycleIntentSchema>;
export const LIFECYCLE_INTENTS: readonly string[] = lifecycleIntentSchema.options.map((option) => option.shape.intent.value);

/** The signed-in member acting, as the route resolved them (role and tenant are checked again here). */
export interface LifecycleActor {
  userId: string;
  name: string;
  role: Role;
  orgId: string;
  address: string | null;
}

export class LifecycleError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403 | 404 | 409,
  ) {
    super(message);
  }
}

export type SessionNotice = { reached: true } | { reached: false; message: string };

export interface LifecycleOutcome {
  endpointId: string;
  hostname: string;
  revokedAt: number;
  decommissionedAt: number | null;
  session: SessionNotice;
}

export interface RotationOutcome extends LifecycleOutcome {
  /** Shown once to the admin; only its hash is stored. */
  token: string;
  tokenId: string;
  expiresAt: number;
  /** What to run on the endpoint; `--force` replaces the revoked identity in its state directory. */
  command: string;
}

/** What the page says when D1 changed but the session did not hear of it. */
export const SESSION_UNREACHABLE = {
  revoke: "Credential revoked; the live connection will close when the session is reachable. No new connection or check-in is accepted. Revoke again to retry.",
  decommission:
    "Endpoint decommissioned; the live connection will close, and waiting commands will be cancelled, when the session is reachable. No new connection or check-in is accepted. Decommission again to retry.",
} as const;

type EndpointRow = { id: string; orgId: string; hostname: string; os: string; revokedAt: number | null; decommissionedAt: number | null } & SessionPlacementColumns;

/** Role first (a forbidden caller learns nothing about the id), then tenant: another tenant's endpoint is "not found". */
async function loadForAdmin(env: Env, actor: LifecycleActor, endpointId: string): Promise<EndpointRow> {
  if (!LIFECYCLE_ROLES.includes(actor.role)) throw new LifecycleError(`The ${actor.role} role cannot change an endpoint's credential.`, 403);
  const [row] = await createDb(env.DB)
    .select({
      id: endpoints.id,
      orgId: endpoints.orgId,
      hostname: endpoints.hostname,
      os: endpoints.os,
      revokedAt: endpoints.revokedAt,
      decommissionedAt: endpoints.decommissionedAt,
      ...sessionPlacementColumns,
    })
    .from(endpoints)
    .where(and(eq(endpoints.orgId, actor.orgId), eq(endpoints.id, endpointId)));
  if (!row) throw new LifecycleError("No such endpoint in your organisation.", 404);
  return row;
}

const DECOMMISSIONED = "This endpoint was decommissioned; its credential cannot change any more.";

/** Clears the credential; keeps the first revocation time so the page says since when. */
function revokeStatement(d1: D1Database, endpoint: EndpointRow, now: number): D1PreparedStatement {
  return d1
    .prepare(
      "UPDATE endpoints SET credential_hash = NULL, revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND org_id = ? AND decommissioned_at IS NULL",
    )
    .bind(now, endpoint.id, endpoint.orgId);
}

/** An outstanding rotation token would let a runtime back in; every lifecycle change withdraws it. */
function withdrawReenrollmentTokens(d1: D1Database, endpoint: EndpointRow, now: number): D1PreparedStatement {
  return d1
    .prepare("UPDATE enrollment_tokens SET revoked_at = ? WHERE endpoint_id = ? AND org_id = ? AND revoked_at IS NULL")
    .bind(now, endpoint.id, endpoint.orgId);
}

async function readTimes(env: Env, endpointId: string) {
  const [row] = await createDb(env.DB)
    .select({ revokedAt: endpoints.revokedAt, decommissionedAt: endpoints.decommissionedAt })
    .from(endpoints)
    .where(eq(endpoints.id, endpointId));
  return row!;
}

/** Revokes the runtime's credential: refused at the edge from now on, disconnected now when the session is reachable. */
export async function revokeRuntimeCredential(env: Env, actor: LifecycleActor, endpointId: string, now = Date.now()): Promise<LifecycleOutcome> {
  const endpoint = await loadForAdmin(env, actor, endpointId);
  if (endpoint.decommissionedAt !== null) throw new LifecycleError(DECOMMISSIONED, 409);
  const d1 = env.DB;
  const [revoked] = await d1.batch([revokeStatement(d1, endpoint, now), withdrawReenrollmentTokens(d1, endpoint, now)]);
  if (revoked!.meta.changes === 0) throw new LifecycleError(DECOMMISSIONED, 409);
  const session = await tellSession(env, endpoint, actor, "revoke", SESSION_UNREACHABLE.revoke);
  const times = await readTimes(env, endpoint.id);
  return { endpointId: endpoint.id, hostname: endpoint.hostname, revokedAt: times.revokedAt!, decommissionedAt: null, session };
}

/**
 * Revokes the credential and, in the same batch, issues a single-use token
 * bound to this endpoint: redeemed on the endpoint, it sets a new credential
 * on the same endpoint id, so the transcript continues.
 */
export async function rotateRuntimeCredential(env: Env, actor: LifecycleActor, endpointId: string, now = Date.now()): Promise<RotationOutcome> {
  const endpoint = await loadForAdmin(env, actor, endpointId);
  if (endpoint.decommissionedAt !== null) throw new LifecycleError(DECOMMISSIONED, 409);
  // Before any write: a deployment without PUBLIC_ORIGIN cannot show a command to run, so it must not revoke either.
  const origin = publicOrigin(env);
  const token = TOKEN_PREFIX + randomToken(24);
  const tokenId = newId("et");
  const expiresAt = now + REENROLLMENT_TOKEN_TTL_HOURS * 3_600_000;
  const d1 = env.DB;
  const [revoked, , inserted] = await d1.batch([
    revokeStatement(d1, endpoint, now),
    withdrawReenrollmentTokens(d1, endpoint, now),
    d1
      .prepare(
        `INSERT INTO enrollment_tokens (id, org_id, client_id, token_hash, label, created_by, created_at, expires_at, max_uses, endpoint_id)
         SELECT ?, org_id, client_id, ?, ?, ?, ?, ?, 1, id FROM endpoints WHERE id = ? AND org_id = ? AND decommissioned_at IS NULL`,
      )
      .bind(tokenId, await sha256Hex(token), `Re-enrollment of ${endpoint.hostname}`.slice(0, 100), actor.name, now, expiresAt, endpoint.id, endpoint.orgId),
  ]);
  if (revoked!.meta.changes === 0 || inserted!.meta.changes === 0) throw new LifecycleError(DECOMMISSIONED, 409);
  const session = await tellSession(env, endpoint, actor, "revoke", SESSION_UNREACHABLE.revoke);
  const times = await readTimes(env, endpoint.id);
  return {
    endpointId: endpoint.id,
    hostname: endpoint.hostname,
    revokedAt: times.revokedAt!,
    decommissionedAt: null,
    session,
    token,
    tokenId,
    expiresAt,
    command: reenrollmentCommand(origin, token, endpoint.os),
  };
}

/**
 * Run as root / an elevated administrator on the endpoint: the installed
 * runtime then defaults to the service's state directory; the service (which
 * a refused credential stopped, or left retrying) is restarted to use it.
 */
export function reenrollmentCommand(origin: string, token: string, os: string): string {
  const args = `enroll --server ${origin} --token ${token} --force`;
  if (os === "windows") return `& "$env:ProgramFiles\\Caisey\\caisey-runtime.exe" ${args}; Restart-Service caisey-runtime`;
  if (os === "macos") return `sudo caisey-runtime ${args} && sudo launchctl kickstart -k system/com.caisey.runtime`;
  return `sudo caisey-runtime ${args} && sudo systemctl restart caisey-runtime`;
}

/**
 * Revokes for good: no credential, no re-enrollment, nothing new runs. The row
 * stays (never deleted) so the transcript, exports and audit stay readable.
 * Repeating it changes nothing in D1 and tells the session again.
 */
export async function decommissionEndpoint(
  env: Env,
  actor: LifecycleActor,
  endpointId: string,
  confirmHostname: string,
  now = Date.now(),
): Promise<LifecycleOutcome> {
  const endpoint = await loadForAdmin(env, actor, endpointId);
  if (confirmHostname.trim() !== endpoint.hostname) {
    throw new LifecycleError(`Type the endpoint's hostname (${endpoint.hostname}) to confirm; decommissioning cannot be undone.`, 400);
  }
  const d1 = env.DB;
  await d1.batch([
    d1
      .prepare(
        `UPDATE endpoints SET credential_hash = NULL, revoked_at = COALESCE(revoked_at, ?), decommissioned_at = COALESCE(decommissioned_at, ?)
         WHERE id = ? AND org_id = ?`,
      )
      .bind(now, now, endpoint.id, endpoint.orgId),
    withdrawReenrollmentTokens(d1, endpoint, now),
  ]);
  const session = await tellSession(env, endpoint, actor, "decommission", SESSION_UNREACHABLE.decommission);
  const times = await readTimes(env, endpoint.id);
  return { endpointId: endpoint.id, hostname: endpoint.hostname, revokedAt: times.revokedAt!, decommissionedAt: times.decommissionedAt, session };
}

async function tellSession(
  env: Env,
  endpoint: Pick<EndpointRow, "id" | "orgId"> & SessionPlacementColumns,
  actor: DirectoryActor,
  action: LifecycleRequest["action"],
  unreachable: string,
): Promise<SessionNotice> {
  const body: LifecycleRequest = { action };
  // A session that was never created has nothing to revoke or reinstate: the directory decides at its creation.
  if (endpoint.placedAt === null) return { reached: true };
  const result = await callSessionAsDirectory(env, { session: sessionAddress(endpoint), orgId: endpoint.orgId, path: SESSION_PATHS.lifecycle, body, actor });
  if (result.answered && result.status === 200) return { reached: true };
  const why = result.answered ? `session answered ${result.status}: ${JSON.stringify(result.body)}` : result.reason;
  console.error(`lifecycle ${action} for ${endpoint.id}: the session was not told (${why})`);
  return { reached: false, message: unreachable };
}

/**
 * /agent/enroll: redeems the token; for a rotation token it then tells the
 * endpoint's session to take the runtime back. If the session cannot be told
 * the enrollment still stands (D1 holds the new credential), and the session
 * keeps refusing the runtime until it is told; the error log says so.
 */
export async function enrollRuntime(
  env: Env,
  request: EnrollRequest,
  address: string | null,
  origin: EdgeOrigin = edgeOriginOf(undefined),
  now = Date.now(),
): Promise<RedeemedEnrollment & { session: SessionNotice | null }> {
  const enrolled = await redeemEnrollmentToken(createDb(env.DB), request, now, locationHintFor(origin));
  const endpoint = { id: enrolled.endpointId, orgId: enrolled.orgId, ...enrolled.placement };
  // Enrollment is the runtime's first contact: its session is created now, near it.
  if (await placeSession(env, endpoint, origin.colo, now)) endpoint.placedAt ??= now;
  if (!enrolled.reenrolled) return { ...enrolled, session: null };
  const session = await tellSession(
    env,
    endpoint,
    // No member acts here: the runtime redeemed a token an admin issued; the audit names both.
    { userId: null, name: `runtime on ${enrolled.reenrolled.hostname}, re-enrolled with a token from ${enrolled.reenrolled.issuedBy}`, address },
    "reinstate",
    "Re-enrolled, but the session could not be told; it refuses the runtime until it is.",
  );
  return { ...enrolled, session };
}
