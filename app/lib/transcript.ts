// Folds the session's event log into what the transcript renders. Applying an
// event twice (a replay overlapping a live frame) is a no-op, so a viewer can
// always resync with "everything after the last seq I applied".
import {
  COMMAND_OUTCOMES,
  type Actor,
  type CommandStatus,
  type OutputStream,
  type Timings,
  type TranscriptEvent,
} from "../../protocol/messages";

export interface TranscriptCommand {
  commandId: string;
  requestId: string;
  text: string;
  shell: string;
  requestedBy: Actor;
  status: CommandStatus;
  queuedAt: number;
  dispatchedAt: number | null;
  startedAt: number | null;
  returnedAt: number | null;
  exitCode: number | null;
  output: { stream: OutputStream; data: string }[];
  truncatedAtBytes: number | null;
  /** Some streamed output never reached the server; what arrived is shown. */
  outputLost: boolean;
  timings: Timings | null;
  error: string | null;
  cancelRequestedBy: Actor | null;
  sequence: { id: string; name: string; step: number; steps: number; stopOnFailure: boolean } | null;
  notBefore: number | null;
  expiresAt: number | null;
  approval: {
    reason: string;
    pattern: string | null;
    approvers: string[];
    expiresAt: number;
    decision: "approve" | "deny" | null;
    decidedBy: string | null;
    decidedAt: number | null;
  } | null;
}

export interface TranscriptState {
  lastSeq: number;
  order: string[];
  commands: Record<string, TranscriptCommand>;
}

export const emptyTranscript: TranscriptState = { lastSeq: 0, order: [], commands: {} };

export function applyEvents(state: TranscriptState, events: readonly TranscriptEvent[]): TranscriptState {
  let next = state;
  for (const event of events) {
    if (event.seq <= next.lastSeq) continue;
    next = applyEvent(next, event);
  }
  return next;
}

function applyEvent(state: TranscriptState, event: TranscriptEvent): TranscriptState {
  if (event.kind === "command.queued") {
    const command: TranscriptCommand = {
      commandId: event.commandId,
      requestId: event.requestId,
      text: event.text,
      shell: event.shell,
      requestedBy: event.requestedBy,
      status: "queued",
      queuedAt: event.at,
      dispatchedAt: null,
      startedAt: null,
      returnedAt: null,
      exitCode: null,
      output: [],
      truncatedAtBytes: null,
      outputLost: false,
      timings: null,
      error: null,
      cancelRequestedBy: null,
      sequence: event.sequence ?? null,
      notBefore: event.notBefore ?? null,
      expiresAt: event.expiresAt ?? null,
      approval: null,
    };
    return {
      lastSeq: event.seq,
      order: [...state.order, event.commandId],
      commands: { ...state.commands, [event.commandId]: command },
    };
  }
  const current = state.commands[event.commandId];
  if (!current) return { ...state, lastSeq: event.seq };
  const updated = updateCommand(current, event);
  return { ...state, lastSeq: event.seq, commands: { ...state.commands, [event.commandId]: updated } };
}

function updateCommand(command: TranscriptCommand, event: Exclude<TranscriptEvent, { kind: "command.queued" }>): TranscriptCommand {
  switch (event.kind) {
    case "command.dispatched":
      return { ...command, status: "dispatched", dispatchedAt: event.at };
    case "command.started":
      return { ...command, status: "running", startedAt: event.startedAt };
    case "command.output": {
      const output = [...command.output];
      const last = output[output.length - 1];
      // Merge consecutive chunks of one stream so the DOM stays small.
      if (last && last.stream === event.stream) output[output.length - 1] = { stream: last.stream, data: last.data + event.data };
      else output.push({ stream: event.stream, data: event.data });
      return { ...command, output };
    }
    case "command.truncated":
      return event.reason === "lost_in_transit" ? { ...command, outputLost: true } : { ...command, truncatedAtBytes: event.keptBytes };
    case "command.cancel_requested":
      return { ...command, cancelRequestedBy: event.by };
    case "command.approval_requested":
      return {
        ...command,
        status: "pending_approval",
        approval: { reason: event.reason, pattern: event.pattern, approvers: event.approvers, expiresAt: event.expiresAt, decision: null, decidedBy: null, decidedAt: null },
      };
    case "command.approval_decided":
      return {
        ...command,
        status: event.decision === "approve" ? "queued" : command.status,
        approval: command.approval ? { ...command.approval, decision: event.decision, decidedBy: event.by, decidedAt: event.at } : null,
      };
    case "command.finished":
      return {
        ...command,
        status: event.status,
        exitCode: event.exitCode,
        timings: event.timings,
        error: event.error,
        returnedAt: event.at,
      };
  }
}

const FINISHED: ReadonlySet<string> = new Set(COMMAND_OUTCOMES);

export function isFinished(command: TranscriptCommand): boolean {
  return FINISHED.has(command.status);
}
