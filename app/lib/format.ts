import { resolveTimeZone, zonedParts } from "../../protocol/time";

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
): { kind: "websocket" | "checkin" | "offline"; text: string } {
  if (runtime.online && runtime.transport === "websocket") return { kind: "websocket", text: "runtime connected · live (WebSocket)" };
  if (runtime.online && runtime.transport === "checkin") {
    const every = runtime.checkinIntervalMs ? `every ${Math.round(runtime.checkinIntervalMs / 1000)} s` : "periodically";
    const next = runtime.nextCheckinAt ? ` · next expected ${formatTimestamp(runtime.nextCheckinAt).slice(11)}` : "";
    return { kind: "checkin", text: `runtime checking in over HTTPS ${every}${next}` };
  }
  const since = runtime.lastSeenAt ? ` since ${formatTimestamp(runtime.lastSeenAt).slice(11)} (${formatAge(runtime.lastSeenAt, now)})` : " (never seen)";
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
