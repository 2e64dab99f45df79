import { spawn, type ChildProcess } from "node:child_process";
import { windowsTreeKill, type ShellInvocation } from "./platform";

/** The OS facts killProcessTree depends on; tests pass their own to exercise the Windows path. */
export interface ProcessTreeHost {
  platform: NodeJS.Platform;
  /** Starts a helper program (taskkill); `onFailure` when it cannot start or exits non-zero. */
  run(invocation: ShellInvocation, onFailure: () => void): void;
  /** kill(2): a negative pid signals the process group. */
  signal(pid: number, signal: NodeJS.Signals): void;
}

/** Runs a helper program in the background; `onFailure` once if it cannot start or exits non-zero. */
export function runHelper(invocation: ShellInvocation, onFailure: () => void): ChildProcess {
  const helper = spawn(invocation.file, invocation.args, { stdio: "ignore", windowsHide: true });
  helper.once("error", onFailure);
  helper.once("exit", (code) => {
    if (code !== 0) onFailure();
  });
  return helper;
}

export const nodeProcessTreeHost: ProcessTreeHost = {
  platform: process.platform,
  run: (invocation, onFailure) => void runHelper(invocation, onFailure),
  signal: (pid, signal) => process.kill(pid, signal),
};

/**
 * Kills the command and everything it started. A shell's children (a pipeline,
 * `sleep` in a loop) would otherwise survive the shell and keep the output
 * pipes open, so "timed out" would not actually stop anything.
 */
export function killProcessTree(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL", host: ProcessTreeHost = nodeProcessTreeHost): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (host.platform === "win32") {
    // Windows reuses pids quickly and taskkill /T finds the tree only through a live root:
    // once the shell is gone its pid may name someone else's process, so leave it alone.
    if (child.exitCode !== null || child.signalCode !== null) return;
    // No gentle stage: console programs ignore taskkill without /F (it only posts WM_CLOSE).
    // If taskkill fails (a process in the tree refused, or a taskkill without /T as in wine),
    // at least the root goes: Node's kill() uses the process handle, so it cannot hit a reused pid.
    host.run(windowsTreeKill(pid), () => {
      try {
        child.kill();
      } catch {
        // already gone
      }
    });
    return;
  }
  try {
    // Negative pid = the process group the child leads (it was spawned detached).
    host.signal(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  }
}
