// Fleet runs (docs/decisions/0026-fleet-runs-and-maintenance-windows.md): one
// command or sequence queued on many endpoints of a tenant, chosen by client,
// tag, OS or a saved filter. Each target's session gets the work through its
// one run path (SESSION_PATHS.fleetQueue) and holds it until its runtime is
// reachable; the console records what it handed over, and reads each target's
// progress from the audit replica the sessions write by alarm. Nothing a
// session does for a command waits on D1.
import { and, asc, desc, eq, isNull, sql } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { clients, endpointFilters, endpoints, fleetRunCommands, fleetRuns, fleetRunTargets, type Role } from "~/db/schema";
import { newId } from "~/lib/crypto.server";
import { TARGET_STATES, type TargetState } from "~/lib/fleet-states";
import type { Env } from "~/lib/env.server";
import { MAX_COMMAND_LENGTH, MAX_SEQUENCE_STEPS, shellSchema } from "@protocol/messages";

/** Re-exported so routes validate through this server module and never pull zod into a browser bundle. */
export { describeZodError } from "@protocol/messages";
import { fleetQueueAnswerSchema, SESSION_PATHS } from "@protocol/session-contract";
import { endpointSearchSchema, filterConditions } from "./endpoints.server";
import { callSession, NOT_PLACED_REASON } from "./session-call.server";
import { sessionAddress, sessionPlacementColumns } from "./session-placement.server";

/** Sessions asked at once (as for policy refreshes): a large fleet finishes quickly without a burst of DO wake-ups. */
const QUEUE_CONCURRENCY = 8;
/** D1 statements per batch when recording targets. */
const WRITE_BATCH = 50;
/** The largest fleet one run may target; bigger fleets are split by client or tag. */
export const MAX_FLEET_TARGETS = 5_000;

export const FLEET_RUN_ROLES: readonly Role[] = ["admin", "technician"];

/** Which endpoints: any combination of client, tag and OS, or a saved filter (combined with them). */
export const fleetSelectorSchema = z
  .object({
    client: z.string().trim().max(128).default(""),
    tag: z.string().trim().max(100).default(""),
    os: endpointSearchSchema.shape.os.unwrap().unwrap().default(""),
    filterId: z.string().trim().max(128).default(""),
  })
  .refine((s) => s.client || s.tag || s.os || s.filterId, { message: "Choose the endpoints: a client, a tag, an OS or a saved filter" });
export type FleetSelector = z.infer<typeof fleetSelectorSchema>;

export const fleetRunInputSchema = z
  .object({
    name: z.string().trim().min(1, "Name the run").max(100),
    steps: z
      .array(z.object({ text: z.string().trim().min(1, "A step is empty").max(MAX_COMMAND_LENGTH), shell: shellSchema.default("default"), idempotent: z.boolean().default(false) }))
      .min(1, "Give at least one command")
      .max(MAX_SEQUENCE_STEPS),
    /** One step runs as a single command unless asked to run as a sequence. */
    asSequence: z.boolean().default(false),
    stopOnFailure: z.boolean().default(true),
    schedule: z.enum(["now", "at", "window"]).default("now"),
    notBefore: z.number().int().nonnegative().nullable().default(null),
    reason: z.string().trim().max(500).default(""),
    selector: fleetSelectorSchema,
  })
  .refine((input) => input.schedule !== "at" || input.notBefore !== null, { message: "Give the time to run at", path: ["notBefore"] });
export type FleetRunInput = z.input<typeof fleetRunInputSchema>;

export interface FleetRunActor {
  userId: string;
  name: string;
  email: string;
  role: Role;
  address?: string | null;
}

export const savedFilterSchema = z.object({
  name: z.string().trim().min(1, "Name the filter").max(100),
  q: z.string().trim().max(100).default(""),
  client: z.string().trim().max(128).default(""),
  tag: z.string().trim().max(100).default(""),
  os: endpointSearchSchema.shape.os.unwrap().unwrap().default(""),
});

export async function saveEndpointFilter(db: Database, orgId: string, input: z.input<typeof savedFilterSchema>, createdBy: string): Promise<string> {
  const { name, ...filter } = savedFilterSchema.parse(input);
  const id = newId("flt");
  await db
    .insert(endpointFilters)
    .values({ id, orgId, name, filter: JSON.stringify(filter), createdBy, createdAt: Date.now() })
    .onConflictDoUpdate({ target: [endpointFilters.orgId, endpointFilters.name], set: { filter: JSON.stringify(filter), createdBy } });
  const [row] = await db.select({ id: endpointFilters.id }).from(endpointFilters).where(and(eq(endpointFilters.orgId, orgId), eq(endpointFilters.name, name)));
  return row!.id;
}

