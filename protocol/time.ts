// Wall-clock times in a named IANA zone, shared by the console (approval page)
// and the session (approval email). Built from numeric parts, so workerd and
// browsers render the same string whatever their ICU locale data says.

export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone itself when the runtime knows it, else "UTC", so a bad zone never breaks a page or an email. */
export function resolveTimeZone(zone: string | null | undefined): string {
  return zone && isValidTimeZone(zone) ? zone : "UTC";
}

export interface ZonedParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday. */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall clock in `zone` (UTC if the zone is unknown) at `timestamp`. */
export function zonedParts(timestamp: number, zone: string): ZonedParts {
  const resolved = resolveTimeZone(zone);
  let formatter = formatters.get(resolved);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-GB", {
      timeZone: resolved,
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      hourCycle: "h23",
    });
    formatters.set(resolved, formatter);
  }
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(new Date(timestamp))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const { year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
  // `% 24`: some ICU builds still say "24" for midnight despite h23.
  return { year, month, day, hour: hour % 24, minute, second, weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay() };
}

/** A skew is worth saying out loud only above this (plus the measurement's own uncertainty). */
export const SKEW_NOTICE_MS = 2_000;

/** "endpoint clock 59 min 58 s slow" when the skew is beyond doubt and worth mentioning, else null (ADR 0017). */
export function describeSkew(offsetMs: number, uncertaintyMs: number): string | null {
  if (Math.abs(offsetMs) <= SKEW_NOTICE_MS + uncertaintyMs) return null;
  return `endpoint clock ${formatSkewDuration(Math.abs(offsetMs))} ${offsetMs < 0 ? "slow" : "fast"}`;
}

function formatSkewDuration(ms: number): string {
  let seconds = Math.round(ms / 1000);
  const days = Math.floor(seconds / 86_400);
  seconds -= days * 86_400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const parts = [days ? `${days} d` : "", hours ? `${hours} h` : "", minutes ? `${minutes} min` : "", seconds || (!days && !hours && !minutes) ? `${seconds} s` : ""];
  return parts.filter(Boolean).join(" ");
}

/** The zone's offset from UTC at `timestamp`, in whole minutes (east positive). */
export function zoneOffsetMinutes(timestamp: number, zone: string): number {
  const { year, month, day, hour, minute, second } = zonedParts(timestamp, zone);
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  return Math.round((wall - Math.floor(timestamp / 1000) * 1000) / 60_000);
}

/** "UTC", "UTC+01:00", "UTC−05:00": a label every runtime renders alike (no locale-dependent abbreviations). */
export function describeZoneOffset(offsetMinutes: number): string {
  if (offsetMinutes === 0) return "UTC";
  const sign = offsetMinutes > 0 ? "+" : "−";
  const abs = Math.abs(offsetMinutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

const DAY_MS = 86_400_000;

/** The wall clock in `zone` at `instant`, as if it were UTC milliseconds (so it can be compared and shifted). */
export function localWallMs(instant: number, zone: string): number {
  const wall = zonedParts(instant, zone);
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second) + (((instant % 1000) + 1000) % 1000);
}

/**
 * How the clock in `zone` reads `wall` (a wall time as UTC-style milliseconds): `before` and `after` are `wall`
 * read with the offset in force a day before and a day after (zones change offset at most once within a day
 * either side); `exact` holds those at which the clock really reads `wall`, earliest first: none in a spring
 * gap, two in an autumn overlap.
 */
export function wallReadings(wall: number, zone: string): { before: number; after: number; exact: number[] } {
  const before = wall - (localWallMs(wall - DAY_MS, zone) - (wall - DAY_MS));
  const after = wall - (localWallMs(wall + DAY_MS, zone) - (wall + DAY_MS));
  const exact = [before, after].filter((candidate) => localWallMs(candidate, zone) === wall).sort((a, b) => a - b);
  return { before, after, exact };
}

/**
 * The instant a wall-clock reading ("2026-12-04T09:00", seconds optional) names in `zone`, or null when it
 * is not one. Read as the offset in force just before a DST change: a time in the spring gap lands the gap's
 * length later (02:30 in a 02:00→03:00 gap is 03:30), a time the autumn overlap repeats is its first occurrence.
 */
export function wallTimeToEpoch(value: string, zone: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value.trim());
  if (!match) return null;
  const [, y, mo, d, h, mi, s = "0", ms = "0"] = match;
  const wall = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms.padEnd(3, "0")));
  // Date.UTC rolls over (month 13, 31 February, 24:60); a reading that does not name itself is not one.
  if (new Date(wall).toISOString().slice(0, 16) !== `${y}-${mo}-${d}T${h}:${mi}` || Number(s) > 59) return null;
  const { before, exact } = wallReadings(wall, zone);
  return exact[0] ?? before;
}

/** `timestamp` as a datetime-local value ("2026-12-04T09:00") on the wall clock of `zone`. */
export function epochToWallTime(timestamp: number, zone: string): string {
  const { year, month, day, hour, minute } = zonedParts(timestamp, zone);
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${year}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}`;
}
