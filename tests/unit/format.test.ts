import { describe, expect, it } from "vitest";
import { formatDateTimeInZone, formatTimestamp, formatTimestampInZone, resolveTimeZone } from "../../app/lib/format";

// 2026-11-24T15:15:00Z: 09:15 in Chicago (CST, UTC-6), 16:15 in Berlin (CET).
const AT = Date.UTC(2026, 10, 24, 15, 15);

describe("times in the client's zone", () => {
  it("reads the wall clock in the named zone and names the zone", () => {
    expect(formatTimestampInZone(AT, "America/Chicago")).toBe("24 Nov 2026, 09:15 (America/Chicago)");
    expect(formatTimestampInZone(AT, "Europe/Berlin")).toBe("24 Nov 2026, 16:15 (Europe/Berlin)");
    expect(formatTimestampInZone(AT, "UTC")).toBe("24 Nov 2026, 15:15 (UTC)");
  });

  it("follows daylight saving time", () => {
    // 2026-07-01T14:05Z: CDT is UTC-5.
    expect(formatDateTimeInZone(Date.UTC(2026, 6, 1, 14, 5), "America/Chicago")).toBe("1 Jul 2026, 09:05");
  });

  it("crosses the date line with the zone, and writes midnight as 00", () => {
    expect(formatDateTimeInZone(Date.UTC(2026, 11, 31, 11, 0), "Pacific/Auckland")).toBe("1 Jan 2027, 00:00");
    expect(formatDateTimeInZone(Date.UTC(2026, 8, 3, 0, 0), "UTC")).toBe("3 Sep 2026, 00:00");
  });

  it("falls back to UTC, and says so, for an unknown or empty zone", () => {
    expect(resolveTimeZone("Mars/Olympus_Mons")).toBe("UTC");
    expect(resolveTimeZone("")).toBe("UTC");
    expect(formatTimestampInZone(AT, "Mars/Olympus_Mons")).toBe("24 Nov 2026, 15:15 (UTC)");
  });

  it("renders nothing for a missing time, and keeps the UTC formatter unchanged", () => {
    expect(formatTimestampInZone(null, "America/Chicago")).toBe("");
    expect(formatTimestamp(AT)).toBe("2026-11-24 15:15:00 UTC");
  });
});
