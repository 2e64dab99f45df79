import { and, desc, eq, gt, isNull, lt, sql } from "drizzle-orm";
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
 * The use is claimed with one conditional UPDATE, so concurrent redemptions
 * can never exceed the token's use limit.
 */
export async function redeemEnrollmentToken(
  db: Database,
  request: EnrollRequest,
  now = Date.now(),
): Promise<{ endpointId: string; credential: string; clientName: string; orgId: string }> {
  const tokenHash = await sha256Hex(request.token);
  const [claimed] = await db
    .update(enrollmentTokens)
    .set({ uses: sql`${enrollmentTokens.uses} + 1` })
    .where(
      and(
        eq(enrollmentTokens.tokenHash, tokenHash),
        isNull(enrollmentTokens.revokedAt),
        gt(enrollmentTokens.expiresAt, now),
        lt(enrollmentTokens.uses, enrollmentTokens.maxUses),
      ),
    )
    .returning({ orgId: enrollmentTokens.orgId, clientId: enrollmentTokens.clientId });
  if (!claimed) {
    throw new EnrollmentError("Enrollment token is invalid, expired, revoked or used up", 401);
  }
  const credential = randomToken(32);
  const endpointId = newId("ep");
  await db.insert(endpoints).values({
    id: endpointId,
    orgId: claimed.orgId,
    clientId: claimed.clientId,
    hostname: request.hostname,
    os: request.os,
    osVersion: request.osVersion,
    enrolledAt: now,
    credentialHash: await sha256Hex(credential),
  });
  const [client] = await db.select({ name: clients.name }).from(clients).where(eq(clients.id, claimed.clientId));
  return { endpointId, credential, clientName: client?.name ?? "", orgId: claimed.orgId };
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
