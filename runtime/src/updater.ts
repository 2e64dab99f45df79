// Signed self-update with a trial run and rollback (docs/decisions/0016-runtime-updates.md).
//
// The running runtime downloads the offered executable (size-capped), checks its
// SHA-256 and the Ed25519 signature the build made (against the public key built
// into this runtime), waits until no command runs, shuts its agent down cleanly,
// and runs the new executable on trial against the same state directory. Only a
// trial that reaches the server within the trial window is kept: the files are
// swapped (the old one stays as `.previous`) and this process exits with
// EXIT_UPDATE_RESTART so the service manager starts the new one. A trial that
// crashes or does not connect is killed, the old executable stays, and the old
// runtime reopens its agent and reports `rolled_back`.
import { runtimeFetch } from "./http";
import { spawn } from "node:child_process";
import { createHash, createPublicKey, verify } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MAX_RUNTIME_ARTIFACT_BYTES, type RuntimeUpdateOffer, type RuntimeUpdateStatus } from "../../protocol/messages";
import { runtimeSignatureMessage, type RuntimePlatform } from "../../protocol/runtime-release";
import { writeFileDurable } from "./fs-durable";
import { errorText, type Logger } from "./log";
import type { StatePaths } from "./paths";
import { RUNTIME_EXECUTABLE, RUNTIME_PLATFORM, RUNTIME_VERSION, UPDATE_PUBLIC_KEY } from "./version";

/** Exit status after a committed update: the service manager must start the runtime again (now the new version). */
export const EXIT_UPDATE_RESTART = 75;
/** How long a new version has to reach the server on trial before it is rolled back. */
export const DEFAULT_TRIAL_MS = 60_000;
/** Download limit (a stalled download must not hold the update forever). */
const DOWNLOAD_TIMEOUT_MS = 15 * 60_000;

declare const __CAISEY_TEST_BROKEN_START__: string | undefined;
/**
 * Test builds only (scripts/build-runtime.mjs with CAISEY_BUILD_TEST_BROKEN_START=crash|no-connect):
 * a version that crashes at start, or starts and never connects, to prove the rollback. Release builds
 * never define it.
 */
export const TEST_BROKEN_START: string | undefined = typeof __CAISEY_TEST_BROKEN_START__ === "string" ? __CAISEY_TEST_BROKEN_START__ : undefined;

/** The trial window: CAISEY_UPDATE_TRIAL_SECONDS (1-600; tests shorten it), else 60 s. */
export function trialWindowMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CAISEY_UPDATE_TRIAL_SECONDS;
  if (!raw) return DEFAULT_TRIAL_MS;
  const secs = Number(raw);
  return Number.isFinite(secs) && secs >= 1 && secs <= 600 ? Math.round(secs * 1000) : DEFAULT_TRIAL_MS;
}

/**
 * Where the running runtime's executable is: the one file an update replaces. Only a single-file
 * executable can update itself; run from source (node + script) there is nothing to replace.
 */
export function runtimeExecutablePath(): string | undefined {
  return RUNTIME_EXECUTABLE ? process.execPath : undefined;
}

/** Files an update uses: downloads in the state directory, the staged and previous executables next to the current one. */
export function updateFiles(paths: StatePaths, executable: string) {
  const ext = path.extname(executable); // ".exe" on Windows, "" elsewhere
  const base = executable.slice(0, executable.length - ext.length);
  return {
    download: path.join(paths.dir, "update.download"),
    staged: `${base}.new${ext}`,
    previous: `${base}.previous${ext}`,
    /** Written by the trial child once it reached the server. */
    trialMarker: path.join(paths.dir, "update-trial.json"),
    /** Written before the restart into the new version: it reports `committed` once connected. */
    committed: path.join(paths.dir, "update-committed.json"),
  };
}

export class UpdateRefused extends Error {}

