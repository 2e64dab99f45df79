// When queued work becomes due (its window, its expiry, the sequence step
// before it, one command at a time per endpoint), and when an online runtime
// has had every chance to report what it holds.
import { DEFAULT_CHECKIN_INTERVAL_MS } from "../../../protocol/messages";
import type { AuditLog } from "./audit-log";
import type { CommandRow, CommandStore } from "./command-store";
import type { EventLog } from "./event-log";
import type { SequenceFlow } from "./sequence-flow";
import type { SessionStore } from "./session-store";

/** Commands running at once on one endpoint, not counting those marked to run alongside. */
const MAX_RUNNING_COMMANDS = 1;

/**
 * How long past a command's own time limit an online runtime may take to
 * report it (kill grace, pipe drain, an outbox flush after reconnecting).
 */
export const RESULT_GRACE_MS = 2 * DEFAULT_CHECKIN_INTERVAL_MS + 30_000;

/**
 * When an online runtime has had every chance to report a command: its time
 * limit after dispatch, or the moment the runtime came back online, plus the
 * grace. Bindings: online_since, grace.
 */
const RESULT_DEADLINE_SQL = "MAX(COALESCE(dispatched_at, created_at) + timeout_ms, ?) + ?";

export interface QueueHost {
  store: SessionStore;
  commands: CommandStore;
  sequences: SequenceFlow;
  events: EventLog;
  audit: AuditLog;
  /** 0 while the runtime is offline, else when it came online. */
  onlineSince(): number;
}

export class CommandQueue {
  constructor(private readonly host: QueueHost) {}

  /**
   * Marks due commands dispatched, in the order they must run. Over the socket
   * (`oneAtATime`), a command also waits until the ones before it finished,
   * unless it runs alongside; a check-in runtime gets them all, in order, and
   * runs them one after another itself.
   */
  takeDue(now: number, oneAtATime: boolean): CommandRow[] {
    let due = this.settle(now);
    if (oneAtATime) {
      let running = this.host.store.one<{ n: number }>("SELECT COUNT(*) AS n FROM commands WHERE status IN ('dispatched', 'running') AND alongside = 0")?.n ?? 0;
      const ready: CommandRow[] = [];
      let waiting = false; // once one waits, every later one waits too: order is kept
      for (const command of due) {
        if (command.alongside) {
          ready.push(command);
        } else if (waiting || running >= MAX_RUNNING_COMMANDS) {
          waiting = true;
        } else {
          running += 1;
          ready.push(command);
        }
      }
      due = ready;
    }
    for (const command of due) {
      this.host.store.exec("UPDATE commands SET status = 'dispatched', dispatched_at = ? WHERE id = ?", now, command.id);
      this.host.events.append("command.dispatched", { commandId: command.id });
      this.host.audit.append({ kind: "command.dispatched", commandId: command.id, status: "dispatched", detail: {} });
    }
    return due;
  }

  /**
   * Ends expired and skipped commands; returns the queued ones that are due now:
   * inside their window and (in a sequence) every earlier step finished.
   */
  settle(now: number): CommandRow[] {
    const { commands, sequences, store } = this.host;
    const due: CommandRow[] = [];
    for (const command of store.all<CommandRow>("SELECT * FROM commands WHERE status = 'queued' ORDER BY created_at, step_index, rowid")) {
      if (command.expires_at !== null && now >= command.expires_at) {
        commands.finish(command.id, { status: "expired", exitCode: null, error: "Its expiry passed before it could run", timings: null });
        continue;
      }
      // The same instant as the not_before check below: a window gate that read the clock itself could set
      // not_before a millisecond past `now` and leave the command waiting for a wake-up nobody scheduled.
      const gate = sequences.gate(command, now);
      if (gate.kind === "wait") continue;
      if (gate.kind === "skip") {
        commands.finish(command.id, { status: "skipped", exitCode: null, error: gate.reason, timings: null });
        continue;
      }
      if (command.not_before !== null && now < command.not_before) continue;
      due.push(command);
    }
    return due;
  }

  /** Dispatched work not reported for a check-in interval, offered again (the runtime's journal answers a repeat). */
  redeliverable(now: number, intervalMs: number): CommandRow[] {
    return this.host.store.all<CommandRow>(
      "SELECT * FROM commands WHERE status IN ('dispatched', 'running') AND dispatched_at < ? ORDER BY created_at, step_index",
      now - intervalMs,
    );
  }

  cancelRequested(): string[] {
    return this.host.store.all<{ id: string }>("SELECT id FROM commands WHERE cancel_requested = 1 AND status IN ('dispatched', 'running')").map((r) => r.id);
  }

  /** The next window opening or expiry, and (while online) the next result deadline. */
  nextWakeAt(now: number): number | null {
    const { store } = this.host;
    const window = store.one<{ at: number | null }>(
      `SELECT MIN(at) AS at FROM (
         SELECT not_before AS at FROM commands WHERE status = 'queued' AND not_before > ?
         UNION ALL SELECT expires_at FROM commands WHERE status = 'queued' AND expires_at > ?)`,
      now,
      now,
    )?.at;
    const onlineSince = this.host.onlineSince();
    const result = onlineSince
      ? store.one<{ at: number | null }>(`SELECT MIN(${RESULT_DEADLINE_SQL}) AS at FROM commands WHERE status IN ('dispatched', 'running')`, onlineSince, RESULT_GRACE_MS)?.at
      : null;
    const candidates = [window, result].filter((at): at is number => typeof at === "number" && at > 0);
    return candidates.length ? Math.min(...candidates) : null;
  }

  /**
   * Work the runtime holds but never reported, although it has been online
   * well past the command's time limit (its journal would have answered a
   * redelivery by now), ends as timed out. While the runtime is offline a
   * result may still be waiting in its outbox, so nothing is given up then.
   */
  timeOutUnreported(now: number): void {
    const onlineSince = this.host.onlineSince();
    if (!onlineSince) return;
    const overdue = this.host.store.all<CommandRow>(
      `SELECT * FROM commands WHERE status IN ('dispatched', 'running') AND ${RESULT_DEADLINE_SQL} <= ?`,
      onlineSince,
      RESULT_GRACE_MS,
      now,
    );
    for (const command of overdue) {
      this.host.commands.finish(command.id, {
        status: "timed_out",
        exitCode: null,
        error: `The endpoint did not report a result within ${Math.round((command.timeout_ms + RESULT_GRACE_MS) / 1000)} s although it was online`,
        timings: null,
      });
    }
  }
}
