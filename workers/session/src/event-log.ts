// The transcript: every state change a viewer renders is appended here, and
// everything one message caused reaches viewers as one frame.
import type { TranscriptEvent } from "../../../protocol/messages";
import type { EventBody, SessionStore } from "./session-store";

export class EventLog {
  /** Events appended during the current message, sent together when it is handled. */
  private readonly pending: TranscriptEvent[] = [];

  constructor(
    private readonly store: SessionStore,
    /** Sends live events to the viewers that have had their replay. */
    private readonly broadcast: (events: TranscriptEvent[]) => void,
  ) {}

  append<K extends TranscriptEvent["kind"]>(kind: K, body: EventBody<K>, chunkIndex: number | null = null): void {
    const at = Date.now();
    const commandId = (body as { commandId?: string }).commandId ?? null;
    const row = this.store.one<{ seq: number }>(
      "INSERT INTO events (at, kind, command_id, chunk_index, body) VALUES (?, ?, ?, ?, ?) RETURNING seq",
      at,
      kind,
      commandId,
      chunkIndex,
      JSON.stringify(body),
    )!;
    this.pending.push({ ...body, seq: row.seq, at, kind } as unknown as TranscriptEvent);
    if (this.pending.length === 1) queueMicrotask(() => this.flush());
  }

  /**
   * Back-to-back small frames invite a Nagle/delayed-ACK stall on the way to
   * the browser; a viewer about to be replayed must not get these twice.
   */
  flush(): void {
    const events = this.pending.splice(0);
    if (events.length) this.broadcast(events);
  }
}
