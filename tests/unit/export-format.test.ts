import { describe, expect, it } from "vitest";
import { csvField, csvRecord, visibleControls } from "../../app/lib/export-format";
import { describeTruncation, truncationFromDetail } from "../../app/lib/truncation";

/** A minimal RFC 4180 reader, to check that what we write reads back field for field. */
function parseCsvRecord(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (line[i] === '"' && line[i + 1] === '"') { field += '"'; i += 2; }
        else if (line[i] === '"') { i++; break; }
        else if (i >= line.length) throw new Error("unterminated quote");
        else field += line[i++];
      }
    } else {
      while (i < line.length && line[i] !== ",") {
        if (line[i] === '"') throw new Error("bare quote in an unquoted field");
        field += line[i++];
      }
    }
    fields.push(field);
    if (i >= line.length) return fields;
    if (line[i] !== ",") throw new Error(`expected a comma at ${i}`);
    i++;
  }
}

describe("CSV cells", () => {
  it("neutralises cells a spreadsheet would evaluate (OWASP): =, +, -, @, tab, CR, and their full-width forms", () => {
    const cases: [string, string][] = [
      ['=HYPERLINK("https://evil.example","x")', `"'=HYPERLINK(""https://evil.example"",""x"")"`],
      ["=1+1", "'=1+1"],
      ["+1", "'+1"],
      ["-2", "'-2"],
      ["@SUM(A1)", "'@SUM(A1)"],
      ["\tcmd", "'\tcmd"],
      ["\rcmd", `"'\rcmd"`],
      ["＝1+1", "'＝1+1"],
      ["＠x", "'＠x"],
    ];
    for (const [raw, written] of cases) expect(csvField(raw), JSON.stringify(raw)).toBe(written);
  });

  it("leaves harmless text and our own numbers alone", () => {
    expect(csvField("a=b")).toBe("a=b");
    expect(csvField("Get-Process")).toBe("Get-Process");
    expect(csvField(" =1")).toBe(" =1");
    expect(csvField(-1)).toBe("-1");
    expect(csvField(0)).toBe("0");
    expect(csvField(null)).toBe("");
    expect(csvField("")).toBe("");
  });

  it("quotes per RFC 4180, so every field reads back whole", () => {
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField("line1\nline2")).toBe('"line1\nline2"');
    expect(csvField("cr\rlf")).toBe('"cr\rlf"');
    const values = ['Write-Output "a,b" — ünïcode', "東京-pc", "x\r\ny", '"', ",", "", "=cmd|' /C calc'!A0"];
    const read = parseCsvRecord(csvRecord(values));
    expect(read).toEqual(values.map((v) => (v.startsWith("=") ? `'${v}` : v)));
  });
});

describe("TXT lines", () => {
  it("shows terminal escape sequences as control pictures instead of passing them to the terminal", () => {
    expect(visibleControls("printf '\u001b[31mred\u001b[0m'")).toBe("printf '␛[31mred␛[0m'");
    expect(visibleControls("\u001b]0;owned\u0007")).toBe("␛]0;owned␇"); // OSC: window title
    expect(visibleControls("\u001b]8;;https://evil.example\u001b\\link\u001b]8;;\u001b\\")).toBe("␛]8;;https://evil.example␛\\link␛]8;;␛\\");
    expect(visibleControls("over\rwrite\bback\u0000nul\u007fdel")).toBe("over␍write␈back␀nul␡del");
    expect(visibleControls("\u009b31m")).toBe("\\x9b31m"); // 8-bit CSI
  });

  it("keeps newlines, tabs and every printable character", () => {
    const text = "line1\n\tindented — 東京 📟 é";
    expect(visibleControls(text)).toBe(text);
    expect(visibleControls("\u001b[2J").length).toBe("\u001b[2J".length); // nothing dropped
  });
});

describe("truncation wording", () => {
  it("states bytes kept and why for each reason", () => {
    expect(describeTruncation({ keptBytes: 262144, reason: "runtime_cap" })).toBe("output truncated: 262144 bytes kept (the runtime's output limit on the endpoint)");
    expect(describeTruncation({ keptBytes: 1048576, reason: "output_cap" })).toBe("output truncated: 1048576 bytes kept (the session's output limit)");
    expect(describeTruncation({ keptBytes: 10, reason: "lost_in_transit" })).toBe("output truncated: 10 bytes kept (output lost in transit)");
  });

  it("reads the finished event's detail, and never lets a truncated record look complete", () => {
    expect(truncationFromDetail({})).toBeNull();
    expect(truncationFromDetail({ truncated: null })).toBeNull();
    expect(truncationFromDetail({ truncated: { keptBytes: 5, reason: "runtime_cap" } })).toEqual({ keptBytes: 5, reason: "runtime_cap" });
    const newer = truncationFromDetail({ truncated: { keptBytes: 7, reason: "disk_full" } })!;
    expect(describeTruncation(newer)).toBe('output truncated: 7 bytes kept (reason "disk_full")');
    expect(describeTruncation(truncationFromDetail({ truncated: true })!)).toBe("output truncated: bytes kept not recorded (reason not recorded)");
  });
});
