// The session's own copy of the client's approval policy, so no command waits
// on the central database for it. Replaced when an admin saves a policy (the
// console asks the session to re-read it), refreshed in the background at most
// every ten minutes on runtime connects; a failed read keeps the copy it had.
import { sessionPolicySchema, type SessionPolicy } from "../../../protocol/approvals";
import { readSessionPolicy } from "./approvals";

const REFRESH_AFTER_MS = 10 * 60_000;

export class PolicyCopy {
  constructor(
    private readonly sql: SqlStorage,
    /** The directory and this endpoint's id, read when needed (tests swap the binding for an outage). */
    private readonly directory: () => { db: D1Database; endpointId: string },
  ) {}

  /**
   * The copy as parsed, read from its row once per instance: only reload() writes the row, and it replaces this
   * too. Every command asks for the policy, several times (ADR 0028).
   */
  private parsed: { policy: SessionPolicy | null } | undefined;

  current(): SessionPolicy | null {
    if (!this.parsed) {
      const row = this.sql.exec<{ body: string }>("SELECT body FROM session_policy WHERE id = 1").toArray()[0];
      this.parsed = { policy: row ? parsePolicy(row.body) : null };
    }
    return this.parsed.policy;
  }

  /** Reads the policy from the directory into the copy; null (copy unchanged) when the directory cannot say. */
  async reload(): Promise<SessionPolicy | null> {
    const { db, endpointId } = this.directory();
    try {
      const policy = await readSessionPolicy(db, endpointId);
      if (!policy) return null;
      this.sql.exec(
        "INSERT INTO session_policy (id, body, loaded_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body, loaded_at = excluded.loaded_at",
        JSON.stringify(policy),
        Date.now(),
      );
      this.parsed = undefined; // read back as stored: the copy in memory is never other than the row
      return policy;
    } catch (error) {
      console.error("approval policy could not be read from the directory", error);
      return null;
    }
  }

  /** A reload when the copy is older than the refresh interval, or null when it is fresh enough. */
  reloadIfStale(now = Date.now()): Promise<SessionPolicy | null> | null {
    const loadedAt = this.sql.exec<{ loaded_at: number }>("SELECT loaded_at FROM session_policy WHERE id = 1").toArray()[0]?.loaded_at ?? 0;
    return now - loadedAt < REFRESH_AFTER_MS ? null : this.reload();
  }
}

function parsePolicy(body: string): SessionPolicy | null {
  const parsed = sessionPolicySchema.safeParse(JSON.parse(body));
  return parsed.success ? parsed.data : null;
}
