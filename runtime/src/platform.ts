import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Shell } from "../../protocol/messages";
import { PowershellErrorDecoder, powershellArgs } from "./powershell";
import { cmdShell } from "./shell-cmd";
import { ShellUnavailableError, type ShellInvocation } from "./shell-invocation";

export type RuntimeOs = "windows" | "linux" | "macos";

export function runtimeOs(platform: NodeJS.Platform = process.platform): RuntimeOs {
  if (platform === "win32") return "windows";
  if (platform === "darwin") return "macos";
  // Every other Unix is closest to Linux for the console's purposes (POSIX sh, signals).
  return "linux";
}

export function osVersion(): string {
  return os.release();
}

export { ShellUnavailableError, type ShellInvocation } from "./shell-invocation";

/** Windows environment variable names are case-insensitive; a plain object (tests, child env) is not. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const key = Object.keys(env).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key === undefined ? undefined : env[key];
  return value && value.trim() ? value : undefined;
}

/**
 * C:\Windows, from %SystemRoot%. System tools are started by full path: a
 * service running as SYSTEM that spawned plain "taskkill" would let
 * CreateProcess find it in the working directory or a writable PATH entry first.
 */
export function windowsSystemRoot(env: NodeJS.ProcessEnv = process.env): string {
  const root = envValue(env, "SystemRoot") ?? envValue(env, "windir");
  return root && path.win32.isAbsolute(root) ? root : "C:\\Windows";
}

export function windowsSystemTool(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.win32.join(windowsSystemRoot(env), "System32", name);
}

export function windowsPowershellPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.win32.join(windowsSystemRoot(env), "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
}

/** %ProgramData%, the machine-wide data folder (C:\ProgramData unless redirected). */
export function windowsProgramData(env: NodeJS.ProcessEnv = process.env): string {
  const value = envValue(env, "ProgramData") ?? envValue(env, "ALLUSERSPROFILE");
  // A relative or missing value would put the credential wherever the service happens to start.
  return value && path.win32.isAbsolute(value) ? value : "C:\\ProgramData";
}

/**
 * Where a runtime installed as a Windows service keeps its state:
 * %ProgramData%\Caisey\runtime. Pure (takes the environment) so the
 * installer and paths.ts can use it and tests can inject any environment.
 */
export function windowsStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.win32.join(windowsProgramData(env), "Caisey", "runtime");
}

/** True when `dir` lies inside %ProgramData%, which every local user can read by default. */
export function isUnderWindowsProgramData(dir: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const root = path.win32.resolve(windowsProgramData(env)).toLowerCase();
  const target = path.win32.resolve(dir).toLowerCase();
  return target === root || target.startsWith(root.endsWith("\\") ? root : `${root}\\`);
}

/** Well-known SIDs, so the grant works on every display language (names like "Administratoren" do not). */
export const SID_LOCAL_SYSTEM = "S-1-5-18";
export const SID_BUILTIN_ADMINISTRATORS = "S-1-5-32-544";

/**
 * Replaces the directory's inherited ACL (Users may read %ProgramData%) with
 * full control for SYSTEM and Administrators only, inherited by everything
 * created inside it: the Windows counterpart of mode 0700.
 */
export function windowsPrivateDirAcl(dir: string, env: NodeJS.ProcessEnv = process.env): ShellInvocation {
  return {
    file: windowsSystemTool("icacls.exe", env),
    args: [dir, "/inheritance:r", "/grant:r", `*${SID_LOCAL_SYSTEM}:(OI)(CI)F`, `*${SID_BUILTIN_ADMINISTRATORS}:(OI)(CI)F`, "/Q"],
  };
}

/** taskkill /T walks the parent/child tree: Windows has no process groups to signal. */
export function windowsTreeKill(pid: number, env: NodeJS.ProcessEnv = process.env): ShellInvocation {
  return { file: windowsSystemTool("taskkill.exe", env), args: ["/PID", String(pid), "/T", "/F"] };
}

/**
 * What stops the runtime gracefully. A Windows service wrapper stops its
 * process with Ctrl+C or Ctrl+Break (SIGINT / SIGBREAK in Node) or by closing
 * its console (SIGHUP, with a few seconds' grace); on Unix a closed terminal
 * sends SIGHUP. All of them must end like SIGTERM, with the journal and
 * outbox written out, never as an abrupt default-action exit.
 */
export function stopSignals(platform: NodeJS.Platform = process.platform): NodeJS.Signals[] {
  return platform === "win32" ? ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"] : ["SIGINT", "SIGTERM", "SIGHUP"];
}

function findOnPath(name: string, platform: NodeJS.Platform, env: NodeJS.ProcessEnv): string | undefined {
  const extensions = platform === "win32" ? (envValue(env, "PATHEXT") ?? ".EXE;.CMD;.BAT").split(";") : [""];
  const delimiter = platform === "win32" ? ";" : ":";
  for (const dir of (envValue(env, "PATH") ?? "").split(delimiter)) {
    if (!dir) continue;
    for (const ext of extensions) {
      const candidate = (platform === "win32" ? path.win32 : path.posix).join(dir, name + ext);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
      } catch {
        // keep looking
      }
    }
  }
  return undefined;
}

function powershell(file: string, text: string, windows: boolean): ShellInvocation {
  return { file, args: powershellArgs(text, windows), stderrFilter: () => new PowershellErrorDecoder() };
}

export function resolveShell(
  shell: Shell,
  text: string,
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
): ShellInvocation {
  const windows = platform === "win32";
  switch (shell) {
    case "default":
      return windows ? powershell(windowsPowershellPath(env), text, true) : { file: "/bin/sh", args: ["-c", text] };
    case "sh":
      return { file: windows ? "sh" : "/bin/sh", args: ["-c", text] };
    case "bash":
      return { file: "bash", args: ["-c", text] };
    case "cmd":
      return cmdShell(text, platform);
    case "powershell": {
      if (windows) return powershell(windowsPowershellPath(env), text, true);
      const pwsh = findOnPath("pwsh", platform, env) ?? findOnPath("powershell", platform, env);
      if (!pwsh) throw new ShellUnavailableError("PowerShell (pwsh) is not installed on this endpoint");
      return powershell(pwsh, text, false);
    }
  }
}
