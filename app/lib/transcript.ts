// Folds the session's event log into what the transcript renders. Applying an
// event twice (a replay overlapping a live frame) is a no-op, so a viewer can
// always resync with "everything after the last seq I applied".
import {
  COMMAND_OUTCOMES,
  type Actor,
  type ApproverLabel,
  type CommandStatus,
  type OutputStream,
  type Timings,
  type TranscriptEvent,
} from "@protocol/messages";

/** Where one approver's email stands. "pending": not sent yet (just requested, or links re-issued). */
export type ApprovalDeliveryState = "pending" | "sent" | "retrying" | "failed";

export interface ApprovalRecipient {
  name: string;
  /** Masked ("p•••@acme.test"); empty for requests recorded before addresses were shown. */
  address: string;
  delivery: ApprovalDeliveryState;
  /** When the current link was emailed. */
  sentAt: number | null;
  attempt: number;
  nextAttemptAt: number | null;
  error: string | null;
}

export interface TranscriptApproval {
  reason: string;
  /** The deny-list pattern that matched, or null. */
  pattern: string | null;
  /** Why it needs consent ("not on the client's allow-list", "flagged by the technician", "matches /…/"). */
  rule: string | null;
  approvers: ApprovalRecipient[];
  requestedAt: number;
  expiresAt: number;
  reissuedBy: Actor | null;
  reissuedAt: number | null;
  decision: "approve" | "deny" | null;
  decidedBy: string | null;
  decidedByAddress: string | null;
  decidedAt: number | null;
}

export interface TranscriptCommand {
  commandId: string;
  requestId: string;
  text: string;
  shell: string;
  requestedBy: Actor;
  status: CommandStatus;
  queuedAt: number;
  dispatchedAt: number | null;
  /** Server time (the runtime's report converted with the session's measure of its clock, ADR 0017). */
  startedAt: number | null;
  /** How the endpoint's clock stood when the session converted its times, and what the endpoint itself said. */
  endpointClock: { offsetMs: number; uncertaintyMs: number; reportedStartedAt: number | null } | null;
  returnedAt: number | null;
  exitCode: number | null;
  output: { stream: OutputStream; data: string }[];
  truncatedAtBytes: number | null;
  /** Which side stopped keeping output: the session's cap or the runtime's own on the endpoint. */
  truncatedBy: "output_cap" | "runtime_cap" | null;
  /** Some streamed output never reached the server; what arrived is shown. */
  outputLost: boolean;
  timings: Timings | null;
  error: string | null;
  cancelRequestedBy: Actor | null;
  sequence: { id: string; name: string; step: number; steps: number; stopOnFailure: boolean } | null;
  notBefore: number | null;
  /** Starts only inside one of the endpoint's recurring maintenance windows (ADR 0026). */
  maintenanceWindow: boolean;
  expiresAt: number | null;
  approval: TranscriptApproval | null;
  /** Runtime messages about this command that the session refused (nothing changed). */
  refusals: RuntimeRefusal[];
  /** Runs next to the queue instead of waiting its turn. */
  alongside: boolean;
  /** A sequence step the session retries once on its own after an interruption. */
  idempotent: boolean;
  /** A new attempt of the interrupted command with this id. */
  retryOf: string | null;
  /** When it ended, whoever ended it (the runtime's return time is `returnedAt`, set only when it ran). */
  finishedAt: number | null;
  /** Who ended it, for a cancel or an aborted sequence. */
  finishedBy: Actor | null;
  /** Its sequence waits on this interrupted step for a technician's decision. */
  paused: boolean;
  /** How the sequence went on after this interrupted step. */
  resumed: { action: "retry" | "skip" | "abort" | "auto_retry"; by: Actor | null; at: number; retryCommandId: string | null } | null;
}

export interface RuntimeRefusal {
  seq: number;
  at: number;
  commandId: string | null;
  message: string;
  reason: string;
}

/** A line of the transcript that belongs to no command, shown after the command that preceded it. */
export interface TranscriptNotice extends RuntimeRefusal {
  /** The last command in the transcript when it happened; null when it came before every command. */
  afterCommandId: string | null;
}

export interface TranscriptState {
  lastSeq: number;
  order: string[];
  commands: Record<string, TranscriptCommand>;
  notices: TranscriptNotice[];
  /** Set when the session's retention removed history older than this (ms). */
  prunedBefore?: number;
}

export const emptyTranscript: TranscriptState = { lastSeq: 0, order: [], commands: {}, notices: [] };

