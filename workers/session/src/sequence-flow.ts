// What a diagnostic sequence does between its steps (ADR 0018). A step that
// ended `interrupted` (the runtime stopped or crashed under it) pauses the
// sequence until a technician retries it, skips it or aborts the rest; a step
// marked idempotent is retried once without asking. A retry is a NEW command
// (new id, new journal entry on the runtime): the interrupted one is final and
// never runs again, so exactly-once holds per command id.
import type { Actor, TranscriptEvent } from "../../../protocol/messages";
import type { EventBody } from "./session-store";
import type { AuditEntry } from "./audit-log";
import { isFinal, type CommandRow } from "./command-store";
import { maintenanceWindowGate, type MaintenanceWindowHost } from "./maintenance-windows";

export type SequenceAction = "retry" | "skip" | "abort";


export interface SequenceFlowHost {
  sql: SqlStorage;
  appendEvent<K extends TranscriptEvent["kind"]>(kind: K, body: EventBody<K>): void;
  audit(entry: AuditEntry): void;
  /** Ends a queued step without running it. */
  skip(commandId: string, error: string, by: Actor | null): void;
  /** The client's zone and maintenance windows (the session's policy copy); absent: no window gating. */
  policy?: MaintenanceWindowHost["policy"];
}

/** Whether a queued step may run now, must wait, or is skipped (and why). */
export type StepGate = { kind: "run" } | { kind: "wait" } | { kind: "skip"; reason: string };


export class SequenceFlow {
  constructor(private readonly host: SequenceFlowHost) {}

  /**
   * The rule between steps, from the latest attempt of the step before: it must
   * be final; an interrupted one holds the sequence until answered; after a
   * failure in a stop-on-failure sequence the rest is skipped, naming the step
   * that actually failed (not the skipped one before it).
   */
  gate(step: CommandRow, now = Date.now()): StepGate {
    const order = this.orderGate(step);
    if (order.kind !== "run") return order;
    // Every step of windowed work starts inside a window: a sequence the window closed on waits for the next one.
    const policy = this.host.policy;
    if (step.maintenance_window && maintenanceWindowGate({ sql: this.host.sql, policy: () => (policy ? policy() : null) }, step, now).kind === "wait") {
      return { kind: "wait" };
    }
    return order;
  }

  private orderGate(step: CommandRow): StepGate {
    if (step.sequence_id === null || step.step_index === 0) return { kind: "run" };
    const previous = this.latestAttempt(step.sequence_id, step.step_index - 1);
    if (!previous || !isFinal(previous.status)) return { kind: "wait" };
    if (previous.status === "interrupted") {
      if (previous.resolution === "skipped") return { kind: "run" };
      if (previous.resolution === null) return { kind: "wait" }; // paused: a technician decides
    }
    if (previous.status === "succeeded" || !step.stop_on_failure) return { kind: "run" };
    if (previous.status === "skipped" && previous.error) return { kind: "skip", reason: previous.error };
    return { kind: "skip", reason: `Skipped: step ${previous.step_index + 1} (${preview(previous.text)}) ended ${previous.status}` };
  }

  /** Called when a step ended interrupted: retry it once on its own if it is idempotent, else pause. */
  onInterrupted(step: CommandRow, now = Date.now()): void {
    if (step.sequence_id === null || step.status !== "interrupted" || step.resolution !== null) return;
    const autoRetriedBefore = this.one<{ x: number }>(
      "SELECT 1 AS x FROM commands WHERE sequence_id = ? AND step_index = ? AND resolution = 'auto_retried'",
      step.sequence_id,
      step.step_index,
    );
    if (step.idempotent && !autoRetriedBefore) {
      this.resolve(step, "auto_retried");
      const retry = this.insertRetry(step, now, null);
      this.host.appendEvent("sequence.resumed", {
        sequenceId: step.sequence_id,
        commandId: step.id,
        step: step.step_index,
        action: "auto_retry",
        by: null,
        retryCommandId: retry,
      });
      this.host.audit({ kind: "sequence.resumed", commandId: step.id, status: "interrupted", detail: { action: "auto_retry", retryCommandId: retry, step: step.step_index } });
      return;
    }
    this.host.appendEvent("sequence.paused", { sequenceId: step.sequence_id, name: step.sequence_name ?? "", commandId: step.id, step: step.step_index });
    this.host.audit({ kind: "sequence.paused", commandId: step.id, status: "interrupted", detail: { sequenceId: step.sequence_id, step: step.step_index } });
  }

