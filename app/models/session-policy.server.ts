// Tells every endpoint session of a client that its approval policy (or the
// client's time zone) changed. Each session re-reads the policy from D1 itself
// and keeps its own copy, so commands never wait on D1; this call only says
// "read it now" and carries no policy, so the session has one reader of the
// directory and nothing here can hand it a policy of our own making.
import { and, asc, eq, isNotNull, isNull } from "drizzle-orm";
import * as z from "zod";
import { createDb } from "~/db/client.server";
import { endpoints } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import { SESSION_PATHS } from "@protocol/session-contract";
import { callSessionAsDirectory, type SessionAddress } from "./session-call.server";
import { sessionAddress, sessionPlacementColumns } from "./session-placement.server";

/** Sessions asked at once: enough to finish a client's fleet quickly without a burst of DO wake-ups. */
const CONCURRENCY = 8;
/** A session that has not answered by then is reported as not updated; it re-reads when its runtime next connects. */
const REFRESH_TIMEOUT_MS = 10_000;

const refreshedBodySchema = z.object({ version: z.number().int().nonnegative() });

export interface SessionPolicyRefresh {
  refreshed: number;
  failed: { endpointId: string; hostname: string }[];
}

/** The admin whose save caused the refresh; the session audits the change under their name. */
export interface PolicyActor {
  userId: string;
  name: string;
}

export async function refreshSessionPolicies(env: Pick<Env, "DB" | "ENDPOINT_SESSION">, orgId: string, clientId: string, actor: PolicyActor): Promise<SessionPolicyRefresh> {
  const fleet = await createDb(env.DB)
    .select({ endpointId: endpoints.id, hostname: endpoints.hostname, ...sessionPlacementColumns })
    .from(endpoints)
    // A decommissioned endpoint runs nothing, so its session has no use for the policy. A session not created
    // yet has no copy to refresh (it loads the policy when its runtime's first contact creates it), and asking
    // it would create it here instead of near the endpoint.
    .where(and(eq(endpoints.orgId, orgId), eq(endpoints.clientId, clientId), isNull(endpoints.decommissionedAt), isNotNull(endpoints.placedAt)))
    .orderBy(asc(endpoints.hostname), asc(endpoints.id));

  const failed: SessionPolicyRefresh["failed"] = [];
  let refreshed = 0;
  let next = 0;
  const worker = async () => {
    while (next < fleet.length) {
      const endpoint = fleet[next++]!;
      if (await refreshOne(env, orgId, sessionAddress({ id: endpoint.endpointId, ...endpoint }), actor)) refreshed++;
      else failed.push({ endpointId: endpoint.endpointId, hostname: endpoint.hostname });
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, fleet.length) }, worker));
  failed.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.endpointId.localeCompare(b.endpointId));
  return { refreshed, failed };
}

async function refreshOne(env: Pick<Env, "ENDPOINT_SESSION">, orgId: string, session: SessionAddress, actor: PolicyActor): Promise<boolean> {
  const endpointId = session.endpointId;
  const result = await callSessionAsDirectory(env, {
    session,
    orgId,
    path: SESSION_PATHS.policy,
    body: {},
    actor: { userId: actor.userId, name: actor.name },
    timeoutMs: REFRESH_TIMEOUT_MS,
  });
  if (!result.answered) {
    console.error(`policy refresh for ${endpointId}: session unreachable (${result.reason})`);
    return false;
  }
  if (result.status === 200 && refreshedBodySchema.safeParse(result.body).success) return true;
  console.error(`policy refresh for ${endpointId}: session answered ${result.status}`, result.body);
  return false;
}
