// The directory's record of where each endpoint's session lives (D1
// endpoints.location_hint / jurisdiction / placed_at), and the first-contact
// placement the edge performs for a runtime (docs/decisions/0019-session-placement.md).
import { endpoints } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import type { SessionPlacement } from "@protocol/placement";
import { SESSION_PATHS, type PlacementRequest } from "@protocol/session-contract";
import { callSessionAsDirectory, type SessionAddress } from "./session-call.server";

export const sessionPlacementColumns = {
  jurisdiction: endpoints.jurisdiction,
  locationHint: endpoints.locationHint,
  placedAt: endpoints.placedAt,
};
export type SessionPlacementColumns = {
  jurisdiction: (typeof endpoints.$inferSelect)["jurisdiction"];
  locationHint: (typeof endpoints.$inferSelect)["locationHint"];
  placedAt: number | null;
};

export function sessionAddress(endpoint: { id: string } & SessionPlacementColumns): SessionAddress {
  return { endpointId: endpoint.id, placement: { jurisdiction: endpoint.jurisdiction, locationHint: endpoint.locationHint, placedAt: endpoint.placedAt } };
}

/**
 * The runtime's first contact creates its session: in the tenant's jurisdiction,
 * with the location hint its request gave, and tells the session where it is.
 * Then the directory records it; only after that may viewers and approvals
 * reach the session. Returns false (and changes nothing in D1) when the
 * session did not answer; the runtime's next connect tries again.
 */
export async function placeSession(
  env: Env,
  endpoint: { id: string; orgId: string } & SessionPlacementColumns,
  colo: string | null,
  now = Date.now(),
): Promise<boolean> {
  if (endpoint.placedAt !== null) return true;
  const placement: SessionPlacement = { jurisdiction: endpoint.jurisdiction, locationHint: endpoint.locationHint, placedAt: now, colo };
  const answer = await callSessionAsDirectory(env, {
    session: sessionAddress(endpoint),
    orgId: endpoint.orgId,
    path: SESSION_PATHS.placement,
    body: { placement } satisfies PlacementRequest,
    actor: { userId: null, name: "runtime's first contact" },
    createIfUnplaced: true,
  });
  if (!answer.answered || answer.status !== 200) {
    console.error(`placing the session of ${endpoint.id} failed`, answer.answered ? answer.body : answer.reason);
    return false;
  }
  await env.DB.prepare("UPDATE endpoints SET placed_at = ?, location_hint = ?, runtime_colo = COALESCE(?, runtime_colo) WHERE id = ? AND placed_at IS NULL")
    .bind(now, endpoint.locationHint, colo, endpoint.id)
    .run();
  return true;
}

/** Remembers the data centre a runtime came through, writing only when it changed (connects, not every check-in). */
export async function recordRuntimeColo(env: Env, endpoint: { id: string; runtimeColo: string | null }, colo: string | null): Promise<void> {
  if (!colo || colo === endpoint.runtimeColo) return;
  await env.DB.prepare("UPDATE endpoints SET runtime_colo = ? WHERE id = ?").bind(colo, endpoint.id).run();
}
