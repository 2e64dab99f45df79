// Running the windows-x64 executable under wine (Debian's wine64). Node's
// Windows binary runs there as win32 with cmd.exe, but its stdout to a pipe
// fails (EBADF), so output goes to a file. wine is required: a missing wine is
// an error, never a skip, or CI would pass without testing Windows at all.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(process.cwd());

function findWine(): string {
  const candidates = [process.env.CAISEY_WINE, "/usr/lib/wine/wine64", "/usr/bin/wine64", "/usr/bin/wine"].filter(Boolean) as string[];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error("wine is not installed (apt-get install --no-install-recommends wine64; .ci/run does this)");
  return found;
}

/** A unix path as the Windows program sees it (wine maps / to drive Z:). */
export function windowsPath(unixPath: string): string {
  return `Z:${resolve(unixPath).replaceAll("/", "\\")}`;
}

export class Wine {
  readonly wine = findWine();
  /** One prefix for the suite, kept in .cache: creating one takes ~15 s. */
  readonly prefix = join(root, ".cache/wine-prefix");
  readonly env: NodeJS.ProcessEnv = {
    ...process.env,
    WINEPREFIX: this.prefix,
    WINEDEBUG: "-all",
    // No Mono or Gecko install prompts; the runtime needs neither.
    WINEDLLOVERRIDES: "mscoree,mshtml=",
    // See the shim: a wine gap in TCP keep-alive options, not a runtime behaviour.
    // NODE_OPTIONS treats backslashes in quotes as escapes; Windows takes forward slashes.
    NODE_OPTIONS: `--require "Z:${join(root, "tests/wine/wine-keepalive-shim.cjs")}"`,
  };

  /** Node refuses to start on what wine reports by default ("Windows 8.1 or higher" needed). */
  prepare() {
    const marker = join(this.prefix, ".caisey-win10");
    if (existsSync(marker)) return;
    mkdirSync(this.prefix, { recursive: true });
    const result = spawnSync(this.wine, ["winecfg", "-v", "win10"], { env: this.env, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", timeout: 120_000 });
    if (result.status !== 0) throw new Error(`winecfg -v win10 failed (${result.status}): ${result.stderr}`);
    writeFileSync(marker, "");
  }

  /**
   * Runs a Windows program to completion; its stdout/stderr land in `logFile`. Asynchronous on purpose:
   * the relay the program talks to lives in this process and must keep forwarding meanwhile.
   */
  async run(exe: string, args: string[], logFile: string, timeoutMs = 90_000): Promise<{ status: number | null; output: string }> {
    const fd = openSync(logFile, "w");
    const child = spawn(this.wine, [exe, ...args], { env: this.env, stdio: ["ignore", fd, fd], timeout: timeoutMs, killSignal: "SIGKILL" });
    closeSync(fd);
    const status = await new Promise<number | null>((resolvePromise, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => resolvePromise(code));
    });
    return { status, output: readFileSync(logFile, "utf8") };
  }

  /** Starts a Windows program; the returned process IS the program (wine execs into it), so SIGKILL kills it. */
  start(exe: string, args: string[], logFile: string): ChildProcess {
    const fd = openSync(logFile, "a");
    const child = spawn(this.wine, [exe, ...args], { env: this.env, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    return child;
  }

  /** Ends every process of this prefix (wineserver, services) so nothing outlives the test. */
  shutdown() {
    const server = this.wine.replace(/wine(64)?$/, "wineserver");
    if (existsSync(server)) spawnSync(server, ["-k"], { env: this.env, stdio: "ignore", timeout: 30_000 });
  }
}
