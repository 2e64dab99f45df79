// Hostile parameter values, quoted for a real shell, must come back as the same literal word and run nothing.
import { execFileSync } from "node:child_process";
import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { quoteForShell, UnquotableValueError } from "../../protocol/shell-quote";

const canary = join(mkdtempSync(join(tmpdir(), "quote-")), "ran");
const HOSTILE = [
  `$(touch ${canary})`,
  `\`touch ${canary}\``,
  `'; touch ${canary}; echo '`,
  `"; touch ${canary}; echo "`,
  `a b  c`,
  `$HOME`,
  `\\'\\`,
  `*`,
  `-n`,
  `x || touch ${canary} && y | z > /tmp/out`,
  `'`,
  ``,
  `ünïcødé ‘quoted’`,
];

describe("quoting library parameter values for the step's shell", () => {
  for (const shell of ["sh", "bash"] as const) {
    it(`${shell}: every hostile value is one literal argument and runs nothing`, () => {
      for (const value of HOSTILE) {
        const out = execFileSync(shell, ["-c", `printf '%s\\n' ${quoteForShell(shell, value)} | wc -l; printf '%s' ${quoteForShell(shell, value)}`], { encoding: "utf8" });
        const [lines, ...rest] = out.split("\n");
        expect(lines!.trim(), value).toBe("1");
        expect(rest.join("\n"), value).toBe(value);
      }
      expect(existsSync(canary)).toBe(false);
    });
  }

  it("powershell: single-quoted, quotes (also typographic ones) doubled, so $() and backticks stay literal", () => {
    expect(quoteForShell("powershell", "$(Remove-Item -Recurse C:\\)")).toBe("'$(Remove-Item -Recurse C:\\)'");
    expect(quoteForShell("powershell", "`whoami`")).toBe("'`whoami`'");
    expect(quoteForShell("powershell", "'; Stop-Computer; '")).toBe("'''; Stop-Computer; '''");
    expect(quoteForShell("powershell", "‘x’")).toBe("'‘‘x’’'");
  });

  it("cmd: plain values are double-quoted; anything cmd could expand or break out of is refused", () => {
    expect(quoteForShell("cmd", "C:\\Logs\\app.log")).toBe('"C:\\Logs\\app.log"');
    for (const value of ['"& del /q *', "%PATH%", "a^b", "a&b", "a|b", "!x!", "a>b"]) {
      expect(() => quoteForShell("cmd", value), value).toThrow(UnquotableValueError);
    }
  });

  it("refuses control characters for every shell", () => {
    for (const shell of ["sh", "bash", "powershell", "cmd"] as const) {
      expect(() => quoteForShell(shell, "a\nrm -rf /")).toThrow(UnquotableValueError);
    }
  });
});
