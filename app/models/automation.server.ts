// Queuing library scripts on endpoints for people (the endpoint page), API
// tokens (/api/v1) and alert webhooks, and the REST API's request and response
// schemas (also the source of the OpenAPI document, app/models/openapi.server.ts).
import { and, eq, isNull, sql } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { createDb } from "~/db/client.server";
import { alertDeliveries, alertWebhooks, endpoints, scripts } from "~/db/schema";
import type { Env } from "~/lib/env.server";
import { newId, sha256Hex } from "~/lib/crypto.server";
import { InvalidCursorError } from "~/lib/keyset-cursor";
import { getEndpointForOrg } from "~/models/endpoints.server";
import { listEndpointCommands } from "~/models/transcript-export.server";
import { listReviewActivity, resolveWindow, reviewFiltersSchema } from "~/models/review.server";
import { renderScriptRun, ScriptError } from "~/models/script-library.server";
import { callSession } from "~/models/session-call.server";
import { sessionAddress } from "~/models/session-placement.server";
import { recordApiAudit, type ApiCaller } from "~/models/api-tokens.server";
import { alertRequestSchema, queueScriptRequestSchema, transcriptQuerySchema } from "~/models/api-schemas.server";

export { alertRequestSchema, queueScriptRequestSchema, transcriptQuerySchema };
import { describeZodError } from "@protocol/messages";
import type { MemberRole } from "@protocol/permissions";
import { SESSION_PATHS, type QueueSequenceRequest } from "@protocol/session-contract";

export interface QueueActor {
  userId: string;
  name: string;
  email: string | null;
  role: MemberRole;
  /** May run live commands (the edge's word, as for a viewer socket). */
  canRun: boolean;
  address: string | null;
}

export type Outcome = { status: number; body: Record<string, unknown> };

/** The identity an API token acts under: queuing sequences only, never live commands (the NOC row of docs/roles.md). */
export function apiActor(caller: ApiCaller, address: string | null): QueueActor {
  return { userId: `api:${caller.tokenId}`, name: `API token "${caller.name}"`, email: null, role: "noc", canRun: false, address };
}

/** Renders a library script and queues it in the endpoint's session; the session decides permission and approval. */
export async function queueLibraryRun(env: Env, orgId: string, endpointId: string, input: z.output<typeof queueScriptRequestSchema>, actor: QueueActor): Promise<Outcome> {
  const db = createDb(env.DB);
  const endpoint = await getEndpointForOrg(db, orgId, endpointId);
  if (!endpoint) return { status: 404, body: { error: `No endpoint ${endpointId} in your organisation` } };
  if (endpoint.decommissionedAt !== null) return { status: 409, body: { error: `${endpoint.hostname} was decommissioned: nothing new runs on it` } };
  let rendered;
  try {
    rendered = await renderScriptRun(db, orgId, input.scriptId, input.params, input.version);
  } catch (error) {
    if (error instanceof ScriptError) return { status: error.status, body: { error: error.message, ...(error.issues.length ? { issues: error.issues } : {}) } };
    throw error;
  }
  const body: QueueSequenceRequest = {
    sequence: {
      type: "run_sequence",
      requestId: input.requestId ?? crypto.randomUUID(),
      name: rendered.name,
      steps: rendered.steps,
      stopOnFailure: rendered.stopOnFailure,
      notBefore: input.notBefore,
      expiresAt: input.expiresAt,
      reason: input.reason,
    },
    script: rendered.ref,
  };
  const answer = await callSession(env, {
    session: sessionAddress(endpoint),
    path: SESSION_PATHS.queueSequence,
    body,
    identity: { peer: "directory", endpointId, orgId, userId: actor.userId, userName: actor.name, userEmail: actor.email, role: actor.role, canRun: actor.canRun, address: actor.address },
  });
  if (!answer.answered) return { status: 503, body: { error: `Nothing was queued: the endpoint's session did not answer (${answer.reason}). Try again.` } };
  const answerBody = (answer.body ?? {}) as Record<string, unknown>;
  if (answer.status >= 300) return { status: answer.status, body: { error: String(answerBody.error ?? "The session refused the sequence") } };
  return { status: answer.status, body: { ...answerBody, script: { id: rendered.ref.id, name: rendered.ref.name, version: rendered.ref.version } } };
}

