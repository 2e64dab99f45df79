// Windows behaviour of the runtime, exercised here by injecting the platform
// (and, for the file system, a Windows-like OS layer over the real disk),
// since no Windows machine runs these tests. ADR 0014 says what has and has
// not run on real Windows.
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MAX_COMMAND_LENGTH, type DispatchedCommand } from "../../protocol/messages";
import { execute } from "../../runtime/src/executor";
import {
  ensurePrivateDir,
  LOCK_RETRY_DELAYS_MS,
  nodeDurableFsHost,
  removeDurable,
  retryWhileLocked,
  retryWhileLockedSync,
  useDurableFsHost,
  writeFileDurable,
  writeFileDurableSync,
  type DurableFsHost,
} from "../../runtime/src/fs-durable";
import { saveIdentity } from "../../runtime/src/identity";
import { statePaths } from "../../runtime/src/paths";
import {
  isUnderWindowsProgramData,
  resolveShell,
  stopSignals,
  windowsPrivateDirAcl,
  windowsStateDir,
  windowsTreeKill,
  type ShellInvocation,
} from "../../runtime/src/platform";
import { POWERSHELL_PREAMBLE, PowershellErrorDecoder } from "../../runtime/src/powershell";
import { killProcessTree, runHelper, type ProcessTreeHost } from "../../runtime/src/process-tree";

