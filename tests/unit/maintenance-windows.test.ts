// Recurring maintenance windows in a client's zone, across daylight-saving changes (ADR 0026).
import { describe, expect, it } from "vitest";
import { describeWindow, firstInstantAtOrAfterWall, localWallMs, nextOpening, windowState, type MaintenanceWindow } from "../../protocol/maintenance-windows";

const DAILY = [0, 1, 2, 3, 4, 5, 6];
const daily = (startMinute: number, durationMinutes: number): MaintenanceWindow => ({ id: "w", days: DAILY, startMinute, durationMinutes });
const iso = (ms: number) => new Date(ms).toISOString();

describe("nextOpening", () => {
  it("opens daily 02:00–04:00 in the client's zone, not in UTC", () => {
    // 2026-06-10 12:00 UTC is 14:00 in Berlin (CEST, UTC+2).
    const next = nextOpening(daily(120, 120), "Europe/Berlin", Date.parse("2026-06-10T12:00:00Z"));
    expect(iso(next.opensAt)).toBe("2026-06-11T00:00:00.000Z");
    expect(iso(next.closesAt)).toBe("2026-06-11T02:00:00.000Z");
  });

  it("returns the occurrence that is open now, including one that began yesterday and runs past midnight", () => {
    const window = daily(22 * 60, 6 * 60); // 22:00–04:00
    const now = Date.parse("2026-06-11T00:30:00Z"); // 02:30 CEST
    const open = nextOpening(window, "Europe/Berlin", now);
    expect(iso(open.opensAt)).toBe("2026-06-10T20:00:00.000Z");
    expect(iso(open.closesAt)).toBe("2026-06-11T02:00:00.000Z");
    expect(windowState([window], "Europe/Berlin", now)).toEqual({ open: true, closesAt: open.closesAt });
  });

  it("on a spring-forward night a 02:00 start that does not exist opens when the clock jumps to 03:00 (an hour shorter)", () => {
    const next = nextOpening(daily(120, 120), "Europe/Berlin", Date.parse("2026-03-28T23:00:00Z"));
    expect(iso(next.opensAt)).toBe("2026-03-29T01:00:00.000Z"); // 03:00 CEST, the jump
    expect(iso(next.closesAt)).toBe("2026-03-29T02:00:00.000Z"); // 04:00 CEST
    expect(next.closesAt - next.opensAt).toBe(60 * 60_000);
    // The night after is a normal two-hour window in summer time.
    const after = nextOpening(daily(120, 120), "Europe/Berlin", next.closesAt);
    expect(iso(after.opensAt)).toBe("2026-03-30T00:00:00.000Z");
    expect(after.closesAt - after.opensAt).toBe(2 * 60 * 60_000);
  });

  it("on a fall-back night a start inside the repeated hour opens at its first occurrence", () => {
    // America/New_York 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 happens twice.
    const next = nextOpening(daily(90, 60), "America/New_York", Date.parse("2026-10-31T20:00:00Z"));
    expect(iso(next.opensAt)).toBe("2026-11-01T05:30:00.000Z"); // 01:30 EDT
    expect(iso(next.closesAt)).toBe("2026-11-01T07:30:00.000Z"); // 02:30 EST: two real hours
  });

  it("weekly windows open only on their local weekdays", () => {
    // Sat and Sun 22:00 for 6 h, Asia/Kolkata (UTC+5:30, no DST). 2026-06-10 is a Wednesday.
    const window: MaintenanceWindow = { id: "w", days: [6, 0], startMinute: 22 * 60, durationMinutes: 360 };
    const next = nextOpening(window, "Asia/Kolkata", Date.parse("2026-06-10T12:00:00Z"));
    expect(iso(next.opensAt)).toBe("2026-06-13T16:30:00.000Z"); // Saturday 22:00 IST
    expect(new Date(next.opensAt + 5.5 * 3600_000).getUTCDay()).toBe(6);
    expect(describeWindow(window)).toBe("Sun, Sat 22:00–04:00 (next day)");
  });

  it("says when nothing is defined, and takes the earliest of several windows", () => {
    expect(windowState([], "UTC", 0)).toEqual({ open: false, opensAt: null });
    const now = Date.parse("2026-06-10T12:00:00Z");
    const state = windowState([daily(120, 60), daily(13 * 60, 30)], "UTC", now);
    expect(state).toEqual({ open: false, opensAt: Date.parse("2026-06-10T13:00:00Z") });
  });

  it("finds the first instant at or after a wall time inside a gap and an overlap", () => {
    expect(iso(firstInstantAtOrAfterWall(Date.UTC(2026, 2, 29, 2, 30), "Europe/Berlin"))).toBe("2026-03-29T01:00:00.000Z");
    expect(iso(firstInstantAtOrAfterWall(Date.UTC(2026, 9, 25, 2, 30), "Europe/Berlin"))).toBe("2026-10-25T00:30:00.000Z");
  });
});

