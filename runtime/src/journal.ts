// The journal is what makes "never run a command twice" hold across reconnects
// AND restarts: a command id is fsynced here before its process is spawned, so
// after a crash we can tell "started but no result" from "never seen".
import { appendFileSync, promises as fsp } from "node:fs";
import { DurableLineLog, PRIVATE_FILE_MODE } from "./fs-durable";

/**
 * A claim (`{id, at}`, before the spawn) or, once the process exists, its
 * spawn record: pid (= process group on POSIX) and an identity that tells the
 * process apart from a later one reusing the pid (ADR 0018).
 */
type JournalEntry = { id: string; at: number; pid?: number; identity?: string };

/** A command's process as the journal knows it: enough to find its survivors after a crash. */
export type SpawnRecord = { pid: number; identity: string | undefined; at: number };

function parseEntry(value: unknown): JournalEntry | undefined {
  if (!value || typeof value !== "object") return undefined;
  const entry = value as JournalEntry;
  if (typeof entry.id !== "string" || typeof entry.at !== "number") return undefined;
  if (entry.pid !== undefined && !(Number.isInteger(entry.pid) && entry.pid > 0)) return undefined;
  if (entry.identity !== undefined && typeof entry.identity !== "string") return undefined;
  return entry;
}

export class Journal {
  private constructor(
    private readonly log: DurableLineLog<JournalEntry>,
    private readonly spawnFile: string,
    private readonly started: Map<string, number>,
    private readonly spawns: Map<string, SpawnRecord>,
  ) {}

  static async open(file: string): Promise<Journal> {
    const { log, entries } = await DurableLineLog.open(file, parseEntry);
    const started = new Map<string, number>();
    for (const entry of entries) started.set(entry.id, entry.at);
    const spawnFile = `${file}.spawns`;
    const spawns = new Map<string, SpawnRecord>();
    let text = "";
    try {
      text = await fsp.readFile(spawnFile, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    for (const line of text.split("\n")) {
      try {
        const entry = line ? parseEntry(JSON.parse(line)) : undefined;
        if (entry?.pid !== undefined) spawns.set(entry.id, { pid: entry.pid, identity: entry.identity, at: entry.at });
      } catch {
        // a torn last line: that spawn is simply not known
      }
    }
    return new Journal(log, spawnFile, started, spawns);
  }

  /** When the command was claimed (its spawn time if it got that far): the best "started at" after a crash. */
  startedAt(commandId: string): number | undefined {
    return this.spawns.get(commandId)?.at ?? this.started.get(commandId);
  }

  /** Every spawn recorded, for the orphan sweep at start-up. */
  spawned(): [string, SpawnRecord][] {
    return [...this.spawns.entries()];
  }

  /**
   * Notes the running process, in a side file next to the journal. Written at
   * once (synchronously: a SIGKILL a moment after the spawn must still find it,
   * and an append queued on the thread pool might not have been issued yet) but
   * not fsynced: it only has to survive the runtime's own death (the kernel
   * keeps the write), and a power loss that could drop it kills the orphan too.
   */
  recordSpawn(commandId: string, spawn: SpawnRecord): Promise<void> {
    this.spawns.set(commandId, spawn);
    const line = `${JSON.stringify({ id: commandId, at: spawn.at, pid: spawn.pid, ...(spawn.identity ? { identity: spawn.identity } : {}) })}\n`;
    try {
      appendFileSync(this.spawnFile, line, { mode: PRIVATE_FILE_MODE });
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  has(commandId: string): boolean {
    return this.started.has(commandId);
  }

  get size(): number {
    return this.started.size;
  }

  /**
   * Claims the id synchronously (so a duplicate dispatch arriving during the
   * fsync is already refused) and resolves once the claim is on disk; only
   * then may the command be spawned.
   */
  record(commandId: string): Promise<void> {
    this.started.set(commandId, Date.now());
    return this.log.append({ id: commandId, at: Date.now() });
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}

/**
 * Ids whose results the server has acknowledged. Only recent ones are kept:
 * the server stops redelivering a command once it has its result, so this
 * only needs to cover redeliveries racing with an ack.
 */
export class AckedList {
  static readonly KEEP = 1000;

  private constructor(
    private readonly log: DurableLineLog<string>,
    private ids: string[],
    private readonly set: Set<string>,
  ) {}

  static async open(file: string): Promise<AckedList> {
    const { log, entries } = await DurableLineLog.open(file, (v) => (typeof v === "string" ? v : undefined));
    const recent = entries.slice(-AckedList.KEEP);
    const list = new AckedList(log, recent, new Set(recent));
    if (entries.length > AckedList.KEEP) await log.rewrite(recent);
    return list;
  }

  has(commandId: string): boolean {
    return this.set.has(commandId);
  }

  async add(commandId: string): Promise<void> {
    if (this.set.has(commandId)) return;
    this.set.add(commandId);
    this.ids.push(commandId);
    await this.log.append(commandId);
    // Compact lazily (at 2x) so acks stay a cheap append most of the time.
    if (this.log.size > AckedList.KEEP * 2) {
      for (const dropped of this.ids.splice(0, this.ids.length - AckedList.KEEP)) this.set.delete(dropped);
      await this.log.rewrite(this.ids.slice());
    }
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
