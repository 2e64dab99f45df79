// Results waiting for the server's ack. A result is on disk before it is
// sent and leaves only when acked, so neither a dropped connection nor a
// runtime restart can lose it; resending is safe because the server treats a
// repeated result as a no-op and acks it again.
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { commandResultSchema, type CommandResult } from "../../protocol/messages";
import { ensurePrivateDir, removeDurable, TEMP_PREFIX, writeFileDurableSync } from "./fs-durable";
import type { Logger } from "./log";

/** Command ids are arbitrary strings; file names must not be able to escape the outbox or collide. */
export function outboxFileName(commandId: string): string {
  const safe = commandId.replace(/[^A-Za-z0-9_-]/g, (ch) =>
    Array.from(Buffer.from(ch, "utf8"), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`).join(""),
  );
  if (safe.length <= 200) return `${safe}.json`;
  return `sha256-${createHash("sha256").update(commandId).digest("hex")}.json`;
}

export class Outbox {
  private constructor(
    readonly dir: string,
    private readonly results: Map<string, CommandResult>,
  ) {}

  static async open(dir: string, log: Logger): Promise<Outbox> {
    await ensurePrivateDir(dir);
    const results = new Map<string, CommandResult>();
    for (const name of await fsp.readdir(dir)) {
      const file = path.join(dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        // A write interrupted before its rename; the result was never sent from it.
        await removeDurable(file);
        continue;
      }
      if (!name.endsWith(".json")) continue;
      try {
        const parsed = commandResultSchema.safeParse(JSON.parse(await fsp.readFile(file, "utf8")));
        if (parsed.success) results.set(parsed.data.commandId, parsed.data);
        else log.warn(`ignoring unreadable outbox entry ${name}`);
      } catch {
        log.warn(`ignoring unreadable outbox entry ${name}`);
      }
    }
    return new Outbox(dir, results);
  }

  /** Size without holding the directory open for a runtime (used by `status`). */
  static async count(dir: string): Promise<number> {
    try {
      return (await fsp.readdir(dir)).filter((n) => n.endsWith(".json") && !n.startsWith(TEMP_PREFIX)).length;
    } catch {
      return 0;
    }
  }

  get size(): number {
    return this.results.size;
  }

  get(commandId: string): CommandResult | undefined {
    return this.results.get(commandId);
  }

  /** Oldest first, so the server sees results in the order the commands finished. */
  all(): CommandResult[] {
    return [...this.results.values()].sort((a, b) => a.finishedAt - b.finishedAt);
  }

  async put(result: CommandResult): Promise<void> {
    writeFileDurableSync(this.fileFor(result.commandId), JSON.stringify(result));
    this.results.set(result.commandId, result);
  }

  async remove(commandId: string): Promise<boolean> {
    if (!this.results.has(commandId)) return false;
    await removeDurable(this.fileFor(commandId));
    this.results.delete(commandId);
    return true;
  }

  private fileFor(commandId: string): string {
    return path.join(this.dir, outboxFileName(commandId));
  }
}
