// Two `run` processes on one state dir would each believe they own the
// journal, and could both run the same command. One runtime per state dir.
import * as fs from "node:fs";
import { UserError } from "./identity";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readLockOwner(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock or throws; a lock left by a dead process (e.g. after SIGKILL) is taken over. */
export function acquireLock(file: string): () => void {
  for (let tries = 0; tries < 3; tries += 1) {
    try {
      const fd = fs.openSync(file, "wx", 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, "utf8").trim() === String(process.pid)) fs.rmSync(file, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = readLockOwner(file);
      if (owner !== undefined) throw new UserError(`another runtime (pid ${owner}) is already running with this state directory`);
      fs.rmSync(file, { force: true });
    }
  }
  throw new UserError(`could not take the lock ${file}`);
}