export function applyEvents(state: TranscriptState, events: readonly TranscriptEvent[]): TranscriptState {
  let next = state;
  for (const event of events) {
    if (event.seq <= next.lastSeq) continue;
    next = applyEvent(next, event);
  }
  return next;
}

/**
 * Marks everything up to `seq` as seen: a windowed replay ends at the log's
 * newest seq even when its last events belong to commands outside the window.
 */
export function advanceTo(state: TranscriptState, seq: number): TranscriptState {
  return seq > state.lastSeq ? { ...state, lastSeq: seq } : state;
}

/**
 * Puts a page of older commands (all their events, in seq order) before the
 * ones already shown. Events of commands already shown are ignored: the
 * newer state already has them.
 */
export function prependHistory(state: TranscriptState, events: readonly TranscriptEvent[]): TranscriptState {
  const older = applyEvents(emptyTranscript, events);
  const olderIds = older.order.filter((id) => !(id in state.commands));
  const commands: Record<string, TranscriptCommand> = { ...state.commands };
  for (const id of olderIds) commands[id] = older.commands[id]!;
  return {
    lastSeq: state.lastSeq,
    order: [...olderIds, ...state.order],
    commands,
    notices: [...older.notices.filter((n) => n.afterCommandId === null || olderIds.includes(n.afterCommandId)), ...state.notices],
  };
}

/** Notices to render after `commandId` (null: before the first command). */
export function noticesAfter(state: TranscriptState, commandId: string | null): TranscriptNotice[] {
  return state.notices.filter((notice) => notice.afterCommandId === commandId);
}

function applyEvent(state: TranscriptState, event: TranscriptEvent): TranscriptState {
  if (event.kind === "transcript.pruned") return { ...state, lastSeq: event.seq, prunedBefore: Math.max(state.prunedBefore ?? 0, event.before) };
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
      endpointClock: null,
      returnedAt: null,
      exitCode: null,
      output: [],
      truncatedAtBytes: null,
      truncatedBy: null,
      outputLost: false,
      timings: null,
      error: null,
      cancelRequestedBy: null,
      sequence: event.sequence ?? null,
      notBefore: event.notBefore ?? null,
      maintenanceWindow: event.maintenanceWindow ?? false,
      expiresAt: event.expiresAt ?? null,
      approval: null,
      refusals: [],
      alongside: event.alongside ?? false,
      idempotent: event.idempotent ?? false,
      retryOf: event.retryOf ?? null,
      finishedAt: null,
      finishedBy: null,
      paused: false,
      resumed: null,
    };
    return {
      ...state,
      lastSeq: event.seq,
      order: [...state.order, event.commandId],
      commands: { ...state.commands, [event.commandId]: command },
    };
  }
  if (event.kind === "runtime.refused") {
    const refusal: RuntimeRefusal = { seq: event.seq, at: event.at, commandId: event.commandId, message: event.message, reason: event.reason };
    const target = event.commandId === null ? undefined : state.commands[event.commandId];
    if (target) {
      return { ...state, lastSeq: event.seq, commands: { ...state.commands, [target.commandId]: { ...target, refusals: [...target.refusals, refusal] } } };
    }
    // About no command, or one this transcript never had (which is the point of refusing it).
    const afterCommandId = state.order[state.order.length - 1] ?? null;
    return { ...state, lastSeq: event.seq, notices: [...state.notices, { ...refusal, afterCommandId }] };
  }
  const current = state.commands[event.commandId];
  if (!current) return { ...state, lastSeq: event.seq };
  const updated = updateCommand(current, event);
  return { ...state, lastSeq: event.seq, commands: { ...state.commands, [event.commandId]: updated } };
}

