import { identityExists, loadIdentity } from "./identity";
import { readLockOwner } from "./lock";
import { Outbox } from "./outbox";
import type { StatePaths } from "./paths";

/** Human-readable state summary; never includes the credential. */
export async function statusReport(paths: StatePaths): Promise<string> {
  const lines = [`state dir:   ${paths.dir}`];
  if (!(await identityExists(paths))) {
    lines.push("enrolled:    no (run: caisey-runtime enroll --server URL --token TOKEN)");
  } else {
    const identity = await loadIdentity(paths);
    lines.push(`server:      ${identity.server}`, `endpoint id: ${identity.endpointId}`, `enrolled at: ${identity.enrolledAt}`);
  }
  const owner = readLockOwner(paths.lock);
  lines.push(`runtime:     ${owner === undefined ? "not running" : `running (pid ${owner})`}`);
  lines.push(`outbox:      ${await Outbox.count(paths.outbox)} result(s) awaiting acknowledgement`);
  return lines.join("\n");
}
