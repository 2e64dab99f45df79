// Recurring maintenance windows as plants state them: "daily 02:00–04:00" or
// "Sat and Sun 22:00 for 6 hours", in the client's IANA time zone
// (docs/decisions/0026-fleet-runs-and-maintenance-windows.md). Pure: the
// session computes the next opening itself from its policy copy, and the
// console uses the same functions to say when queued work will run.
//
// Daylight-saving rule (deliberate, tested): a window is wall-clock hours. It
// opens at the first instant the local clock reads its start time or later and
// closes at the first instant it reads its end time or later. On a
// spring-forward night a 02:00 start that does not exist opens when the clock
// jumps (03:00), so the window is an hour shorter; on a fall-back night a start
// inside the repeated hour opens at its first occurrence and an end inside it
// closes at its first occurrence (never later than the plant expects).
import * as z from "zod";
import { isValidTimeZone, localWallMs, wallReadings } from "./time";

export { localWallMs } from "./time";

export const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"] as const;
export const MAX_WINDOW_MINUTES = 24 * 60;

export const maintenanceWindowSchema = z.object({
  id: z.string().min(1).max(128),
  /** Local weekdays the window opens on, 0 = Sunday; all seven for a daily window. */
  days: z.array(z.number().int().min(0).max(6)).min(1, "Pick at least one day").max(7),
  /** Local opening time, minutes after midnight. */
  startMinute: z.number().int().min(0).max(24 * 60 - 1),
  durationMinutes: z.number().int().min(1).max(MAX_WINDOW_MINUTES),
});
export type MaintenanceWindow = z.infer<typeof maintenanceWindowSchema>;

export const timeZoneSchema = z.string().min(1).max(64).refine(isValidTimeZone, "Unknown time zone");

export interface WindowOccurrence {
  opensAt: number;
  closesAt: number;
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * The first instant at which the wall clock in `zone` reads `wall` or later
 * (wall as UTC-style milliseconds). Exists for every wall time: inside a
 * spring-forward gap it is the moment of the jump; inside a fall-back overlap
 * it is the first occurrence.
 */
export function firstInstantAtOrAfterWall(wall: number, zone: string): number {
  const { before, after, exact } = wallReadings(wall, zone);
  if (exact.length) return exact[0]!;
  // A gap: the local clock skips `wall`. Search the jump between the two candidates, to the minute
  // (zones change offset on whole minutes).
  let low = Math.min(before, after);
  let high = Math.max(before, after);
  while (high - low > MINUTE) {
    const middle = low + Math.ceil((high - low) / 2 / MINUTE) * MINUTE;
    if (localWallMs(middle, zone) >= wall) high = middle;
    else low = middle;
  }
  return high;
}

/** The occurrence of `window` that is open at `now`, or else the next one. */
export function nextOpening(window: MaintenanceWindow, zone: string, now: number): WindowOccurrence {
  const today = Math.floor(localWallMs(now, zone) / DAY) * DAY;
  // A window may run past midnight (up to 24 h), so yesterday's may still be open.
  for (let day = today - DAY; day <= today + 8 * DAY; day += DAY) {
    if (!window.days.includes(new Date(day).getUTCDay())) continue;
    const startWall = day + window.startMinute * MINUTE;
    const opensAt = firstInstantAtOrAfterWall(startWall, zone);
    const closesAt = firstInstantAtOrAfterWall(startWall + window.durationMinutes * MINUTE, zone);
    if (closesAt > now && closesAt > opensAt) return { opensAt, closesAt };
  }
  // Unreachable with at least one day: every weekday occurs within the scanned week.
  throw new Error("maintenance window has no opening within a week");
}

export type WindowState =
  | { open: true; closesAt: number }
  | { open: false; opensAt: number }
  /** No window is defined: work that must wait for one waits until an admin defines one. */
  | { open: false; opensAt: null };

/** Whether any of the windows is open at `now` (and until when), or when the next one opens. */
export function windowState(windows: readonly MaintenanceWindow[], zone: string, now: number): WindowState {
  let closesAt = 0;
  let opensAt = Infinity;
  for (const window of windows) {
    const occurrence = nextOpening(window, zone, now);
    if (occurrence.opensAt <= now) closesAt = Math.max(closesAt, occurrence.closesAt);
    else opensAt = Math.min(opensAt, occurrence.opensAt);
  }
  if (closesAt > 0) return { open: true, closesAt };
  return Number.isFinite(opensAt) ? { open: false, opensAt } : { open: false, opensAt: null };
}

/** "Mon, Wed 02:00–04:00" / "daily 22:00–04:00 (next day)" / "Sat 06:00 for 24 h": how the console states a window. */
export function describeWindow(window: Pick<MaintenanceWindow, "days" | "startMinute" | "durationMinutes">): string {
  const days = window.days.length === 7 ? "daily" : [...window.days].sort().map((d) => WEEKDAYS[d]).join(", ");
  const clock = (minutes: number) => `${String(Math.floor(minutes / 60) % 24).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
  // "00:00–00:00" would read as nothing at all.
  if (window.durationMinutes === MAX_WINDOW_MINUTES) return `${days} ${clock(window.startMinute)} for 24 h`;
  const end = window.startMinute + window.durationMinutes;
  const nextDay = end > 24 * 60 ? " (next day)" : "";
  return `${days} ${clock(window.startMinute)}–${clock(end)}${nextDay}`;
}