export async function listEndpointFilters(db: Database, orgId: string): Promise<{ id: string; name: string; description: string }[]> {
  const rows = await db.select().from(endpointFilters).where(eq(endpointFilters.orgId, orgId)).orderBy(asc(endpointFilters.name));
  return rows.map((row) => ({ id: row.id, name: row.name, description: describeFilter(JSON.parse(row.filter) as Record<string, string>) }));
}

function describeFilter(filter: Record<string, string>): string {
  return Object.entries(filter)
    .filter(([, value]) => value)
    .map(([key, value]) => `${key}: ${value}`)
    .join(", ");
}

export class FleetRunError extends Error {}


/**
 * The endpoints of this tenant the selector names, in service (not revoked or
 * decommissioned). Every condition includes the tenant, so another tenant's
 * endpoint can never be a target, whatever ids a request carries.
 */
export async function resolveFleetTargets(db: Database, orgId: string, rawSelector: z.input<typeof fleetSelectorSchema>) {
  const selector = fleetSelectorSchema.parse(rawSelector);
  let search = endpointSearchSchema.parse({ client: selector.client, tag: selector.tag, os: selector.os });
  const conditions = filterConditions(orgId, search);
  if (selector.filterId) {
    const [saved] = await db.select().from(endpointFilters).where(and(eq(endpointFilters.orgId, orgId), eq(endpointFilters.id, selector.filterId)));
    if (!saved) throw new FleetRunError("No such saved filter in your organisation");
    search = endpointSearchSchema.parse(JSON.parse(saved.filter));
    conditions.push(...filterConditions(orgId, search));
  }
  conditions.push(isNull(endpoints.revokedAt));
  return db
    .select({ endpointId: endpoints.id, hostname: endpoints.hostname, clientName: clients.name, ...sessionPlacementColumns })
    .from(endpoints)
    .innerJoin(clients, eq(clients.id, endpoints.clientId))
    .where(and(...conditions))
    .orderBy(asc(clients.name), asc(endpoints.hostname), asc(endpoints.id))
    .limit(MAX_FLEET_TARGETS + 1);
}

type TargetRecord = typeof fleetRunTargets.$inferInsert;
type CommandRecord = typeof fleetRunCommands.$inferInsert;

/**
 * Records the run, then hands its work to every target's session (bounded
 * concurrency). An endpoint whose runtime never connected has no session yet:
 * it is recorded as "never connected" and nothing is queued for it (creating
 * its session here would put it wherever this request runs, ADR 0019).
 */
