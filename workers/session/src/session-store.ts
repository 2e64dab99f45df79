// The session's own SQLite, as every module sees it: typed reads and the small
// key/value table (`runtime_state`) that holds presence, lifecycle and tenant facts.
import type { TranscriptEvent } from "../../../protocol/messages";

/** A transcript event as a module appends it: the log assigns seq and time. */
export type EventBody<K extends TranscriptEvent["kind"]> = Omit<Extract<TranscriptEvent, { kind: K }>, "seq" | "at" | "kind">;

export class SessionStore {
  constructor(readonly sql: SqlStorage) {}

  all<T>(query: string, ...bindings: unknown[]): T[] {
    return this.sql.exec(query, ...bindings).toArray() as T[];
  }

  one<T>(query: string, ...bindings: unknown[]): T | undefined {
    return this.all<T>(query, ...bindings)[0];
  }

  exec(query: string, ...bindings: unknown[]): void {
    this.sql.exec(query, ...bindings);
  }

  value(key: string): string | undefined {
    return this.one<{ value: string }>("SELECT value FROM runtime_state WHERE key = ?", key)?.value;
  }

  /** A time (or other number) kept as text; 0 when absent or cleared. */
  numberValue(key: string): number {
    return Number(this.value(key) || 0);
  }

  setValue(key: string, value: string): void {
    this.sql.exec(
      "INSERT INTO runtime_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }
}
