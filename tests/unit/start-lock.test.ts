// scripts/start-lock.mjs: local stacks starting at once take turns; a lock left
// by a dead process is taken over.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { acquireStartLock } from "../../scripts/start-lock.mjs";

const scratch = mkdtempSync(join(tmpdir(), "caisey-start-lock-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = { log: () => {} };

describe("acquireStartLock", () => {
  it("makes a second starter wait until the first releases", async () => {
    const lock = join(scratch, "turns");
    const order: string[] = [];
    const releaseFirst = await acquireStartLock(lock, quiet);
    const second = acquireStartLock(lock, quiet).then((release) => {
      order.push("second acquired");
      return release;
    });
    // The second cannot have it while the first holds it: give it many chances to (wrongly) take it.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 220));
    order.push("first releases");
    releaseFirst();
    (await second)();
    expect(order).toEqual(["first releases", "second acquired"]);
    expect(existsSync(lock)).toBe(false);
  });

  it("takes over a lock whose owner is gone, and times out on a live one", async () => {
    const lock = join(scratch, "stale");
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    mkdirSync(lock);
    writeFileSync(join(lock, "pid"), dead.stdout);
    const release = await acquireStartLock(lock, { ...quiet, timeoutMs: 2_000 });
    await expect(acquireStartLock(lock, { ...quiet, timeoutMs: 300 })).rejects.toThrow(/another local stack has been starting/);
    release();
  });
});
