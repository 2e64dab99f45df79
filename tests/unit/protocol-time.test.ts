// protocol/time.ts: the wall clock in a named zone, skew wording and wall-time
// parsing, shared by the console, the session and approval emails. What the NOC
// reads (an endpoint's skew, a window's local time) is built here.
import { describe, expect, it } from "vitest";
import {
  describeSkew,
  describeZoneOffset,
  epochToWallTime,
  resolveTimeZone,
  SKEW_NOTICE_MS,
  wallTimeToEpoch,
  zonedParts,
  zoneOffsetMinutes,
} from "../../protocol/time";

describe("zonedParts", () => {
  it("reads every field of the wall clock in the zone, and the weekday of that local date", () => {
    // 2026-03-01 23:30:45 UTC is Monday 2026-03-02 10:30:45 in Sydney (UTC+11, daylight time).
    const at = Date.UTC(2026, 2, 1, 23, 30, 45);
    expect(zonedParts(at, "Australia/Sydney")).toEqual({ year: 2026, month: 3, day: 2, hour: 10, minute: 30, second: 45, weekday: 1 });
    expect(zonedParts(at, "UTC")).toEqual({ year: 2026, month: 3, day: 1, hour: 23, minute: 30, second: 45, weekday: 0 });
  });

  it("keeps one formatter per zone: a second zone read after the first gets its own clock", () => {
    const at = Date.UTC(2026, 6, 15, 12, 0, 0);
    expect(zonedParts(at, "America/New_York").hour).toBe(8);
    expect(zonedParts(at, "Europe/Berlin").hour).toBe(14);
    expect(zonedParts(at, "America/New_York").hour).toBe(8);
  });

  it("reads midnight as hour 0, and an unknown zone as UTC", () => {
    expect(zonedParts(Date.UTC(2026, 0, 5, 0, 0, 0), "UTC")).toMatchObject({ day: 5, hour: 0, minute: 0, second: 0, weekday: 1 });
    expect(zonedParts(Date.UTC(2026, 0, 5, 7, 8, 9), "Mars/Olympus_Mons")).toMatchObject({ hour: 7, minute: 8, second: 9 });
    expect(resolveTimeZone("Mars/Olympus_Mons")).toBe("UTC");
    expect(resolveTimeZone(null)).toBe("UTC");
    expect(resolveTimeZone("Asia/Kolkata")).toBe("Asia/Kolkata");
  });

  it("finds the weekday from the local date (the last day of a 31-day month, and a leap day)", () => {
    expect(zonedParts(Date.UTC(2026, 11, 31, 12), "UTC").weekday).toBe(4); // Thursday
    expect(zonedParts(Date.UTC(2028, 1, 29, 12), "UTC").weekday).toBe(2); // Tuesday
  });
});

describe("describeSkew", () => {
  it("says nothing up to the notice threshold plus the measurement's uncertainty, inclusive", () => {
    expect(describeSkew(SKEW_NOTICE_MS + 300, 300)).toBeNull();
    expect(describeSkew(-(SKEW_NOTICE_MS + 300), 300)).toBeNull();
    expect(describeSkew(SKEW_NOTICE_MS + 301, 300)).toBe("endpoint clock 2 s fast");
  });

  it("names the direction: behind is slow, ahead is fast", () => {
    expect(describeSkew(-5_000, 0)).toBe("endpoint clock 5 s slow");
    expect(describeSkew(5_000, 0)).toBe("endpoint clock 5 s fast");
  });

  it("words each unit only when it is there, and seconds alone only when nothing larger is", () => {
    expect(describeSkew(-(59 * 60_000 + 58_000), 0)).toBe("endpoint clock 59 min 58 s slow");
    expect(describeSkew(3_600_000, 0)).toBe("endpoint clock 1 h fast");
    expect(describeSkew(3_600_000 + 1_000, 0)).toBe("endpoint clock 1 h 1 s fast");
    expect(describeSkew(2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5_000, 0)).toBe("endpoint clock 2 d 3 h 4 min 5 s fast");
    expect(describeSkew(86_400_000, 0)).toBe("endpoint clock 1 d fast");
    expect(describeSkew(86_400_000 + 60_000, 0)).toBe("endpoint clock 1 d 1 min fast");
    expect(describeSkew(5 * 60_000, 0)).toBe("endpoint clock 5 min fast");
  });
});

