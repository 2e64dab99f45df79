import { promises as fsp } from "node:fs";
import { identityExists, loadIdentity } from "./identity";
import { readLockOwner } from "./lock";
import { timestamp } from "./log";
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
  const contact = await lastContact(paths);
  if (contact) {
    const label = contact.transport === "checkin" ? "HTTPS check-in" : "WebSocket";
    lines.push(`transport:   ${label} (last used)`, `last contact: ${timestamp(new Date(contact.lastContactAt))} (${ago(Date.now() - contact.lastContactAt)})`);
  } else {
    lines.push("last contact: never");
  }
  return lines.join("\n");
}

async function lastContact(paths: StatePaths): Promise<{ transport: "websocket" | "checkin"; lastContactAt: number } | undefined> {
  try {
    const data = JSON.parse(await fsp.readFile(paths.transport, "utf8")) as { transport?: unknown; lastContactAt?: unknown };
    if ((data.transport === "websocket" || data.transport === "checkin") && typeof data.lastContactAt === "number") {
      return { transport: data.transport, lastContactAt: data.lastContactAt };
    }
  } catch {
    // never contacted, or unreadable: nothing to show
  }
  return undefined;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
