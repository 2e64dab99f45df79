// The runtime's exactly-once state in process (claims #1 and #2 of docs/guarantees.md): the journal of claimed
// command ids, the list of acknowledged results and the outbox of unacknowledged ones, each over real files in a
// scratch directory, reopened as a restarted runtime would. The process-level behaviour (spawn only after the
// claim is on disk, resend after a restart) is in runtime-outbox.test.ts; this file is what mutation testing
// can attribute (vitest.mutation.config.ts).
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../protocol/messages";
import { DurableLineLog, TEMP_PREFIX } from "../../runtime/src/fs-durable";
import { AckedList, Journal } from "../../runtime/src/journal";
import type { Logger } from "../../runtime/src/log";
import { Outbox, outboxFileName } from "../../runtime/src/outbox";
import { scratch } from "./runtime-harness";

let dirs = 0;
const freshDir = () => {
  const dir = join(scratch, `journal-${process.pid}-${++dirs}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const recordingLog = () => {
  const warnings: string[] = [];
  const log: Logger = { info: () => {}, warn: (message: string) => void warnings.push(message), error: () => {} };
  return { log, warnings };
};
const result = (commandId: string, finishedAt: number): CommandResult => ({
  commandId,
  status: "succeeded",
  exitCode: 0,
  startedAt: finishedAt - 5,
  finishedAt,
  durationMs: 5,
  tail: [{ stream: "stdout", data: `out ${commandId}\n` }],
  truncated: false,
  error: null,
});

describe("journal: a claimed command id survives a restart", () => {
  it("claims an id at once and keeps it, with its time, when reopened", async () => {
    const file = join(freshDir(), "journal.jsonl");
    const journal = await Journal.open(file);
    expect(journal.has("c1")).toBe(false);
    expect(journal.size).toBe(0);
    const before = Date.now();
    const written = journal.record("c1");
    expect(journal.has("c1")).toBe(true); // before the fsync resolves: a duplicate dispatch is already refused
    await written;
    await journal.record("c2");
    expect(journal.size).toBe(2);
    await journal.close();

    const reopened = await Journal.open(file);
    expect(reopened.has("c1")).toBe(true);
    expect(reopened.has("c2")).toBe(true);
    expect(reopened.has("c3")).toBe(false);
    expect(reopened.size).toBe(2);
    expect(reopened.startedAt("c1")).toBeGreaterThanOrEqual(before);
    expect(reopened.startedAt("c1")).toBeLessThanOrEqual(Date.now());
    expect(reopened.startedAt("c3")).toBeUndefined();
    await reopened.close();
  });

  it("keeps spawn records (pid, identity, time) apart from claims, and prefers the spawn time", async () => {
    const file = join(freshDir(), "journal.jsonl");
    const journal = await Journal.open(file);
    await journal.record("c1");
    await journal.record("c2");
    await journal.recordSpawn("c1", { pid: 4242, identity: "boot-1:77", at: 1_000 });
    await journal.recordSpawn("c2", { pid: 4343, identity: undefined, at: 2_000 });
    await journal.close();
    expect(readFileSync(`${file}.spawns`, "utf8").trim().split("\n").map((line) => JSON.parse(line))).toEqual([
      { id: "c1", at: 1_000, pid: 4242, identity: "boot-1:77" },
      { id: "c2", at: 2_000, pid: 4343 },
    ]);

    const reopened = await Journal.open(file);
    expect(reopened.spawned()).toEqual([
      ["c1", { pid: 4242, identity: "boot-1:77", at: 1_000 }],
      ["c2", { pid: 4343, identity: undefined, at: 2_000 }],
    ]);
    expect(reopened.startedAt("c1")).toBe(1_000);
    expect(reopened.size).toBe(2); // spawn records are not claims
    await reopened.close();
  });

  it("refuses to start when the spawn records cannot be read (anything but a missing file)", async () => {
    const file = join(freshDir(), "journal.jsonl");
    mkdirSync(`${file}.spawns`);
    await expect(Journal.open(file)).rejects.toThrow(/EISDIR/);
  });

  it.skipIf(process.platform === "win32")("keeps the journal and its spawn records private to the runtime's user", async () => {
    const file = join(freshDir(), "journal.jsonl");
    const journal = await Journal.open(file);
    await journal.record("c1");
    await journal.recordSpawn("c1", { pid: 4242, identity: undefined, at: 1_000 });
    await journal.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(`${file}.spawns`).mode & 0o777).toBe(0o600);
  });

  it("skips torn, corrupt and malformed lines instead of refusing to start", async () => {
    const file = join(freshDir(), "journal.jsonl");
    writeFileSync(
      file,
      [
        JSON.stringify({ id: "good", at: 5 }),
        "{not json",
        JSON.stringify({ id: 7, at: 5 }),
        JSON.stringify({ id: "no-time" }),
        JSON.stringify({ id: "bad-pid", at: 5, pid: -1 }),
        JSON.stringify({ id: "pid-zero", at: 5, pid: 0 }),
        JSON.stringify({ id: "bad-identity", at: 5, pid: 9, identity: 3 }),
        JSON.stringify("a string"),
        "null",
      ].join("\n") + '\n{"id":"torn","at"',
    );
    writeFileSync(`${file}.spawns`, `${JSON.stringify({ id: "good", at: 9, pid: 12 })}\n${JSON.stringify({ id: "claim-only", at: 9 })}\n{"id":"torn`);
    const journal = await Journal.open(file);
    expect(journal.size).toBe(1);
    expect(journal.has("good")).toBe(true);
    expect(journal.has("pid-zero")).toBe(false);
    expect(journal.has("torn")).toBe(false);
    expect(journal.spawned()).toEqual([["good", { pid: 12, identity: undefined, at: 9 }]]);
    // The torn tail is cut off, so the next claim starts on a line of its own.
    await journal.record("next");
    await journal.close();
    expect(readFileSync(file, "utf8").endsWith(`"at"`)).toBe(false);
    const reopened = await Journal.open(file);
    expect(reopened.has("next")).toBe(true);
    expect(reopened.size).toBe(2);
    await reopened.close();
  });
});

