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

  /** The last body read and what it parsed to: the row stays the truth, but an unchanged one is not parsed again. */
  private parsedBody: { body: string; policy: SessionPolicy | null } | undefined;

  current(): SessionPolicy | null {
    const row = this.sql.exec<{ body: string }>("SELECT body FROM session_policy WHERE id = 1").toArray()[0];
    if (!row) return null;
    if (this.parsedBody?.body !== row.body) {
      const parsed = sessionPolicySchema.safeParse(JSON.parse(row.body));
      this.parsedBody = { body: row.body, policy: parsed.success ? parsed.data : null };
    }
    return this.parsedBody.policy;
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
