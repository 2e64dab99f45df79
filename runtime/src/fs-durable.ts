// Crash-safe file primitives. The runtime's promises (a command never runs
// twice, a result is never lost) are only as good as these: data must be on
// disk before we act on it, and a reader must never see a half-written file.
import { randomBytes } from "node:crypto";
import { promises as fsp, constants as fsConstants } from "node:fs";
import * as fs from "node:fs";
import * as path from "node:path";

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;
/** Prefix of files still being written; readers skip them, startup removes leftovers. */
export const TEMP_PREFIX = ".tmp-";

const isWindows = process.platform === "win32";

export async function ensurePrivateDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir leaves an existing directory's mode alone; the state dir holds a credential.
  if (!isWindows) await fsp.chmod(dir, PRIVATE_DIR_MODE);
}

/** Makes a rename or a newly created file inside `dir` survive a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  if (isWindows) return; // Windows cannot open directories; NTFS journals renames itself.
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
    await fsp.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fsp.rename(temp, target);
  } catch (error) {
    await fsp.rm(temp, { force: true });
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
    fs.renameSync(temp, target);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(temp, { force: true });
    throw error;
  }
  if (!isWindows) {
    const dirFd = fs.openSync(dir, fsConstants.O_RDONLY);
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }
}

export async function removeDurable(target: string): Promise<void> {
  await fsp.rm(target, { force: true });
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