// ---------------------------------------------------------------------------
// Reads

export async function readTranscript(db: Database, orgId: string, endpointId: string, query: z.output<typeof transcriptQuerySchema>, now = Date.now()): Promise<Outcome> {
  const endpoint = await getEndpointForOrg(db, orgId, endpointId);
  if (!endpoint) return { status: 404, body: { error: `No endpoint ${endpointId} in your organisation` } };
  const fromMs = query.from ? Date.parse(query.from) : now - 24 * 3_600_000;
  const toMs = query.to ? Date.parse(query.to) : null;
  if (toMs !== null && toMs <= fromMs) return { status: 400, body: { error: "to must be after from" } };
  const { commands, truncated } = await listEndpointCommands(db, orgId, endpointId, { fromMs, toMs, from: "", to: "" });
  return { status: 200, body: { endpointId, hostname: endpoint.hostname, from: new Date(fromMs).toISOString(), to: toMs === null ? null : new Date(toMs).toISOString(), truncated, commands } };
}

export async function readReview(db: Database, orgId: string, caller: ApiCaller, params: URLSearchParams, now = Date.now()): Promise<Outcome> {
  const parsed = reviewFiltersSchema.safeParse(Object.fromEntries(params));
  if (!parsed.success) return { status: 400, body: { error: `Invalid query: ${describeZodError(parsed.error)}` } };
  try {
    const page = await listReviewActivity(db, orgId, `api:${caller.tokenId}`, parsed.data, { now });
    return { status: 200, body: { rows: page.rows, nextCursor: page.nextCursor, window: resolveWindow(parsed.data, now) } };
  } catch (error) {
    if (error instanceof InvalidCursorError) return { status: 400, body: { error: "Invalid query: after is not a cursor this API issued" } };
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Alert webhooks

export const createWebhookSchema = z.object({
  name: z.string().trim().min(1, "Name the webhook").max(100),
  scriptId: z.string().min(1, "Choose a script"),
  /** Fixed parameter values; the alert may supply the others. */
  params: z.record(z.string(), z.union([z.string().max(1000), z.number(), z.boolean()])).default({}),
});

export async function createAlertWebhook(db: Database, orgId: string, input: z.input<typeof createWebhookSchema>, actor: { name: string }): Promise<string> {
  const { name, scriptId, params } = createWebhookSchema.parse(input);
  const [script] = await db.select({ id: scripts.id }).from(scripts).where(and(eq(scripts.orgId, orgId), eq(scripts.id, scriptId)));
  if (!script) throw new ScriptError("No such script in your organisation", 404);
  const id = newId("whk");
  await db.insert(alertWebhooks).values({ id, orgId, name, scriptId, params: JSON.stringify(params), createdBy: actor.name });
  await recordApiAudit(db, { orgId, kind: "webhook.created", actor: actor.name, detail: { webhookId: id, name, scriptId, params } });
  return id;
}

export async function listAlertWebhooks(db: Database, orgId: string) {
  return db
    .select({ id: alertWebhooks.id, name: alertWebhooks.name, scriptId: alertWebhooks.scriptId, scriptName: scripts.name, params: alertWebhooks.params, createdBy: alertWebhooks.createdBy, createdAt: alertWebhooks.createdAt, disabledAt: alertWebhooks.disabledAt })
    .from(alertWebhooks)
    .innerJoin(scripts, eq(scripts.id, alertWebhooks.scriptId))
    .where(eq(alertWebhooks.orgId, orgId));
}

export async function disableAlertWebhook(db: Database, orgId: string, webhookId: string, actor: { name: string }): Promise<boolean> {
  const done = await db
    .update(alertWebhooks)
    .set({ disabledAt: Date.now() })
    .where(and(eq(alertWebhooks.orgId, orgId), eq(alertWebhooks.id, webhookId), isNull(alertWebhooks.disabledAt)))
    .returning({ id: alertWebhooks.id });
  if (done.length) await recordApiAudit(db, { orgId, kind: "webhook.disabled", actor: actor.name, detail: { webhookId } });
  return done.length > 0;
}

/**
 * One alert: find the endpoint it names, queue the webhook's script there,
 * once per alert id. The first successful answer is stored and repeated for
 * every later delivery of the same alert; a failed attempt stores nothing, so
 * the alerting system's retry can still succeed. Two deliveries racing both
 * reach the session with the same request id, which queues it once.
 */
export async function receiveAlert(env: Env, caller: ApiCaller, webhookId: string, raw: unknown, address: string | null): Promise<Outcome> {
  const db = createDb(env.DB);
  const [webhook] = await db.select().from(alertWebhooks).where(and(eq(alertWebhooks.orgId, caller.orgId), eq(alertWebhooks.id, webhookId)));
  if (!webhook || webhook.disabledAt !== null) return { status: 404, body: { error: `No active alert webhook ${webhookId} in this token's organisation` } };
  const parsed = alertRequestSchema.safeParse(raw);
  if (!parsed.success) return { status: 400, body: { error: `Invalid alert: ${describeZodError(parsed.error)}` } };
  const alert = parsed.data;
  const [seen] = await db.select().from(alertDeliveries).where(and(eq(alertDeliveries.webhookId, webhookId), eq(alertDeliveries.alertId, alert.alertId)));
  if (seen) return { status: 200, body: { ...(JSON.parse(seen.outcome) as Record<string, unknown>), duplicate: true } };

  let endpointId = alert.endpointId;
  if (!endpointId) {
    const matches = await db
      .select({ id: endpoints.id })
      .from(endpoints)
      .where(and(eq(endpoints.orgId, caller.orgId), sql`${endpoints.hostname} = ${alert.hostname} collate nocase`, isNull(endpoints.decommissionedAt)))
      .limit(2);
    if (matches.length === 0) return { status: 404, body: { error: `No endpoint called ${alert.hostname} in this organisation` } };
    if (matches.length > 1) return { status: 409, body: { error: `More than one endpoint is called ${alert.hostname}; send endpointId instead` } };
    endpointId = matches[0]!.id;
  }
  const fixed = JSON.parse(webhook.params) as Record<string, string | number | boolean>;
  const requestId = `alert_${(await sha256Hex(`${webhookId}\n${alert.alertId}`)).slice(0, 40)}`;
  const outcome = await queueLibraryRun(
    env,
    caller.orgId,
    endpointId,
    { scriptId: webhook.scriptId, params: { ...alert.params, ...fixed }, requestId, notBefore: null, expiresAt: null, reason: alert.reason || `Alert ${alert.alertId} (${webhook.name})` },
    { ...apiActor(caller, address), name: `Alert webhook "${webhook.name}" (token "${caller.name}")` },
  );
  await recordApiAudit(db, {
    orgId: caller.orgId,
    kind: outcome.status < 300 ? "alert.queued" : "alert.refused",
    actor: caller.name,
    tokenId: caller.tokenId,
    detail: { webhookId, alertId: alert.alertId, endpointId, status: outcome.status, ...(outcome.status >= 300 ? { error: outcome.body.error } : {}) },
  });
  if (outcome.status >= 300) return outcome;
  const body = { ...outcome.body, alertId: alert.alertId, endpointId, duplicate: false };
  await db
    .insert(alertDeliveries)
    .values({ webhookId, alertId: alert.alertId, orgId: caller.orgId, endpointId, requestId, outcome: JSON.stringify(body), receivedAt: Date.now() })
    .onConflictDoNothing();
  return { status: 201, body };
}
