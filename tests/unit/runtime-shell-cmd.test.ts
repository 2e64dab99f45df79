import { describe, expect, it } from "vitest";
import { resolveShell, ShellUnavailableError } from "../../runtime/src/platform";

describe("the cmd shell", () => {
  it("on Windows runs %SystemRoot%\\System32\\cmd.exe with the text verbatim inside /s /c quotes", () => {
    const invocation = resolveShell("cmd", `echo "a b" & dir C:\\`, "win32");
    expect(invocation.file.toLowerCase()).toMatch(/\\system32\\cmd\.exe$/);
    expect(invocation.args).toEqual(["/d", "/s", "/c", `"echo "a b" & dir C:\\"`]);
    expect(invocation.windowsVerbatimArguments).toBe(true);
  });

  it("refuses multi-line text, which cmd /c would silently cut to its first line", () => {
    expect(() => resolveShell("cmd", "echo one\r\necho two", "win32")).toThrow(ShellUnavailableError);
  });

  it("is unavailable on Linux and macOS endpoints", () => {
    expect(() => resolveShell("cmd", "echo hi", "linux")).toThrow(/only available on Windows/);
    expect(() => resolveShell("cmd", "echo hi", "darwin")).toThrow(ShellUnavailableError);
  });
});
