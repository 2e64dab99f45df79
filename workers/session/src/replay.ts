// What a viewer gets when it (re)connects or scrolls back: the frames of a
// replay, built from the session's event log. Pure reads of SQLite; the
// session sends the frames and marks the viewer synced.
import type { TranscriptEvent, ViewerBoundMessage } from "../../../protocol/messages";

/** A frame of replayed events stays under this many bytes of JSON (a Workers WebSocket frame is at most 1 MiB). */
const REPLAY_FRAME_BYTES = 256 * 1024;
/** A fresh viewer gets at most this many of the newest commands... */
const REPLAY_WINDOW_COMMANDS = 50;
/** ...and stops adding older ones once their stored output passes this; older pages come on request. */
const REPLAY_WINDOW_OUTPUT_BYTES = 1024 * 1024;
/** A reconnecting viewer further behind than this gets a fresh window instead of everything it missed. */
const MAX_CATCHUP_EVENTS = 2_000;

type EventRow = { seq: number; at: number; kind: string; body: string };

interface CommandPage {
  commandIds: string[];
  oldestSeq: number;
  hasOlder: boolean;
}

export class TranscriptReplay {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Everything after `afterSeq`, or, for a fresh viewer (0) or one too far
   * behind, a window of the newest commands whose first frame says so.
   */
  catchUp(afterSeq: number): ViewerBoundMessage[] {
    const missed = afterSeq > 0 ? this.one<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE seq > ?", afterSeq)?.n ?? 0 : Infinity;
    if (missed <= MAX_CATCHUP_EVENTS) {
      const events = this.all<EventRow>("SELECT seq, at, kind, body FROM events WHERE seq > ? ORDER BY seq", afterSeq).map(toEvent);
      return frames(events, (batch) => ({ type: "events", events: batch, replay: true, lastSeq: batch.at(-1)?.seq ?? afterSeq }));
    }
    const page = this.commandPage(null);
    const lastSeq = this.one<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM events")?.seq ?? 0;
    return frames(this.pageEvents(page, lastSeq + 1), (batch, first, final) => ({
      type: "events",
      events: batch,
      replay: true,
      // The last frame ends at the log's newest seq: live events continue from there, whichever commands the window holds.
      lastSeq: final ? lastSeq : batch.at(-1)!.seq,
      ...(first ? { window: { oldestSeq: page.oldestSeq, hasOlder: page.hasOlder } } : {}),
    }));
  }

  /** The next page of older commands, for a viewer scrolling back past its window. */
  history(beforeSeq: number): ViewerBoundMessage[] {
    const page = this.commandPage(beforeSeq);
    return frames(this.pageEvents(page, beforeSeq), (batch, _first, final) => ({
      type: "history",
      events: batch,
      final,
      oldestSeq: page.oldestSeq,
      hasOlder: page.hasOlder,
    }));
  }

  /**
   * The newest commands queued before `beforeSeq` (all commands when null), up
   * to the window's command and output budgets: their ids, the seq of the oldest
   * one's first event, and whether anything older exists.
   */
  private commandPage(beforeSeq: number | null): CommandPage {
    const rows = this.all<{ command_id: string; seq: number; output_bytes: number }>(
      `SELECT e.command_id, e.seq, c.output_bytes FROM events e JOIN commands c ON c.id = e.command_id
       WHERE e.kind = 'command.queued' AND e.seq < ? ORDER BY e.seq DESC LIMIT ?`,
      beforeSeq ?? Number.MAX_SAFE_INTEGER,
      REPLAY_WINDOW_COMMANDS + 1,
    );
    const commandIds: string[] = [];
    let outputBytes = 0;
    let oldestSeq = beforeSeq ?? 0;
    for (const row of rows.slice(0, REPLAY_WINDOW_COMMANDS)) {
      if (commandIds.length > 0 && outputBytes + row.output_bytes > REPLAY_WINDOW_OUTPUT_BYTES) break;
      commandIds.push(row.command_id);
      outputBytes += row.output_bytes;
      oldestSeq = row.seq;
    }
    if (commandIds.length === 0) oldestSeq = 0;
    return { commandIds, oldestSeq, hasOlder: rows.length > commandIds.length };
  }

  /** Every event of the page's commands, plus events about no command (runtime refusals) between its bounds. */
  private pageEvents(page: CommandPage, beforeSeq: number): TranscriptEvent[] {
    if (page.commandIds.length === 0 && page.oldestSeq === 0) {
      return this.all<EventRow>("SELECT seq, at, kind, body FROM events WHERE command_id IS NULL AND seq < ? ORDER BY seq", beforeSeq).map(toEvent);
    }
    return this.all<EventRow>(
      `SELECT seq, at, kind, body FROM events
       WHERE command_id IN (SELECT value FROM json_each(?)) OR (command_id IS NULL AND seq >= ? AND seq < ?)
       ORDER BY seq`,
      JSON.stringify(page.commandIds),
      page.oldestSeq,
      beforeSeq,
    ).map(toEvent);
  }

  private all<T>(query: string, ...bindings: unknown[]): T[] {
    return this.sql.exec(query, ...bindings).toArray() as T[];
  }

  private one<T>(query: string, ...bindings: unknown[]): T | undefined {
    return this.all<T>(query, ...bindings)[0];
  }
}

/**
 * Splits events into frames of bounded size, in order; always at least one
 * frame, so an empty replay still tells the viewer where the log stands.
 */
function frames(
  events: TranscriptEvent[],
  frame: (batch: TranscriptEvent[], first: boolean, final: boolean) => ViewerBoundMessage,
): ViewerBoundMessage[] {
  const out: ViewerBoundMessage[] = [];
  let batch: TranscriptEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = JSON.stringify(event).length;
    if (batch.length && bytes + size > REPLAY_FRAME_BYTES) {
      out.push(frame(batch, out.length === 0, false));
      batch = [];
      bytes = 0;
    }
    batch.push(event);
    bytes += size;
  }
  out.push(frame(batch, out.length === 0, true));
  return out;
}

function toEvent(row: EventRow): TranscriptEvent {
  return { ...JSON.parse(row.body), seq: row.seq, at: row.at, kind: row.kind } as TranscriptEvent;
}