const scratch = mkdtempSync(join(tmpdir(), "caisey-win-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const WINDOWS_ENV = { SystemRoot: "C:\\Windows", ProgramData: "C:\\ProgramData", PATH: "C:\\Windows\\System32" };
/** What CreateProcess accepts in one command line (characters, including the program name). */
const WINDOWS_COMMAND_LINE_MAX = 32_767;

function decodeEncodedCommand(args: string[]): string {
  const index = args.indexOf("-EncodedCommand");
  expect(index).toBeGreaterThan(-1);
  return Buffer.from(args[index + 1]!, "base64").toString("utf16le");
}

describe("PowerShell invocation", () => {
  const nasty = `Get-Service "OPC UA*" | Where-Object { $_.Status -eq 'Running' }\nWrite-Output "Grüße \`"quoted\`" 100% \\\\server\\share & | < > ^ ✓ 😀"\r\nexit 3`;

  it("on Windows runs powershell.exe by full path with -EncodedCommand, UTF-8 output and no progress, whatever the text contains", () => {
    for (const shell of ["powershell", "default"] as const) {
      const invocation = resolveShell(shell, nasty, "win32", { ...WINDOWS_ENV, SystemRoot: "D:\\Win" });
      expect(invocation.file).toBe("D:\\Win\\System32\\WindowsPowerShell\\v1.0\\powershell.exe");
      const flags = invocation.args.slice(0, -1);
      expect(flags).toEqual(["-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-OutputFormat", "Text", "-EncodedCommand"]);
      // The technician's text never reaches a command line parser: only base64 does.
      expect(invocation.args.at(-1)).toMatch(/^[A-Za-z0-9+/]+=*$/);
      const script = decodeEncodedCommand(invocation.args);
      expect(script).toBe(`${POWERSHELL_PREAMBLE}\n${nasty}`);
      expect(script.indexOf("$ProgressPreference = 'SilentlyContinue'")).toBeLessThan(script.indexOf(nasty));
      expect(script).toContain("[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false");
      expect(script).toContain("$OutputEncoding = New-Object System.Text.UTF8Encoding $false");
      expect(invocation.stderrFilter?.()).toBeInstanceOf(PowershellErrorDecoder);
    }
  });

  it("fits the longest allowed command into one Windows command line", () => {
    const longest = "😀".repeat(MAX_COMMAND_LENGTH / 2); // MAX_COMMAND_LENGTH UTF-16 units, all outside the BMP
    const invocation = resolveShell("powershell", longest, "win32", WINDOWS_ENV);
    expect(decodeEncodedCommand(invocation.args)).toBe(`${POWERSHELL_PREAMBLE}\n${longest}`);
    const commandLine = [invocation.file, ...invocation.args].map((a) => `"${a}"`).join(" ");
    expect(commandLine.length).toBeLessThan(WINDOWS_COMMAND_LINE_MAX);
  });

  it("on Linux/macOS finds pwsh on PATH and passes the same encoded script, without -ExecutionPolicy", () => {
    const bin = join(scratch, "pwsh-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "pwsh"), "#!/bin/sh\n");
    chmodSync(join(bin, "pwsh"), 0o755);
    const invocation = resolveShell("powershell", "Get-Date", "linux", { PATH: `/nonexistent:${bin}` });
    expect(invocation.file).toBe(join(bin, "pwsh"));
    expect(invocation.args).not.toContain("-ExecutionPolicy");
    expect(decodeEncodedCommand(invocation.args)).toBe(`${POWERSHELL_PREAMBLE}\nGet-Date`);
    expect(() => resolveShell("powershell", "Get-Date", "linux", { PATH: "/nonexistent" })).toThrow(/not installed/);
    expect(resolveShell("default", "echo hi", "linux", {})).toEqual({ file: "/bin/sh", args: ["-c", "echo hi"] });
  });
});

describe("PowerShell's CLIXML error stream", () => {
  // As Windows PowerShell 5.1 writes `throw 'boom'` to a redirected stderr when started with -EncodedCommand.
  const clixml =
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' +
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>' +
    '<MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>' +
    '<S S="Error">boom &lt;Grüße&gt; &amp; snake_x005F_case_x000D__x000A_</S>' +
    '<S S="Error">At line:1 char:1_x000D__x000A_</S>' +
    '<S S="warning">disk almost full</S>' +
    "</Objs>";
  const text = "boom <Grüße> & snake_case\r\nAt line:1 char:1\r\nWARNING: disk almost full\r\n";

  function decodeInPieces(input: string, size: number): string {
    const decoder = new PowershellErrorDecoder();
    let out = "";
    for (let i = 0; i < input.length; i += size) out += decoder.write(input.slice(i, i + size));
    return out + decoder.end();
  }

  it("turns the serialized errors back into the text a console shows, however the pipe splits it", () => {
    for (const size of [1, 2, 7, 64, clixml.length]) expect(decodeInPieces(clixml, size)).toBe(text);
  });

  it("streams each complete error as it arrives", () => {
    const decoder = new PowershellErrorDecoder();
    const firstEnd = clixml.indexOf("</S>") + 4;
    expect(decoder.write(clixml.slice(0, firstEnd))).toBe("boom <Grüße> & snake_case\r\n");
    expect(decoder.write(clixml.slice(firstEnd)) + decoder.end()).toBe("At line:1 char:1\r\nWARNING: disk almost full\r\n");
  });

  it("passes plain text through untouched, including what merely starts like the header", () => {
    for (const plain of ["Get-Item : Cannot find path 'C:\\x'\r\n", "#<not clixml>\n", "#", "<S>not from PowerShell</S>\n", ""]) {
      expect(decodeInPieces(plain, 1)).toBe(plain);
      expect(decodeInPieces(plain, 100)).toBe(plain);
    }
  });

  it("passes a native program's own stderr through, before and between the serialized errors", () => {
    const native = "robocopy: ERROR 5 (0x00000005) Access is denied.\r\n";
    const open = '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">';
    const mixed = `${native}${open}<S S="Error">first_x000D__x000A_</S>${native}<S S="Error">second_x000D__x000A_</S></Objs>`;
    for (const size of [1, 3, 10, mixed.length]) expect(decodeInPieces(mixed, size)).toBe(`${native}first\r\n${native}second\r\n`);
  });

  it("keeps a document cut off at exit instead of losing it", () => {
    const cut = clixml.slice(0, clixml.indexOf("At line"));
    expect(decodeInPieces(cut, 5)).toBe("boom <Grüße> & snake_case\r\n<S S=\"Error\">");
  });
});

describe("executor with PowerShell (a stand-in pwsh on PATH)", () => {
  const originalPath = process.env.PATH;
  afterEach(() => {
    process.env.PATH = originalPath;
  });

  it("hands pwsh the script intact and delivers its CLIXML errors as text", async () => {
    // Behaves like pwsh 5.1 would: decodes -EncodedCommand, prints the script's last line to stdout
    // as UTF-8, and reports an error on stderr in CLIXML.
    const bin = join(scratch, "fake-pwsh");
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, "pwsh"),
      `#!${process.execPath}
const args = process.argv.slice(2);
const script = Buffer.from(args[args.indexOf("-EncodedCommand") + 1], "base64").toString("utf16le");
const line = script.split("\\n").at(-1);
process.stdout.write(line + "\\n");
const escaped = line.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
process.stderr.write('#< CLIXML\\r\\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">' + escaped + '_x000D__x000A_</S></Objs>');
process.exitCode = 1;
`,
    );
    chmodSync(join(bin, "pwsh"), 0o755);
    process.env.PATH = `${bin}${delimiter}${originalPath}`;
    const text = `Write-Error "Grüße <b> & 'ü' ✓"`;
    const command: DispatchedCommand = { commandId: "ps-1", text, shell: "powershell", timeoutMs: 10_000, maxOutputBytes: 64 * 1024 };
    const result = await execute(command, { send: () => false }).result;
    expect(result.status).toBe("failed");
    expect(result.exitCode).toBe(1);
    const stream = (name: string) => result.tail.filter((c) => c.stream === name).map((c) => c.data).join("");
    expect(stream("stdout")).toBe(`${text}\n`);
    expect(stream("stderr")).toBe(`${text}\r\n`);
  });
});

describe("%ProgramData% state directory", () => {
  it("is %ProgramData%\\Caisey\\runtime, read case-insensitively, with a safe fallback", () => {
    expect(windowsStateDir({ ProgramData: "D:\\Data" })).toBe("D:\\Data\\Caisey\\runtime");
    expect(windowsStateDir({ PROGRAMDATA: "E:\\PD\\" })).toBe("E:\\PD\\Caisey\\runtime");
    expect(windowsStateDir({ ALLUSERSPROFILE: "F:\\All Users" })).toBe("F:\\All Users\\Caisey\\runtime");
    expect(windowsStateDir({})).toBe("C:\\ProgramData\\Caisey\\runtime");
    // A relative value would put the credential wherever the service happens to start.
    expect(windowsStateDir({ ProgramData: "relative\\dir" })).toBe("C:\\ProgramData\\Caisey\\runtime");
    expect(windowsStateDir({ ProgramData: "  " })).toBe("C:\\ProgramData\\Caisey\\runtime");
  });

  it("knows what lies inside it", () => {
    const env = { ProgramData: "C:\\ProgramData" };
    expect(isUnderWindowsProgramData("C:\\ProgramData\\Caisey\\runtime", env)).toBe(true);
    expect(isUnderWindowsProgramData("c:\\programdata\\caisey\\runtime\\outbox", env)).toBe(true);
    expect(isUnderWindowsProgramData("C:\\ProgramDataX\\Caisey", env)).toBe(false);
    expect(isUnderWindowsProgramData("C:\\Users\\tech\\.caisey-runtime", env)).toBe(false);
    expect(isUnderWindowsProgramData("C:\\ProgramData\\..\\Users\\x", env)).toBe(false);
  });
});

describe("stop signals", () => {
  it("treats Ctrl+C, Ctrl+Break and console close like SIGTERM on Windows; SIGHUP too on Unix", () => {
    expect(stopSignals("win32").sort()).toEqual(["SIGBREAK", "SIGHUP", "SIGINT", "SIGTERM"]);
    expect(stopSignals("linux").sort()).toEqual(["SIGHUP", "SIGINT", "SIGTERM"]);
    expect(stopSignals("darwin").sort()).toEqual(["SIGHUP", "SIGINT", "SIGTERM"]);
  });
});

describe("process tree kill on Windows", () => {
  function fakeChild(pid: number | undefined, exited = false) {
    const kills: unknown[] = [];
    const child = { pid, exitCode: exited ? 0 : null, signalCode: null, kill: (s?: unknown) => kills.push(s ?? "default") };
    return { child: child as unknown as ChildProcess, kills };
  }
  function windowsHost(taskkillFails = false) {
    const runs: ShellInvocation[] = [];
    const signals: [number, string][] = [];
    const host: ProcessTreeHost = {
      platform: "win32",
      run: (invocation, onFailure) => {
        runs.push(invocation);
        if (taskkillFails) onFailure();
      },
      signal: (pid, signal) => signals.push([pid, signal]),
    };
    return { host, runs, signals };
  }

  it("runs taskkill /T /F by full path on the live root, for the gentle and the hard stage alike", () => {
    const { host, runs, signals } = windowsHost();
    const { child } = fakeChild(4242);
    killProcessTree(child, "SIGTERM", host);
    killProcessTree(child, "SIGKILL", host);
    const expected = { file: "C:\\Windows\\System32\\taskkill.exe", args: ["/PID", "4242", "/T", "/F"] };
    expect(runs).toEqual([expected, expected]);
    expect(signals).toEqual([]); // no process groups on Windows
    expect(windowsTreeKill(7, { SystemRoot: "D:\\W" })).toEqual({ file: "D:\\W\\System32\\taskkill.exe", args: ["/PID", "7", "/T", "/F"] });
  });

  it("leaves a pid alone once its process has exited (Windows reuses pids), and falls back to kill() when taskkill fails", () => {
    const exited = windowsHost();
    killProcessTree(fakeChild(4242, true).child, "SIGKILL", exited.host);
    killProcessTree(fakeChild(undefined).child, "SIGKILL", exited.host);
    expect(exited.runs).toEqual([]);

    const broken = windowsHost(true);
    const { child, kills } = fakeChild(99);
    killProcessTree(child, "SIGTERM", broken.host);
    expect(kills).toEqual(["default"]);
  });

  it.runIf(process.platform !== "win32")("notices a taskkill that fails as well as one that cannot start (real processes)", async () => {
    const outcome = (invocation: ShellInvocation) =>
      new Promise<string>((resolve) => {
        let failed = false;
        const helper = runHelper(invocation, () => (failed = true));
        helper.once("close", () => setImmediate(() => resolve(failed ? "failure" : "ok")));
        helper.once("error", () => setImmediate(() => resolve(failed ? "failure" : "ok")));
      });
    expect(await outcome({ file: "/bin/sh", args: ["-c", "exit 0"] })).toBe("ok");
    expect(await outcome({ file: "/bin/sh", args: ["-c", "exit 1"] })).toBe("failure");
    expect(await outcome({ file: join(scratch, "no-such-taskkill.exe"), args: [] })).toBe("failure");
  });

  it("signals the process group elsewhere", () => {
    const { host, runs, signals } = windowsHost();
    killProcessTree(fakeChild(4242).child, "SIGTERM", { ...host, platform: "linux" });
    expect(signals).toEqual([[-4242, "SIGTERM"]]);
    expect(runs).toEqual([]);
  });
});

describe("file system on Windows (injected OS layer over the real disk)", () => {
  type Failure = { op: "rename" | "rm"; code: string; times: number };

  /** Real file operations, except that the first `times` calls fail like a file held by an antivirus scanner. */
  function windowsFs(failures: Failure[], extra: Partial<DurableFsHost> = {}) {
    const sleeps: number[] = [];
    const calls = { rename: 0, rm: 0 };
    const execs: ShellInvocation[] = [];
    const fail = (op: "rename" | "rm") => {
      calls[op] += 1;
      const failure = failures.find((f) => f.op === op && f.times > 0);
      if (!failure) return;
      failure.times -= 1;
      throw Object.assign(new Error(`${failure.code}: operation not permitted, ${op}`), { code: failure.code });
    };
    const host: DurableFsHost = {
      ...nodeDurableFsHost,
      platform: "win32",
      env: { ProgramData: join(scratch, "ProgramData") },
      rename: async (from, to) => {
        fail("rename");
        return nodeDurableFsHost.rename(from, to);
      },
      renameSync: (from, to) => {
        fail("rename");
        nodeDurableFsHost.renameSync(from, to);
      },
      rm: async (file) => {
        fail("rm");
        return nodeDurableFsHost.rm(file);
      },
      rmSync: (file) => {
        fail("rm");
        nodeDurableFsHost.rmSync(file);
      },
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      sleepSync: (ms) => {
        sleeps.push(ms);
      },
      exec: async (invocation) => {
        execs.push(invocation);
      },
      ...extra,
    };
    return { host, sleeps, calls, execs };
  }

  let restore: () => void = () => {};
  afterEach(() => restore());

  function dir(name: string): string {
    const path = join(scratch, name);
    mkdirSync(path, { recursive: true });
    return path;
  }
  const tempFiles = (path: string) => readdirSync(path).filter((n) => n.startsWith(".tmp-"));

  it.each(["EPERM", "EBUSY", "EACCES"])("retries a rename refused with %s until the scanner lets go (async and sync writes)", async (code) => {
    const target = join(dir(`rename-${code}`), "identity.json");
    const fs = windowsFs([{ op: "rename", code, times: 3 }]);
    restore = useDurableFsHost(fs.host);
    await writeFileDurable(target, "first");
    expect(readFileSync(target, "utf8")).toBe("first");
    expect(fs.sleeps).toEqual(LOCK_RETRY_DELAYS_MS.slice(0, 3));

    const outboxEntry = join(dir(`rename-sync-${code}`), "cmd-1.json");
    const sync = windowsFs([{ op: "rename", code, times: 2 }]);
    restore();
    restore = useDurableFsHost(sync.host);
    writeFileDurableSync(outboxEntry, "result");
    expect(readFileSync(outboxEntry, "utf8")).toBe("result");
    expect(sync.sleeps).toEqual(LOCK_RETRY_DELAYS_MS.slice(0, 2));
    expect(tempFiles(dir(`rename-sync-${code}`))).toEqual([]);
  });

  it("retries deleting an acked result the scanner still holds", async () => {
    const target = join(dir("remove"), "acked.json");
    writeFileSync(target, "x");
    const fs = windowsFs([{ op: "rm", code: "EBUSY", times: 2 }]);
    restore = useDurableFsHost(fs.host);
    await removeDurable(target);
    expect(existsSync(target)).toBe(false);
    expect(fs.calls.rm).toBe(3);
  });

  it("gives up after a bounded time, reports the error and leaves no temp file behind", async () => {
    const path = dir("give-up");
    const fs = windowsFs([{ op: "rename", code: "EPERM", times: Number.POSITIVE_INFINITY }]);
    restore = useDurableFsHost(fs.host);
    await expect(writeFileDurable(join(path, "x.json"), "data")).rejects.toMatchObject({ code: "EPERM" });
    expect(fs.sleeps).toEqual([...LOCK_RETRY_DELAYS_MS]);
    expect(fs.sleeps.reduce((a, b) => a + b, 0)).toBeLessThan(5000);
    expect(fs.calls.rename).toBe(LOCK_RETRY_DELAYS_MS.length + 1);
    expect(tempFiles(path)).toEqual([]);
    expect(existsSync(join(path, "x.json"))).toBe(false);
  });

  it("does not retry other errors, nor these codes off Windows (there they are real permission errors)", async () => {
    const notLocked = windowsFs([{ op: "rename", code: "ENOSPC", times: 1 }]);
    restore = useDurableFsHost(notLocked.host);
    await expect(writeFileDurable(join(dir("enospc"), "x.json"), "data")).rejects.toMatchObject({ code: "ENOSPC" });
    expect(notLocked.sleeps).toEqual([]);
    restore();

    const linux = windowsFs([{ op: "rename", code: "EACCES", times: 1 }], { platform: "linux" });
    restore = useDurableFsHost(linux.host);
    expect(() => writeFileDurableSync(join(dir("linux-eacces"), "x.json"), "data")).toThrow(/EACCES/);
    expect(linux.sleeps).toEqual([]);
  });

  it("retry helpers: succeed after transient failures, stop at the bound, only on win32", async () => {
    let attempts = 0;
    const flaky = async () => {
      attempts += 1;
      if (attempts < 3) throw Object.assign(new Error("busy"), { code: "EBUSY" });
      return "done";
    };
    const slept: number[] = [];
    await expect(retryWhileLocked(flaky, "win32", async (ms) => void slept.push(ms), [1, 2, 3])).resolves.toBe("done");
    expect(slept).toEqual([1, 2]);
    attempts = 0;
    await expect(retryWhileLocked(flaky, "linux", async () => {}, [1, 2, 3])).rejects.toThrow("busy");
    const always = () => {
      throw Object.assign(new Error("perm"), { code: "EPERM" });
    };
    const syncSlept: number[] = [];
    expect(() => retryWhileLockedSync(always, "win32", (ms) => void syncSlept.push(ms), [5, 6])).toThrow("perm");
    expect(syncSlept).toEqual([5, 6]);
  });

  it("restricts a state dir under %ProgramData% to SYSTEM and Administrators with icacls, and only there", async () => {
    const fs = windowsFs([]);
    restore = useDurableFsHost(fs.host);
    const stateDir = join(scratch, "ProgramData", "Caisey", "runtime");
    await ensurePrivateDir(stateDir);
    expect(existsSync(stateDir)).toBe(true);
    expect(fs.execs).toEqual([
      {
        file: "C:\\Windows\\System32\\icacls.exe",
        args: [stateDir, "/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F", "/Q"],
      },
    ]);
    expect(windowsPrivateDirAcl("C:\\ProgramData\\Caisey\\runtime", { SystemRoot: "D:\\W" }).file).toBe("D:\\W\\System32\\icacls.exe");

    // A user's own profile is private by inheritance already.
    await ensurePrivateDir(join(scratch, "Users", "tech", ".caisey-runtime"));
    expect(fs.execs).toHaveLength(1);
  });

  it("fails closed: when the ACL cannot be set, enrollment writes no credential", async () => {
    const fs = windowsFs([], {
      exec: async () => {
        throw new Error("icacls.exe failed: Access is denied.");
      },
    });
    restore = useDurableFsHost(fs.host);
    const paths = statePaths(join(scratch, "ProgramData", "Caisey", "denied"));
    await expect(
      saveIdentity(paths, { server: "https://caisey.example", endpointId: "ep-1", credential: "secret", enrolledAt: new Date().toISOString() }),
    ).rejects.toThrow(/Access is denied/);
    expect(existsSync(paths.identity)).toBe(false);
  });
});
