import { createContext, useContext, useEffect, useState } from "react";
import { describeZoneOffset, isValidTimeZone, zoneOffsetMinutes } from "@protocol/time";
import { formatTimestamp, formatTimestampIn } from "./format";

/** The cookie the browser sets with its own zone, so the next server render already uses it (ADR 0024). */
export const TIME_ZONE_COOKIE = "caisey-tz";

/** The zone named by the request's cookie, or UTC when there is none or it is not a zone. */
export function timeZoneFromCookie(cookieHeader: string | null): string {
  const match = /(?:^|;\s*)caisey-tz=([^;]+)/.exec(cookieHeader ?? "");
  const zone = match ? decodeURIComponent(match[1]!) : "";
  return zone && isValidTimeZone(zone) ? zone : "UTC";
}

const TimeZoneContext = createContext<string>("UTC");

/**
 * Renders first with the zone the server used (its cookie, else UTC), so
 * hydration matches; then switches to the browser's own zone and remembers it
 * in a cookie for the next server render.
 */
export function TimeZoneProvider({ serverZone, children }: { serverZone: string; children: React.ReactNode }) {
  const [zone, setZone] = useState(serverZone);
  useEffect(() => {
    const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!browserZone || !isValidTimeZone(browserZone)) return;
    setZone(browserZone);
    if (browserZone !== serverZone) {
      document.cookie = `${TIME_ZONE_COOKIE}=${encodeURIComponent(browserZone)}; Path=/; Max-Age=31536000; SameSite=Lax${location.protocol === "https:" ? "; Secure" : ""}`;
    }
  }, [serverZone]);
  return <TimeZoneContext.Provider value={zone}>{children}</TimeZoneContext.Provider>;
}

export function useTimeZone(): string {
  return useContext(TimeZoneContext);
}

/** formatTimestamp bound to the viewer's zone, for times inside sentences. */
export function useFormatTime(): (timestamp: number | null) => string {
  const zone = useTimeZone();
  return (timestamp) => formatTimestampIn(timestamp, zone);
}

/** A point in time in the viewer's zone; the UTC time on hover, the exact instant in `dateTime`. */
export function Time({ at, timeOnly = false, className }: { at: number | null; timeOnly?: boolean; className?: string }) {
  const zone = useTimeZone();
  if (at === null) return null;
  const text = formatTimestampIn(at, zone);
  return (
    <time dateTime={new Date(at).toISOString()} title={formatTimestamp(at)} className={className} data-zone={zone}>
      {timeOnly ? text.slice(11) : text}
    </time>
  );
}

/** "Times in America/New_York (UTC−05:00)": says whose clock every time on the page is. */
export function ZoneLabel({ className }: { className?: string }) {
  const zone = useTimeZone();
  // The offset of "now" differs between server and client renders only across a DST change: harmless.
  const [now] = useState(() => Date.now());
  return (
    <span className={className} data-testid="time-zone" data-zone={zone} title="Times are shown in your browser's time zone; hover a time for UTC">
      Times in {zone} ({describeZoneOffset(zoneOffsetMinutes(now, zone))})
    </span>
  );
}
