// Static checks of the one-line installers the console serves (the Linux one
// also runs end to end in tests/faults/install-linux.test.ts). There is no
// PowerShell on this machine, so install.ps1 is checked statically only.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { INSTALL_PS1 } from "../../app/installers/install-ps1.server";
import { INSTALL_SH } from "../../app/installers/install-sh.server";
import { installCommands, installerScript } from "../../app/models/installers.server";

const scratch = mkdtempSync(join(tmpdir(), "caisey-installers-"));
const has = (command: string) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
const ORIGIN = "https://console.example";

function written(name: string, text: string) {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

/** The text of a quoted heredoc (<<'MARK' … MARK) in the shell script. */
function heredoc(mark: string): string {
  const match = INSTALL_SH.match(new RegExp(`<<'${mark}'\\n([\\s\\S]*?)\\n${mark}\\n`));
  if (!match) throw new Error(`no heredoc ${mark}`);
  return `${match[1]}\n`;
}

describe("installer sources", () => {
  it("are String.raw templates without ${ or backquotes, so the served text is exactly the source", () => {
    for (const file of ["app/installers/install-sh.server.ts", "app/installers/install-ps1.server.ts"]) {
      const source = readFileSync(file, "utf8");
      const body = source.slice(source.indexOf("String.raw`") + "String.raw`".length, source.lastIndexOf("`;"));
      expect(body.includes("${"), file).toBe(false);
      expect(body.includes("`"), file).toBe(false);
    }
  });

  it("bake in the console origin and nothing else changes", () => {
    expect(installerScript("sh", ORIGIN)).toBe(INSTALL_SH.replaceAll("@@CAISEY_SERVER@@", ORIGIN));
    expect(installerScript("sh", ORIGIN)).toContain(`SERVER='${ORIGIN}'`);
    expect(installerScript("ps1", ORIGIN)).toContain(`[string]$Server = '${ORIGIN}'`);
  });

  it("the page's one-liners name the served scripts and pass the token as an argument", () => {
    const commands = installCommands(ORIGIN, "cae_abc");
    expect(commands.unix).toBe(`curl -fsSL ${ORIGIN}/install.sh | sudo sh -s -- --token cae_abc`);
    expect(commands.windows).toBe(`& ([scriptblock]::Create((irm ${ORIGIN}/install.ps1))) -Token cae_abc`);
    expect(Object.values(commands).join("\n")).not.toContain("npx");
  });
});

describe("install.sh", () => {
  it("parses as POSIX sh (dash) and bash", () => {
    const path = written("install.sh", installerScript("sh", ORIGIN));
    for (const shell of ["dash", "bash"].filter(has)) {
      const parsed = spawnSync(shell, ["-n", path], { encoding: "utf8" });
      expect(parsed.status, `${shell}: ${parsed.stderr}`).toBe(0);
    }
  });

  it.runIf(has("shellcheck"))("passes shellcheck as POSIX sh", () => {
    const path = written("install-check.sh", installerScript("sh", ORIGIN));
    const checked = spawnSync("shellcheck", ["-s", "sh", path], { encoding: "utf8" });
    expect(checked.status, checked.stdout).toBe(0);
  });

  it("refuses to run without root unless staging or dry-running, and rejects unknown options", () => {
    const path = written("install-args.sh", installerScript("sh", ORIGIN));
    const unknown = spawnSync("sh", [path, "--tokne", "x"], { encoding: "utf8" });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain("unknown option --tokne");
    const badServer = spawnSync("sh", [path, "--server", "ftp://x", "--dry-run"], { encoding: "utf8" });
    expect(badServer.status).not.toBe(0);
    expect(badServer.stderr).toContain("--server must be an http(s) URL");
  });

  it.runIf(process.platform === "linux" && has("curl"))("checks the download against X-Caisey-Sha256 and refuses a mismatch or a missing hash", async () => {
    const executable = Buffer.from("#!/bin/sh\necho 9.9.9\n");
    const good = createHash("sha256").update(executable).digest("hex");
    let published: string | null = good;
    const server = createServer((request, response) => {
      const headers: Record<string, string> = { "content-type": "application/octet-stream", "x-caisey-version": "9.9.9" };
      if (published) headers["x-caisey-sha256"] = published;
      response.writeHead(request.url === "/runtime/download/linux-x64" || request.url === "/runtime/download/linux-arm64" ? 200 : 404, headers);
      response.end(executable);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const path = written("install-hash.sh", installerScript("sh", origin));
    // Asynchronous: the server above runs in this process.
    const run = () =>
      new Promise<{ status: number | null; output: string }>((resolvePromise) => {
        const child = spawn("sh", [path, "--dry-run", "--root", join(scratch, "hash-root")]);
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("close", (status) => resolvePromise({ status, output }));
      });
    try {
      const ok = await run();
      expect(ok.status, ok.output).toBe(0);
      expect(ok.output).toContain(`verified SHA-256 ${good}`);
      published = "0".repeat(64);
      const mismatch = await run();
      expect(mismatch.status).not.toBe(0);
      expect(mismatch.output).toContain(`SHA-256 mismatch: the console published ${published} but the download is ${good}`);
      published = null;
      const missing = await run();
      expect(missing.status).not.toBe(0);
      expect(missing.output).toContain("no X-Caisey-Sha256 header");
    } finally {
      server.close();
    }
  });

  it.runIf(has("python3"))("carries a launchd plist that parses, keeps the runtime alive and starts it at load", () => {
    const plist = written("runtime.plist", heredoc("PLIST"));
    const parsed = spawnSync("python3", ["-c", "import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))))", plist], { encoding: "utf8" });
    expect(parsed.status, parsed.stderr).toBe(0);
    expect(JSON.parse(parsed.stdout)).toMatchObject({
      Label: "com.caisey.runtime",
      ProgramArguments: ["/usr/local/bin/caisey-runtime", "run", "--state-dir", "/Library/Application Support/Caisey"],
      RunAtLoad: true,
      KeepAlive: true,
      EnvironmentVariables: { CAISEY_RUNTIME_SERVICE: "1" },
    });
  });
});

/** PowerShell text with comments and string literals blanked, for structural checks. */
function powershellCode(text: string): string {
  return text
    .replace(/@'\n[\s\S]*?\n'@/g, "''")
    .replace(/'[^'\n]*'/g, "''")
    .replace(/"(?:[^"\n]|"")*"/g, '""')
    .replace(/#[^\n]*/g, "");
}

describe("install.ps1 (static: no PowerShell here)", () => {
  const code = powershellCode(INSTALL_PS1);

  it("has balanced braces, brackets and parentheses outside strings and comments", () => {
    for (const [open, close] of [["{", "}"], ["(", ")"], ["[", "]"]]) {
      let depth = 0;
      for (const char of code) {
        if (char === open) depth += 1;
        if (char === close) depth -= 1;
        expect(depth, `${open}${close}`).toBeGreaterThanOrEqual(0);
      }
      expect(depth, `${open}${close}`).toBe(0);
    }
  });

  it("never calls exit (the one-liner runs it inside the administrator's session) and uses no backquote escapes", () => {
    expect(code).not.toMatch(/\bexit\b/i);
    expect(INSTALL_PS1).not.toContain("`");
  });

  it("uses no variable before a colon inside a string (PowerShell reads $name: as a drive)", () => {
    const strings = INSTALL_PS1.match(/"(?:[^"\n]|"")*"/g) ?? [];
    for (const text of strings) expect(text, text).not.toMatch(/\$(?!env:)[A-Za-z_]\w*:/);
  });

  it("declares every documented parameter and verifies the hash before anything is installed", () => {
    for (const name of ["Token", "Force", "Hostname", "Proxy", "NoProxy", "Version", "Server", "Uninstall", "Purge", "DryRun"]) {
      expect(INSTALL_PS1).toMatch(new RegExp(`\\[(string|switch)\\]\\$${name}\\b`));
      expect(INSTALL_PS1).toMatch(new RegExp(`#   -${name}\\b`));
    }
    const verified = INSTALL_PS1.indexOf("$download = Get-VerifiedDownload");
    expect(verified).toBeGreaterThan(0);
    for (const step of ["Copy-Item -Force", "& icacls.exe", "& $Exe @enrollArgs", "& $Wrapper install"]) {
      expect(INSTALL_PS1.indexOf(step), step).toBeGreaterThan(verified);
    }
  });

  it("restricts the state directory to SYSTEM and Administrators by SID, without inheritance", () => {
    expect(INSTALL_PS1).toContain("$SystemSid = '*S-1-5-18'");
    expect(INSTALL_PS1).toContain("$AdministratorsSid = '*S-1-5-32-544'");
    expect(INSTALL_PS1).toContain('& icacls.exe $StateDir /inheritance:r /grant:r "$($SystemSid):(OI)(CI)F" "$($AdministratorsSid):(OI)(CI)F" /Q');
  });

  it("writes a WinSW definition that restarts on failure, starts automatically and stops gracefully", () => {
    const xml = INSTALL_PS1.match(/\$WrapperConfig = @'\n([\s\S]*?)\n'@/)![1]!;
    const tags = [...xml.matchAll(/<(\/?)([\w]+)[^>]*?(\/?)>/g)];
    const stack: string[] = [];
    for (const [, closing, name, selfClosing] of tags) {
      if (selfClosing) continue;
      if (closing) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
    expect(xml).toContain("<startmode>Automatic</startmode>");
    expect(xml).toContain('<onfailure action="restart" delay="10 sec"/>');
    expect(xml).toContain("<stoptimeout>30 sec</stoptimeout>");
    expect(xml).toContain('<arguments>run --state-dir "@@STATE_DIR@@"</arguments>');
    expect(xml).not.toContain("<serviceaccount>");
  });
});
