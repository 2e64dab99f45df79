import { spawn, type ChildProcess } from "node:child_process";

/**
 * Kills the command and everything it started. A shell's children (a pipeline,
 * `sleep` in a loop) would otherwise survive the shell and keep the output
 * pipes open, so "timed out" would not actually stop anything.
 */
export function killProcessTree(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (process.platform === "win32") {
    // taskkill /T walks the parent/child tree; Windows has no process groups to signal.
    const killer = spawn("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    killer.on("error", () => child.kill());
    return;
  }
  try {
    // Negative pid = the process group the child leads (it was spawned detached).
    process.kill(-pid, signal);
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
