// The orphan sweep's decisions with an injected OS (the real thing on Linux is
// covered by tests/unit/runtime-{outbox,checkin}.test.ts and tests/faults/interruptions.test.ts):
// only a recorded process whose identity still matches is killed.
import { describe, expect, it } from "vitest";
import { killOrphans, linuxProcessIdentity, type ProcessHost } from "../../runtime/src/orphans";

describe("orphan sweep", () => {
  it("reads the start time after the command name, whatever the name holds", () => {
    const files: Record<string, string> = {
      "/proc/42/stat": "42 (sh -c (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 123 456 789",
      "/proc/sys/kernel/random/boot_id": "boot-1\n",
      "/proc/43/stat": "43 (sleep) Z 1 43 43 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0",
    };
    const read = (file: string) => {
      if (!(file in files)) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
      return files[file]!;
    };
    expect(linuxProcessIdentity(42, read)).toBe("linux:boot-1:987654");
    expect(linuxProcessIdentity(43, read)).toBeUndefined(); // a zombie is already dead
    expect(linuxProcessIdentity(44, read)).toBeUndefined();
  });

  it("kills only unsettled commands whose process identity still matches, escalating to SIGKILL, and reports the rest", async () => {
    const alive = new Set([10, 11, 12, 13]);
    const signals: [number, string][] = [];
    const host: ProcessHost = {
      platform: "linux",
      identity: (pid) => (alive.has(pid) ? (pid === 11 ? "id-reused" : `id-${pid}`) : undefined),
      killTree: (pid, signal) => {
        signals.push([pid, signal]);
        if (pid !== 10) alive.delete(pid); // 10 ignores SIGTERM
        if (signal === "SIGKILL") alive.delete(pid);
      },
      alive: (pid) => alive.has(pid),
    };
    const reports = await killOrphans(
      [
        ["cmd-ignores-term", { pid: 10, identity: "id-10", at: 1 }],
        ["cmd-pid-reused", { pid: 11, identity: "id-11", at: 1 }],
        ["cmd-no-identity", { pid: 12, identity: undefined, at: 1 }],
        ["cmd-settled", { pid: 13, identity: "id-13", at: 1 }],
        ["cmd-gone", { pid: 14, identity: "id-14", at: 1 }],
      ],
      (id) => id !== "cmd-settled",
      { host, graceMs: 60 },
    );
    expect(signals).toEqual([
      [10, "SIGTERM"],
      [10, "SIGKILL"],
    ]);
    expect(reports.map((r) => [r.commandId, r.killed])).toEqual([
      ["cmd-ignores-term", true],
      ["cmd-no-identity", false],
    ]);
    expect(reports[1]!.note).toMatch(/cannot verify/);
    expect(alive.has(11) && alive.has(12) && alive.has(13)).toBe(true);
  });

  it("on a platform that cannot identify processes, reports a live recorded pid as a possible orphan and kills nothing", async () => {
    const killed: number[] = [];
    const host: ProcessHost = {
      platform: "win32",
      identity: () => undefined,
      killTree: (pid) => killed.push(pid),
      alive: (pid) => pid === 20,
    };
    const reports = await killOrphans(
      [
        ["cmd-live", { pid: 20, identity: undefined, at: 1 }],
        ["cmd-dead", { pid: 21, identity: undefined, at: 1 }],
      ],
      () => true,
      { host, graceMs: 10 },
    );
    expect(killed).toEqual([]);
    expect(reports).toEqual([{ commandId: "cmd-live", pid: 20, killed: false, note: expect.stringMatching(/may be left over .* left alone/) }]);
  });
});
