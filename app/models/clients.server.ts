import { and, asc, eq, sql } from "drizzle-orm";
import type { Database } from "~/db/client.server";
import { clients, endpoints } from "~/db/schema";

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