  /**
   * A technician's answer to a paused sequence. Returns why it was refused
   * (nothing changed) or null. Only a paused sequence can be answered, once.
   */
  act(sequenceId: string, action: SequenceAction, by: Actor, address: string | null, now = Date.now()): { refused: "not_found" | "conflict"; message: string } | null {
    const known = this.one<{ x: number }>("SELECT 1 AS x FROM commands WHERE sequence_id = ? LIMIT 1", sequenceId);
    const paused = known ? this.pausedStep(sequenceId) : undefined;
    if (!paused) {
      const message = known ? "This sequence is not waiting for a decision" : `No sequence ${sequenceId}`;
      this.host.audit({
        kind: "sequence.action_refused",
        actorId: by.userId,
        actorName: by.name,
        actorAddress: address,
        detail: { sequenceId, action, reason: message },
      });
      return { refused: known ? "conflict" : "not_found", message };
    }
    const resolution = action === "retry" ? "retried" : action === "skip" ? "skipped" : "aborted";
    this.resolve(paused, resolution);
    const retry = action === "retry" ? this.insertRetry(paused, now, { by, address }) : null;
    if (action === "abort") {
      const reason = `Skipped: ${by.name} aborted the sequence after step ${paused.step_index + 1} (${preview(paused.text)}) was interrupted`;
      for (const rest of this.all<{ id: string }>(
        "SELECT id FROM commands WHERE sequence_id = ? AND status IN ('queued', 'pending_approval') ORDER BY step_index, created_at",
        sequenceId,
      )) {
        this.host.skip(rest.id, reason, by);
      }
    }
    this.host.appendEvent("sequence.resumed", { sequenceId, commandId: paused.id, step: paused.step_index, action, by, retryCommandId: retry });
    this.host.audit({
      kind: "sequence.resumed",
      actorId: by.userId,
      actorName: by.name,
      actorAddress: address,
      commandId: paused.id,
      status: "interrupted",
      detail: { sequenceId, action, step: paused.step_index, retryCommandId: retry },
    });
    return null;
  }

  /** The interrupted step a sequence is waiting on, if it is paused. */
  pausedStep(sequenceId: string): CommandRow | undefined {
    const candidate = this.one<CommandRow>(
      "SELECT * FROM commands WHERE sequence_id = ? AND status = 'interrupted' AND resolution IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1",
      sequenceId,
    );
    // Only the step's newest attempt can hold the sequence.
    if (!candidate || this.latestAttempt(sequenceId, candidate.step_index)?.id !== candidate.id) return undefined;
    return candidate;
  }

  private latestAttempt(sequenceId: string, stepIndex: number): CommandRow | undefined {
    return this.one<CommandRow>(
      "SELECT * FROM commands WHERE sequence_id = ? AND step_index = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
      sequenceId,
      stepIndex,
    );
  }

  private resolve(step: CommandRow, resolution: NonNullable<CommandRow["resolution"]>): void {
    this.host.sql.exec("UPDATE commands SET resolution = ? WHERE id = ? AND resolution IS NULL", resolution, step.id);
  }

  /**
   * The step again under a new id, queued now. The interrupted command was
   * reported final by the runtime after it killed its process tree (or after
   * its start-up orphan sweep), so the two can never run at the same time.
   */
  private insertRetry(step: CommandRow, now: number, asker: { by: Actor; address: string | null } | null): string {
    const attempts = this.one<{ n: number }>("SELECT COUNT(*) AS n FROM commands WHERE sequence_id = ? AND step_index = ?", step.sequence_id, step.step_index)?.n ?? 1;
    const commandId = `cmd_${crypto.randomUUID()}`;
    const requestId = `${step.request_id.replace(/~retry\d+$/, "")}~retry${attempts}`;
    this.host.sql.exec(
      `INSERT INTO commands (id, request_id, text, shell, timeout_ms, requested_by_id, requested_by_name, status, created_at,
                             sequence_id, sequence_name, step_index, step_count, stop_on_failure, not_before, expires_at, alongside,
                             idempotent, retry_of, maintenance_window)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
      commandId,
      requestId,
      step.text,
      step.shell,
      step.timeout_ms,
      step.requested_by_id,
      step.requested_by_name,
      now,
      step.sequence_id,
      step.sequence_name,
      step.step_index,
      step.step_count,
      step.stop_on_failure,
      step.not_before,
      step.expires_at,
      step.idempotent,
      step.id,
      step.maintenance_window ?? 0,
    );
    const requestedBy = { userId: step.requested_by_id, name: step.requested_by_name };
    this.host.appendEvent("command.queued", {
      commandId,
      requestId,
      text: step.text,
      shell: step.shell as EventBody<"command.queued">["shell"],
      requestedBy,
      sequence: {
        id: step.sequence_id!,
        name: step.sequence_name ?? "",
        step: step.step_index,
        steps: step.step_count,
        stopOnFailure: Boolean(step.stop_on_failure),
      },
      notBefore: step.not_before,
      expiresAt: step.expires_at,
      idempotent: Boolean(step.idempotent),
      retryOf: step.id,
      ...(step.maintenance_window ? { maintenanceWindow: true } : {}),
    });
    this.host.audit({
      kind: "command.requested",
      actorId: asker?.by.userId ?? null,
      actorName: asker?.by.name ?? null,
      actorAddress: asker?.address ?? null,
      commandId,
      status: "queued",
      detail: { text: step.text, shell: step.shell, sequence: step.sequence_name, step: step.step_index, retryOf: step.id, automatic: asker === null },
    });
    return commandId;
  }

  private one<T>(query: string, ...bindings: unknown[]): T | undefined {
    return this.all<T>(query, ...bindings)[0];
  }

  private all<T>(query: string, ...bindings: unknown[]): T[] {
    return this.host.sql.exec(query, ...bindings).toArray() as T[];
  }
}

function preview(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > 60 ? `${oneLine.slice(0, 57)}...` : oneLine;
}