describe("window edges", () => {
  it("is open from the very instant it opens, and closed at the instant it closes", () => {
    const opensAt = Date.parse("2026-06-11T00:00:00Z"); // 02:00 in Berlin
    expect(windowState([daily(120, 120)], "Europe/Berlin", opensAt)).toEqual({ open: true, closesAt: Date.parse("2026-06-11T02:00:00Z") });
    const closesAt = Date.parse("2026-06-11T02:00:00Z");
    expect(windowState([daily(120, 120)], "Europe/Berlin", closesAt)).toEqual({ open: false, opensAt: Date.parse("2026-06-12T00:00:00Z") });
  });

  it("skips a window the spring-forward jump swallows whole (02:00–02:30) and opens it the next night", () => {
    const next = nextOpening(daily(120, 30), "America/New_York", Date.parse("2026-03-08T06:00:00Z"));
    expect(iso(next.opensAt)).toBe("2026-03-09T06:00:00.000Z");
    expect(iso(next.closesAt)).toBe("2026-03-09T06:30:00.000Z");
  });

  it("reads the wall clock to the millisecond, before 1970 too", () => {
    expect(localWallMs(Date.UTC(2026, 0, 1, 0, 0, 0, 123), "UTC")).toBe(Date.UTC(2026, 0, 1, 0, 0, 0, 123));
    expect(localWallMs(Date.UTC(2026, 0, 1, 0, 0, 0, 999), "Asia/Kolkata")).toBe(Date.UTC(2026, 0, 1, 5, 30, 0, 999));
    expect(localWallMs(-1, "UTC")).toBe(-1);
    expect(localWallMs(-1001, "UTC")).toBe(-1001);
  });

  it("takes the first of two readings in an overlap, and an exact reading outside any change", () => {
    expect(iso(firstInstantAtOrAfterWall(Date.UTC(2026, 10, 1, 1, 30), "America/New_York"))).toBe("2026-11-01T05:30:00.000Z");
    expect(iso(firstInstantAtOrAfterWall(Date.UTC(2026, 6, 1, 12, 0), "America/New_York"))).toBe("2026-07-01T16:00:00.000Z");
  });

  it("states windows as plants do: daily or sorted weekdays, and past midnight as the next day", () => {
    expect(describeWindow({ days: DAILY, startMinute: 120, durationMinutes: 120 })).toBe("daily 02:00–04:00");
    expect(describeWindow({ days: [3, 1], startMinute: 22 * 60, durationMinutes: 120 })).toBe("Mon, Wed 22:00–00:00");
    expect(describeWindow({ days: [6], startMinute: 23 * 60, durationMinutes: 120 })).toBe("Sat 23:00–01:00 (next day)");
    expect(describeWindow({ days: [0, 1, 2, 3, 4, 5], startMinute: 0, durationMinutes: 24 * 60 })).toBe("Sun, Mon, Tue, Wed, Thu, Fri 00:00 for 24 h");
    expect(describeWindow({ days: DAILY, startMinute: 6 * 60, durationMinutes: 24 * 60 - 1 })).toBe("daily 06:00–05:59 (next day)");
  });
});
