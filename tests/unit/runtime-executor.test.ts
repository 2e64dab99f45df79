// The executor against real processes (POSIX shell): statuses, streaming,
// the tail that carries the last output with the exit status, caps and kills.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { afterAll, describe, expect, it } from "vitest";
import type { DispatchedCommand, RuntimeMessage } from "../../protocol/messages";
import { commandResultSchema, MAX_CHUNK_BYTES } from "../../protocol/messages";
import { execute } from "../../runtime/src/executor";
import { CHUNK_BYTES, splitUtf8, truncateUtf8 } from "../../runtime/src/output-buffer";
import { outboxFileName } from "../../runtime/src/outbox";
import { backoffDelay, websocketRetryDelay } from "../../runtime/src/backoff";
import { waitFor } from "./runtime-harness";

const posix = process.platform !== "win32";
const scratch = mkdtempSync(join(tmpdir(), "caisey-exec-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Alive and not a zombie (an orphan may wait a while for init to reap it). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return true; // no /proc (macOS): kill(0) is all we have
  }
}

let nextId = 0;
function command(text: string, extra: Partial<DispatchedCommand> = {}): DispatchedCommand {
  nextId += 1;
  return { commandId: `cmd-${nextId}`, text, shell: "default", timeoutMs: 10_000, maxOutputBytes: 256 * 1024, ...extra };
}

/**
 * A sink standing in for the socket; `connected` false simulates a dropped
 * connection, and a new `connection` number a reconnect.
 */
function recordingSink(connected = true) {
  const messages: RuntimeMessage[] = [];
  return {
    messages,
    connected,
    connection: 1,
    send(message: RuntimeMessage) {
      if (!this.connected) return false;
      messages.push(message);
      return true;
    },
    link() {
      return this.connected ? this.connection : 0;
    },
    outputs() {
      return messages.filter((m): m is Extract<RuntimeMessage, { type: "output" }> => m.type === "output");
    },
  };
}

/** `sleep 30`, once the executor has said it started (so a cancel or stop meets a running process). */
async function runningSleep(options: Parameters<typeof execute>[2]) {
  const sink = recordingSink();
  const execution = execute(command("sleep 30"), sink, options);
  await expect.poll(() => sink.messages.some((m) => m.type === "started")).toBe(true);
  return execution;
}

function allText(sink: ReturnType<typeof recordingSink>, tail: { data: string }[]): string {
  return sink.outputs().map((m) => m.chunk.data).join("") + tail.map((c) => c.data).join("");
}

