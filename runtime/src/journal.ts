// The journal is what makes "never run a command twice" hold across reconnects
// AND restarts: a command id is fsynced here before its process is spawned, so
// after a crash we can tell "started but no result" from "never seen".
import { DurableLineLog } from "./fs-durable";

type JournalEntry = { id: string; at: number };

function parseEntry(value: unknown): JournalEntry | undefined {
  if (value && typeof value === "object" && typeof (value as JournalEntry).id === "string") return value as JournalEntry;
  return undefined;
}

export class Journal {
  private constructor(
    private readonly log: DurableLineLog<JournalEntry>,
    private readonly started: Set<string>,
  ) {}

  static async open(file: string): Promise<Journal> {
    const { log, entries } = await DurableLineLog.open(file, parseEntry);
    return new Journal(log, new Set(entries.map((e) => e.id)));
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
    this.started.add(commandId);
    return this.log.append({ id: commandId, at: Date.now() });
  }

  close(): Promise<void> {
    return this.log.close();
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
