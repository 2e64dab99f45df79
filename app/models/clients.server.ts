import { and, asc, eq, sql } from "drizzle-orm";
import type { Database } from "~/db/client.server";
import { clients, endpoints } from "~/db/schema";
import { isValidTimeZone } from "@protocol/approvals";

export interface ClientSummary {
  id: string;
  name: string;
  contactName: string | null;
  contactEmail: string | null;
  endpointCount: number;
  onlineCount: number;
}

export async function listClients(db: Database, orgId: string): Promise<ClientSummary[]> {
  return db
    .select({
      id: clients.id,
      name: clients.name,
      contactName: clients.contactName,
      contactEmail: clients.contactEmail,
      endpointCount: sql<number>`count(${endpoints.id})`,
      onlineCount: sql<number>`coalesce(sum(${endpoints.online}), 0)`,
    })
    .from(clients)
    .leftJoin(endpoints, eq(endpoints.clientId, clients.id))
    .where(eq(clients.orgId, orgId))
    .groupBy(clients.id)
    .orderBy(asc(clients.name));
}

/** A client of this tenant, or null (callers answer 404 so other tenants' ids are not disclosed). */
export async function getClientForOrg(db: Database, orgId: string, clientId: string) {
  const [row] = await db
    .select()
    .from(clients)
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)));
  return row ?? null;
}

export type TimeZoneResult = { ok: true; timeZone: string } | { ok: false; status: 400 | 404; error: string };

/**
 * Sets the IANA zone the client's people live in (approval pages and emails
 * show times in it). Validated against the runtime's own zone database, so a
 * zone saved here is one every formatter in the stack accepts.
 */
export async function setClientTimeZone(db: Database, orgId: string, clientId: string, zone: string): Promise<TimeZoneResult> {
  const typed = zone.trim();
  if (!typed || typed.length > 64 || !isValidTimeZone(typed)) {
    return { ok: false, status: 400, error: `"${typed.slice(0, 64)}" is not a time zone. Use an IANA name such as Europe/Berlin or America/Chicago.` };
  }
  // Zone names match case-insensitively; store the canonical spelling ("europe/berlin" → "Europe/Berlin").
  const timeZone = new Intl.DateTimeFormat("en-US", { timeZone: typed }).resolvedOptions().timeZone;
  const updated = await db
    .update(clients)
    .set({ timeZone })
    .where(and(eq(clients.orgId, orgId), eq(clients.id, clientId)))
    .returning({ id: clients.id });
  if (updated.length === 0) return { ok: false, status: 404, error: "No such client in your organisation." };
  return { ok: true, timeZone };
}
