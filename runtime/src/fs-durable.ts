// Crash-safe file primitives. The runtime's promises (a command never runs
// twice, a result is never lost) are only as good as these: data must be on
// disk before we act on it, and a reader must never see a half-written file.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fsp, constants as fsConstants } from "node:fs";
import * as fs from "node:fs";
import * as path from "node:path";
import { isUnderWindowsProgramData, windowsPrivateDirAcl, type ShellInvocation } from "./platform";

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;
/** Prefix of files still being written; readers skip them, startup removes leftovers. */
export const TEMP_PREFIX = ".tmp-";

/**
 * The operating-system calls whose behaviour differs on Windows. Production
 * uses the real ones; tests swap in a host that reports win32 and fails the
 * way Windows does, since no Windows file system is available to them.
 */
export interface DurableFsHost {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  rename(from: string, to: string): Promise<void>;
  renameSync(from: string, to: string): void;
  /** Removes a file; a missing file is not an error. */
  rm(file: string): Promise<void>;
  rmSync(file: string): void;
  sleep(ms: number): Promise<void>;
  sleepSync(ms: number): void;
  /** Runs a system tool to completion; rejects with its output when it fails. */
  exec(invocation: ShellInvocation): Promise<void>;
}

export const nodeDurableFsHost: DurableFsHost = {
  platform: process.platform,
  env: process.env,
  rename: (from, to) => fsp.rename(from, to),
  renameSync: (from, to) => fs.renameSync(from, to),
  rm: (file) => fsp.rm(file, { force: true }),
  rmSync: (file) => fs.rmSync(file, { force: true }),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  sleepSync: (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms),
  exec: (invocation) =>
    new Promise((resolve, reject) => {
      execFile(invocation.file, invocation.args, { windowsHide: true }, (error, stdout, stderr) => {
        if (!error) return resolve();
        const output = `${stdout}${stderr}`.trim();
        reject(new Error(`${path.basename(invocation.file)} failed: ${error.message}${output ? `: ${output}` : ""}`));
      });
    }),
};

let host: DurableFsHost = nodeDurableFsHost;

/** Replaces the OS layer (tests only); returns the function that puts the real one back. */
export function useDurableFsHost(next: DurableFsHost): () => void {
  const previous = host;
  host = next;
  return () => {
    host = previous;
  };
}

/**
 * What an antivirus scanner, the search indexer or a backup agent causes on
 * Windows when it has the file open without FILE_SHARE_DELETE: rename and
 * delete fail for a moment, then succeed.
 */
export const TRANSIENT_LOCK_CODES: ReadonlySet<string> = new Set(["EPERM", "EBUSY", "EACCES"]);
/** ~2.6 s in all: scanners hold a fresh file for tens of milliseconds, rarely seconds. */
export const LOCK_RETRY_DELAYS_MS: readonly number[] = [10, 20, 40, 80, 160, 320, 500, 500, 500, 500];

function isTransientLock(error: unknown, platform: NodeJS.Platform): boolean {
  // On Unix these codes mean real permission problems; retrying would only delay the error.
  return platform === "win32" && TRANSIENT_LOCK_CODES.has((error as NodeJS.ErrnoException)?.code ?? "");
}

export async function retryWhileLocked<T>(
  operation: () => Promise<T>,
  platform: NodeJS.Platform,
  sleep: (ms: number) => Promise<void>,
  delays: readonly number[] = LOCK_RETRY_DELAYS_MS,
): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= delays.length || !isTransientLock(error, platform)) throw error;
      await sleep(delays[attempt]!);
    }
  }
}

export function retryWhileLockedSync<T>(
  operation: () => T,
  platform: NodeJS.Platform,
  sleepSync: (ms: number) => void,
  delays: readonly number[] = LOCK_RETRY_DELAYS_MS,
): T {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return operation();
    } catch (error) {
      if (attempt >= delays.length || !isTransientLock(error, platform)) throw error;
      sleepSync(delays[attempt]!);
    }
  }
}

const renameDurably = (from: string, to: string) => retryWhileLocked(() => host.rename(from, to), host.platform, host.sleep);
const renameDurablySync = (from: string, to: string) => retryWhileLockedSync(() => host.renameSync(from, to), host.platform, host.sleepSync);
const removeFile = (file: string) => retryWhileLocked(() => host.rm(file), host.platform, host.sleep);
const removeFileSync = (file: string) => retryWhileLockedSync(() => host.rmSync(file), host.platform, host.sleepSync);

