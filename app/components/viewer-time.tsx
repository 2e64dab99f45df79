import { useEffect, useState } from "react";
import { formatDateTimeInZone, formatTimestamp } from "~/lib/format";

/**
 * A time in the viewer's own zone, named, with UTC on hover. The server has no
 * idea of the viewer's zone, so it renders UTC (labelled) and the browser
 * switches to its zone once hydrated.
 */
export function ViewerTime({ at }: { at: number | null }) {
  const [zone, setZone] = useState<string | null>(null);
  useEffect(() => setZone(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"), []);
  if (at === null) return <span>—</span>;
  const utc = formatTimestamp(at);
  return (
    <time dateTime={new Date(at).toISOString()} title={utc}>
      {zone ? `${formatDateTimeInZone(at, zone)}` : utc}
    </time>
  );
}

/** The label that says which zone the page's times are in. */
export function ViewerZoneLabel() {
  const [zone, setZone] = useState<string | null>(null);
  useEffect(() => setZone(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"), []);
  return <span data-testid="viewer-zone">Times in your zone ({zone ?? "UTC"}); hover a time for UTC.</span>;
}
