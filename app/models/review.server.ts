// NOC review of command activity, read from the D1 replica of every endpoint's
// audit chain (protocol/audit.ts): finished commands and approvals still waiting,
// per-user "reviewed" marks (chain verification: audit-chains.server.ts;
// exports: transcript-export.server.ts).
import { epochToWallTime, wallTimeToEpoch, zonedParts } from "@protocol/time";
import { sql, type SQL } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { decodeCursor, encodeCursor } from "~/lib/keyset-cursor";
import { visibleControls } from "~/lib/export-format";
import { REVIEW_PAGE_SIZE, REVIEW_STATUSES } from "~/lib/review";
import { truncationFromDetail, type OutputTruncation } from "~/lib/truncation";

export { csvField, visibleControls } from "~/lib/export-format";

export { REVIEW_PAGE_SIZE, REVIEW_STATUSES, STATUS_LABEL, type ReviewStatus } from "~/lib/review";
/** The statuses the headline counts as failures. */
export const FAILURE_STATUSES = ["failed", "timed_out"] as const;
/** At most this many rows are marked by one request. */
export const MAX_MARK_ITEMS = 500;
/** Chains are read from D1 this many events at a time. */

/** `<input type="datetime-local">` values (no zone): read as UTC, like every time the console shows. */
export const datetimeLocal = z.string().trim().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/);

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

export function parseDetail(detail: string | null): Record<string, unknown> {
  if (!detail) return {};
  try {
    const value = JSON.parse(detail);
    return value && typeof value === "object" && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

export const numberOrNull = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);

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
