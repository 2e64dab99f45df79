import { and, desc, eq, isNull } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { clients, endpoints, enrollmentTokens } from "~/db/schema";
import { newId, randomToken, sha256Hex } from "~/lib/crypto.server";
import type { EnrollRequest } from "@protocol/messages";
import type { LocationHint } from "@protocol/placement";
import { sessionPlacementColumns, type SessionPlacementColumns } from "./session-placement.server";

export const TOKEN_PREFIX = "cae_";

export const createTokenSchema = z.object({
  label: z.string().trim().max(100).default(""),
  ttlHours: z.coerce.number().int().min(1).max(24 * 30).default(24),
  maxUses: z.coerce.number().int().min(1).max(10_000).default(1),
});
export type CreateTokenInput = z.infer<typeof createTokenSchema>;

export interface CreatedToken {
  id: string;
  /** The only time the plain token exists outside the runtime that redeems it. */
  token: string;
  expiresAt: number;
  maxUses: number;
}

export async function createEnrollmentToken(
  db: Database,
  params: CreateTokenInput & { orgId: string; clientId: string; createdBy: string; now?: number },
): Promise<CreatedToken> {
  const now = params.now ?? Date.now();
  const [client] = await db
    .select({ archivedAt: clients.archivedAt })
    .from(clients)
    .where(and(eq(clients.orgId, params.orgId), eq(clients.id, params.clientId)));
  if (!client) throw new EnrollmentError("No such client in your organisation.", 404);
  if (client.archivedAt !== null) throw new EnrollmentError(ARCHIVED_CLIENT, 409);
  const token = TOKEN_PREFIX + randomToken(24);
  const id = newId("et");
  const expiresAt = now + params.ttlHours * 3_600_000;
  await db.insert(enrollmentTokens).values({
    id,
    orgId: params.orgId,
    clientId: params.clientId,
    tokenHash: await sha256Hex(token),
    label: params.label,
    createdBy: params.createdBy,
    createdAt: now,
    expiresAt,
    maxUses: params.maxUses,
  });
  return { id, token, expiresAt, maxUses: params.maxUses };
}

export async function listEnrollmentTokens(db: Database, orgId: string, clientId: string) {
  return db
    .select({
      id: enrollmentTokens.id,
      label: enrollmentTokens.label,
      createdBy: enrollmentTokens.createdBy,
      createdAt: enrollmentTokens.createdAt,
      expiresAt: enrollmentTokens.expiresAt,
      maxUses: enrollmentTokens.maxUses,
      uses: enrollmentTokens.uses,
      revokedAt: enrollmentTokens.revokedAt,
    })
    .from(enrollmentTokens)
    .where(and(eq(enrollmentTokens.orgId, orgId), eq(enrollmentTokens.clientId, clientId)))
    .orderBy(desc(enrollmentTokens.createdAt))
    .limit(50);
}

export async function revokeEnrollmentToken(db: Database, orgId: string, tokenId: string, now = Date.now()) {
  await db
    .update(enrollmentTokens)
    .set({ revokedAt: now })
    .where(and(eq(enrollmentTokens.orgId, orgId), eq(enrollmentTokens.id, tokenId), isNull(enrollmentTokens.revokedAt)));
}

export class EnrollmentError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export interface RedeemedEnrollment {
  endpointId: string;
  credential: string;
  clientName: string;
  orgId: string;
  /**
   * Set when the token was a re-enrollment token (credential rotation): the
   * existing endpoint got the new credential and its session must be told to
   * take the runtime back. `issuedBy` is the admin who created the token.
   */
  reenrolled: { issuedBy: string; hostname: string } | null;
  /** Where the endpoint's session is (re-enrolled) or is to be created (new: near this runtime). */
  placement: SessionPlacementColumns;
}

const REFUSED_TOKEN = "Enrollment token is invalid, expired, revoked or used up";
export const ARCHIVED_CLIENT = "This client is archived: it takes no new endpoints. Restore it first.";

/**
 * Exchanges an enrollment token for a runtime credential: for a new endpoint,
 * or, when the token is bound to one (rotation), for that same endpoint.
 */
export async function redeemEnrollmentToken(
  db: Database,
  request: EnrollRequest,
  now = Date.now(),
  locationHint: LocationHint | null = null,
): Promise<RedeemedEnrollment> {
  const tokenHash = await sha256Hex(request.token);
  const [bound] = await db
    .select({ endpointId: enrollmentTokens.endpointId, createdBy: enrollmentTokens.createdBy })
    .from(enrollmentTokens)
    .where(eq(enrollmentTokens.tokenHash, tokenHash));
  if (bound?.endpointId) return reenroll(db, request, tokenHash, bound.endpointId, bound.createdBy, now);
  return enrollNew(db, request, tokenHash, now, locationHint);
}

/**
 * One D1 batch (a transaction) creates the endpoint only while the token is
 * redeemable and counts the use only if the endpoint was created, so the use
 * limit holds under concurrent redemptions and a failure never burns a use.
 */
