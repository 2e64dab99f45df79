// NOC review of command activity, read from the D1 replica of every endpoint's
// audit chain (protocol/audit.ts): finished commands and approvals still waiting,
// per-user "reviewed" marks, and tenant-wide chain verification.
import { describeSkew, epochToWallTime, wallTimeToEpoch, zonedParts } from "@protocol/time";
import { sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "~/db/client.server";
import { decodeCursor, encodeCursor } from "~/lib/keyset-cursor";
import { getEndpointForOrg } from "~/models/endpoints.server";
import { auditEventFromRow, compareReplicaToCheckpoint, GENESIS_HASH, verifyAuditChain, type AuditRow } from "@protocol/audit";
import { csvRecord, visibleControls } from "~/lib/export-format";
import { REVIEW_PAGE_SIZE, REVIEW_STATUSES } from "~/lib/review";
import { describeTruncation, truncationFromDetail, type OutputTruncation } from "~/lib/truncation";

export { csvField, visibleControls } from "~/lib/export-format";

export { REVIEW_PAGE_SIZE, REVIEW_STATUSES, STATUS_LABEL, type ReviewStatus } from "~/lib/review";
/** The statuses the headline counts as failures. */
export const FAILURE_STATUSES = ["failed", "timed_out"] as const;
/** At most this many rows are marked by one request. */
export const MAX_MARK_ITEMS = 500;
/** Chains are read from D1 this many events at a time. */
export const VERIFY_PAGE_SIZE = 1000;

/** `<input type="datetime-local">` values (no zone): read as UTC, like every time the console shows. */
const datetimeLocal = z.string().trim().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/);

export const reviewFiltersSchema = z.object({
  client: z.string().max(128).optional().default(""),
  endpoint: z.string().max(128).optional().default(""),
  /** Hostname (exact, case-insensitive); the form's fallback for tenants too big for an endpoint select. */
  host: z.string().trim().max(255).optional().default(""),
  status: z.enum(REVIEW_STATUSES).or(z.literal("")).optional().default(""),
  technician: z.string().max(128).optional().default(""),
  from: datetimeLocal.or(z.literal("")).optional().default(""),
  to: datetimeLocal.or(z.literal("")).optional().default(""),
  /** A page cursor; the codec (keyset-cursor.ts) judges it, and a bad one is a 400 rather than dropped. */
  after: z.string().optional().default(""),
});
export type ReviewFilters = z.infer<typeof reviewFiltersSchema>;

/** Parses search params leniently: a bad value is dropped rather than failing the page. */
export function parseReviewFilters(params: URLSearchParams): ReviewFilters {
  const raw = Object.fromEntries(params);
  const parsed = reviewFiltersSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = reviewFiltersSchema.shape[key as keyof ReviewFilters];
    if (field && field.safeParse(value).success) cleaned[key] = value;
  }
  return reviewFiltersSchema.parse(cleaned);
}

export interface ReviewWindow {
  /** Inclusive lower bound, epoch ms. */
  fromMs: number;
  /** Exclusive upper bound, epoch ms; null = open-ended ("until now"). */
  toMs: number | null;
  /** The bounds as datetime-local strings on the viewer's wall clock (`zone`), for the form. */
  from: string;
  to: string;
}

export function toDatetimeLocal(ms: number, zone = "UTC"): string {
  return epochToWallTime(ms, zone);
}

/** 18:00 (in `zone`) of the day before `now`: the start of the default review window, last evening's shift onwards. */
export function defaultWindowStart(now: number, zone = "UTC"): number {
  const { year, month, day } = zonedParts(now, zone);
  const yesterday = new Date(Date.UTC(year, month - 1, day - 1));
  const wall = `${yesterday.toISOString().slice(0, 10)}T18:00`;
  return wallTimeToEpoch(wall, zone) ?? Date.UTC(year, month - 1, day - 1, 18);
}

/**
 * The time window of the filters. `from` defaults to 18:00 UTC of the previous
 * day; `to` defaults to now (open-ended). A `to` given to the minute includes that
 * whole minute.
 */