describe("acknowledged results", () => {
  it("remembers acked ids across a restart, once each", async () => {
    const file = join(freshDir(), "acked.jsonl");
    const acked = await AckedList.open(file);
    await acked.add("a");
    await acked.add("a");
    await acked.add("b");
    expect(acked.has("a")).toBe(true);
    expect(acked.has("c")).toBe(false);
    await acked.close();
    expect(readFileSync(file, "utf8")).toBe('"a"\n"b"\n');
    const reopened = await AckedList.open(file);
    expect(reopened.has("a") && reopened.has("b")).toBe(true);
    await reopened.close();
  });

  // Two thousand fsynced appends: slow on a loaded machine, hence the longer timeout.
  it("keeps only the most recent ids once the log passes twice the limit", { timeout: 60_000 }, async () => {
    const file = join(freshDir(), "acked.jsonl");
    const acked = await AckedList.open(file);
    const total = AckedList.KEEP * 2 + 1;
    for (let i = 0; i < total - 1; i += 1) await acked.add(`id-${i}`);
    // Appends only, up to twice the limit (compacting lazily keeps acks a cheap append)…
    expect(readFileSync(file, "utf8").trim().split("\n")).toHaveLength(AckedList.KEEP * 2);
    // …and one more compacts to the most recent.
    await acked.add(`id-${total - 1}`);
    expect(acked.has("id-0")).toBe(false);
    expect(acked.has(`id-${total - AckedList.KEEP - 1}`)).toBe(false);
    expect(acked.has(`id-${total - AckedList.KEEP}`)).toBe(true);
    expect(acked.has(`id-${total - 1}`)).toBe(true);
    await acked.close();
    expect(readFileSync(file, "utf8").trim().split("\n")).toHaveLength(AckedList.KEEP);
  });

  it("trims an over-long log on open to the most recent ids", async () => {
    const file = join(freshDir(), "acked.jsonl");
    const ids = Array.from({ length: AckedList.KEEP + 3 }, (_, i) => `old-${i}`);
    writeFileSync(file, ids.map((id) => `${JSON.stringify(id)}\n`).join("") + `${JSON.stringify({ not: "an id" })}\n`);
    const acked = await AckedList.open(file);
    expect(acked.has("old-2")).toBe(false);
    expect(acked.has("old-3")).toBe(true);
    await acked.close();
    expect(readFileSync(file, "utf8").trim().split("\n")).toHaveLength(AckedList.KEEP);
  });

  it("leaves a log within the limit as it is on open", async () => {
    const file = join(freshDir(), "acked.jsonl");
    const text = Array.from({ length: AckedList.KEEP }, (_, i) => `${JSON.stringify(`id-${i}`)}\n`).join("") + "7\n";
    writeFileSync(file, text);
    const acked = await AckedList.open(file);
    expect(acked.has("id-0")).toBe(true);
    await acked.close();
    expect(readFileSync(file, "utf8")).toBe(text);
  });
});

