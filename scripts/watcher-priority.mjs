// wrangler's dev server keeps an esbuild watch running for each worker it bundled; esbuild watches by polling and,
// with the console's and the session's imports, that costs about a sixth of a core per stack even when nothing
// changes. On the 2-core suite machine two stacks run beside a browser with the CPU saturated (ADR 0030), so the
// watchers get the lowest priority: they still rebuild on a change, with the CPU nobody else wants.
import { readdirSync, readFileSync } from "node:fs";
import { setPriority } from "node:os";

const LOWEST_PRIORITY = 19;

/** Parent pid and command name of a process, from /proc (Linux); null when it is gone. */
function processInfo(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The name is in parentheses and may itself contain spaces or parentheses: split after the last ")".
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const ppid = Number(stat.slice(close + 2).split(" ")[1]);
    return { name, ppid };
  } catch {
    return null;
  }
}

/** Every process below `rootPid`, with its command name. */
export function descendants(rootPid) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processInfo(Number(entry));
    if (!info) continue;
    if (!children.has(info.ppid)) children.set(info.ppid, []);
    children.get(info.ppid).push({ pid: Number(entry), name: info.name });
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
 * (setpriority applies to one thread on Linux, and esbuild runs on several). Returns the pids changed. Does nothing
 * where there is no /proc.
 */
export function lowerPriorityOf(rootPid, matches = (name) => name === "esbuild") {
  let procfs = true;
  try {
    readdirSync("/proc/self/task");
  } catch {
    procfs = false;
  }
  if (!procfs) return [];
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
