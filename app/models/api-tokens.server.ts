// Tenant API tokens (docs/decisions/0025-script-library-and-api.md): random
// 256-bit secrets shown once, stored as SHA-256 (a fast hash is enough for a
// random secret: there is nothing to guess from it), scoped, revocable, and
// every creation, revocation and refusal written to api_audit.
import { and, desc, eq, isNull } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { apiAudit, apiTokens } from "~/db/schema";
import { newId, randomToken, sha256Hex } from "~/lib/crypto.server";

export const API_SCOPES = ["sequences:queue", "transcripts:read", "review:read"] as const;
export type ApiScope = (typeof API_SCOPES)[number];
export const API_SCOPE_DESCRIPTIONS: Record<ApiScope, string> = {
  "sequences:queue": "Queue a library script on an endpoint (REST API and alert webhooks)",
  "transcripts:read": "Read an endpoint's transcript",
  "review:read": "Read the review list",
};

/** Recognisable in logs and secret scanners. */
export const API_TOKEN_PREFIX = "cat_";

export const createTokenSchema = z.object({
  name: z.string().trim().min(1, "Name the token").max(100),
  scopes: z.array(z.enum(API_SCOPES)).min(1, "Choose at least one scope").max(API_SCOPES.length),
});
export type CreateTokenInput = z.input<typeof createTokenSchema>;

export interface ApiCaller {
  tokenId: string;
  orgId: string;
  name: string;
  scopes: ApiScope[];
}

export async function recordApiAudit(db: Database, entry: { orgId: string; kind: string; actor: string; tokenId?: string | null; detail?: Record<string, unknown> }): Promise<void> {
  await db.insert(apiAudit).values({
    id: newId("aud"),
    orgId: entry.orgId,
    at: Date.now(),
    kind: entry.kind,
    actor: entry.actor,
    tokenId: entry.tokenId ?? null,
    detail: JSON.stringify(entry.detail ?? {}),
  });
}

export async function listApiAudit(db: Database, orgId: string, limit = 50) {
  return db.select().from(apiAudit).where(eq(apiAudit.orgId, orgId)).orderBy(desc(apiAudit.at)).limit(limit);
}

/** Creates a token; the returned secret is the only copy (only its hash is stored). */
export async function createApiToken(db: Database, orgId: string, input: CreateTokenInput, actor: { name: string }): Promise<{ id: string; token: string }> {
  const { name, scopes } = createTokenSchema.parse(input);
  const token = `${API_TOKEN_PREFIX}${randomToken(32)}`;
  const id = newId("tok");
  const unique = [...new Set(scopes)];
  await db.insert(apiTokens).values({ id, orgId, name, tokenHash: await sha256Hex(token), prefix: token.slice(0, 10), scopes: JSON.stringify(unique), createdBy: actor.name });
  await recordApiAudit(db, { orgId, kind: "token.created", actor: actor.name, tokenId: id, detail: { name, scopes: unique } });
  return { id, token };
}

export async function listApiTokens(db: Database, orgId: string) {
  const rows = await db
    .select({ id: apiTokens.id, name: apiTokens.name, prefix: apiTokens.prefix, scopes: apiTokens.scopes, createdBy: apiTokens.createdBy, createdAt: apiTokens.createdAt, lastUsedAt: apiTokens.lastUsedAt, revokedAt: apiTokens.revokedAt, revokedBy: apiTokens.revokedBy })
    .from(apiTokens)
    .where(eq(apiTokens.orgId, orgId))
    .orderBy(desc(apiTokens.createdAt));
  return rows.map((row) => ({ ...row, scopes: JSON.parse(row.scopes) as ApiScope[] }));
}

/** Revokes at once: the next request with it is refused. Returns false for an unknown (or another tenant's) token. */
export async function revokeApiToken(db: Database, orgId: string, tokenId: string, actor: { name: string }): Promise<boolean> {
  const revoked = await db
    .update(apiTokens)
    .set({ revokedAt: Date.now(), revokedBy: actor.name })
    .where(and(eq(apiTokens.orgId, orgId), eq(apiTokens.id, tokenId), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  if (revoked.length === 0) return false;
  await recordApiAudit(db, { orgId, kind: "token.revoked", actor: actor.name, tokenId });
  return true;
}

export type ApiAuthResult = { ok: true; caller: ApiCaller } | { ok: false; status: 401 | 403; error: string };

/**
 * The bearer token of an API request, checked for `scope`. Cookies are never
 * read: a browser cannot attach this header to a cross-site request.
 */
export async function authenticateApiRequest(db: Database, request: Request, scope: ApiScope): Promise<ApiAuthResult> {
  const token = request.headers.get("authorization")?.match(/^Bearer (\S+)$/)?.[1];
  if (!token) return { ok: false, status: 401, error: "Send an API token as 'Authorization: Bearer cat_…'" };
  const [row] = await db.select().from(apiTokens).where(eq(apiTokens.tokenHash, await sha256Hex(token)));
  if (!row || row.revokedAt !== null) return { ok: false, status: 401, error: "This API token is unknown or was revoked" };
  const scopes = JSON.parse(row.scopes) as ApiScope[];
  if (!scopes.includes(scope)) {
    await recordApiAudit(db, { orgId: row.orgId, kind: "token.refused", actor: row.name, tokenId: row.id, detail: { scope, path: new URL(request.url).pathname } });
    return { ok: false, status: 403, error: `This token lacks the ${scope} scope` };
  }
  await db.update(apiTokens).set({ lastUsedAt: Date.now() }).where(eq(apiTokens.id, row.id));
  return { ok: true, caller: { tokenId: row.id, orgId: row.orgId, name: row.name, scopes } };
}