async function enrollNew(db: Database, request: EnrollRequest, tokenHash: string, now: number, locationHint: LocationHint | null): Promise<RedeemedEnrollment> {
  const credential = randomToken(32);
  const credentialHash = await sha256Hex(credential);
  const endpointId = newId("ep");
  const d1 = db.$client;
  await d1.batch([
    d1
      .prepare(
        // The tenant's required jurisdiction is fixed on the endpoint now: its session is created in it, once.
        `INSERT INTO endpoints (id, org_id, client_id, hostname, os, os_version, enrolled_at, credential_hash, location_hint, jurisdiction)
         SELECT ?, t.org_id, t.client_id, ?, ?, ?, ?, ?, ?, o.required_jurisdiction
         FROM enrollment_tokens t JOIN organisations o ON o.id = t.org_id
           -- An archived client takes no new endpoints, whatever tokens are still around.
           JOIN clients c ON c.id = t.client_id AND c.org_id = t.org_id AND c.archived_at IS NULL
         WHERE t.token_hash = ? AND t.endpoint_id IS NULL AND t.revoked_at IS NULL AND t.expires_at > ? AND t.uses < t.max_uses`,
      )
      .bind(endpointId, request.hostname, request.os, request.osVersion, now, credentialHash, locationHint, tokenHash, now),
    d1
      .prepare("UPDATE enrollment_tokens SET uses = uses + 1 WHERE token_hash = ? AND EXISTS (SELECT 1 FROM endpoints WHERE id = ?)")
      .bind(tokenHash, endpointId),
  ]);
  const [enrolled] = await db
    .select({ orgId: endpoints.orgId, clientName: clients.name, ...sessionPlacementColumns })
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(eq(endpoints.id, endpointId));
  if (!enrolled) throw new EnrollmentError(REFUSED_TOKEN, 401);
  const { orgId, clientName, ...placement } = enrolled;
  return { endpointId, credential, clientName, orgId, reenrolled: null, placement };
}

/**
 * Gives the endpoint a token is bound to a new credential, in one D1 batch:
 * the credential is set only while the token is redeemable, the endpoint is
 * not decommissioned and the runtime reports the endpoint's hostname and OS
 * (so a rotation command pasted on the wrong machine changes nothing); the
 * use is counted only if the credential was set. The transcript continues
 * because the endpoint id, and so its session, stays the same.
 */
async function reenroll(
  db: Database,
  request: EnrollRequest,
  tokenHash: string,
  endpointId: string,
  issuedBy: string,
  now: number,
): Promise<RedeemedEnrollment> {
  const credential = randomToken(32);
  const credentialHash = await sha256Hex(credential);
  const d1 = db.$client;
  await d1.batch([
    d1
      .prepare(
        `UPDATE endpoints SET credential_hash = ?, revoked_at = NULL, os_version = ?
         WHERE id = ? AND decommissioned_at IS NULL AND hostname = ? COLLATE NOCASE AND os = ?
           AND EXISTS (SELECT 1 FROM enrollment_tokens t
                       WHERE t.token_hash = ? AND t.endpoint_id = endpoints.id AND t.org_id = endpoints.org_id
                         AND t.revoked_at IS NULL AND t.expires_at > ? AND t.uses < t.max_uses)`,
      )
      .bind(credentialHash, request.osVersion, endpointId, request.hostname, request.os, tokenHash, now),
    d1
      .prepare("UPDATE enrollment_tokens SET uses = uses + 1 WHERE token_hash = ? AND EXISTS (SELECT 1 FROM endpoints WHERE id = ? AND credential_hash = ?)")
      .bind(tokenHash, endpointId, credentialHash),
  ]);
  const [endpoint] = await db
    .select({
      orgId: endpoints.orgId,
      clientName: clients.name,
      hostname: endpoints.hostname,
      os: endpoints.os,
      credentialHash: endpoints.credentialHash,
      decommissionedAt: endpoints.decommissionedAt,
      ...sessionPlacementColumns,
    })
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(eq(endpoints.id, endpointId));
  if (endpoint?.credentialHash === credentialHash) {
    return {
      endpointId,
      credential,
      clientName: endpoint.clientName,
      orgId: endpoint.orgId,
      reenrolled: { issuedBy, hostname: endpoint.hostname },
      placement: { jurisdiction: endpoint.jurisdiction, locationHint: endpoint.locationHint, placedAt: endpoint.placedAt },
    };
  }
  // Nothing changed; these reads only choose the message.
  const [token] = await db
    .select({ revokedAt: enrollmentTokens.revokedAt, expiresAt: enrollmentTokens.expiresAt, uses: enrollmentTokens.uses, maxUses: enrollmentTokens.maxUses })
    .from(enrollmentTokens)
    .where(eq(enrollmentTokens.tokenHash, tokenHash));
  if (!endpoint || !token || token.revokedAt !== null || token.expiresAt <= now || token.uses >= token.maxUses) {
    throw new EnrollmentError(REFUSED_TOKEN, 401);
  }
  if (endpoint.decommissionedAt !== null) throw new EnrollmentError("The endpoint this token re-enrolls was decommissioned; nothing was changed", 409);
  throw new EnrollmentError(
    `This token re-enrolls an existing endpoint, and this machine (hostname ${JSON.stringify(request.hostname)}, ${request.os}) is not it; ` +
      "run the command on that endpoint. Nothing was changed.",
    409,
  );
}

/**
 * The endpoint a runtime credential belongs to, or null. A revoked or
 * decommissioned endpoint has no credential hash any more; the checks on its
 * timestamps refuse it even if a hash were somehow left behind.
 */
export async function authenticateRuntimeCredential(db: Database, credential: string) {
  if (credential.length < 32 || credential.length > 128) return null;
  const [row] = await db
    .select({ id: endpoints.id, orgId: endpoints.orgId, hostname: endpoints.hostname, runtimeColo: endpoints.runtimeColo, ...sessionPlacementColumns })
    .from(endpoints)
    .where(
      and(
        eq(endpoints.credentialHash, await sha256Hex(credential)),
        isNull(endpoints.revokedAt),
        isNull(endpoints.decommissionedAt),
      ),
    );
  return row ?? null;
}