function updateCommand(
  command: TranscriptCommand,
  event: Exclude<TranscriptEvent, { kind: "command.queued" | "runtime.refused" | "transcript.pruned" }>,
): TranscriptCommand {
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
      return event.reason === "lost_in_transit"
        ? { ...command, outputLost: true }
        : { ...command, truncatedAtBytes: event.keptBytes, truncatedBy: event.reason };
    case "command.cancel_requested":
      return { ...command, cancelRequestedBy: event.by };
    case "command.approval_requested":
      return {
        ...command,
        status: "pending_approval",
        approval: {
          reason: event.reason,
          pattern: event.pattern,
          rule: event.rule ?? (event.pattern ? `matches /${event.pattern}/` : null),
          approvers: event.approvers.map(recipient),
          requestedAt: event.at,
          expiresAt: event.expiresAt,
          reissuedBy: null,
          reissuedAt: null,
          decision: null,
          decidedBy: null,
          decidedByAddress: null,
          decidedAt: null,
        },
      };
    case "command.approval_delivery": {
      if (!command.approval) return command;
      const approvers = [...command.approval.approvers];
      const index = findRecipient(approvers, event.approver);
      const previous = index >= 0 ? approvers[index]! : recipient(event.approver);
      const next: ApprovalRecipient = {
        ...previous,
        delivery: event.state,
        attempt: event.attempt,
        sentAt: event.state === "sent" ? event.at : previous.sentAt,
        nextAttemptAt: event.state === "retrying" ? event.nextAttemptAt : null,
        error: event.state === "sent" ? null : event.error,
      };
      if (index >= 0) approvers[index] = next;
      else approvers.push(next);
      return { ...command, approval: { ...command.approval, approvers } };
    }
    case "command.approval_reissued": {
      if (!command.approval) return command;
      // New links go out to everyone; the old ones (and their delivery state) are dead.
      const approvers = command.approval.approvers.map((a) => ({ ...a, delivery: "pending" as const, sentAt: null, attempt: 0, nextAttemptAt: null, error: null }));
      return { ...command, approval: { ...command.approval, approvers, expiresAt: event.expiresAt, reissuedBy: event.by, reissuedAt: event.at } };
    }
    case "command.approval_decided":
      return {
        ...command,
        status: event.decision === "approve" ? "queued" : command.status,
        approval: command.approval
          ? { ...command.approval, decision: event.decision, decidedBy: event.by, decidedByAddress: event.byAddress ?? null, decidedAt: event.at }
          : null,
      };
    case "command.finished":
      return {
        ...command,
        status: event.status,
        exitCode: event.exitCode,
        timings: event.timings,
        error: event.error,
        // Only a command that ran came back from the endpoint; a cancel before sending or a skip did not.
        returnedAt: event.timings ? event.at : null,
        finishedAt: event.at,
        finishedBy: event.by ?? (event.status === "cancelled" ? command.cancelRequestedBy : null),
        endpointClock: event.endpointClock ?? null,
      };
    case "sequence.paused":
      return { ...command, paused: true };
    case "sequence.resumed":
      return { ...command, paused: false, resumed: { action: event.action, by: event.by, at: event.at, retryCommandId: event.retryCommandId } };
  }
}

/** Older events name approvers as bare strings; they have no address and no delivery events. */
function recipient(approver: string | ApproverLabel): ApprovalRecipient {
  const label = typeof approver === "string" ? { name: approver, address: "" } : approver;
  return { name: label.name, address: label.address, delivery: "pending", sentAt: null, attempt: 0, nextAttemptAt: null, error: null };
}

/** By name and masked address; masked addresses alone can collide (p•••@acme.test). */
function findRecipient(approvers: readonly ApprovalRecipient[], label: ApproverLabel): number {
  const exact = approvers.findIndex((a) => a.address === label.address && a.name === label.name);
  return exact >= 0 ? exact : approvers.findIndex((a) => a.address === label.address && a.address !== "");
}

const FINISHED: ReadonlySet<string> = new Set(COMMAND_OUTCOMES);

/** Whether the command ran on the endpoint, i.e. whether a round trip means anything for it. */
export function ranOnEndpoint(command: TranscriptCommand): boolean {
  return command.timings !== null && command.startedAt !== null;
}

/**
 * How many commands are ahead of each waiting one: commands run one at a time
 * in the order accepted (ADR 0018), so that is the number of earlier commands
 * still queued or running. Commands running alongside are not
 * in the line; steps of a paused sequence wait for a decision, not their turn.
 */
export function queuePositions(state: TranscriptState): Map<string, number> {
  const positions = new Map<string, number>();
  const pausedSequences = new Set<string>();
  for (const id of state.order) {
    const command = state.commands[id]!;
    if (command.paused && command.sequence) pausedSequences.add(command.sequence.id);
  }
  let ahead = 0;
  for (const id of state.order) {
    const command = state.commands[id]!;
    if (command.alongside) continue;
    if (command.status === "dispatched" || command.status === "running") ahead += 1;
    else if (command.status === "queued") {
      if (command.sequence && pausedSequences.has(command.sequence.id)) continue;
      positions.set(id, ahead);
      ahead += 1;
    }
  }
  return positions;
}

export function isFinished(command: TranscriptCommand): boolean {
  return FINISHED.has(command.status);
}
