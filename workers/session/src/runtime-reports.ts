// What a runtime may tell the session about its work: that a command started,
// its output, its result. Only work this session dispatched may be reported;
// repeats change nothing; anything else is refused, recorded and audited.
import type { CommandResult, OutputChunk, Timings } from "../../../protocol/messages";
import type { AuditLog } from "./audit-log";
import { isFinal, type CommandRow, type CommandStore } from "./command-store";
import type { EventLog } from "./event-log";
import type { RuntimeClock } from "./runtime-clock";
import type { SequenceFlow } from "./sequence-flow";
import type { SessionStore } from "./session-store";

/** Refused runtime messages audited per instance, so a misbehaving runtime cannot flood the chain. */
const MAX_AUDITED_REFUSALS = 200;

export interface ReportsHost {
  store: SessionStore;
  commands: CommandStore;
  events: EventLog;
  audit: AuditLog;
  clock: RuntimeClock;
  sequences: SequenceFlow;
}

export class RuntimeReports {
  private readonly refusalsAudited = new Set<string>();

  constructor(private readonly host: ReportsHost) {}

  started(commandId: string, startedAt: number, address: string | null): void {
    const command = this.reportable(commandId, "started", address);
    if (typeof command === "string" || command.started_at !== null) return;
    const serverStartedAt = this.host.commands.recordStart(commandId, startedAt);
    this.host.store.exec("UPDATE commands SET status = 'running' WHERE id = ?", commandId);
    this.host.events.append("command.started", { commandId, startedAt: serverStartedAt });
  }

  output(commandId: string, index: number, chunk: OutputChunk, address: string | null): void {
    if (typeof this.reportable(commandId, "output", address) === "string") return;
    this.host.commands.storeOutput(commandId, index, chunk);
  }

  /**
   * Stores a dispatched command's result; true when the runtime may drop it
   * (stored now or before). Idempotent for finished work; false, with nothing
   * changed, for work the session never dispatched.
   */
  result(result: CommandResult, address: string | null): boolean {
    const { commands, events, store } = this.host;
    const command = this.reportable(result.commandId, "result", address);
    if (command === "refused") return false;
    if (command === "finished") return true;
    if (command.started_at === null) {
      // Short commands report only their result; it carries the start time.
      events.append("command.started", { commandId: command.id, startedAt: commands.recordStart(command.id, result.startedAt) });
    }
    // Streamed chunks lost in transit leave a gap before the tail; the tail still lands at its own indices.
    const tailStart = result.tailStartIndex ?? commands.nextChunkIndex(command.id);
    const missingChunks = tailStart > commands.storedChunkCount(command.id);
    if (missingChunks && !command.truncated) {
      events.append("command.truncated", { commandId: command.id, keptBytes: command.output_bytes, reason: "lost_in_transit" });
    }
    result.tail.forEach((chunk, offset) => commands.storeOutput(command.id, tailStart + offset, chunk));
    const stored = commands.get(command.id)!;
    if (result.truncated && !stored.truncated) {
      // The runtime stopped keeping output on the endpoint: say so, with what reached us.
      events.append("command.truncated", { commandId: command.id, keptBytes: stored.output_bytes, reason: "runtime_cap" });
    }
    const receivedAt = Date.now();
    store.exec(
      "UPDATE commands SET received_at = ?, finished_at = ?, duration_ms = ?, truncated = MAX(truncated, ?) WHERE id = ?",
      receivedAt,
      result.finishedAt,
      result.durationMs,
      result.truncated || missingChunks ? 1 : 0,
      command.id,
    );
    commands.finish(command.id, {
      status: result.status,
      exitCode: result.exitCode,
      error: result.error,
      timings: this.timings(command, result, receivedAt),
      ...(result.status === "cancelled" ? commands.cancelledBy(command.id) : {}),
    });
    if (result.status === "interrupted") this.host.sequences.onInterrupted(commands.get(command.id)!);
    return true;
  }

  /**
   * Repeats and late reports about finished work are legal and change nothing
   * ("finished"); a report about work never dispatched (still waiting for
   * approval or its window, or unknown) is refused and audited.
   */
  private reportable(commandId: string, message: "started" | "output" | "result", address: string | null): CommandRow | "finished" | "refused" {
    const command = this.host.commands.get(commandId);
    if (command && command.dispatched_at !== null) {
      if (command.status === "dispatched" || command.status === "running") return command;
      if (isFinal(command.status)) return "finished";
    }
    this.auditRefusal(commandId, command, message, address);
    return "refused";
  }

  private auditRefusal(commandId: string, command: CommandRow | undefined, message: string, address: string | null): void {
    const key = `${message}:${commandId}`;
    if (this.refusalsAudited.has(key) || this.refusalsAudited.size >= MAX_AUDITED_REFUSALS) return;
    this.refusalsAudited.add(key);
    const reason = command ? `the session never dispatched it (it is ${command.status})` : "the session has no such command";
    this.host.events.append("runtime.refused", { commandId: command ? command.id : null, message, reason });
    this.host.audit.append({
      kind: "runtime.refused",
      actorAddress: address,
      commandId: command ? command.id : null,
      status: command?.status ?? null,
      detail: { message, commandId, reason },
    });
  }

  /** The round trip as the session saw it, split by the runtime's clock where it is known. */
  private timings(command: CommandRow, result: CommandResult, receivedAt: number): Timings {
    const dispatchedAt = command.dispatched_at ?? command.created_at;
    const serverRoundTripMs = Math.max(0, receivedAt - dispatchedAt);
    const onEndpointMs = Math.min(result.durationMs, serverRoundTripMs);
    const network = serverRoundTripMs - onEndpointMs;
    const clock = this.host.clock.current();
    let toEndpointMs: number | null = null;
    let backMs: number | null = null;
    if (clock) {
      toEndpointMs = clamp(result.startedAt - clock.offsetMs - dispatchedAt, 0, network);
      backMs = network - toEndpointMs;
    }
    return { queuedMs: Math.max(0, dispatchedAt - command.created_at), toEndpointMs, onEndpointMs, backMs, serverRoundTripMs };
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
