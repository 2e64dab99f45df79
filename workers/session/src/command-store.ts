// The commands table: one row per command (a sequence step is a command), its
// output as transcript events, and the one way a command ends.
import {
  COMMAND_OUTCOMES,
  DEFAULT_MAX_OUTPUT_BYTES,
  type DispatchedCommand,
  type OutputChunk,
  type TruncationReason,
} from "../../../protocol/messages";
import type { AuditLog } from "./audit-log";
import type { EventLog } from "./event-log";
import type { RuntimeClock } from "./runtime-clock";
import type { EventBody, SessionStore } from "./session-store";

export type CommandRow = {
  id: string;
  request_id: string;
  text: string;
  shell: DispatchedCommand["shell"];
  timeout_ms: number;
  requested_by_id: string;
  requested_by_name: string;
  sequence_id: string | null;
  sequence_name: string | null;
  step_index: number;
  step_count: number;
  stop_on_failure: number;
  not_before: number | null;
  expires_at: number | null;
  cancel_requested: number;
  status: string;
  created_at: number;
  dispatched_at: number | null;
  started_at: number | null;
  /** The start time as the runtime's clock read it; started_at is it in server time (ADR 0017). */
  runtime_started_at: number | null;
  clock_offset_ms: number | null;
  clock_uncertainty_ms: number | null;
  finished_at: number | null;
  received_at: number | null;
  output_bytes: number;
  truncated: number;
  alongside: number;
  error: string | null;
  idempotent: number;
  retry_of: string | null;
  /** For an interrupted sequence step: how the technician (or the session) went on. */
  resolution: "retried" | "auto_retried" | "skipped" | "aborted" | null;
  /** 1: starts only inside one of the endpoint's maintenance windows (ADR 0026). */
  maintenance_window?: number;
};

export type CommandOutcome = Omit<EventBody<"command.finished">, "commandId">;

const FINAL: ReadonlySet<string> = new Set(COMMAND_OUTCOMES);

export function isFinal(status: string): boolean {
  return FINAL.has(status);
}

export interface CommandStoreHost {
  store: SessionStore;
  events: EventLog;
  audit: AuditLog;
  clock: RuntimeClock;
}

export class CommandStore {
  constructor(private readonly host: CommandStoreHost) {}

  get(commandId: string): CommandRow | undefined {
    return this.host.store.one<CommandRow>("SELECT * FROM commands WHERE id = ?", commandId);
  }

  /** Work the runtime holds and has not reported the end of, oldest first. */
  unfinishedDispatches(): CommandRow[] {
    return this.host.store.all<CommandRow>("SELECT * FROM commands WHERE status IN ('dispatched', 'running') ORDER BY created_at, step_index");
  }

  hasUnfinishedDispatch(): boolean {
    return (this.host.store.one<{ n: number }>("SELECT COUNT(*) AS n FROM commands WHERE status IN ('dispatched', 'running')")?.n ?? 0) > 0;
  }

  toDispatched(command: CommandRow): DispatchedCommand {
    return { commandId: command.id, text: command.text, shell: command.shell, timeoutMs: command.timeout_ms, maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES };
  }

  /** Stores the runtime's start time converted to server time, with the raw time and the clock estimate used. */
  recordStart(commandId: string, reportedStartedAt: number): number {
    const { serverMs, clock } = this.host.clock.toServerTime(reportedStartedAt);
    this.host.store.exec(
      "UPDATE commands SET started_at = ?, runtime_started_at = ?, clock_offset_ms = ?, clock_uncertainty_ms = ? WHERE id = ?",
      serverMs,
      reportedStartedAt,
      clock?.offsetMs ?? null,
      clock?.uncertaintyMs ?? null,
      commandId,
    );
    return serverMs;
  }

