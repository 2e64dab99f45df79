// Processes a previous run of the runtime left behind. A command runs in its
// own process group, so when the runtime is killed outright (kill -9, OOM,
// a crash) the command keeps running with nobody to time it out, cancel it
// or report it. At start-up, before taking any work, the runtime finds those
// survivors through the journal's spawn records and kills them (ADR 0018).
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { SpawnRecord } from "./journal";
import { killProcessTree } from "./process-tree";

/** The OS facts the sweep needs; tests and other platforms inject their own. */
export interface ProcessHost {
  platform: NodeJS.Platform;
  /**
   * A string naming exactly this process, so a pid reused by an unrelated
   * process never matches; undefined when the process is gone or the platform
   * cannot tell (then nothing is ever killed on its behalf).
   */
  identity(pid: number): string | undefined;
  /** Kills the process and everything in its tree / group. */
  killTree(pid: number, signal: NodeJS.Signals): void;
  /** Whether anything of the process (group) is still there. */
  alive(pid: number): boolean;
}

/**
 * Linux: boot id + start time in clock ticks since boot (/proc/<pid>/stat field 22).
 * Together they are unique for the life of the machine; the pid alone is not.
 */
export function linuxProcessIdentity(pid: number, read: (file: string) => string = (f) => readFileSync(f, "utf8")): string | undefined {
  try {
    const stat = read(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ")".
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = rest[0];
    const startTime = rest[19];
    if (!startTime || state === "Z" || state === "X") return undefined;
    const bootId = read("/proc/sys/kernel/random/boot_id").trim();
    return `linux:${bootId}:${startTime}`;
  } catch {
    return undefined;
  }
}

/** A stand-in ChildProcess for killProcessTree, which kills by pid (group on POSIX, taskkill /T on Windows). */
function handleFor(pid: number): ChildProcess {
  return {
    pid,
    exitCode: null,
    signalCode: null,
    kill: (signal?: NodeJS.Signals | number) => {
      try {
        process.kill(pid, signal);
        return true;
      } catch {
        return false;
      }
    },
  } as unknown as ChildProcess;
}

export const nodeProcessHost: ProcessHost = {
  platform: process.platform,
  // Only Linux is implemented and tested. macOS (`ps -o lstart=`) and Windows (process creation time)
  // report "cannot verify" and kill nothing rather than risk killing an unrelated process.
  identity: (pid) => (process.platform === "linux" ? linuxProcessIdentity(pid) : undefined),
  killTree: (pid, signal) => killProcessTree(handleFor(pid), signal),
  alive: (pid) => {
    try {
      process.kill(process.platform === "win32" ? pid : -pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM";
    }
  },
};

export type OrphanReport = { commandId: string; pid: number; killed: boolean; note: string };

/**
 * Kills what is left of commands that were running when the previous run died.
 * `unsettled` says which journal ids have no result (neither in the outbox nor
 * acknowledged): only those can have survivors. Resolves once they are gone.
 */
export async function killOrphans(
  spawns: [string, SpawnRecord][],
  unsettled: (commandId: string) => boolean,
  options: { host?: ProcessHost; graceMs?: number } = {},
): Promise<OrphanReport[]> {
  const host = options.host ?? nodeProcessHost;
  const graceMs = options.graceMs ?? 500;
  const reports: OrphanReport[] = [];
  const victims: OrphanReport[] = [];
  for (const [commandId, spawn] of spawns) {
    if (!unsettled(commandId)) continue;
    if (spawn.identity === undefined) {
      // This platform could not identify the process when it started: a live pid may be it, or a stranger.
      if (host.alive(spawn.pid)) {
        reports.push({ commandId, pid: spawn.pid, killed: false, note: `process ${spawn.pid} may be left over from the previous run, but this platform cannot verify it is the same process, so it was left alone` });
      }
      continue;
    }
    if (host.identity(spawn.pid) !== spawn.identity) continue; // gone, or the pid now names another process
    const report = { commandId, pid: spawn.pid, killed: true, note: `its processes left over from the previous run (process group ${spawn.pid}) were killed` };
    host.killTree(spawn.pid, "SIGTERM");
    victims.push(report);
    reports.push(report);
  }
  if (victims.length) {
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && victims.some((v) => host.alive(v.pid))) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const victim of victims) if (host.alive(victim.pid)) host.killTree(victim.pid, "SIGKILL");
  }
  return reports;
}
