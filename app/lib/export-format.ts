// Cell and line encoding for transcript exports. Everything in an export is
// someone else's text (command lines typed by technicians, hostnames picked by
// whoever holds an enrollment token), so it must not act on the program that
// opens the file: a spreadsheet (CSV) or a terminal (TXT).

/**
 * First characters that make a spreadsheet evaluate a cell (OWASP "CSV
 * Injection": =, +, -, @, tab, CR), plus their full-width forms (＝＋－＠),
 * which other exporters escape too; a false positive only costs an apostrophe.
 */
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

/**
 * One CSV field: RFC 4180 (a field holding a comma, quote, CR or LF is quoted,
 * quotes doubled) and formula-neutralised (a text cell a spreadsheet would
 * evaluate gets a leading apostrophe, as OWASP recommends). Numbers are ours
 * (exit codes) and stay numbers, so `-1` is not prefixed.
 *
 * Hand-written rather than csv-stringify (its `escape_formulas` option does the
 * same prefixing): it is not a dependency here, the export builds whole rows in
 * memory already, and these few lines are unit-tested against both rules.
 */
export function csvField(value: string | number | null): string {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  const raw = value ?? "";
  const text = FORMULA_START.test(raw) ? `'${raw}` : raw;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record, without its CRLF terminator. */
export function csvRecord(values: readonly (string | number | null)[]): string {
  return values.map(csvField).join(",");
}

/**
 * Control characters made visible instead of acting on whoever `cat`s the
 * file: C0 controls as Unicode control pictures (ESC [31m becomes ␛[31m, so
 * ANSI CSI and OSC sequences are shown, not run), DEL as ␡, C1 controls (8-bit
 * CSI is 0x9b) as \x9b. Newlines and tabs stay: they are the text's layout.
 * Nothing is dropped, so what was typed can still be read.
 */
export function visibleControls(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (char) => {
    const code = char.charCodeAt(0);
    if (code === 0x7f) return "\u2421";
    if (code >= 0x80) return `\\x${code.toString(16)}`;
    return String.fromCharCode(0x2400 + code);
  });
}
