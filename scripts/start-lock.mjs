// A lock between local stacks starting at the same time (scripts/dev.mjs): the
// lock is a directory (mkdir is atomic) holding the owner's pid, so a lock left
// by a process that died is taken over instead of waited on forever.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/**
 * Waits until `lockDir` is ours and returns the function that releases it (also
 * released when this process exits). Gives up after `timeoutMs` with an error.
 */
export async function acquireStartLock(lockDir, { timeoutMs = 300_000, log = (m) => console.log(m) } = {}) {
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, "pid"), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
      let owner = NaN;
      try {
        owner = Number(readFileSync(join(lockDir, "pid"), "utf8"));
      } catch {
        // created but its pid not written yet: wait for it
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another local stack has been starting for over ${timeoutMs / 1000} s (${lockDir}, pid ${owner})`);
      if (!told) log(`[caisey] waiting for another local stack to finish starting (${lockDir})`);
      told = true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    rmSync(lockDir, { recursive: true, force: true });
  };
  process.once("exit", release);
  return release;
}
