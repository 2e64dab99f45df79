// /proc/<pid>/stat on Linux, for the scripts that watch the local stack's processes. The runtime parses the same
// file for its own purpose (runtime/src/orphans.ts) and ships without the scripts.
import { readFileSync } from "node:fs";

/**
 * A process's (or, with `tid`, one of its threads') command name and the fields after it: `fields[0]` is the state,
 * `fields[1]` the parent pid, `fields[11]`/`fields[12]` user/system clock ticks, `fields[16]` the nice value. Null
 * when it is gone. The name may hold spaces and parentheses, so fields are counted after its last ")".
 */
export function readProcStat(pid, tid) {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    return { name: stat.slice(stat.indexOf("(") + 1, close), fields: stat.slice(close + 2).split(" ") };
  } catch {
    return null;
  }
}