export function resolveWindow(filters: Pick<ReviewFilters, "from" | "to">, now = Date.now(), zone = "UTC"): ReviewWindow {
  const fromMs = (filters.from ? wallTimeToEpoch(filters.from, zone) : null) ?? defaultWindowStart(now, zone);
  let toMs: number | null = null;
  if (filters.to) {
    const parsed = wallTimeToEpoch(filters.to, zone);
    if (parsed !== null) toMs = parsed + (filters.to.length > 16 ? 1 : 60_000);
  }
  return { fromMs, toMs, from: toDatetimeLocal(fromMs, zone), to: filters.to && toMs !== null ? filters.to : "" };
}

// ---------------------------------------------------------------------------
// Keyset cursor over (at desc, endpoint_id asc, seq asc)

const cursorSchema = z.tuple([z.number().int(), z.string(), z.number().int()]);

// ---------------------------------------------------------------------------
// Activity

export interface ReviewRow {
  endpointId: string;
  seq: number;
  at: number;
  kind: "command.finished" | "approval.requested";
  hostname: string;
  clientId: string | null;
  clientName: string | null;
  commandId: string | null;
  text: string;
  status: string;
  exitCode: number | null;
  technicianId: string | null;
  technicianName: string | null;
  sentAt: number | null;
  executedAt: number | null;
  returnedAt: number | null;
  /** Set when output was capped or lost: how much reached the session and why. */
  outputTruncated: OutputTruncation | null;
  reviewed: boolean;
}


export interface ReviewPage {
  rows: ReviewRow[];
  nextCursor: string | null;
  window: ReviewWindow;
}

interface RawActivityRow {
  endpoint_id: string;
  seq: number;
  at: number;
  kind: string;
  actor_id: string | null;
  actor_name: string | null;
  command_id: string | null;
  status: string | null;
  detail: string;
  hostname: string;
  client_id: string | null;
  client_name: string | null;
  requested_detail: string | null;
  reviewed: number;
}

