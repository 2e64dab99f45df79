// Recurring maintenance windows per client or per endpoint tag (ADR 0026).
// Stored in D1; each affected session re-reads them with the client's policy
// (refreshSessionPolicies), so the session decides on its own, from its copy,
// when windowed work may start.
import { and, asc, eq, inArray, isNotNull, isNull } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { clients, endpoints, endpointTags, maintenanceWindows, tags } from "~/db/schema";
import { newId } from "~/lib/crypto.server";
import type { Env } from "~/lib/env.server";
import { describeWindow, maintenanceWindowSchema, nextOpening, type MaintenanceWindow } from "@protocol/maintenance-windows";
import { refreshSessionPolicies, type PolicyActor, type SessionPolicyRefresh } from "./session-policy.server";

export const saveWindowSchema = z
  .object({
    clientId: z.string().trim().max(128).default(""),
    tagId: z.string().trim().max(128).default(""),
    days: maintenanceWindowSchema.shape.days,
    startMinute: maintenanceWindowSchema.shape.startMinute,
    durationMinutes: maintenanceWindowSchema.shape.durationMinutes,
  })
  .refine((w) => Boolean(w.clientId) !== Boolean(w.tagId), { message: "A window belongs to one client or one tag" });

export class MaintenanceWindowError extends Error {}

export interface ListedWindow extends MaintenanceWindow {
  clientId: string | null;
  clientName: string | null;
  tagId: string | null;
  tagName: string | null;
  description: string;
}

export async function listMaintenanceWindows(db: Database, orgId: string): Promise<ListedWindow[]> {
  const rows = await db
    .select({ window: maintenanceWindows, clientName: clients.name, tagName: tags.name })
    .from(maintenanceWindows)
    .leftJoin(clients, eq(clients.id, maintenanceWindows.clientId))
    .leftJoin(tags, eq(tags.id, maintenanceWindows.tagId))
    .where(eq(maintenanceWindows.orgId, orgId))
    .orderBy(asc(clients.name), asc(tags.name), asc(maintenanceWindows.startMinute));
  return rows.map(({ window, clientName, tagName }) => {
    const shape = { id: window.id, days: JSON.parse(window.days) as number[], startMinute: window.startMinute, durationMinutes: window.durationMinutes };
    return { ...shape, clientId: window.clientId, clientName, tagId: window.tagId, tagName, description: describeWindow(shape) };
  });
}

/** When a client's windows next open, in its zone: what the console shows next to queued windowed work. */
export function nextOpeningOf(windows: readonly MaintenanceWindow[], zone: string, now = Date.now()): number | null {
  let earliest: number | null = null;
  for (const window of windows) {
    const { opensAt } = nextOpening(window, zone, now);
    if (earliest === null || opensAt < earliest) earliest = opensAt;
  }
  return earliest;
}

export async function saveMaintenanceWindow(
  env: Pick<Env, "DB" | "ENDPOINT_SESSION">,
  db: Database,
  orgId: string,
  raw: z.input<typeof saveWindowSchema>,
  actor: PolicyActor,
): Promise<{ id: string; refresh: SessionPolicyRefresh }> {
  const input = saveWindowSchema.parse(raw);
  // The owner must be this tenant's: an id from another tenant is "not found", nothing is stored.
  if (input.clientId) {
    const [client] = await db.select({ id: clients.id }).from(clients).where(and(eq(clients.orgId, orgId), eq(clients.id, input.clientId)));
    if (!client) throw new MaintenanceWindowError("No such client in your organisation");
  } else {
    const [tag] = await db.select({ id: tags.id }).from(tags).where(and(eq(tags.orgId, orgId), eq(tags.id, input.tagId)));
    if (!tag) throw new MaintenanceWindowError("No such tag in your organisation");
  }
  const id = newId("mw");
  await db.insert(maintenanceWindows).values({
    id,
    orgId,
    clientId: input.clientId || null,
    tagId: input.tagId || null,
    days: JSON.stringify([...new Set(input.days)].sort()),
    startMinute: input.startMinute,
    durationMinutes: input.durationMinutes,
    createdBy: actor.name,
    createdAt: Date.now(),
  });
  return { id, refresh: await refreshAffectedSessions(env, db, orgId, input.clientId || null, input.tagId || null, actor) };
}

export async function deleteMaintenanceWindow(env: Pick<Env, "DB" | "ENDPOINT_SESSION">, db: Database, orgId: string, id: string, actor: PolicyActor) {
  const [window] = await db.select().from(maintenanceWindows).where(and(eq(maintenanceWindows.orgId, orgId), eq(maintenanceWindows.id, id)));
  if (!window) throw new MaintenanceWindowError("No such maintenance window in your organisation");
  await db.delete(maintenanceWindows).where(and(eq(maintenanceWindows.orgId, orgId), eq(maintenanceWindows.id, id)));
  return refreshAffectedSessions(env, db, orgId, window.clientId, window.tagId, actor);
}

/** The sessions whose windows changed re-read their policy (and windows) now, like a policy save. */
async function refreshAffectedSessions(
  env: Pick<Env, "DB" | "ENDPOINT_SESSION">,
  db: Database,
  orgId: string,
  clientId: string | null,
  tagId: string | null,
  actor: PolicyActor,
): Promise<SessionPolicyRefresh> {
  const clientIds = clientId
    ? [clientId]
    : (
        await db
          .selectDistinct({ clientId: endpoints.clientId })
          .from(endpoints)
          .where(
            and(
              eq(endpoints.orgId, orgId),
              isNull(endpoints.decommissionedAt),
              isNotNull(endpoints.placedAt),
              inArray(endpoints.id, db.select({ id: endpointTags.endpointId }).from(endpointTags).where(eq(endpointTags.tagId, tagId!))),
            ),
          )
      ).map((row) => row.clientId);
  const total: SessionPolicyRefresh = { refreshed: 0, failed: [] };
  for (const id of clientIds) {
    const outcome = await refreshSessionPolicies(env, orgId, id, actor);
    total.refreshed += outcome.refreshed;
    total.failed.push(...outcome.failed);
  }
  return total;
}
