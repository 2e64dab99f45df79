import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "~/db/client.server";
import { clients, endpoints, enrollmentTokens } from "~/db/schema";
import { newId, randomToken, sha256Hex } from "~/lib/crypto.server";
import type { EnrollRequest } from "../../protocol/messages";

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

/**
 * Exchanges an enrollment token for a new endpoint and its runtime credential.
 * One D1 batch (a transaction) creates the endpoint only while the token is
 * redeemable and counts the use only if the endpoint was created, so the use
 * limit holds under concurrent redemptions and a failure never burns a use.
 */
export async function redeemEnrollmentToken(
  db: Database,
  request: EnrollRequest,
  now = Date.now(),
): Promise<{ endpointId: string; credential: string; clientName: string; orgId: string }> {
  const tokenHash = await sha256Hex(request.token);
  const credential = randomToken(32);
  const credentialHash = await sha256Hex(credential);
  const endpointId = newId("ep");
  const d1 = db.$client;
  await d1.batch([
    d1
      .prepare(
        `INSERT INTO endpoints (id, org_id, client_id, hostname, os, os_version, enrolled_at, credential_hash)
         SELECT ?, org_id, client_id, ?, ?, ?, ?, ?
         FROM enrollment_tokens
         WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses`,
      )
      .bind(endpointId, request.hostname, request.os, request.osVersion, now, credentialHash, tokenHash, now),
    d1
      .prepare("UPDATE enrollment_tokens SET uses = uses + 1 WHERE token_hash = ? AND EXISTS (SELECT 1 FROM endpoints WHERE id = ?)")
      .bind(tokenHash, endpointId),
  ]);
  const [enrolled] = await db
    .select({ orgId: endpoints.orgId, clientName: clients.name })
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(eq(endpoints.id, endpointId));
  if (!enrolled) {
    throw new EnrollmentError("Enrollment token is invalid, expired, revoked or used up", 401);
  }
  return { endpointId, credential, clientName: enrolled.clientName, orgId: enrolled.orgId };
}

/** The endpoint a runtime credential belongs to, or null. */
export async function authenticateRuntimeCredential(db: Database, credential: string) {
  if (credential.length < 32 || credential.length > 128) return null;
  const [row] = await db
    .select({ id: endpoints.id, orgId: endpoints.orgId, hostname: endpoints.hostname })
    .from(endpoints)
    .where(eq(endpoints.credentialHash, await sha256Hex(credential)));
  return row ?? null;
}