export async function createFleetRun(env: Pick<Env, "DB" | "ENDPOINT_SESSION">, db: Database, orgId: string, actor: FleetRunActor, raw: FleetRunInput) {
  if (!FLEET_RUN_ROLES.includes(actor.role)) throw new FleetRunError(`The ${actor.role} role cannot start fleet runs`);
  const input = fleetRunInputSchema.parse(raw);
  const targets = await resolveFleetTargets(db, orgId, input.selector);
  if (targets.length === 0) throw new FleetRunError("No endpoint in service matches that choice");
  if (targets.length > MAX_FLEET_TARGETS) throw new FleetRunError(`More than ${MAX_FLEET_TARGETS} endpoints match: narrow it by client or tag`);
  const kind = input.steps.length > 1 || input.asSequence ? "sequence" : "command";
  const fleetRunId = newId("fleet");
  const createdAt = Date.now();
  await db.insert(fleetRuns).values({
    id: fleetRunId,
    orgId,
    name: input.name,
    kind,
    steps: JSON.stringify(input.steps),
    stopOnFailure: input.stopOnFailure,
    selector: JSON.stringify(input.selector),
    schedule: input.schedule,
    notBefore: input.schedule === "at" ? input.notBefore : null,
    createdById: actor.userId,
    createdByName: actor.name,
    createdAt,
  });

  const targetRows: TargetRecord[] = [];
  const commandRows: CommandRecord[] = [];
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const target = targets[next++]!;
      const requestId = `${fleetRunId}:${target.endpointId}`;
      const base = { fleetRunId, endpointId: target.endpointId, orgId, hostname: target.hostname, clientName: target.clientName, requestId };
      if (target.placedAt === null) {
        targetRows.push({ ...base, handover: "never_connected", error: NOT_PLACED_REASON });
        continue;
      }
      const run =
        kind === "sequence"
          ? {
              type: "run_sequence",
              requestId,
              name: input.name,
              steps: input.steps,
              stopOnFailure: input.stopOnFailure,
              notBefore: input.schedule === "at" ? input.notBefore : null,
              maintenanceWindow: input.schedule === "window",
              reason: input.reason,
            }
          : {
              type: "run",
              requestId,
              text: input.steps[0]!.text,
              shell: input.steps[0]!.shell,
              notBefore: input.schedule === "at" ? input.notBefore : null,
              maintenanceWindow: input.schedule === "window",
              reason: input.reason,
            };
      const result = await callSession(env, {
        session: sessionAddress({ id: target.endpointId, ...target }),
        path: SESSION_PATHS.fleetQueue,
        body: { fleetRunId, run },
        identity: {
          peer: "directory",
          endpointId: target.endpointId,
          orgId,
          userId: actor.userId,
          userName: actor.name,
          userEmail: actor.email,
          role: actor.role,
          canRun: FLEET_RUN_ROLES.includes(actor.role),
          address: actor.address ?? null,
        },
      });
      if (!result.answered) {
        targetRows.push({ ...base, handover: "unreachable", error: `Not queued: ${result.reason}` });
        continue;
      }
      const answer = fleetQueueAnswerSchema.safeParse(result.body);
      if (!answer.success) {
        targetRows.push({ ...base, handover: "unreachable", error: `Not queued: the session answered ${result.status}` });
      } else if (!answer.data.queued) {
        targetRows.push({ ...base, handover: "refused", error: answer.data.error });
      } else {
        targetRows.push({ ...base, handover: "queued", sequenceId: answer.data.sequenceId });
        for (const command of answer.data.commands) commandRows.push({ fleetRunId, endpointId: target.endpointId, commandId: command.commandId, step: command.step });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(QUEUE_CONCURRENCY, targets.length) }, worker));
  const statements = [
    ...targetRows.map((row) => db.insert(fleetRunTargets).values(row)),
    ...commandRows.map((row) => db.insert(fleetRunCommands).values(row)),
  ];
  for (let i = 0; i < statements.length; i += WRITE_BATCH) {
    const chunk = statements.slice(i, i + WRITE_BATCH);
    await db.batch(chunk as [(typeof chunk)[number], ...(typeof chunk)[number][]]);
  }
  return { fleetRunId, targets: targetRows.length };
}

export interface FleetTargetProgress {
  endpointId: string;
  hostname: string;
  clientName: string;
  state: TargetState;
  detail: string | null;
  /** The newest step the replica has heard of, 1-based, of `steps`. */
  step: number;
  steps: number;
  lastEventAt: number | null;
}

type StepRow = { endpoint_id: string; step: number; kind: string | null; status: string | null; at: number | null; window: number | null };

/**
 * A target's state from the audit replica of its commands: every step
 * succeeded → done; any step ended otherwise → failed; one dispatched → running;
 * else queued, shown as offline when its runtime is away, or waiting for its
 * approval or its maintenance window.
 */
export function deriveTargetState(
  steps: { kind: string | null; status: string | null; window: boolean }[],
  online: boolean,
): { state: TargetState; detail: string | null; step: number } {
  const finished = steps.filter((s) => s.kind === "command.finished");
  const failed = finished.find((s) => s.status !== "succeeded");
  if (failed) return { state: "failed", detail: `step ${steps.indexOf(failed) + 1} ${failed.status}`, step: steps.indexOf(failed) + 1 };
  if (steps.length > 0 && finished.length === steps.length) return { state: "done", detail: null, step: steps.length };
  const current = steps.findIndex((s) => s.kind !== "command.finished");
  const step = steps[current];
  if (step?.kind === "command.dispatched") return { state: "running", detail: null, step: current + 1 };
  if (!online) return { state: "offline", detail: null, step: current + 1 };
  if (step?.status === "pending_approval" || step?.kind?.startsWith("approval.")) return { state: "waiting_for_approval", detail: null, step: current + 1 };
  if (step?.window) return { state: "waiting_for_window", detail: null, step: current + 1 };
  return { state: "queued", detail: null, step: current + 1 };
}

