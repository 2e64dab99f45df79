import { describeZoneOffset, resolveTimeZone, zonedParts, zoneOffsetMinutes } from "@protocol/time";

/** "3 min ago"-style age for last-seen columns; absolute time in the title attribute. */
export function formatAge(timestamp: number | null, now = Date.now()): string {
  if (timestamp === null) return "never";
  const seconds = Math.max(0, Math.round((now - timestamp) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

export function formatTimestamp(timestamp: number | null): string {
  return timestamp === null ? "" : new Date(timestamp).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** The runtime's link as the endpoint page states it: how it is connected, or since when it is not. */
export function describeRuntimeLink(
  runtime: { online: boolean; transport: "websocket" | "checkin" | null; lastSeenAt: number | null; checkinIntervalMs?: number | null; nextCheckinAt?: number | null },
  now = Date.now(),
  zone = "UTC",
): { kind: "websocket" | "checkin" | "offline"; text: string } {
  if (runtime.online && runtime.transport === "websocket") return { kind: "websocket", text: "runtime connected · live (WebSocket)" };
  if (runtime.online && runtime.transport === "checkin") {
    const every = runtime.checkinIntervalMs ? `every ${Math.round(runtime.checkinIntervalMs / 1000)} s` : "periodically";
    const next = runtime.nextCheckinAt ? ` · next expected ${formatTimestampIn(runtime.nextCheckinAt, zone).slice(11)}` : "";
    return { kind: "checkin", text: `runtime checking in over HTTPS ${every}${next}` };
  }
  const since = runtime.lastSeenAt ? ` since ${formatTimestampIn(runtime.lastSeenAt, zone).slice(11)} (${formatAge(runtime.lastSeenAt, now)})` : " (never seen)";
  return { kind: "offline", text: `runtime offline${since}` };
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

// ---------------------------------------------------------------------------
// Times in a named IANA zone, for pages read by a client's staff (approvals).
// Built from numeric parts and our own month names so the server (workerd) and
// the browser render the same string, whatever their ICU locale data says.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;

export { resolveTimeZone };

/** "24 Nov 2026, 09:15" as the wall clock reads in `zone` (UTC if the zone is unknown). */
export function formatDateTimeInZone(timestamp: number, zone: string): string {
  const { year, month, day, hour, minute } = zonedParts(timestamp, zone);
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${day} ${MONTHS[month - 1]} ${year}, ${pad(hour)}:${pad(minute)}`;
}

/** "24 Nov 2026, 09:15 (America/Chicago)": the zone is always named, so nobody guesses whose clock it is. */
export function formatTimestampInZone(timestamp: number | null, zone: string): string {
  if (timestamp === null) return "";
  return `${formatDateTimeInZone(timestamp, zone)} (${resolveTimeZone(zone)})`;
}

// ---------------------------------------------------------------------------
// The console's one time-zone rule (ADR 0024): every time is shown in the
// viewer's zone, labelled with its UTC offset, with the UTC time on hover.

/** "2026-12-04 09:00:00 UTC−05:00" as the wall clock reads in `zone`. */
export function formatTimestampIn(timestamp: number | null, zone: string): string {
  if (timestamp === null) return "";
  const { year, month, day, hour, minute, second } = zonedParts(timestamp, zone);
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${year}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}:${pad(second)} ${describeZoneOffset(zoneOffsetMinutes(timestamp, zone))}`;
}

/** Whole-second durations as people say them: "4 s", "2 min 05 s", "1 h 02 min". */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
