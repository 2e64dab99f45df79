// How a technician's PowerShell text is handed to powershell.exe / pwsh and
// how its error stream is read back. See docs/decisions/0014-windows-correctness.md.

/**
 * Runs before the technician's text. Output must come back as UTF-8 whatever
 * the machine's OEM code page is (437, 850, 932...), and progress bars must
 * not be written at all: redirected, they arrive as noise on stderr.
 * Setting [Console]::OutputEncoding also switches the console code page
 * (SetConsoleOutputCP), which is what native programs like ipconfig follow.
 * It can fail without a console; the command must still run then. pwsh 7.2+
 * is told to write plain text, not ANSI colour codes, which the console would show raw.
 */
export const POWERSHELL_PREAMBLE = [
  "$ProgressPreference = 'SilentlyContinue'",
  "if ($PSStyle) { $PSStyle.OutputRendering = 'PlainText' }",
  "try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false } catch { }",
  "$OutputEncoding = New-Object System.Text.UTF8Encoding $false",
].join("\n");

export function powershellScript(text: string): string {
  return `${POWERSHELL_PREAMBLE}\n${text}`;
}

/** -EncodedCommand takes base64 of UTF-16LE: no quoting rule of any layer can touch the text. */
export function encodePowershellCommand(script: string): string {
  return Buffer.from(script, "utf16le").toString("base64");
}

export function powershellArgs(text: string, windows: boolean): string[] {
  return [
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    // Windows only: pwsh elsewhere has no execution policy to bypass.
    ...(windows ? ["-ExecutionPolicy", "Bypass"] : []),
    // Without it, an encoded command with redirected output answers in CLIXML (pwsh 6.2+ honours this;
    // Windows PowerShell 5.1 still serialises its error stream, which PowershellErrorDecoder undoes).
    "-OutputFormat",
    "Text",
    "-EncodedCommand",
    encodePowershellCommand(powershellScript(text)),
  ];
}

/** A text filter between the UTF-8 decoder and the output buffer. */
export interface TextFilter {
  write(text: string): string;
  end(): string;
}

const CLIXML_HEADER = "#< CLIXML";
const STREAM_PREFIX: Record<string, string> = { warning: "WARNING: ", verbose: "VERBOSE: ", debug: "DEBUG: ", information: "" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, entity: string) => {
    if (entity[0] === "#") return String.fromCodePoint(entity[1] === "x" ? Number.parseInt(entity.slice(2), 16) : Number(entity.slice(1)));
    return { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" }[entity]!;
  });
}

/** PowerShell's serializer writes control characters (and `_x` itself) as _xHHHH_. */
function unescapeClixmlString(text: string): string {
  return unescapeXml(text).replace(/_x([0-9a-fA-F]{4})_/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/**
 * Windows PowerShell 5.1, started with -EncodedCommand and a redirected stderr,
 * writes its error stream as CLIXML ("#< CLIXML" then an <Objs> document)
 * whatever -OutputFormat says. This turns that back into the text a console
 * would show. Native programs write to the same stderr directly, before and
 * between the serialized errors, so plain text passes through untouched
 * wherever it appears, and so does a half-written document at exit: nothing is lost.
 */
export class PowershellErrorDecoder implements TextFilter {
  private pending = "";
  private inClixml = false;

  write(text: string): string {
    this.pending += text;
    return this.drain(false);
  }

  end(): string {
    return this.drain(true) + this.take(this.pending.length);
  }

  private take(length: number): string {
    const taken = this.pending.slice(0, length);
    this.pending = this.pending.slice(length);
    return taken;
  }

  private drain(final: boolean): string {
    if (this.inClixml) return this.decodeComplete();
    const header = this.pending.indexOf(CLIXML_HEADER);
    if (header === -1) {
      // Hold back what could be the start of a header split across two reads.
      let keep = 0;
      if (!final) {
        for (let n = Math.min(CLIXML_HEADER.length - 1, this.pending.length); n > 0; n -= 1) {
          if (CLIXML_HEADER.startsWith(this.pending.slice(-n))) {
            keep = n;
            break;
          }
        }
      }
      return this.take(this.pending.length - keep);
    }
    const before = this.take(header);
    this.inClixml = true;
    return before + this.decodeComplete();
  }

  /** Decodes every complete element at the front of `pending`; keeps an incomplete one for later. */
  private decodeComplete(): string {
    let out = "";
    for (;;) {
      const rest = this.pending;
      const skip = /^(?:#< CLIXML\r?\n|<\?xml[^>]*\?>|<Objs\b[^>]*>|<\/Objs>|<Obj\b[^>]*\/>|<S\b[^>]*\/>)/.exec(rest);
      if (skip) {
        this.take(skip[0].length);
        continue;
      }
      const string = /^<S\b(?:\s+S="([^"]*)")?[^>]*>([\s\S]*?)<\/S>/.exec(rest);
      if (string) {
        this.take(string[0].length);
        const stream = (string[1] ?? "").toLowerCase();
        const value = unescapeClixmlString(string[2] ?? "");
        if (stream === "error" || stream === "") out += value;
        else out += `${STREAM_PREFIX[stream] ?? ""}${value}${value.endsWith("\n") ? "" : "\r\n"}`;
        continue;
      }
      if (rest.startsWith("<Obj")) {
        // A serialized object (a progress record, in practice): nothing a technician reads.
        const close = matchingObjEnd(rest);
        if (close === undefined) return out;
        this.take(close);
        continue;
      }
      // Wait for the rest of an element, or of the header's line.
      if (rest.length === 0 || /^<[^>]*$/.test(rest) || /^<S\b/.test(rest) || /^#< CLIXML\r?$/.test(rest)) return out;
      // Text between the serialized errors: a native program's own stderr. Shown as it is.
      const next = rest.indexOf("<", 1);
      out += this.take(next === -1 ? rest.length : next);
    }
  }
}

/** End offset of the <Obj> element that `text` starts with, or undefined while it is incomplete. */
function matchingObjEnd(text: string): number | undefined {
  const tags = /<(\/?)Obj\b[^>]*?(\/?)>/g;
  let depth = 0;
  for (let tag = tags.exec(text); tag; tag = tags.exec(text)) {
    if (tag[1]) depth -= 1;
    else if (!tag[2]) depth += 1;
    if (depth === 0) return tag.index + tag[0].length;
  }
  return undefined;
}