/** Checks an artifact's hash and signature against this runtime's build-time key; throws UpdateRefused. */
export function verifyArtifact(offer: RuntimeUpdateOffer, sha256: string, publicKey: string, platform: RuntimePlatform): void {
  if (offer.platform !== platform) throw new UpdateRefused(`the offer is for ${offer.platform}, this runtime is ${platform}`);
  if (sha256 !== offer.sha256) throw new UpdateRefused(`SHA-256 mismatch: the download is ${sha256}, the release says ${offer.sha256}`);
  let good = false;
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey, "base64"), format: "der", type: "spki" });
    good = verify(null, Buffer.from(runtimeSignatureMessage(offer.version, platform, sha256)), key, Buffer.from(offer.signature, "base64"));
  } catch (error) {
    throw new UpdateRefused(`the signature could not be checked: ${errorText(error)}`);
  }
  if (!good) throw new UpdateRefused("the Ed25519 signature does not match the release key built into this runtime");
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

/** Downloads to `file`, refusing anything larger than the offer says (and than the hard cap). */
async function download(url: URL, file: string, limit: number): Promise<string> {
  // Through the runtime's network settings: on a plant network the download, too, may only go via the proxy.
  const response = await runtimeFetch(url.toString(), { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), redirect: "follow" });
  if (!response.ok || !response.body) throw new UpdateRefused(`download failed: HTTP ${response.status} from ${url.origin}${url.pathname}`);
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw new UpdateRefused(`download is ${declared} bytes, more than the ${limit} the release says`);
  const hash = createHash("sha256");
  let received = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > limit) return callback(new UpdateRefused(`download exceeded ${limit} bytes; stopped`));
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), meter, createWriteStream(file, { mode: 0o700 }));
  return hash.digest("hex");
}

export interface UpdaterOptions {
  paths: StatePaths;
  server: string;
  log: Logger;
  /** Sends progress to the server (the agent queues it while offline). */
  report(status: RuntimeUpdateStatus): void;
  /** Called with the staged, verified executable once it is ready for its trial. */
  ready(update: StagedUpdate): void;
}

export interface StagedUpdate {
  version: string;
  executable: string;
  staged: string;
}

/**
 * Takes offers from the agent, one at a time. Whether a version that failed or
 * rolled back is tried again is the session's call: it stops offering it until
 * an admin saves the target again.
 */
export class Updater {
  private busy = false;

  constructor(private readonly options: UpdaterOptions) {}

  offered(offer: RuntimeUpdateOffer): void {
    if (this.busy || offer.version === RUNTIME_VERSION) return;
    this.busy = true;
    void this.prepare(offer).then(
      (staged) => this.options.ready(staged),
      (error: unknown) => {
        this.busy = false;
        const detail = errorText(error);
        this.options.log.error(`update to ${offer.version} refused: ${detail}`);
        this.options.report({ version: offer.version, phase: "failed", detail });
      },
    );
  }

  private async prepare(offer: RuntimeUpdateOffer): Promise<StagedUpdate> {
    const { log, report, paths, server } = this.options;
    const executable = runtimeExecutablePath();
    if (!UPDATE_PUBLIC_KEY || !executable || !RUNTIME_PLATFORM) {
      throw new UpdateRefused("this runtime runs from source (no release key, no executable to replace); install the runtime executable to get updates");
    }
    const files = updateFiles(paths, executable);
    log.info(`update to ${offer.version} offered; downloading`);
    report({ version: offer.version, phase: "downloading", detail: "" });
    const limit = Math.min(offer.size, MAX_RUNTIME_ARTIFACT_BYTES);
    try {
      const sha256 = await download(new URL(offer.url, server), files.download, limit);
      verifyArtifact(offer, sha256, UPDATE_PUBLIC_KEY, RUNTIME_PLATFORM);
      // Staged next to the current executable, so the swap is a rename on one filesystem; checked
      // again there, since the staged copy is what runs.
      await fs.copyFile(files.download, files.staged);
      await fs.chmod(files.staged, 0o755);
      const stagedHash = await sha256File(files.staged);
      if (stagedHash !== sha256) throw new UpdateRefused("the staged copy differs from the verified download");
    } catch (error) {
      await fs.rm(files.staged, { force: true });
      throw error;
    } finally {
      await fs.rm(files.download, { force: true });
    }
    log.info(`update ${offer.version} verified (SHA-256 and signature); waiting for running commands to finish`);
    report({ version: offer.version, phase: "verified", detail: "" });
    return { version: offer.version, executable, staged: files.staged };
  }

  /** After a rollback the next offer may be taken. */
  rolledBack(): void {
    this.busy = false;
  }
}

