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
      hourCycle: "h23",
    });
    formatters.set(resolved, formatter);
  }
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(new Date(timestamp))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const { year = 1970, month = 1, day = 1, hour = 0, minute = 0 } = parts;
  // `% 24`: some ICU builds still say "24" for midnight despite h23.
  return { year, month, day, hour: hour % 24, minute, weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay() };
}
