import { and, asc, eq, inArray, isNotNull, isNull, sql, type SQL } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { sessionPlacementColumns } from "./session-placement.server";
import type { Jurisdiction, LocationHint } from "@protocol/placement";
import { decodeCursor, encodeCursor } from "~/lib/keyset-cursor";
import { clients, endpoints, endpointTags, OPERATING_SYSTEMS, tags } from "~/db/schema";

export const ENDPOINT_PAGE_SIZE = 50;

export const endpointSearchSchema = z.object({
  q: z.string().trim().max(100).optional().default(""),
  client: z.string().max(128).optional().default(""),
  tag: z.string().trim().max(100).optional().default(""),
  os: z.enum(OPERATING_SYSTEMS).or(z.literal("")).optional().default(""),
  /**
   * "" (any), "online", "offline": endpoints in service; "revoked": in service
   * but refused until re-enrolled; "decommissioned": only those, which every
   * other choice hides.
   */
  status: z.enum(["online", "offline", "revoked", "decommissioned", ""]).optional().default(""),
  group: z.enum(["client", "none"]).optional().default("client"),
  /** A page cursor; the codec (keyset-cursor.ts) judges it, and a bad one is a 400 rather than dropped. */
  after: z.string().optional().default(""),
});
export type EndpointSearch = z.infer<typeof endpointSearchSchema>;

/** Parses search params leniently: a bad value is dropped rather than failing the page. */
export function parseEndpointSearch(params: URLSearchParams): EndpointSearch {
  const raw = Object.fromEntries(params);
  const parsed = endpointSearchSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = endpointSearchSchema.shape[key as keyof EndpointSearch];
    if (field && field.safeParse(value).success) cleaned[key] = value;
  }
  return endpointSearchSchema.parse(cleaned);
}

const cursorSchema = z.tuple([z.string(), z.string(), z.string()]);

export interface EndpointListRow {
  id: string;
  hostname: string;
  /** An admin's name for the endpoint, or null. */
  displayName: string | null;
  os: (typeof OPERATING_SYSTEMS)[number];
  osVersion: string;
  region: string;
  locationHint: LocationHint | null;
  jurisdiction: Jurisdiction | null;
  placedAt: number | null;
  runtimeColo: string | null;
  online: boolean;
  lastSeenAt: number | null;
  clientId: string;
  clientName: string;
  revokedAt: number | null;
  decommissionedAt: number | null;
  tags: string[];
}

export interface EndpointPage {
  rows: EndpointListRow[];
  total: number;
  nextCursor: string | null;
}