export type TrialOutcome = { ok: true } | { ok: false; reason: string };

/**
 * Runs the staged executable as `run --update-trial` on the same state
 * directory (this process has released it) and waits for it to report that it
 * reached the server. Killed on timeout; its output goes to our log.
 */
export async function runTrial(update: StagedUpdate, paths: StatePaths, log: Logger, trialMs: number, args: string[], abort: AbortSignal): Promise<TrialOutcome> {
  const files = updateFiles(paths, update.executable);
  await fs.rm(files.trialMarker, { force: true });
  const child = spawn(update.staged, ["run", "--state-dir", paths.dir, "--update-trial", files.trialMarker, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    windowsHide: true,
  });
  let tail = "";
  const forward = (data: Buffer) => {
    const text = data.toString();
    tail = (tail + text).slice(-2000);
    for (const line of text.split("\n")) if (line.trim()) log.info(`[trial ${update.version}] ${line}`);
  };
  child.stdout!.on("data", forward);
  child.stderr!.on("data", forward);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => {
      tail += `\n${errorText(error)}`;
      resolve({ code: null, signal: null });
    });
  });
  const deadline = Date.now() + trialMs;
  let finished: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((e) => (finished = e));
  while (Date.now() < deadline && !abort.aborted) {
    if (existsSync(files.trialMarker)) {
      // Connected: the child now shuts down cleanly on its own (its lock and outbox are ours again).
      const end = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 15_000))]);
      if (!end) child.kill("SIGKILL");
      await exited;
      await fs.rm(files.trialMarker, { force: true });
      return { ok: true };
    }
    if (finished) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!finished) {
    child.kill("SIGKILL");
    await exited;
    if (abort.aborted) return { ok: false, reason: "the runtime was stopped during the trial" };
    return { ok: false, reason: `version ${update.version} did not connect within ${Math.round(trialMs / 1000)} s` };
  }
  // The last line that says something (not a stack frame).
  const lastLine = tail.trim().split("\n").filter((line) => line.trim() && !/^\s+at /.test(line)).at(-1) ?? "";
  return {
    ok: false,
    reason: `version ${update.version} exited (${finished.signal ?? `code ${finished.code}`}) before connecting${lastLine ? `: ${lastLine.slice(0, 300)}` : ""}`,
  };
}

/** The trial child, once it reached the server: tells the parent. */
export async function markTrialConnected(marker: string): Promise<void> {
  await writeFileDurable(marker, `${JSON.stringify({ version: RUNTIME_VERSION, pid: process.pid, at: Date.now() })}\n`);
}

/**
 * Keeps the new version: current → previous, staged → current (renaming a running executable is
 * allowed on Windows too), and leaves a note for the new version to report `committed`.
 */
export async function commitUpdate(update: StagedUpdate, paths: StatePaths): Promise<void> {
  const files = updateFiles(paths, update.executable);
  await fs.rm(files.previous, { force: true });
  await fs.rename(update.executable, files.previous);
  try {
    await fs.rename(update.staged, update.executable);
  } catch (error) {
    await fs.rename(files.previous, update.executable); // never leave the service without an executable
    throw error;
  }
  await writeFileDurable(files.committed, `${JSON.stringify({ version: update.version, previous: RUNTIME_VERSION })}\n`);
}

/** A staged executable that failed its trial is removed; the current one was never touched. */
export async function discardUpdate(update: StagedUpdate): Promise<void> {
  await fs.rm(update.staged, { force: true }).catch(() => {});
}

/**
 * At start: if the previous process committed an update into this version, the report to send once
 * connected. The note is consumed either way.
 */
export async function takeCommittedReport(paths: StatePaths): Promise<RuntimeUpdateStatus | undefined> {
  const executable = runtimeExecutablePath();
  if (!executable) return undefined;
  const file = updateFiles(paths, executable).committed;
  let note: { version?: string; previous?: string };
  try {
    note = JSON.parse(await fs.readFile(file, "utf8"));
  } catch {
    return undefined;
  }
  await fs.rm(file, { force: true });
  if (note.version !== RUNTIME_VERSION) return undefined;
  return { version: RUNTIME_VERSION, phase: "committed", detail: `replaced ${String(note.previous ?? "the previous version")}` };
}
