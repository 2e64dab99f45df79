// Library parameter values become shell ARGUMENTS, never shell code
// (docs/decisions/0025-script-library-and-api.md). Each value is quoted for the
// step's own shell so the shell reads it back as exactly one literal word:
// nothing inside it ($(…), backticks, quotes, ;, |) is interpreted. Written
// here rather than taken from a library because the npm quoting packages cover
// POSIX sh only; PowerShell and cmd rules are short and are tested against the
// real shells where this machine has them.
import type { Shell } from "./messages";

export class UnquotableValueError extends Error {}

/** Control characters are refused for every shell: no value needs them, and they hide what a step does. */
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * cmd.exe has no quoting that stops %VAR% expansion or an embedded double quote, so only
 * characters that mean nothing to cmd are accepted; anything else must use PowerShell.
 */
const CMD_SAFE = /^[A-Za-z0-9 _.,:\\/@+=#~-]*$/;
/** PowerShell treats the typographic single quotes as ' too, so they are doubled as well. */
const POWERSHELL_QUOTES = /['\u2018\u2019\u201a\u201b]/g;

export function quoteForShell(shell: Exclude<Shell, "default">, value: string): string {
  if (CONTROL.test(value)) throw new UnquotableValueError("contains a control character (newline, tab, …), which no step accepts");
  switch (shell) {
    case "sh":
    case "bash":
      // Inside '…' every character is literal; a ' ends the string, so it is written as '\'' (close, escaped quote, reopen).
      return `'${value.replace(/'/g, `'\\''`)}'`;
    case "powershell":
      // Inside '…' PowerShell expands nothing ($(), $var, backticks are literal); a quote is written twice.
      return `'${value.replace(POWERSHELL_QUOTES, (quote) => quote + quote)}'`;
    case "cmd":
      if (!CMD_SAFE.test(value)) throw new UnquotableValueError("has characters cmd cannot quote safely (only letters, digits, space and _ . , : \\ / @ + = # ~ - are allowed); use a PowerShell step");
      return `"${value}"`;
  }
}
