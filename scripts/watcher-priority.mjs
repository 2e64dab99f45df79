// wrangler's dev server keeps an esbuild watch running for each worker it bundled; esbuild watches by polling and,
// with the console's and the session's imports, that costs about a sixth of a core per stack even when nothing
// changes. On the 2-core suite machine two stacks run beside a browser with the CPU saturated (ADR 0030), so the
// watchers get the lowest priority: they still rebuild on a change, with the CPU nobody else wants.
import { readdirSync } from "node:fs";
import { setPriority } from "node:os";
import { readProcStat } from "./proc-stat.mjs";

const LOWEST_PRIORITY = 19;

/** Every process below `rootPid`, with its command name. */
export function descendants(rootPid) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (!stat) continue;
    const ppid = Number(stat.fields[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push({ pid: Number(entry), name: stat.name });
  }
  const found = [];
  const stack = [rootPid];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()) ?? []) {
      found.push(child);
      stack.push(child.pid);
    }
  }
  return found;
}

/**
 * Gives every thread of each process below `rootPid` whose name matches the lowest scheduling priority
 * (setpriority applies to one thread on Linux, and esbuild runs on several). Returns the pids changed. Linux only:
 * elsewhere it does nothing.
 */
export function lowerPriorityOf(rootPid, matches = (name) => name === "esbuild") {
  if (process.platform !== "linux") return [];
  const lowered = [];
  for (const { pid, name } of descendants(rootPid)) {
    if (!matches(name)) continue;
    let tasks;
    try {
      tasks = readdirSync(`/proc/${pid}/task`).map(Number);
    } catch {
      continue; // exited meanwhile
    }
    for (const tid of tasks) {
      try {
        setPriority(tid, LOWEST_PRIORITY);
      } catch {
        // A thread that ended between the listing and here.
      }
    }
    lowered.push(pid);
  }
  return lowered;
}
