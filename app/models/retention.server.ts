// The tenant's retention setting (docs/decisions/0029-retention.md): how long
// endpoint sessions keep finished commands, output and audit events, and how
// long the D1 audit replica keeps events before archiving them to R2. Saving
// it asks every session of the tenant to re-read its policy copy, which carries
// the setting; each session audits the change under the admin's name.
import { eq } from "drizzle-orm";
import * as z from "zod";
import { createDb } from "~/db/client.server";
import { clients, organisations, type Role } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import { RETENTION_DAYS } from "../../protocol/audit";
import { refreshSessionPolicies, type SessionPolicyRefresh } from "./session-policy.server";

export const retentionFormSchema = z.object({
  retentionDays: z.coerce
    .number({ message: "Retention must be a number of days" })
    .int("Retention must be a whole number of days")
    .min(RETENTION_DAYS.min, `Retention must be at least ${RETENTION_DAYS.min} days`)
    .max(RETENTION_DAYS.max, `Retention must be at most ${RETENTION_DAYS.max} days`),
});

export class RetentionSettingError extends Error {}

export async function getRetention(env: Env, orgId: string) {
  const [row] = await createDb(env.DB)
    .select({ days: organisations.retentionDays, updatedBy: organisations.retentionUpdatedBy, updatedAt: organisations.retentionUpdatedAt })
    .from(organisations)
    .where(eq(organisations.id, orgId));
  return row ?? { days: RETENTION_DAYS.default, updatedBy: null, updatedAt: null };
}

/** Admins only (checked here as well as by the route); returns how many sessions were told now. */
export async function setRetention(
  env: Env,
  orgId: string,
  actor: { userId: string; name: string; role: Role },
  input: unknown,
): Promise<SessionPolicyRefresh & { days: number }> {
  if (actor.role !== "admin") throw new RetentionSettingError(`The ${actor.role} role cannot change retention.`);
  const parsed = retentionFormSchema.safeParse(input);
  if (!parsed.success) throw new RetentionSettingError(parsed.error.issues.map((issue) => issue.message).join("; "));
  const db = createDb(env.DB);
  await db
    .update(organisations)
    .set({ retentionDays: parsed.data.retentionDays, retentionUpdatedBy: actor.name, retentionUpdatedAt: Date.now() })
    .where(eq(organisations.id, orgId));
  const tenantClients = await db.select({ id: clients.id }).from(clients).where(eq(clients.orgId, orgId));
  const total: SessionPolicyRefresh = { refreshed: 0, failed: [] };
  for (const client of tenantClients) {
    const outcome = await refreshSessionPolicies(env, orgId, client.id, { userId: actor.userId, name: actor.name });
    total.refreshed += outcome.refreshed;
    total.failed.push(...outcome.failed);
  }
  return { ...total, days: parsed.data.retentionDays };
}