function parseDetail(detail: string | null): Record<string, unknown> {
  if (!detail) return {};
  try {
    const value = JSON.parse(detail);
    return value && typeof value === "object" && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

const numberOrNull = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** An approval request still waiting: no decision and no final result for its command on that endpoint. */
const stillPending = sql`not exists (
  select 1 from audit_events d
  where d.endpoint_id = ae.endpoint_id and d.command_id = ae.command_id
    and d.kind in ('approval.decided', 'command.finished'))`;

function windowConditions(orgId: string, window: ReviewWindow): SQL[] {
  const conditions = [sql`ae.org_id = ${orgId}`, sql`ae.at >= ${window.fromMs}`];
  if (window.toMs !== null) conditions.push(sql`ae.at < ${window.toMs}`);
  return conditions;
}

function activityConditions(orgId: string, filters: ReviewFilters, window: ReviewWindow): SQL[] {
  const conditions = windowConditions(orgId, window);
  if (filters.status === "pending_approval") {
    conditions.push(sql`ae.kind = 'approval.requested'`, stillPending);
  } else if (filters.status) {
    conditions.push(sql`ae.kind = 'command.finished'`, sql`ae.status = ${filters.status}`);
  } else {
    conditions.push(sql`(ae.kind = 'command.finished' or (ae.kind = 'approval.requested' and ${stillPending}))`);
  }
  if (filters.client) conditions.push(sql`en.client_id = ${filters.client}`);
  if (filters.endpoint) conditions.push(sql`ae.endpoint_id = ${filters.endpoint}`);
  if (filters.host) conditions.push(sql`en.hostname = ${filters.host} collate nocase`);
  if (filters.technician) conditions.push(sql`ae.actor_id = ${filters.technician}`);
  return conditions;
}

/**
 * One page of the tenant's finished commands and pending approvals in the
 * filters' window, newest first, with whether `userId` has reviewed each row.
 * Keyset pagination on (at desc, endpoint_id, seq).
 */
export async function listReviewActivity(
  db: Database,
  orgId: string,
  userId: string,
  filters: ReviewFilters,
  /** zone: the viewer's, in which the filter's from/to were typed (ADR 0024). */
  options: { now?: number; pageSize?: number; zone?: string } = {},
): Promise<ReviewPage> {
  const pageSize = options.pageSize ?? REVIEW_PAGE_SIZE;
  const window = resolveWindow(filters, options.now, options.zone);
  const conditions = activityConditions(orgId, filters, window);
  const cursor = decodeCursor(filters.after, cursorSchema);
  if (cursor) {
    const [at, endpointId, seq] = cursor;
    conditions.push(sql`(ae.at < ${at} or (ae.at = ${at} and (ae.endpoint_id > ${endpointId} or (ae.endpoint_id = ${endpointId} and ae.seq > ${seq}))))`);
  }
  // The command.requested lookup has no ORDER BY on purpose: with one, SQLite walks the
  // endpoint's whole chain by seq instead of using the command_id index (100x slower at 5,000 events).
  const found = await db.all<RawActivityRow>(sql`
    select ae.endpoint_id, ae.seq, ae.at, ae.kind, ae.actor_id, ae.actor_name, ae.command_id, ae.status, ae.detail,
           coalesce(en.hostname, ae.endpoint_id) as hostname, en.client_id, cl.name as client_name,
           (select rq.detail from audit_events rq
             where rq.command_id = ae.command_id and rq.endpoint_id = ae.endpoint_id and rq.kind = 'command.requested'
             limit 1) as requested_detail,
           (rv.user_id is not null) as reviewed
    from audit_events ae
    left join endpoints en on en.id = ae.endpoint_id and en.org_id = ae.org_id
    left join clients cl on cl.id = en.client_id and cl.org_id = ae.org_id
    left join audit_reviews rv on rv.org_id = ae.org_id and rv.user_id = ${userId}
                              and rv.endpoint_id = ae.endpoint_id and rv.seq = ae.seq
    where ${sql.join(conditions, sql` and `)}
    order by ae.at desc, ae.endpoint_id asc, ae.seq asc
    limit ${pageSize + 1}`);

  const hasMore = found.length > pageSize;
  const page = hasMore ? found.slice(0, pageSize) : found;
  const last = page[page.length - 1];
  return {
    rows: page.map(toReviewRow),
    nextCursor: hasMore && last ? encodeCursor([last.at, last.endpoint_id, last.seq]) : null,
    window,
  };
}

function toReviewRow(row: RawActivityRow): ReviewRow {
  const detail = parseDetail(row.detail);
  const requested = parseDetail(row.requested_detail);
  const text = typeof detail.text === "string" ? detail.text : typeof requested.text === "string" ? requested.text : "";
  const pending = row.kind === "approval.requested";
  return {
    endpointId: row.endpoint_id,
    seq: row.seq,
    at: row.at,
    kind: pending ? "approval.requested" : "command.finished",
    hostname: row.hostname,
    clientId: row.client_id,
    clientName: row.client_name,
    commandId: row.command_id,
    text,
    status: pending ? "pending_approval" : (row.status ?? "unknown"),
    exitCode: numberOrNull(detail.exitCode),
    technicianId: row.actor_id,
    technicianName: row.actor_name,
    sentAt: numberOrNull(detail.sentAt),
    executedAt: numberOrNull(detail.executedAt),
    returnedAt: numberOrNull(detail.returnedAt),
    outputTruncated: pending ? null : truncationFromDetail(detail),
    reviewed: Boolean(row.reviewed),
  };
}

/** Failed and timed-out commands in the window that `userId` has not marked reviewed. */
export async function countUnreviewedFailures(
  db: Database,
  orgId: string,
  userId: string,
  window: ReviewWindow,
): Promise<number> {
  const conditions = windowConditions(orgId, window);
  const [row] = await db.all<{ n: number }>(sql`
    select count(*) as n from audit_events ae
    where ${sql.join(conditions, sql` and `)}
      and ae.kind = 'command.finished' and ae.status in ('failed', 'timed_out')
      and not exists (select 1 from audit_reviews rv
                      where rv.org_id = ae.org_id and rv.user_id = ${userId}
                        and rv.endpoint_id = ae.endpoint_id and rv.seq = ae.seq)`);
  return row?.n ?? 0;
}

export const reviewItemSchema = z.object({ endpointId: z.string().min(1).max(128), seq: z.number().int().positive() });
export type ReviewItem = z.infer<typeof reviewItemSchema>;

/** Parses the form's `endpointId:seq` values; malformed ones are dropped. */
export function parseReviewItems(values: readonly unknown[]): ReviewItem[] {
  const items: ReviewItem[] = [];
  for (const value of values) {
    if (typeof value !== "string") continue;
    const split = value.lastIndexOf(":");
    if (split <= 0) continue;
    const parsed = reviewItemSchema.safeParse({ endpointId: value.slice(0, split), seq: Number(value.slice(split + 1)) });
    if (parsed.success) items.push(parsed.data);
  }
  return items;
}

/**
 * Marks events reviewed by `userId`. Each mark is inserted from the tenant's own
 * audit_events row, so an id of another tenant's event (or one that does not
 * exist) inserts nothing. Returns how many marks were new.
 */
export async function markReviewed(db: Database, orgId: string, userId: string, items: readonly ReviewItem[]): Promise<number> {
  const unique = [...new Map(items.map((item) => [`${item.endpointId}\u0000${item.seq}`, item])).values()].slice(0, MAX_MARK_ITEMS);
  if (unique.length === 0) return 0;
  // Plain D1 statements in one batch (one implicit transaction); drizzle's batch does not take raw SQL.
  const d1 = db.$client;
  const reviewedAt = Date.now();
  const insert = d1.prepare(
    `insert or ignore into audit_reviews (org_id, user_id, endpoint_id, seq, reviewed_at)
     select ae.org_id, ?1, ae.endpoint_id, ae.seq, ?2
     from audit_events ae
     where ae.org_id = ?3 and ae.endpoint_id = ?4 and ae.seq = ?5`,
  );
  const results = await d1.batch(unique.map((item) => insert.bind(userId, reviewedAt, orgId, item.endpointId, item.seq)));
  return results.reduce((sum, result) => sum + (result.meta?.changes ?? 0), 0);
}

// ---------------------------------------------------------------------------
// Chain verification

export type EndpointChainVerdict =
  | { endpointId: string; hostname: string; ok: true; checked: number }
  | { endpointId: string; hostname: string; ok: false; checked: number; brokenAtSeq: number; reason: string };

/**
 * Verifies every endpoint chain of the tenant in the D1 replica with
 * verifyAuditChain, reading each chain in seq order VERIFY_PAGE_SIZE events at
 * a time, then compares each with the checkpoint its session wrote in the same
 * batch (compareReplicaToCheckpoint), which catches a rewritten chain with
 * recomputed hashes or a deleted tail. This page does not hold AUDIT_MAC_KEY,
 * so it cannot tell a forged checkpoint, and it accepts chains without one
 * (replicated before checkpoints existed): `npm run audit:verify` checks MACs
 * and the sessions' own heads. Broken chains come first, then by hostname.
 */
export async function verifyTenantAuditChains(
  db: Database,
  orgId: string,
  pageSize = VERIFY_PAGE_SIZE,
): Promise<EndpointChainVerdict[]> {
  const chains = await db.all<{ endpoint_id: string; hostname: string }>(sql`
    select c.endpoint_id, coalesce(en.hostname, c.endpoint_id) as hostname
    from (select endpoint_id from audit_events where org_id = ${orgId}
          union select endpoint_id from audit_checkpoints where org_id = ${orgId}
          union select endpoint_id from audit_prune_anchors where org_id = ${orgId}) c
    left join endpoints en on en.id = c.endpoint_id and en.org_id = ${orgId}`);

  type Progress = { endpointId: string; hostname: string; previous: { seq: number; hash: string }; checked: number; broken: { brokenAtSeq: number; reason: string } | null };

  /** Reads and verifies the chain past `progress.previous`, page by page. */
  const readOn = async (progress: Progress) => {
    while (!progress.broken) {
      const rows = await db.all<AuditRow>(sql`
        select endpoint_id, org_id, seq, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash
        from audit_events
        where endpoint_id = ${progress.endpointId} and org_id = ${orgId} and seq > ${progress.previous.seq}
        order by seq limit ${pageSize}`);
      if (rows.length === 0) return;
      const result = await verifyAuditChain(rows.map((row) => auditEventFromRow(row)), progress.previous);
      progress.checked += result.checked;
      if (!result.ok) progress.broken = { brokenAtSeq: result.brokenAtSeq, reason: result.reason };
      else progress.previous = { seq: rows[rows.length - 1].seq, hash: result.lastHash };
      if (rows.length < pageSize) return;
    }
  };

  const checkpointOf = async (endpointId: string) =>
    (await db.all<{ seq: number; hash: string }>(sql`
      select seq, hash from audit_checkpoints where endpoint_id = ${endpointId} and org_id = ${orgId}`))[0] ?? null;

  /** A chain without a checkpoint passes here (see above); one with a checkpoint must end exactly at it. */
  const checkpointProblem = (progress: Progress, checkpoint: { seq: number; hash: string } | null) => {
    if (!checkpoint) return null;
    const verdict = compareReplicaToCheckpoint({ lastSeq: progress.previous.seq, lastHash: progress.previous.hash }, checkpoint);
    if (verdict.ok) return null;
    const brokenAtSeq = progress.previous.seq < checkpoint.seq ? progress.previous.seq + 1 : progress.previous.seq > checkpoint.seq ? checkpoint.seq + 1 : checkpoint.seq;
    return { brokenAtSeq, reason: verdict.reason };
  };

  /** Where an archived and pruned replica starts (ADR 0029); its MAC is checked by `npm run audit:verify`, like checkpoints'. */
  const anchorOf = async (endpointId: string) =>
    (await db.all<{ seq: number; hash: string }>(sql`
      select seq, hash from audit_prune_anchors where endpoint_id = ${endpointId} and org_id = ${orgId}`))[0] ?? { seq: 0, hash: GENESIS_HASH };

  const verdicts: EndpointChainVerdict[] = [];
  for (const chain of chains) {
    const progress: Progress = { endpointId: chain.endpoint_id, hostname: chain.hostname, previous: await anchorOf(chain.endpoint_id), checked: 0, broken: null };
    await readOn(progress);
    if (!progress.broken) {
      let problem = checkpointProblem(progress, await checkpointOf(chain.endpoint_id));
      if (problem) {
        // A batch (events and checkpoint, committed together) may have landed since the chain was read.
        await readOn(progress);
        problem = progress.broken ? null : checkpointProblem(progress, await checkpointOf(chain.endpoint_id));
      }
      progress.broken ??= problem;
    }
    verdicts.push(
      progress.broken
        ? { endpointId: chain.endpoint_id, hostname: chain.hostname, ok: false, checked: progress.checked, ...progress.broken }
        : { endpointId: chain.endpoint_id, hostname: chain.hostname, ok: true, checked: progress.checked },
    );
  }
  return verdicts.sort((a, b) => Number(a.ok) - Number(b.ok) || a.hostname.localeCompare(b.hostname) || a.endpointId.localeCompare(b.endpointId));
}

// ---------------------------------------------------------------------------
// Filter options for the page

export async function listReviewFilterOptions(db: Database, orgId: string, clientId: string, endpointLimit = 500) {
  const [clientRows, technicianRows, endpointRows] = await Promise.all([
    db.all<{ id: string; name: string }>(sql`select id, name from clients where org_id = ${orgId} order by name`),
    db.all<{ userId: string; name: string }>(sql`
      select user_id as userId, name from members where org_id = ${orgId} order by name`),
    db.all<{ id: string; hostname: string }>(sql`
      select id, hostname from endpoints
      where org_id = ${orgId} ${clientId ? sql`and client_id = ${clientId}` : sql``}
      order by hostname, id limit ${endpointLimit + 1}`),
  ]);
  const tooManyEndpoints = endpointRows.length > endpointLimit;
  return { clients: clientRows, technicians: technicianRows, endpoints: tooManyEndpoints ? [] : endpointRows, tooManyEndpoints };
}

// ---------------------------------------------------------------------------
// Transcript export (one endpoint's commands from the audit replica)

export const EXPORT_FORMATS = ["txt", "json", "csv"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
/** An export holds at most this many commands (the oldest in the window first). */
export const MAX_EXPORT_COMMANDS = 10_000;
const EXPORT_PAGE_SIZE = 1000;

export const exportQuerySchema = z.object({
  format: z.enum(EXPORT_FORMATS).optional().default("txt"),
  from: datetimeLocal.or(z.literal("")).optional().default(""),
  to: datetimeLocal.or(z.literal("")).optional().default(""),
});
export type ExportQuery = z.infer<typeof exportQuerySchema>;

export interface ExportedCommand {
  commandId: string;
  requestedAt: number;
  technicianId: string | null;
  technicianName: string | null;
  technicianAddress: string | null;
  shell: string | null;
  text: string;
  /** The final status, or the latest one while the command is not finished. */
  status: string | null;
  exitCode: number | null;
  sentAt: number | null;
  dispatchedAt: number | null;
  executedAt: number | null;
  returnedAt: number | null;
  finishedAt: number | null;
  outputTruncated: OutputTruncation | null;
  /** All times above are server time; this is how far the endpoint's clock was off when its times were converted. */
  endpointClockOffsetMs: number | null;
  /** The start time on the endpoint's own clock. */
  endpointReportedStartedAt: number | null;
}

interface RawExportRow {
  seq: number;
  at: number;
  command_id: string;
  actor_id: string | null;
  actor_name: string | null;
  actor_address: string | null;
  detail: string;
  latest_status: string | null;
  finished_at: number | null;
  finished_status: string | null;
  finished_detail: string | null;
}

/**
 * The commands requested on one endpoint of the tenant in the window, oldest
 * first: each command.requested joined with its command.finished by commandId.
 * The caller checks the endpoint belongs to the tenant (404 otherwise); the org
 * filter here is a second guard.
 */
export async function listEndpointCommands(
  db: Database,
  orgId: string,
  endpointId: string,
  window: ReviewWindow,
  limit = MAX_EXPORT_COMMANDS,
): Promise<{ commands: ExportedCommand[]; truncated: boolean }> {
  const commands: ExportedCommand[] = [];
  let afterSeq = 0;
  for (;;) {
    const take = Math.min(EXPORT_PAGE_SIZE, limit + 1 - commands.length);
    // "+s.endpoint_id" keeps SQLite on the command_id index rather than the endpoint's whole chain.
    const rows = await db.all<RawExportRow>(sql`
      select rq.seq, rq.at, rq.command_id, rq.actor_id, rq.actor_name, rq.actor_address, rq.detail,
             (select s.status from audit_events s
               where s.command_id = rq.command_id and +s.endpoint_id = rq.endpoint_id and s.status is not null
               order by s.seq desc limit 1) as latest_status,
             fin.at as finished_at, fin.status as finished_status, fin.detail as finished_detail
      from audit_events rq
      left join audit_events fin on fin.endpoint_id = rq.endpoint_id and fin.command_id = rq.command_id
                                 and fin.kind = 'command.finished' and fin.org_id = rq.org_id
      where rq.endpoint_id = ${endpointId} and rq.org_id = ${orgId} and rq.kind = 'command.requested'
        and rq.command_id is not null and rq.seq > ${afterSeq}
        and rq.at >= ${window.fromMs} ${window.toMs !== null ? sql`and rq.at < ${window.toMs}` : sql``}
      order by rq.seq limit ${take}`);
    for (const row of rows) {
      const requested = parseDetail(row.detail);
      const finished = parseDetail(row.finished_detail);
      commands.push({
        commandId: row.command_id,
        requestedAt: row.at,
        technicianId: row.actor_id,
        technicianName: row.actor_name,
        technicianAddress: row.actor_address,
        shell: typeof requested.shell === "string" ? requested.shell : null,
        text: typeof requested.text === "string" ? requested.text : typeof finished.text === "string" ? finished.text : "",
        status: row.finished_status ?? row.latest_status,
        exitCode: numberOrNull(finished.exitCode),
        sentAt: numberOrNull(finished.sentAt),
        dispatchedAt: numberOrNull(finished.dispatchedAt),
        executedAt: numberOrNull(finished.executedAt),
        returnedAt: numberOrNull(finished.returnedAt),
        finishedAt: row.finished_at,
        outputTruncated: truncationFromDetail(finished),
        ...endpointClockFromDetail(finished),
      });
    }
    if (commands.length > limit) return { commands: commands.slice(0, limit), truncated: true };
    if (rows.length < take) return { commands, truncated: false };
    afterSeq = rows[rows.length - 1].seq;
  }
}

const iso = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString());

function endpointClockFromDetail(detail: Record<string, unknown>): { endpointClockOffsetMs: number | null; endpointReportedStartedAt: number | null } {
  const clock = detail.endpointClock as { offsetMs?: unknown; reportedStartedAt?: unknown } | undefined;
  return {
    endpointClockOffsetMs: clock && typeof clock.offsetMs === "number" ? Math.round(clock.offsetMs) : null,
    endpointReportedStartedAt: clock ? numberOrNull(clock.reportedStartedAt) : null,
  };
}

export const CSV_COLUMNS = [
  "command_id", "requested_at", "technician", "technician_id", "technician_address", "shell", "command", "status",
  "exit_code", "sent_at", "dispatched_at", "executed_at", "returned_at", "finished_at", "output_truncated",
  "endpoint_clock_offset_ms", "endpoint_reported_started_at",
] as const;

export function commandsToCsv(commands: readonly ExportedCommand[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const c of commands) {
    lines.push(
      csvRecord([
        c.commandId, iso(c.requestedAt), c.technicianName, c.technicianId, c.technicianAddress, c.shell, c.text, c.status,
        c.exitCode, iso(c.sentAt), iso(c.dispatchedAt), iso(c.executedAt), iso(c.returnedAt), iso(c.finishedAt),
        c.outputTruncated ? describeTruncation(c.outputTruncated) : "",
        c.endpointClockOffsetMs, iso(c.endpointReportedStartedAt),
      ]),
    );
  }
  return `${lines.join("\r\n")}\r\n`;
}

export function commandsToJson(commands: readonly ExportedCommand[]) {
  return commands.map((c) => ({
    ...c,
    requestedAt: iso(c.requestedAt),
    sentAt: iso(c.sentAt) || null,
    dispatchedAt: iso(c.dispatchedAt) || null,
    executedAt: iso(c.executedAt) || null,
    returnedAt: iso(c.returnedAt) || null,
    finishedAt: iso(c.finishedAt) || null,
    endpointReportedStartedAt: iso(c.endpointReportedStartedAt) || null,
  }));
}

export function commandsToText(
  commands: readonly ExportedCommand[],
  meta: { hostname: string; clientName: string; window: ReviewWindow; generatedAt: number; truncated: boolean },
): string {
  const to = meta.window.toMs === null ? iso(meta.generatedAt) : iso(meta.window.toMs);
  const lines = [
    `Caisey transcript export: ${meta.hostname} (${meta.clientName}), ${iso(meta.window.fromMs)} to ${to}. Generated ${iso(meta.generatedAt)}.`,
    "From the audit trail: commands, who ran them, status and timings. Command output is not part of the audit trail and is not included.",
    `${commands.length} command${commands.length === 1 ? "" : "s"}${meta.truncated ? ` (truncated to the first ${MAX_EXPORT_COMMANDS})` : ""}.`,
  ];
  for (const c of commands) {
    lines.push(
      "",
      // A multi-line command is indented past its first line, so no line of it can pass for an entry of its own.
      `[${iso(c.requestedAt)}] ${c.technicianName ?? c.technicianId ?? "unknown"}${c.shell ? ` (${c.shell})` : ""} $ ${c.text.replace(/\n/g, "\n    ")}`,
      `  command ${c.commandId} · status ${c.status ?? "unknown"}${c.exitCode === null ? "" : ` · exit code ${c.exitCode}`}`,
    );
    if (c.outputTruncated) lines.push(`  ${describeTruncation(c.outputTruncated)}`);
    const timings = [["sent", c.sentAt], ["dispatched", c.dispatchedAt], ["executed", c.executedAt], ["returned", c.returnedAt]] as const;
    const known = timings.filter(([, ms]) => ms !== null);
    if (known.length) lines.push(`  ${known.map(([label, ms]) => `${label} ${iso(ms)}`).join(" · ")}`);
    const skew = c.endpointClockOffsetMs === null ? null : describeSkew(c.endpointClockOffsetMs, 0);
    if (skew && c.endpointReportedStartedAt !== null) lines.push(`  ${skew}: the endpoint itself read ${iso(c.endpointReportedStartedAt)} (times above are server time)`);
  }
  // Every line, not only the command: hostnames, names and ids are other people's text too.
  return visibleControls(`${lines.join("\n")}\n`);
}

/** `caisey-<hostname>-<from date>_<to date>.<ext>`, safe for a Content-Disposition filename. */
export function exportFilename(hostname: string, window: ReviewWindow, now: number, format: ExportFormat): string {
  const safeHost = hostname.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 100) || "endpoint";
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return `caisey-${safeHost}-${day(window.fromMs)}_${day(window.toMs === null ? now : window.toMs - 1)}.${format}`;
}

const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  txt: "text/plain; charset=utf-8",
  json: "application/json; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
};