export interface FleetRunProgress {
  run: { id: string; name: string; kind: "command" | "sequence"; steps: { text: string }[]; schedule: string; notBefore: number | null; createdByName: string; createdAt: number };
  counts: Record<TargetState, number>;
  targets: FleetTargetProgress[];
}

export async function getFleetRunProgress(db: Database, orgId: string, fleetRunId: string): Promise<FleetRunProgress | null> {
  const [run] = await db.select().from(fleetRuns).where(and(eq(fleetRuns.orgId, orgId), eq(fleetRuns.id, fleetRunId)));
  if (!run) return null;
  const targets = await db
    .select({ target: fleetRunTargets, online: endpoints.online })
    .from(fleetRunTargets)
    .leftJoin(endpoints, eq(endpoints.id, fleetRunTargets.endpointId))
    .where(and(eq(fleetRunTargets.fleetRunId, run.id), eq(fleetRunTargets.orgId, orgId)))
    .orderBy(asc(fleetRunTargets.clientName), asc(fleetRunTargets.hostname));
  // The newest replicated audit event of each step's command (queued → dispatched → finished).
  const stepRows = (await db.all(sql`
    select c.endpoint_id, c.step,
           (select a.kind from audit_events a where a.command_id = c.command_id and a.endpoint_id = c.endpoint_id and a.org_id = ${orgId}
              and a.kind in ('command.requested', 'command.dispatched', 'command.finished') order by a.seq desc limit 1) as kind,
           (select a.status from audit_events a where a.command_id = c.command_id and a.endpoint_id = c.endpoint_id and a.org_id = ${orgId}
              and a.kind in ('command.requested', 'command.dispatched', 'command.finished') order by a.seq desc limit 1) as status,
           (select max(a.at) from audit_events a where a.command_id = c.command_id and a.endpoint_id = c.endpoint_id and a.org_id = ${orgId}) as at,
           ${run.schedule === "window" ? sql`1` : sql`0`} as window
    from fleet_run_commands c where c.fleet_run_id = ${run.id}
    order by c.endpoint_id, c.step`)) as StepRow[];
  const byEndpoint = new Map<string, StepRow[]>();
  for (const row of stepRows) {
    const list = byEndpoint.get(row.endpoint_id) ?? [];
    list.push(row);
    byEndpoint.set(row.endpoint_id, list);
  }
  const stepCount = (JSON.parse(run.steps) as unknown[]).length;
  const counts = Object.fromEntries(TARGET_STATES.map((state) => [state, 0])) as Record<TargetState, number>;
  const progress: FleetTargetProgress[] = targets.map(({ target, online }) => {
    const base = { endpointId: target.endpointId, hostname: target.hostname, clientName: target.clientName, steps: stepCount };
    let derived: { state: TargetState; detail: string | null; step: number; lastEventAt: number | null };
    if (target.handover === "never_connected") derived = { state: "never_connected", detail: target.error, step: 0, lastEventAt: null };
    else if (target.handover !== "queued") derived = { state: "not_queued", detail: target.error, step: 0, lastEventAt: null };
    else {
      const rows = byEndpoint.get(target.endpointId) ?? [];
      const state = deriveTargetState(
        rows.map((row) => ({ kind: row.kind, status: row.status, window: Boolean(row.window) })),
        Boolean(online),
      );
      derived = { ...state, lastEventAt: rows.reduce<number | null>((max, row) => (row.at !== null && (max === null || row.at > max) ? row.at : max), null) };
    }
    counts[derived.state] += 1;
    return { ...base, ...derived };
  });
  return {
    run: {
      id: run.id,
      name: run.name,
      kind: run.kind,
      steps: (JSON.parse(run.steps) as { text: string }[]).map((s) => ({ text: s.text })),
      schedule: run.schedule,
      notBefore: run.notBefore,
      createdByName: run.createdByName,
      createdAt: run.createdAt,
    },
    counts,
    targets: progress,
  };
}

export async function listFleetRuns(db: Database, orgId: string, limit = 50) {
  return db
    .select({ id: fleetRuns.id, name: fleetRuns.name, kind: fleetRuns.kind, schedule: fleetRuns.schedule, createdByName: fleetRuns.createdByName, createdAt: fleetRuns.createdAt })
    .from(fleetRuns)
    .where(eq(fleetRuns.orgId, orgId))
    .orderBy(desc(fleetRuns.createdAt))
    .limit(limit);
}