describe("outbox: a result stays on disk until the server acknowledges it", () => {
  it("keeps results across a restart, oldest first, and drops one only when removed", async () => {
    const dir = join(freshDir(), "outbox");
    const { log, warnings } = recordingLog();
    const outbox = await Outbox.open(dir, log);
    await outbox.put(result("late", 300));
    await outbox.put(result("early", 100));
    await outbox.put(result("middle", 200));
    expect(outbox.size).toBe(3);
    expect(outbox.get("early")).toEqual(result("early", 100));
    expect(outbox.get("none")).toBeUndefined();
    expect(await Outbox.count(dir)).toBe(3);

    const reopened = await Outbox.open(dir, log);
    expect(reopened.all().map((r) => r.commandId)).toEqual(["early", "middle", "late"]);
    expect(await reopened.remove("middle")).toBe(true);
    expect(await reopened.remove("middle")).toBe(false);
    expect(await reopened.remove("never")).toBe(false);
    expect(reopened.size).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(["early.json", "late.json"]);
    expect((await Outbox.open(dir, log)).all().map((r) => r.commandId)).toEqual(["early", "late"]);
    expect(warnings).toEqual([]);
  });

  it("on open removes interrupted writes, ignores other files and warns about unreadable entries", async () => {
    const dir = join(freshDir(), "outbox");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "kept.json"), JSON.stringify(result("kept", 1_000)));
    writeFileSync(join(dir, `${TEMP_PREFIX}half.json`), JSON.stringify(result("half", 2_000)));
    writeFileSync(join(dir, "notes.txt"), "not a result");
    writeFileSync(join(dir, "broken.json"), "{");
    writeFileSync(join(dir, "wrong.json"), JSON.stringify({ commandId: "wrong" }));
    const { log, warnings } = recordingLog();
    expect(await Outbox.count(dir)).toBe(3); // kept, broken, wrong: what a status line can see without parsing
    const outbox = await Outbox.open(dir, log);
    expect(outbox.all().map((r) => r.commandId)).toEqual(["kept"]);
    expect(readdirSync(dir).some((name) => name.startsWith(TEMP_PREFIX))).toBe(false);
    expect(readdirSync(dir)).toContain("notes.txt");
    expect(warnings.sort()).toEqual(["ignoring unreadable outbox entry broken.json", "ignoring unreadable outbox entry wrong.json"]);
    expect(await Outbox.count(join(dir, "missing"))).toBe(0);
  });

  it.skipIf(process.platform === "win32")("creates its directory private to the runtime's user", async () => {
    const dir = join(freshDir(), "outbox");
    await Outbox.open(dir, recordingLog().log);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });
});

describe("outbox file names", () => {
  it("escapes every unsafe byte as %XX and hashes names that would be too long", () => {
    expect(outboxFileName("é/x")).toBe("%C3%A9%2Fx.json");
    expect(outboxFileName("a".repeat(200))).toBe(`${"a".repeat(200)}.json`);
    expect(outboxFileName("a".repeat(201))).toMatch(/^sha256-[0-9a-f]{64}\.json$/);
  });
});

describe("durable line log", () => {
  it("appends whole lines in order and counts them, also after a rewrite", async () => {
    const file = join(freshDir(), "log.jsonl");
    appendFileSync(file, '"x"\n');
    const { log, entries } = await DurableLineLog.open<string>(file, (v) => (typeof v === "string" ? v : undefined));
    expect(entries).toEqual(["x"]);
    expect(log.size).toBe(1);
    await Promise.all([log.append("a"), log.append("b"), log.append("c")]);
    expect(log.size).toBe(4);
    expect(readFileSync(file, "utf8")).toBe('"x"\n"a"\n"b"\n"c"\n');
    await log.rewrite(["c"]);
    expect(log.size).toBe(1);
    await log.append("d");
    await log.close();
    expect(readFileSync(file, "utf8")).toBe('"c"\n"d"\n');
  });
});