describe.runIf(posix)("executor", () => {
  it("runs `echo hello`: succeeded, exit 0, output delivered, all in the result alone", async () => {
    const sink = recordingSink();
    const result = await execute(command("echo hello"), sink).result;
    expect(commandResultSchema.safeParse(result).success).toBe(true);
    expect(result.status).toBe("succeeded");
    expect(result.exitCode).toBe(0);
    expect(result.error).toBeNull();
    expect(allText(sink, result.tail)).toContain("hello");
    // Done within one flush interval: no separate "started" or "output" message.
    expect(sink.messages).toEqual([]);
    expect(result.tail).toEqual([{ stream: "stdout", data: "hello\n" }]);
    expect(result.tailStartIndex).toBe(0);
    expect(result.finishedAt).toBeGreaterThanOrEqual(result.startedAt);
    expect(result.durationMs).toBeGreaterThan(0);
  }, 10_000);

  it("streams early output and puts the last output in the tail, with the status", async () => {
    const sink = recordingSink();
    const go = join(scratch, "go-early");
    // A long flush interval: "last" and the exit come well within it, however loaded this machine is.
    const execution = execute(command(`printf 'first\\n'; while [ ! -e ${go} ]; do sleep 0.02; done; printf 'last\\n'`), sink, { flushIntervalMs: 1_000 });
    await waitFor("first streamed", () => sink.outputs().length === 1);
    writeFileSync(go, "");
    const result = await execution.result;
    expect(result.status).toBe("succeeded");
    expect(sink.messages[0]).toMatchObject({ type: "started", commandId: result.commandId, startedAt: result.startedAt });
    expect(sink.outputs().map((m) => m.chunk.data).join("")).toBe("first\n");
    expect(result.tail).toEqual([{ stream: "stdout", data: "last\n" }]);
  }, 10_000);

  it("numbers output chunks 0,1,2… and keeps stderr apart from stdout", async () => {
    const sink = recordingSink();
    const result = await execute(command("echo out; sleep 0.1; echo err >&2; sleep 0.1; echo out2; sleep 0.1; echo end"), sink).result;
    const outputs = sink.outputs();
    expect(outputs.length).toBeGreaterThan(0);
    expect(outputs.map((m) => m.index)).toEqual(outputs.map((_, i) => i));
    expect(result.tailStartIndex).toBe(outputs.length); // the tail continues the numbering, so a lost chunk shows as a gap
    // How the lines were grouped into chunks depends on timing; their streams and order do not.
    const chunks = [...outputs.map((m) => m.chunk), ...result.tail];
    expect(chunks.filter((c) => c.stream === "stdout").map((c) => c.data).join("")).toBe("out\nout2\nend\n");
    expect(chunks.filter((c) => c.stream === "stderr").map((c) => c.data).join("")).toBe("err\n");
    expect(chunks.map((c) => c.data).join("")).toBe("out\nerr\nout2\nend\n");
  }, 10_000);

  it("carries output streamed on a connection that dropped before the end again in the tail, from its index", async () => {
    const sink = recordingSink();
    const go = join(scratch, "go-dropped");
    const execution = execute(command(`printf 'first\\n'; while [ ! -e ${go} ]; do sleep 0.02; done; printf 'last\\n'`), sink);
    await waitFor("first streamed", () => sink.outputs().length === 1);
    sink.connected = false; // "first" went out, but its connection is gone: it may never have arrived
    writeFileSync(go, "");
    const result = await execution.result;
    expect(result.tailStartIndex).toBe(0);
    expect(result.tail).toEqual([
      { stream: "stdout", data: "first\n" },
      { stream: "stdout", data: "last\n" },
    ]);
    expect(commandResultSchema.safeParse(result).success).toBe(true);
  }, 10_000);

  it("after a reconnect, repeats from the oldest chunk of the closed connection so the tail stays contiguous", async () => {
    const sink = recordingSink();
    const [reconnected, go] = [join(scratch, "reconnected"), join(scratch, "go-reconnected")];
    const execution = execute(
      command(`printf 'first\\n'; while [ ! -e ${reconnected} ]; do sleep 0.02; done; printf 'second\\n'; while [ ! -e ${go} ]; do sleep 0.02; done; printf 'last\\n'`),
      sink,
    );
    await waitFor("first streamed", () => sink.outputs().length === 1);
    sink.connection = 2;
    writeFileSync(reconnected, "");
    await waitFor("second streamed", () => sink.outputs().length === 2);
    writeFileSync(go, "");
    const result = await execution.result;
    expect(sink.outputs().map((m) => [m.index, m.chunk.data])).toEqual([[0, "first\n"], [1, "second\n"]]);
    expect(result.tailStartIndex).toBe(0);
    expect(result.tail.map((c) => c.data)).toEqual(["first\n", "second\n", "last\n"]);
  }, 10_000);

  it("re-sends at most what a tail may carry after a drop: the newest streamed chunks, contiguous with the rest", async () => {
    const sink = recordingSink();
    const go = join(scratch, "go-big");
    // 320 KiB streamed while connected (more than a tail's 256 KiB), then the drop, then a last line.
    const execution = execute(command(`head -c 327680 /dev/zero | tr '\\0' x; while [ ! -e ${go} ]; do sleep 0.02; done; printf 'last\\n'`, { maxOutputBytes: 1024 * 1024 }), sink);
    await waitFor("all 320 KiB streamed", () => sink.outputs().reduce((n, m) => n + m.chunk.data.length, 0) === 327_680);
    sink.connected = false;
    writeFileSync(go, "");
    const result = await execution.result;
    expect(commandResultSchema.safeParse(result).success).toBe(true);
    const streamed = sink.outputs();
    const resent = result.tail.slice(0, -1);
    expect(result.tail.at(-1)).toEqual({ stream: "stdout", data: "last\n" });
    expect(result.tailStartIndex).toBeGreaterThan(0); // the oldest chunks no longer fit: a gap the session will name
    expect(result.tailStartIndex! + resent.length).toBe(streamed.length);
    expect(resent).toEqual(streamed.slice(result.tailStartIndex).map((m) => m.chunk));
    const resentBytes = resent.reduce((n, c) => n + Buffer.byteLength(c.data), 0);
    expect(resentBytes).toBeLessThanOrEqual(256 * 1024 - 5);
    expect(resentBytes).toBeGreaterThan(256 * 1024 - 5 - CHUNK_BYTES); // as much as fits, not less
  }, 15_000);

  it("re-sends at most a tail's 64 chunks after a drop, however small they are", async () => {
    const sink = recordingSink();
    const go = join(scratch, "go-many");
    const execution = execute(command(`for i in $(seq 1 90); do echo line-$i; sleep 0.03; done; while [ ! -e ${go} ]; do sleep 0.02; done`), sink, { flushIntervalMs: 1 });
    await waitFor("90 lines streamed", () => sink.outputs().map((m) => m.chunk.data).join("").includes("line-90\n"));
    expect(sink.outputs().length).toBeGreaterThan(64);
    sink.connected = false;
    writeFileSync(go, "");
    const result = await execution.result;
    expect(result.tail).toHaveLength(64);
    expect(result.tailStartIndex).toBe(sink.outputs().length - 64);
    expect(result.tail.map((c) => c.data).join("")).toContain("line-90\n");
  }, 15_000);

  it("reports a non-zero exit as failed with its exit code", async () => {
    const sink = recordingSink();
    const result = await execute(command("echo oops >&2; exit 3"), sink).result;
    expect(result.status).toBe("failed");
    expect(result.exitCode).toBe(3);
    expect(allText(sink, result.tail)).toContain("oops");
  }, 10_000);

  it("kills the whole process group on timeout and reports timed_out", async () => {
    const pidFile = join(scratch, "bg.pid");
    const sink = recordingSink();
    const result = await execute(command(`sleep 30 & echo $! > ${pidFile}; sleep 30`, { timeoutMs: 400 }), sink).result;
    expect(result.status).toBe("timed_out");
    expect(result.error).toMatch(/Timed out/);
    expect(result.durationMs).toBeLessThan(30_000); // ended by the timeout, not by the sleep
    // The background child must be gone too, not just the shell.
    const backgroundPid = Number(readFileSync(pidFile, "utf8"));
    await expect.poll(() => isRunning(backgroundPid), { timeout: 5_000 }).toBe(false);
  }, 10_000);

  it("stops forwarding past maxOutputBytes but lets the command finish, marking truncated", async () => {
    const sink = recordingSink();
    const result = await execute(command("head -c 200000 /dev/zero | tr '\\0' a; echo done >&2", { maxOutputBytes: 1000 }), sink).result;
    expect(result.status).toBe("succeeded");
    expect(result.truncated).toBe(true);
    expect(allText(sink, result.tail)).toBe("a".repeat(1000));
  }, 10_000);

  it("sends large output in chunks of at most 16 KiB, all of it, in order", async () => {
    const sink = recordingSink();
    const result = await execute(command("head -c 100000 /dev/zero | tr '\\0' b"), sink).result;
    const chunks = [...sink.outputs().map((m) => m.chunk), ...result.tail];
    for (const chunk of chunks) expect(Buffer.byteLength(chunk.data)).toBeLessThanOrEqual(CHUNK_BYTES);
    expect(chunks.map((c) => c.data).join("")).toBe("b".repeat(100000));
    expect(result.truncated).toBe(false);
  }, 10_000);

  it("cancel kills the command and reports cancelled", async () => {
    const sink = recordingSink();
    const execution = execute(command("sleep 30"), sink);
    await expect.poll(() => sink.messages.some((m) => m.type === "started")).toBe(true);
    execution.cancel();
    const result = await execution.result;
    expect(result.status).toBe("cancelled");
    expect(result.durationMs).toBeLessThan(30_000); // killed, not waited for
  }, 10_000);

  it("reports a shell that cannot be started as failed with the error", async () => {
    const sink = recordingSink();
    const original = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      const result = await execute(command("echo hi", { shell: "bash" }), sink).result;
      expect(result.status).toBe("failed");
      expect(result.exitCode).toBeNull();
      expect(result.error).toMatch(/Could not start|ENOENT/);
    } finally {
      process.env.PATH = original;
    }
  }, 10_000);

  it("keeps output produced while disconnected and delivers it in the tail", async () => {
    const sink = recordingSink(false);
    const result = await execute(command("echo one; sleep 0.1; echo two; sleep 0.1; echo three"), sink).result;
    expect(sink.messages).toEqual([]);
    expect(result.tail.map((c) => c.data).join("")).toBe("one\ntwo\nthree\n");
    expect(result.status).toBe("succeeded");
  }, 10_000);

  it("gives the command no input: one that reads stdin ends at once instead of waiting for its timeout", async () => {
    const sink = recordingSink();
    const result = await execute(command("cat; echo read-all", { timeoutMs: 60_000 }), sink).result;
    expect(result.status).toBe("succeeded");
    expect(allText(sink, result.tail)).toBe("read-all\n");
  }, 10_000);

  it("stops waiting once a background process that holds the output open goes quiet, without its later output", async () => {
    const sink = recordingSink();
    const pidFile = join(scratch, "quiet.pid");
    try {
      // The background job inherits stdout and speaks again only after 1.5 s: the quiet rule (200 ms) ends the
      // command first; the 2 s ceiling alone would have waited for "late".
      const result = await execute(command(`echo $$ > ${pidFile}; (sleep 1.5; echo late; sleep 30) & echo done`), sink).result;
      expect(result.status).toBe("succeeded");
      expect(allText(sink, result.tail)).toBe("done\n");
    } finally {
      process.kill(-Number(readFileSync(pidFile, "utf8")), "SIGKILL"); // the command's process group
    }
  }, 10_000);

  it("ends at the 2 s ceiling when a background process keeps writing after the command exited", async () => {
    const sink = recordingSink();
    const pidFile = join(scratch, "chatty.pid");
    try {
      // Never quiet for long: without the ceiling this would wait for the test's timeout.
      const result = await execute(command(`echo $$ > ${pidFile}; (while :; do echo chatter; sleep 0.05; done) & echo done`), sink).result;
      expect(result.status).toBe("succeeded");
      const lines = allText(sink, result.tail).split("\n").filter(Boolean);
      expect(lines).toContain("done");
      expect(lines.every((line) => line === "done" || line === "chatter")).toBe(true);
    } finally {
      process.kill(-Number(readFileSync(pidFile, "utf8")), "SIGKILL"); // the command's process group
    }
  }, 10_000);

  it("ends output cut inside a UTF-8 character with a replacement character, not silently", async () => {
    const sink = recordingSink();
    const result = await execute(command("printf 'ab\\342\\202'"), sink).result;
    expect(allText(sink, result.tail)).toBe("ab\uFFFD");
  }, 10_000);

  it("streams a burst at once, without waiting for the flush interval, from exactly four chunks' worth", async () => {
    const sink = recordingSink();
    const go = join(scratch, "go-burst");
    const execution = execute(command(`head -c ${4 * CHUNK_BYTES} /dev/zero | tr '\\0' x; while [ ! -e ${go} ]; do sleep 0.02; done`), sink, { flushIntervalMs: 60_000 });
    await waitFor("the burst streamed", () => sink.outputs().reduce((n, m) => n + m.chunk.data.length, 0) === 4 * CHUNK_BYTES);
    writeFileSync(go, "");
    const result = await execution.result;
    expect(result.tail).toEqual([]);
    expect(sink.messages.filter((m) => m.type === "started")).toHaveLength(1);
  }, 10_000);

  it("says started once, however many times it streams", async () => {
    const sink = recordingSink();
    const result = await execute(command("for i in 1 2 3 4 5; do echo $i; sleep 0.05; done"), sink, { flushIntervalMs: 1 }).result;
    expect(result.status).toBe("succeeded");
    expect(sink.outputs().length).toBeGreaterThan(1);
    expect(sink.messages.filter((m) => m.type === "started")).toHaveLength(1);
    expect(sink.messages[0].type).toBe("started");
  }, 10_000);

  it("measures its duration on the runtime's monotonic clock, within the time the test saw", async () => {
    const before = performance.now();
    const result = await execute(command("sleep 0.2"), recordingSink()).result;
    const seen = performance.now() - before;
    expect(result.durationMs).toBeGreaterThanOrEqual(150);
    expect(result.durationMs).toBeLessThanOrEqual(seen + 1);
  }, 10_000);

  it("keeps the first reason it was stopped for: a cancel is not turned into an interruption by a later stop", async () => {
    const execution = await runningSleep({ killGraceMs: 100 });
    execution.cancel();
    execution.stop("the runtime is stopping");
    const result = await execution.result;
    expect(result.status).toBe("cancelled");
    expect(result.error).toBeNull();
  }, 10_000);

  it("reports a cancel as soon as the command ended, not after the SIGKILL grace (only a runtime stop waits for that)", async () => {
    const execution = await runningSleep({ killGraceMs: 60_000 });
    execution.cancel();
    expect((await execution.result).status).toBe("cancelled"); // within the test's 10 s, far inside the 60 s grace
  }, 10_000);

  it("caps the stop reason it reports at 2,000 characters", async () => {
    const execution = await runningSleep({ killGraceMs: 50 });
    execution.stop("r".repeat(3_000));
    const result = await execution.result;
    expect(result.status).toBe("interrupted");
    expect(result.error).toBe("r".repeat(2_000));
  }, 10_000);

  it("names the signal that ended a command that did not exit by itself", async () => {
    const result = await execute(command("kill -TERM $$"), recordingSink()).result;
    expect(result).toMatchObject({ status: "failed", exitCode: null, error: "Terminated by signal SIGTERM" });
  }, 10_000);

  it("reports a command the OS refuses to start (a NUL byte in it) as failed, with the reason", async () => {
    const result = await execute(command("echo a\0b"), recordingSink()).result;
    expect(result.status).toBe("failed");
    expect(result.exitCode).toBeNull();
    expect(result.error).toMatch(/^Could not start the command: .*null bytes/);
  }, 10_000);

  // 120 lines alternating between the streams, paced so that each is read on its own: 120 chunks (well over 64
  // even if a slow moment merges a few).
  const alternating = "for i in $(seq 1 60); do echo out-$i; echo err-$i >&2; sleep 0.02; done";

  it("at the end, streams whatever does not fit a tail's 64 chunks ahead of the result, oldest first", async () => {
    const sink = recordingSink();
    const result = await execute(command(alternating), sink, { flushIntervalMs: 60_000 }).result; // nothing flushes before the end
    const streamed = sink.outputs();
    expect(streamed.length).toBeGreaterThan(0);
    expect(result.tail).toHaveLength(64);
    expect(result.truncated).toBe(false);
    expect(result.tailStartIndex).toBe(streamed.length);
    // Each stream complete and in order (which of a line pair was read first is up to the OS).
    const chunks = [...streamed.map((m) => m.chunk), ...result.tail];
    for (const stream of ["stdout", "stderr"] as const) {
      const lines = chunks.filter((c) => c.stream === stream).map((c) => c.data).join("").split("\n").filter(Boolean);
      expect(lines).toEqual(Array.from({ length: 60 }, (_, i) => `${stream === "stdout" ? "out" : "err"}-${i + 1}`));
    }
  }, 15_000);

  it("when more than 64 chunks are held and no connection is open at the end, keeps the newest 64 and says output was lost", async () => {
    const sink = recordingSink(false);
    const result = await execute(command(alternating), sink, { flushIntervalMs: 1 }).result;
    expect(sink.messages).toEqual([]);
    expect(result.tail).toHaveLength(64);
    expect(result.truncated).toBe(true);
    expect(result.tail.map((c) => c.data).join("")).toContain("err-60\n");
  }, 15_000);

  it("runs explicitly requested sh and bash", async () => {
    for (const shell of ["sh", "bash"] as const) {
      const sink = recordingSink();
      const result = await execute(command('echo "$0"', { shell }), sink).result;
      expect(result.status).toBe("succeeded");
      expect(allText(sink, result.tail)).toContain(shell);
    }
  }, 10_000);
});

