// The runtime's config file and default state directory (runtime/src/config.ts,
// runtime/src/paths.ts), and `run` failing closed on a bad config file.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve, win32 } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readRuntimeConfig, updateRuntimeConfig } from "../../runtime/src/config";
import { UserError } from "../../runtime/src/identity";
import { defaultStateDir, statePaths, systemStateDir } from "../../runtime/src/paths";

const repo = resolve(__dirname, "../..");
const scratch = mkdtempSync(join(tmpdir(), "caisey-config-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("config.json", () => {
  it("is empty when absent, merges updates, and is private", async () => {
    const paths = statePaths(join(scratch, "merge"));
    expect(await readRuntimeConfig(paths)).toEqual({});
    await updateRuntimeConfig(paths, { proxy: "http://proxy.example:3128" });
    await updateRuntimeConfig(paths, { noProxy: "localhost", transport: "checkin" });
    expect(await readRuntimeConfig(paths)).toEqual({ proxy: "http://proxy.example:3128", noProxy: "localhost", transport: "checkin" });
    if (process.platform !== "win32") expect(statSync(paths.config).mode & 0o777).toBe(0o600);
  });

  it("refuses invalid settings and writes nothing", async () => {
    const paths = statePaths(join(scratch, "invalid"));
    await expect(updateRuntimeConfig(paths, { proxy: "socks5://x:1" })).rejects.toThrow(UserError);
    await expect(readRuntimeConfig(paths)).resolves.toEqual({});
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.config, JSON.stringify({ transport: "carrier-pigeon" }));
    await expect(readRuntimeConfig(paths)).rejects.toThrow(/config\.json is invalid/);
    writeFileSync(paths.config, JSON.stringify({ proxie: "http://typo:1" }));
    await expect(readRuntimeConfig(paths)).rejects.toThrow(/config\.json is invalid/);
    writeFileSync(paths.config, "{");
    await expect(readRuntimeConfig(paths)).rejects.toThrow(/not valid JSON/);
  });

  it("a bad config file stops `run` with a message naming it (it does not guess)", () => {
    const dir = join(scratch, "run-bad");
    mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ checkinIntervalSeconds: 0 }));
    const ran = spawnSync(process.execPath, [join(repo, "runtime/bin/caisey-runtime.mjs"), "run", "--state-dir", dir], { encoding: "utf8", timeout: 20_000 });
    expect(ran.status).toBe(1);
    expect(ran.stderr).toContain(`${join(dir, "config.json")} is invalid`);
  });

  it("enroll refuses an invalid --proxy before using the token", () => {
    const dir = join(scratch, "enroll-bad-proxy");
    // The server is unreachable on purpose: the check must come first.
    const ran = spawnSync(
      process.execPath,
      [join(repo, "runtime/bin/caisey-runtime.mjs"), "enroll", "--server", "http://127.0.0.1:9", "--token", "cae_x", "--state-dir", dir, "--proxy", "not a url"],
      { encoding: "utf8", timeout: 20_000 },
    );
    expect(ran.status).toBe(1);
    expect(ran.stderr).toContain("invalid --proxy");
    expect(() => readFileSync(join(dir, "identity.json"))).toThrow();
  });
});

describe("default state directory", () => {
  it("is the machine's for the service, root, or an administrator who can list the Windows one; the user's otherwise", () => {
    expect(systemStateDir("linux")).toBe("/var/lib/caisey-runtime");
    expect(systemStateDir("darwin")).toBe("/Library/Application Support/Caisey");
    expect(systemStateDir("win32", { ProgramData: "D:\\PD" })).toBe(win32.join("D:\\PD", "Caisey"));
    expect(defaultStateDir("linux", { CAISEY_RUNTIME_STATE_DIR: "/x" })).toBe("/x");
    expect(defaultStateDir("darwin", { CAISEY_RUNTIME_SERVICE: "1" })).toBe("/Library/Application Support/Caisey");
    const asRoot = process.getuid?.() === 0;
    expect(defaultStateDir("linux", {})).toBe(asRoot ? "/var/lib/caisey-runtime" : join(homedir(), ".caisey-runtime"));
    // Windows: the ACL decides; an unreadable (here: missing) directory means not elevated.
    expect(defaultStateDir("win32", { ProgramData: join(scratch, "no-such") })).toBe(join(homedir(), ".caisey-runtime"));
    // (The positive case needs a real Windows path and ACL: not checkable on this Linux machine.)
  });
});
