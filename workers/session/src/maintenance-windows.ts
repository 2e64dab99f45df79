// The session's side of recurring maintenance windows (ADR 0026). Work queued
// "in the maintenance window" starts only while one of the endpoint's windows
// is open, computed here from the session's own policy copy (the client's
// zone and windows), never by asking the directory. While it waits, its
// not_before is kept at the next opening, so the session's one alarm wakes it
// then and the transcript can say when it will run.
import type { SessionPolicy } from "../../../protocol/approvals";
import { windowState } from "../../../protocol/maintenance-windows";

export interface MaintenanceWindowHost {
  sql: SqlStorage;
  /** The session's copy of the client's policy (zone and windows); null before the first read. */
  policy(): Pick<SessionPolicy, "timeZone" | "maintenanceWindows"> | null;
}

export type WindowGate = { kind: "run" } | { kind: "wait"; opensAt: number | null };

/**
 * Whether a queued command waiting for a maintenance window may start at `now`.
 * Fails closed: without a policy copy, or with no window defined, it waits.
 */
export function maintenanceWindowGate(
  host: MaintenanceWindowHost,
  command: { id: string; maintenance_window?: number | null; not_before: number | null },
  now: number,
): WindowGate {
  if (!command.maintenance_window) return { kind: "run" };
  const policy = host.policy();
  const state = policy ? windowState(policy.maintenanceWindows, policy.timeZone, now) : ({ open: false, opensAt: null } as const);
  // not_before follows the windows: the next opening while closed (the alarm wakes the session then; no window
  // means no alarm), and no later than now while one is open (a window added since may open earlier).
  const notBefore = state.open ? Math.min(command.not_before ?? now, now) : state.opensAt;
  if (command.not_before !== notBefore) {
    host.sql.exec("UPDATE commands SET not_before = ? WHERE id = ?", notBefore, command.id);
    command.not_before = notBefore;
  }
  return state.open ? { kind: "run" } : { kind: "wait", opensAt: state.opensAt };
}