/**
 * The export download for a signed-in member of `orgId` (the route checks the
 * member first): 404 for an endpoint outside the tenant, 400 for a bad query,
 * otherwise the file. Kept apart from the route so tests can drive it with a
 * real request URL and real D1.
 */
export async function transcriptExportResponse(
  db: Database,
  orgId: string,
  endpointId: string,
  params: URLSearchParams,
  now = Date.now(),
): Promise<Response> {
  const endpoint = await getEndpointForOrg(db, orgId, endpointId);
  if (!endpoint) return new Response("No such endpoint in your organisation.", { status: 404, statusText: "Not Found" });

  const parsed = exportQuerySchema.safeParse(Object.fromEntries(params));
  if (!parsed.success) return new Response("format must be txt, json or csv; from/to must be YYYY-MM-DDTHH:mm (UTC).", { status: 400 });
  const { format } = parsed.data;
  const window = resolveWindow(parsed.data, now);
  const { commands, truncated } = await listEndpointCommands(db, orgId, endpoint.id, window);

  const body =
    format === "csv"
      ? commandsToCsv(commands)
      : format === "json"
        ? JSON.stringify(commandsToJson(commands), null, 2)
        : commandsToText(commands, { hostname: endpoint.hostname, clientName: endpoint.clientName, window, generatedAt: now, truncated });
  return new Response(body, {
    headers: {
      "Content-Type": EXPORT_CONTENT_TYPES[format],
      "Content-Disposition": `attachment; filename="${exportFilename(endpoint.hostname, window, now, format)}"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...(truncated ? { "X-Caisey-Truncated": "true" } : {}),
    },
  });
}
