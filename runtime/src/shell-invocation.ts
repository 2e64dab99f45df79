// How a command line becomes a process on this platform (platform.ts chooses; shell-cmd.ts builds cmd.exe's).
import type { TextFilter } from "./powershell";

export interface ShellInvocation {
  file: string;
  args: string[];
  /** Applied to the decoded stderr text before it is buffered (PowerShell's CLIXML error stream). */
  stderrFilter?: () => TextFilter;
  /** Pass args to CreateProcess as they are (cmd.exe parses its own command line). */
  windowsVerbatimArguments?: boolean;
}

export class ShellUnavailableError extends Error {}