describe("output helpers", () => {
  it("splits and truncates UTF-8 without breaking characters", () => {
    const text = "é".repeat(10); // 2 bytes each
    expect(splitUtf8(text, 5)).toEqual(["éé", "éé", "éé", "éé", "éé"]);
    expect(truncateUtf8(text, 5)).toBe("éé");
    expect(CHUNK_BYTES).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
  });

  it("maps any command id to a safe, distinct outbox file name", () => {
    expect(outboxFileName("cmd-1")).toBe("cmd-1.json");
    expect(outboxFileName("../x")).toBe("%2E%2E%2Fx.json");
    expect(outboxFileName("a/b")).not.toBe(outboxFileName("a_b"));
    expect(outboxFileName("é".repeat(128))).toMatch(/^sha256-[0-9a-f]{64}\.json$/);
  });

  it("backs off from 0.5 s to a 30 s cap with jitter", () => {
    expect(backoffDelay(0, () => 1)).toBe(500);
    expect(backoffDelay(0, () => 0)).toBe(250);
    expect(backoffDelay(3, () => 1)).toBe(4000);
    expect(backoffDelay(50, () => 1)).toBe(30_000);
    expect(backoffDelay(50, () => 0)).toBe(15_000);
    expect(backoffDelay(2, () => 0.5)).toBe(1500); // half fixed, half random: 1 s + 0.5 × 1 s
  });

  it("retries the WebSocket from check-in 5-10 s first, at most 15 s apart early on, then 30 s and 60 s ceilings", () => {
    const range = (attempt: number) => [websocketRetryDelay(attempt, () => 0), websocketRetryDelay(attempt, () => 1)];
    expect(range(0)).toEqual([5_000, 10_000]);
    for (const attempt of [1, 4, 7]) expect(range(attempt)).toEqual([7_500, 15_000]);
    expect(range(8)).toEqual([15_000, 30_000]);
    expect(range(9)).toEqual([30_000, 60_000]);
    expect(range(40)).toEqual([30_000, 60_000]);
    expect(websocketRetryDelay(0, () => 0.5)).toBe(7_500);
  });
});