/**
 * Creates the directory and makes it private to the runtime: mode 0700 on
 * Unix. On Windows modes mean nothing; a directory under %ProgramData% (where
 * the service keeps its state, readable by every local user by default) gets
 * an ACL for SYSTEM and Administrators only. Elsewhere on Windows (a user's
 * profile) the inherited ACL is already private to that user.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (host.platform === "win32") {
    // Fail closed: a credential must not be written where any user can read it.
    if (isUnderWindowsProgramData(dir, host.env)) await host.exec(windowsPrivateDirAcl(dir, host.env));
    return;
  }
  // mkdir leaves an existing directory's mode alone; the state dir holds a credential.
  await fsp.chmod(dir, PRIVATE_DIR_MODE);
}

/** Makes a rename or a newly created file inside `dir` survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  if (host.platform === "win32") return; // Windows cannot open directories; NTFS journals renames itself.
  const handle = await fsp.open(dir, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Write to a temp file, fsync, rename over the target: readers see the old or the new file, never a mix. */
export async function writeFileDurable(target: string, data: string, mode = PRIVATE_FILE_MODE): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(dir, `${TEMP_PREFIX}${path.basename(target)}-${process.pid}-${randomBytes(4).toString("hex")}`);
  const handle = await fsp.open(temp, "w", mode);
  try {
    await handle.writeFile(data, "utf8");
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await removeFile(temp).catch(() => {});
    throw error;
  }
  await handle.close();
  try {
    await renameDurably(temp, target);
  } catch (error) {
    await removeFile(temp).catch(() => {});
    throw error;
  }
  await fsyncDir(dir);
}

/**
 * The same guarantees as writeFileDurable, synchronously: on a command's hot
 * path (its result, before it is sent) eight thread-pool round trips cost more
 * than the sub-millisecond fsyncs themselves.
 */
export function writeFileDurableSync(target: string, data: string, mode = PRIVATE_FILE_MODE): void {
  const dir = path.dirname(target);
  const temp = path.join(dir, `${TEMP_PREFIX}${path.basename(target)}-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fd = fs.openSync(temp, "w", mode);
  try {
    fs.writeFileSync(fd, data, "utf8");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    renameDurablySync(temp, target);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    try {
      removeFileSync(temp);
    } catch {
      // the original error is the one worth reporting; startup clears leftover temp files
    }
    throw error;
  }
  if (host.platform !== "win32") {
    const dirFd = fs.openSync(dir, fsConstants.O_RDONLY);
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }
}

export async function removeDurable(target: string): Promise<void> {
  await removeFile(target);
  await fsyncDir(path.dirname(target));
}

/**
 * An append-only file of JSON lines, each fsynced before `append` resolves.
 * A torn last line (crash mid-write) is cut off on open so later lines stay parseable.
 */
export class DurableLineLog<T> {
  private constructor(
    readonly file: string,
    private handle: fsp.FileHandle,
    private lineCount: number,
  ) {}

  private queue: Promise<unknown> = Promise.resolve();

  static async open<T>(file: string, parse: (value: unknown) => T | undefined): Promise<{ log: DurableLineLog<T>; entries: T[] }> {
    let text = "";
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const complete = text.lastIndexOf("\n") + 1;
    const entries: T[] = [];
    for (const line of text.slice(0, complete).split("\n")) {
      if (!line) continue;
      try {
        const entry = parse(JSON.parse(line));
        if (entry !== undefined) entries.push(entry);
      } catch {
        // A corrupt line is skipped rather than making the whole state dir unusable.
      }
    }
    const created = !fs.existsSync(file);
    const handle = await fsp.open(file, "a+", PRIVATE_FILE_MODE);
    if (complete !== text.length) {
      await handle.truncate(Buffer.byteLength(text.slice(0, complete), "utf8"));
      await handle.sync();
    }
    if (created) await fsyncDir(path.dirname(file));
    return { log: new DurableLineLog<T>(file, handle, entries.length), entries };
  }

  get size(): number {
    return this.lineCount;
  }

  append(entry: T): Promise<void> {
    const line = `${JSON.stringify(entry)}\n`;
    // Serialised so lines never interleave and each caller waits for its own fsync.
    // Synchronous write + fdatasync: a journal line sits between a dispatch and the spawn.
    const next = this.queue.then(() => {
      fs.writeSync(this.handle.fd, line, null, "utf8");
      fs.fdatasyncSync(this.handle.fd);
      this.lineCount += 1;
    });
    this.queue = next.catch(() => {});
    return next;
  }

  /** Replaces the whole log (e.g. to keep only recent entries) without a window where it is empty. */
  rewrite(entries: T[]): Promise<void> {
    const next = this.queue.then(async () => {
      await this.handle.close();
      await writeFileDurable(this.file, entries.map((e) => `${JSON.stringify(e)}\n`).join(""));
      this.handle = await fsp.open(this.file, "a+", PRIVATE_FILE_MODE);
      this.lineCount = entries.length;
    });
    this.queue = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.handle.close().catch(() => {});
  }
}