describe("zone offsets", () => {
  it("is the zone's offset at that instant, east positive, in whole minutes", () => {
    expect(zoneOffsetMinutes(Date.UTC(2026, 0, 15), "Asia/Kolkata")).toBe(330);
    expect(zoneOffsetMinutes(Date.UTC(2026, 0, 15), "America/New_York")).toBe(-300);
    expect(zoneOffsetMinutes(Date.UTC(2026, 6, 15), "America/New_York")).toBe(-240);
    // Milliseconds of the instant do not shift the offset.
    expect(zoneOffsetMinutes(Date.UTC(2026, 0, 15, 0, 0, 0, 999), "UTC")).toBe(0);
  });

  it("labels an offset without locale abbreviations", () => {
    expect(describeZoneOffset(0)).toBe("UTC");
    expect(describeZoneOffset(60)).toBe("UTC+01:00");
    expect(describeZoneOffset(330)).toBe("UTC+05:30");
    expect(describeZoneOffset(-300)).toBe("UTC−05:00");
    expect(describeZoneOffset(-570)).toBe("UTC−09:30");
  });
});

describe("wallTimeToEpoch / epochToWallTime", () => {
  it("reads a wall-clock value with optional seconds and milliseconds in the zone", () => {
    expect(wallTimeToEpoch("2026-12-04T09:00", "America/New_York")).toBe(Date.UTC(2026, 11, 4, 14, 0));
    expect(wallTimeToEpoch("2026-12-04T09:00:07", "UTC")).toBe(Date.UTC(2026, 11, 4, 9, 0, 7));
    expect(wallTimeToEpoch("2026-12-04T09:00:07.5", "UTC")).toBe(Date.UTC(2026, 11, 4, 9, 0, 7, 500));
    expect(wallTimeToEpoch("2026-12-04T09:00:07.25", "UTC")).toBe(Date.UTC(2026, 11, 4, 9, 0, 7, 250));
    expect(wallTimeToEpoch("  2026-12-04T09:00  ", "UTC")).toBe(Date.UTC(2026, 11, 4, 9, 0));
    expect(wallTimeToEpoch("2028-02-29T23:59:59", "UTC")).toBe(Date.UTC(2028, 1, 29, 23, 59, 59)); // a leap day is a day
    expect(wallTimeToEpoch("2026-12-04T09:00", "Asia/Kolkata")).toBe(Date.UTC(2026, 11, 4, 3, 30));
  });

  it("refuses anything that is not exactly a wall-clock reading", () => {
    for (const value of ["", "2026-12-04", "2026-12-04 09:00", "x2026-12-04T09:00", "2026-12-04T09:00x", "2026-12-04T9:00", "26-12-04T09:00", "2026-12-04T09:00:07.1234",
      "2026-13-01T09:00", "2026-02-29T09:00", "2026-04-31T09:00", "2026-12-04T24:00", "2026-12-04T09:60", "2026-12-04T09:00:60", "2026-00-10T09:00"]) {
      expect(wallTimeToEpoch(value, "UTC"), value).toBeNull();
    }
  });

  it("takes the offset in force just before a DST change: in the spring gap and the autumn overlap", () => {
    // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist; read with EST (−5) it is 07:30 UTC,
    // which the zone's clock shows as 03:30: the gap's length later, never earlier than what was typed.
    expect(wallTimeToEpoch("2026-03-08T02:30", "America/New_York")).toBe(Date.UTC(2026, 2, 8, 7, 30));
    expect(epochToWallTime(wallTimeToEpoch("2026-03-08T02:30", "America/New_York")!, "America/New_York")).toBe("2026-03-08T03:30");
    // Either side of the gap each reading is exact.
    expect(wallTimeToEpoch("2026-03-08T01:59", "America/New_York")).toBe(Date.UTC(2026, 2, 8, 6, 59));
    expect(wallTimeToEpoch("2026-03-08T03:00", "America/New_York")).toBe(Date.UTC(2026, 2, 8, 7, 0));
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice. The first (EDT) occurrence is 05:30 UTC.
    expect(wallTimeToEpoch("2026-11-01T01:30", "America/New_York")).toBe(Date.UTC(2026, 10, 1, 5, 30));
    expect(wallTimeToEpoch("2026-11-01T02:30", "America/New_York")).toBe(Date.UTC(2026, 10, 1, 7, 30));
    // Sydney (southern hemisphere, +10/+11): the 2026-10-04 gap 02:00→03:00.
    expect(wallTimeToEpoch("2026-10-04T02:30", "Australia/Sydney")).toBe(Date.UTC(2026, 9, 3, 16, 30));
    // Far from any change the reading is the zone's offset at that time.
    expect(wallTimeToEpoch("2026-07-01T12:00", "America/New_York")).toBe(Date.UTC(2026, 6, 1, 16, 0));
  });

  it("writes an instant as the zone's datetime-local value, and reads it back", () => {
    const at = Date.UTC(2026, 0, 2, 3, 4);
    expect(epochToWallTime(at, "UTC")).toBe("2026-01-02T03:04");
    expect(epochToWallTime(at, "Australia/Sydney")).toBe("2026-01-02T14:04");
    expect(wallTimeToEpoch(epochToWallTime(at, "Australia/Sydney"), "Australia/Sydney")).toBe(at);
  });
});
