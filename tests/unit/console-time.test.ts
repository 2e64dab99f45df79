import { describe, expect, it } from "vitest";
import { searchBackwards, technicianHistory } from "../../app/lib/command-history";
import { formatTimestampIn } from "../../app/lib/format";
import { applyEvents, emptyTranscript } from "../../app/lib/transcript";
import { describeZoneOffset, epochToWallTime, wallTimeToEpoch, zoneOffsetMinutes } from "../../protocol/time";

describe("the console's time-zone rule", () => {
  it("labels a time with its zone's offset, across DST", () => {
    expect(formatTimestampIn(Date.UTC(2026, 11, 4, 14, 0, 5), "America/New_York")).toBe("2026-12-04 09:00:05 UTC−05:00");
    expect(formatTimestampIn(Date.UTC(2026, 6, 4, 13, 0), "America/New_York")).toBe("2026-07-04 09:00:00 UTC−04:00");
    expect(formatTimestampIn(Date.UTC(2026, 6, 4, 13, 0), "Asia/Kolkata")).toBe("2026-07-04 18:30:00 UTC+05:30");
    expect(formatTimestampIn(Date.UTC(2026, 6, 4, 13, 0), "UTC")).toBe("2026-07-04 13:00:00 UTC");
    expect(describeZoneOffset(zoneOffsetMinutes(0, "Not/AZone"))).toBe("UTC");
  });

  it("reads a wall-clock input in the viewer's zone (09:00 New York is 14:00 UTC in winter)", () => {
    expect(wallTimeToEpoch("2026-12-04T09:00", "America/New_York")).toBe(Date.UTC(2026, 11, 4, 14, 0));
    expect(wallTimeToEpoch("2026-07-04T09:00", "America/New_York")).toBe(Date.UTC(2026, 6, 4, 13, 0));
    expect(wallTimeToEpoch("2026-12-04T09:00:30.5", "UTC")).toBe(Date.UTC(2026, 11, 4, 9, 0, 30, 500));
    expect(wallTimeToEpoch("09:00", "UTC")).toBeNull();
    expect(epochToWallTime(Date.UTC(2026, 11, 4, 14, 0), "America/New_York")).toBe("2026-12-04T09:00");
  });
});

describe("command history", () => {
  const tom = { userId: "user_tom", name: "Tom" };
  const ada = { userId: "user_ada", name: "Ada" };
  let seq = 0;
  const queued = (text: string, by: typeof tom) => ({ seq: ++seq, at: seq, kind: "command.queued" as const, commandId: `c${seq}`, requestId: `r${seq}`, text, shell: "sh" as const, requestedBy: by, sequence: null, notBefore: null, expiresAt: null });
  const transcript = applyEvents(emptyTranscript, [queued("ls", tom), queued("ls", tom), queued("whoami", ada), queued("uptime", tom), queued("df -h", tom)]);

  it("is one technician's commands on the endpoint, oldest first, without repeats", () => {
    expect(technicianHistory(transcript, "user_tom").map((i) => i.text)).toEqual(["ls", "uptime", "df -h"]);
    expect(technicianHistory(transcript, "user_ada").map((i) => i.text)).toEqual(["whoami"]);
  });

  it("searches backwards like a shell's Ctrl-R", () => {
    const items = technicianHistory(transcript, "user_tom");
    expect(searchBackwards(items, "T")).toBe(1);
    expect(searchBackwards(items, "", 1)).toBe(0);
    expect(searchBackwards(items, "nothing")).toBe(-1);
  });
});
