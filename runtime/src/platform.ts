import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Shell } from "../../protocol/messages";
import { cmdShell } from "./shell-cmd";

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

export interface ShellInvocation {
  file: string;
  args: string[];
  /** Pass args to CreateProcess as they are (cmd.exe parses its own command line). */
  windowsVerbatimArguments?: boolean;
}

export class ShellUnavailableError extends Error {}

function findOnPath(name: string): string | undefined {
  const extensions = process.platform === "win32" ? (process.env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of extensions) {
      const candidate = path.join(dir, name + ext);
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

const POWERSHELL_ARGS = ["-NoProfile", "-NonInteractive", "-Command"];

export function resolveShell(shell: Shell, text: string, platform: NodeJS.Platform = process.platform): ShellInvocation {
  const windows = platform === "win32";
  switch (shell) {
    case "default":
      return windows ? { file: "powershell.exe", args: [...POWERSHELL_ARGS, text] } : { file: "/bin/sh", args: ["-c", text] };
    case "sh":
      return { file: windows ? "sh" : "/bin/sh", args: ["-c", text] };
    case "bash":
      return { file: "bash", args: ["-c", text] };
    case "cmd":
      return cmdShell(text, platform);
    case "powershell": {
      if (windows) return { file: "powershell.exe", args: [...POWERSHELL_ARGS, text] };
      const pwsh = findOnPath("pwsh") ?? findOnPath("powershell");
      if (!pwsh) throw new ShellUnavailableError("PowerShell (pwsh) is not installed on this endpoint");
      return { file: pwsh, args: [...POWERSHELL_ARGS, text] };
    }
  }
}
