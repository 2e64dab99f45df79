// One endpoint's commands from the audit replica, exported as text, JSON or CSV
// (times in server time, truncation and the endpoint's clock skew always stated).
import { describeSkew } from "@protocol/time";
import { sql } from "drizzle-orm";
import * as z from "zod";
import type { Database } from "~/db/client.server";
import { getEndpointForOrg } from "~/models/endpoints.server";
import { csvRecord, visibleControls } from "~/lib/export-format";
import { describeTruncation, truncationFromDetail, type OutputTruncation } from "~/lib/truncation";
import { datetimeLocal, numberOrNull, parseDetail, resolveWindow, type ReviewWindow } from "~/models/review.server";

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
