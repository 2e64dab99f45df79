// The session's measure of a runtime's clock (docs/decisions/0017-server-time.md), without a socket.
import { describe, expect, it } from "vitest";
import { describeSkew } from "../../protocol/time";
import { estimateFromCheckinSample, estimateFromEcho, estimateFromOneWay, RuntimeClock } from "../../workers/session/src/runtime-clock";

function memoryStore() {
  const values = new Map<string, string>();
  return { get: (key: string) => values.get(key), set: (key: string, value: string) => void values.set(key, value) };
}

const HOUR = 3_600_000;

describe("runtime clock", () => {
  it("estimates the offset from the midpoint of an exchange, with half the round trip as its uncertainty", () => {
    // Server sent at 1000, the runtime (an hour slow) read its clock at server time 1040, the answer came at 1100.
    expect(estimateFromEcho(1000, 1040 - HOUR, 1100)).toEqual({ offsetMs: -HOUR - 10, uncertaintyMs: 50, at: 1100 });
    expect(estimateFromCheckinSample({ sentAt: 5000 - HOUR, serverTime: 5030, receivedAt: 5080 - HOUR }, 9000)).toEqual({ offsetMs: -HOUR + 10, uncertaintyMs: 40, at: 9000 });
    expect(estimateFromOneWay(7000 - HOUR, 7005, 15_000)).toEqual({ offsetMs: -HOUR - 5, uncertaintyMs: 15_000, at: 7005 });
    expect(estimateFromEcho(1000, 1, 900)).toBeNull();
  });

  it("keeps the tightest recent estimate and converts runtime times to server time with it", () => {
    const clock = new RuntimeClock(memoryStore());
    expect(clock.toServerTime(123)).toEqual({ serverMs: 123, clock: null });
    clock.record(estimateFromOneWay(10_000 - HOUR, 10_000, 15_000));
    clock.record({ offsetMs: -HOUR + 3, uncertaintyMs: 2, at: 11_000 });
    clock.record({ offsetMs: -HOUR + 900, uncertaintyMs: 400, at: 12_000 }); // looser and recent: ignored
    expect(clock.current()).toEqual({ offsetMs: -HOUR + 3, uncertaintyMs: 2, at: 11_000 });
    clock.record({ offsetMs: -HOUR + 50, uncertaintyMs: 30, at: 11_000 + 11 * 60_000 }); // looser but the kept one is old
    expect(clock.current()?.offsetMs).toBe(-HOUR + 50);
    expect(clock.toServerTime(20_000 - HOUR).serverMs).toBe(20_000 - 50);
  });

  it("names a skew only when it is beyond doubt", () => {
    expect(describeSkew(-(59 * 60_000 + 58_000), 20)).toBe("endpoint clock 59 min 58 s slow");
    expect(describeSkew(2 * HOUR + 5_000, 100)).toBe("endpoint clock 2 h 5 s fast");
    expect(describeSkew(1_500, 10)).toBeNull();
    expect(describeSkew(9_000, 15_000)).toBeNull(); // within the one-way estimate's uncertainty
  });
});