  /** One output chunk at its index, at most once, within the output cap (a truncation marker says where it stopped). */
  storeOutput(commandId: string, index: number, chunk: OutputChunk): void {
    const command = this.get(commandId)!;
    if (command.truncated) return;
    const duplicate = this.host.store.one("SELECT 1 AS x FROM events WHERE command_id = ? AND chunk_index = ?", command.id, index);
    if (duplicate) return;
    const bytes = new TextEncoder().encode(chunk.data).byteLength;
    const room = DEFAULT_MAX_OUTPUT_BYTES - command.output_bytes;
    if (bytes <= room) {
      this.host.events.append("command.output", { commandId: command.id, stream: chunk.stream, data: chunk.data }, index);
      this.host.store.exec("UPDATE commands SET output_bytes = output_bytes + ? WHERE id = ?", bytes, command.id);
      return;
    }
    const kept = truncateUtf8(chunk.data, room);
    if (kept) this.host.events.append("command.output", { commandId: command.id, stream: chunk.stream, data: kept }, index);
    const keptBytes = command.output_bytes + new TextEncoder().encode(kept).byteLength;
    this.host.store.exec("UPDATE commands SET output_bytes = ?, truncated = 1 WHERE id = ?", keptBytes, command.id);
    this.host.events.append("command.truncated", { commandId: command.id, keptBytes, reason: "output_cap" });
  }

  storedChunkCount(commandId: string): number {
    return this.host.store.one<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE command_id = ? AND chunk_index IS NOT NULL", commandId)?.n ?? 0;
  }

  nextChunkIndex(commandId: string): number {
    return this.host.store.one<{ next: number | null }>("SELECT MAX(chunk_index) + 1 AS next FROM events WHERE command_id = ?", commandId)?.next ?? 0;
  }

  /** Who asked for a cancel the runtime then carried out, from the cancel request in the log. */
  cancelledBy(commandId: string): { by?: { userId: string; name: string } } {
    const request = this.host.store.one<{ body: string }>(
      "SELECT body FROM events WHERE command_id = ? AND kind = 'command.cancel_requested' ORDER BY seq LIMIT 1",
      commandId,
    );
    const by = request ? (JSON.parse(request.body) as { by?: { userId: string; name: string } }).by : undefined;
    return by ? { by } : {};
  }

  /** The one way a command ends: its row, the transcript and the audit trail agree. */
  finish(commandId: string, outcome: CommandOutcome): void {
    this.host.store.exec(
      "UPDATE commands SET status = ?, exit_code = ?, error = ?, received_at = COALESCE(received_at, ?) WHERE id = ?",
      outcome.status,
      outcome.exitCode,
      outcome.error,
      Date.now(),
      commandId,
    );
    const finished = this.get(commandId)!;
    const endpointClock =
      finished.runtime_started_at !== null && finished.clock_offset_ms !== null
        ? { offsetMs: finished.clock_offset_ms, uncertaintyMs: finished.clock_uncertainty_ms ?? 0, reportedStartedAt: finished.runtime_started_at }
        : null;
    this.host.events.append("command.finished", { commandId, ...outcome, ...(endpointClock ? { endpointClock } : {}) });
    this.host.audit.append({
      kind: "command.finished",
      actorId: finished.requested_by_id,
      actorName: finished.requested_by_name,
      commandId,
      status: outcome.status,
      detail: {
        text: finished.text,
        exitCode: outcome.exitCode,
        error: outcome.error,
        sentAt: finished.created_at,
        dispatchedAt: finished.dispatched_at,
        executedAt: finished.started_at,
        returnedAt: finished.received_at,
        truncated: finished.truncated ? this.truncationOf(finished) : null,
        ...(endpointClock ? { endpointClock } : {}),
      },
    });
  }

  /** How much output was kept and why, from the newest truncation marker of the command. */
  private truncationOf(command: CommandRow): { keptBytes: number; reason: TruncationReason } {
    const marker = this.host.store.one<{ body: string }>(
      "SELECT body FROM events WHERE command_id = ? AND kind = 'command.truncated' ORDER BY seq DESC LIMIT 1",
      command.id,
    );
    const reason = marker ? (JSON.parse(marker.body) as { reason?: TruncationReason }).reason : undefined;
    return { keptBytes: command.output_bytes, reason: reason ?? "output_cap" };
  }
}

/** The longest prefix of `text` that fits in `maxBytes` of UTF-8. */
function truncateUtf8(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return "";
  const bytes = new TextEncoder().encode(text);
  if (bytes.byteLength <= maxBytes) return text;
  return new TextDecoder().decode(bytes.slice(0, maxBytes)).replace(/\uFFFD$/, "");
}
