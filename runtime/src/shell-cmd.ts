// The `cmd` shell: Windows' Command Prompt, for endpoints (or technicians) that
// have no PowerShell. Kept apart from platform.ts so the Windows work there
// and this stay easy to merge.
import * as path from "node:path";
import { ShellUnavailableError, type ShellInvocation } from "./shell-invocation";

/** %SystemRoot%\System32\cmd.exe by full path: a bare "cmd" could be found in the working directory first. */
function cmdPath(env: NodeJS.ProcessEnv): string {
  const key = Object.keys(env).find((k) => k.toLowerCase() === "systemroot");
  const root = key ? env[key] : undefined;
  return path.win32.join(root && path.win32.isAbsolute(root) ? root : "C:\\Windows", "System32", "cmd.exe");
}

export function cmdShell(text: string, platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): ShellInvocation {
  if (platform !== "win32") throw new ShellUnavailableError("cmd is only available on Windows endpoints");
  // `cmd /c` runs the first line of its argument and silently drops the rest: refuse rather than run half.
  if (/[\r\n]/.test(text.trim())) throw new ShellUnavailableError("cmd runs a single line; use PowerShell for a multi-line script");
  // What Node does for `shell: true`: /s strips exactly the outer quotes, so cmd sees the text as typed.
  // Node's own argument quoting (backslash escapes) means nothing to cmd, hence verbatim arguments.
  return { file: cmdPath(env), args: ["/d", "/s", "/c", `"${text.trim()}"`], windowsVerbatimArguments: true };
}