export function filterConditions(orgId: string, search: EndpointSearch): SQL[] {
  const conditions: SQL[] = [eq(endpoints.orgId, orgId)];
  if (search.client) conditions.push(eq(endpoints.clientId, search.client));
  if (search.os) conditions.push(eq(endpoints.os, search.os));
  if (search.status === "decommissioned") {
    conditions.push(isNotNull(endpoints.decommissionedAt));
  } else {
    // Decommissioned endpoints are kept for their transcript, not listed with the fleet.
    conditions.push(isNull(endpoints.decommissionedAt));
    if (search.status === "revoked") conditions.push(isNotNull(endpoints.revokedAt));
    else if (search.status) conditions.push(eq(endpoints.online, search.status === "online"));
  }
  if (search.tag) {
    conditions.push(
      inArray(
        endpoints.id,
        sql`(select ${endpointTags.endpointId} from ${endpointTags}
             join ${tags} on ${tags.id} = ${endpointTags.tagId}
             where ${tags.orgId} = ${orgId} and ${tags.name} = ${search.tag} collate nocase)`,
      ),
    );
  }
  if (search.q) {
    // LIKE is case-insensitive for ASCII in SQLite; escape the wildcards a user may type.
    const pattern = `%${search.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    conditions.push(
      sql`(${endpoints.hostname} like ${pattern} escape '\\'
           or ${endpoints.displayName} like ${pattern} escape '\\'
           or ${clients.name} like ${pattern} escape '\\'
           or ${endpoints.id} in (select ${endpointTags.endpointId} from ${endpointTags}
                join ${tags} on ${tags.id} = ${endpointTags.tagId}
                where ${tags.orgId} = ${orgId} and ${tags.name} like ${pattern} escape '\\'))`,
    );
  }
  return conditions;
}

/**
 * One page of a tenant's endpoints. Keyset pagination (never OFFSET) keeps every
 * page as cheap as the first at 10,000+ endpoints; the sort key is
 * (client name, hostname, id) when grouped and ("", hostname, id) otherwise.
 */
export async function searchEndpoints(
  db: Database,
  orgId: string,
  search: EndpointSearch,
  pageSize = ENDPOINT_PAGE_SIZE,
): Promise<EndpointPage> {
  const grouped = search.group === "client";
  const conditions = filterConditions(orgId, search);

  const [{ total }] = await db
    .select({ total: sql<number>`count(*)` })
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(and(...conditions));

  const found = await endpointPageQuery(db, orgId, search, pageSize + 1);

  const hasMore = found.length > pageSize;
  const page = hasMore ? found.slice(0, pageSize) : found;
  const tagsByEndpoint = await loadTags(db, page.map((row) => row.id));
  const last = page[page.length - 1];

  return {
    rows: page.map((row) => ({ ...row, tags: tagsByEndpoint.get(row.id) ?? [] })),
    total,
    nextCursor: hasMore && last ? encodeCursor([grouped ? last.clientName : "", last.hostname, last.id]) : null,
  };
}

const endpointListColumns = {
  id: endpoints.id,
  hostname: endpoints.hostname,
  displayName: endpoints.displayName,
  os: endpoints.os,
  osVersion: endpoints.osVersion,
  region: endpoints.region,
  ...sessionPlacementColumns,
  runtimeColo: endpoints.runtimeColo,
  online: endpoints.online,
  lastSeenAt: endpoints.lastSeenAt,
  clientId: endpoints.clientId,
  clientName: clients.name,
  revokedAt: endpoints.revokedAt,
  decommissionedAt: endpoints.decommissionedAt,
};

/** The page query on its own, so tests can check its plan uses an index. */
export function endpointPageQuery(db: Database, orgId: string, search: EndpointSearch, limit: number) {
  const grouped = search.group === "client";
  const conditions = filterConditions(orgId, search);
  const cursor = decodeCursor(search.after, cursorSchema);
  if (cursor && grouped) {
    conditions.push(sql`(${clients.name}, ${endpoints.hostname}, ${endpoints.id}) > (${cursor[0]}, ${cursor[1]}, ${cursor[2]})`);
  } else if (cursor) {
    conditions.push(sql`(${endpoints.hostname}, ${endpoints.id}) > (${cursor[1]}, ${cursor[2]})`);
  }
  return db
    .select(endpointListColumns)
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(and(...conditions))
    .orderBy(...(grouped ? [asc(clients.name)] : []), asc(endpoints.hostname), asc(endpoints.id))
    .limit(limit);
}

async function loadTags(db: Database, endpointIds: string[]): Promise<Map<string, string[]>> {
  const byEndpoint = new Map<string, string[]>();
  if (endpointIds.length === 0) return byEndpoint;
  const rows = await db
    .select({ endpointId: endpointTags.endpointId, name: tags.name })
    .from(endpointTags)
    .innerJoin(tags, eq(tags.id, endpointTags.tagId))
    .where(inArray(endpointTags.endpointId, endpointIds))
    .orderBy(asc(tags.name));
  for (const row of rows) {
    const list = byEndpoint.get(row.endpointId) ?? [];
    list.push(row.name);
    byEndpoint.set(row.endpointId, list);
  }
  return byEndpoint;
}

export async function listTagNames(db: Database, orgId: string): Promise<string[]> {
  const rows = await db.select({ name: tags.name }).from(tags).where(eq(tags.orgId, orgId)).orderBy(asc(tags.name));
  return rows.map((row) => row.name);
}

/** An endpoint of this tenant, or null: callers answer 404 so other tenants' ids are not disclosed. */
export async function getEndpointForOrg(db: Database, orgId: string, endpointId: string) {
  const [row] = await db
    .select({ ...endpointListColumns, enrolledAt: endpoints.enrolledAt })
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(and(eq(endpoints.orgId, orgId), eq(endpoints.id, endpointId)));
  if (!row) return null;
  const tagMap = await loadTags(db, [row.id]);
  return { ...row, tags: tagMap.get(row.id) ?? [] };
}
