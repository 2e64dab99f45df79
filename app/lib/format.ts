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

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

// ---------------------------------------------------------------------------
// Times in a named IANA zone, for pages read by a client's staff (approvals).
// Built from numeric parts and our own month names so the server (workerd) and
// the browser render the same string, whatever their ICU locale data says.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone itself when the runtime knows it, else "UTC", so a bad zone never breaks a page. */
export function resolveTimeZone(zone: string | null | undefined): string {
  if (!zone) return "UTC";
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: zone });
    return zone;
  } catch {
    return "UTC";
  }
}

function zonedFormatter(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      hourCycle: "h23",
    });
    formatters.set(zone, formatter);
  }
  return formatter;
}

/** "24 Nov 2026, 09:15" as the wall clock reads in `zone` (UTC if the zone is unknown). */
export function formatDateTimeInZone(timestamp: number, zone: string): string {
  const parts: Record<string, number> = {};
  for (const part of zonedFormatter(resolveTimeZone(zone)).formatToParts(new Date(timestamp))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const pad = (value: number) => String(value).padStart(2, "0");
  // `% 24`: some ICU builds still say "24" for midnight despite h23.
  return `${parts.day} ${MONTHS[(parts.month ?? 1) - 1]} ${parts.year}, ${pad((parts.hour ?? 0) % 24)}:${pad(parts.minute ?? 0)}`;
}

/** "24 Nov 2026, 09:15 (America/Chicago)": the zone is always named, so nobody guesses whose clock it is. */
export function formatTimestampInZone(timestamp: number | null, zone: string): string {
  if (timestamp === null) return "";
  return `${formatDateTimeInZone(timestamp, zone)} (${resolveTimeZone(zone)})`;
}
