// scripts/watcher-priority.mjs: the stack's file watchers, and nothing else, get the lowest CPU priority.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { readProcStat } from "../../scripts/proc-stat.mjs";
import { descendants, lowerPriorityOf } from "../../scripts/watcher-priority.mjs";

const niceOf = (tid: number, pid = tid) => Number(readProcStat(pid, tid)!.fields[16]);

const spawned: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const child of spawned.splice(0)) child.kill("SIGKILL");
});

async function childrenOf(pid: number, count: number) {
  for (let tries = 0; tries < 200; tries += 1) {
    const found = descendants(pid);
    if (found.length >= count) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${pid} never had ${count} descendants`);
}

describe.runIf(process.platform === "linux")("lowering the watchers' priority", () => {
  it("lowers every thread of the matching processes below the root, and no other process", async () => {
    // A shell with two grandchildren: a node process (several threads, like esbuild's) and a sleep.
    const root = spawn("sh", ["-c", `sleep 30 & "${process.execPath}" -e "setTimeout(() => {}, 30000)" & wait`], { stdio: "ignore" });
    spawned.push(root);
    const found = await childrenOf(root.pid!, 2);
    const node = found.find((p) => p.name === "node")!;
    const sleep = found.find((p) => p.name === "sleep")!;
    expect(node && sleep).toBeTruthy();
    // Node starts its V8 and libuv threads a moment after exec.
    for (let tries = 0; tries < 200 && readdirSync(`/proc/${node.pid}/task`).length < 2; tries += 1) await new Promise((r) => setTimeout(r, 10));

    expect(lowerPriorityOf(root.pid!, (name: string) => name === "node")).toEqual([node.pid]);

    const threads = readdirSync(`/proc/${node.pid}/task`).map(Number);
    expect(threads.length).toBeGreaterThan(1);
    for (const tid of threads) expect(niceOf(tid, node.pid)).toBe(19);
    expect(niceOf(sleep.pid)).toBe(0);
    expect(niceOf(root.pid!)).toBe(0);
  });

  it("finds nothing to lower below a process with no matching descendant", () => {
    expect(lowerPriorityOf(process.pid, (name: string) => name === "no-such-process")).toEqual([]);
  });
});
