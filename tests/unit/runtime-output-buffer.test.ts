// The runtime's output buffer in process: what a command printed but the
// runtime has not sent yet, capped at intake, in arrival order, in chunks.
import { describe, expect, it } from "vitest";
import { MAX_TAIL_BYTES } from "../../protocol/messages";
import { CHUNK_BYTES, OutputBuffer, splitUtf8, truncateUtf8 } from "../../runtime/src/output-buffer";

describe("OutputBuffer", () => {
  it("coalesces small writes of one stream into one chunk and keeps the streams apart, in arrival order", () => {
    const buffer = new OutputBuffer(1024 * 1024);
    expect(buffer.isEmpty).toBe(true);
    buffer.push("stdout", "a");
    buffer.push("stdout", "b");
    buffer.push("stderr", "oops");
    buffer.push("stdout", "c");
    buffer.push("stdout", "");
    expect(buffer.isEmpty).toBe(false);
    expect(buffer.chunkCount).toBe(3);
    expect(buffer.bytes).toBe(7);
    expect(buffer.takeAll()).toEqual([
      { stream: "stdout", data: "ab" },
      { stream: "stderr", data: "oops" },
      { stream: "stdout", data: "c" },
    ]);
    expect(buffer.isEmpty).toBe(true);
    expect(buffer.bytes).toBe(0);
    expect(buffer.truncated).toBe(false);

    // A coalesced chunk is counted whole when it leaves.
    buffer.push("stdout", "a");
    buffer.push("stdout", "b");
    expect(buffer.shift()).toEqual({ stream: "stdout", data: "ab" });
    expect(buffer.bytes).toBe(0);
  });

  it("fills a chunk to exactly CHUNK_BYTES before starting the next, and output that exactly meets the cap is not truncated", () => {
    const buffer = new OutputBuffer(CHUNK_BYTES + 1);
    buffer.push("stdout", "x".repeat(CHUNK_BYTES - 1));
    buffer.push("stdout", "y");
    expect(buffer.chunkCount).toBe(1);
    buffer.push("stdout", "z");
    expect(buffer.chunkCount).toBe(2);
    expect(buffer.truncated).toBe(false);
    buffer.push("stdout", "!");
    expect(buffer.truncated).toBe(true);
  });

  it("cuts output into chunks of at most CHUNK_BYTES and starts a new chunk when the last one is full", () => {
    const buffer = new OutputBuffer(1024 * 1024);
    buffer.push("stdout", "x".repeat(CHUNK_BYTES - 1));
    buffer.push("stdout", "yy"); // one byte fits no more: a new chunk, not a 16 KiB + 1 one
    buffer.push("stdout", "z".repeat(CHUNK_BYTES * 2 + 3));
    const chunks = buffer.takeAll().map((c) => c.data.length);
    expect(chunks.every((n) => n <= CHUNK_BYTES)).toBe(true);
    expect(chunks.reduce((a, b) => a + b, 0)).toBe(CHUNK_BYTES - 1 + 2 + CHUNK_BYTES * 2 + 3);
    expect(chunks[0]).toBe(CHUNK_BYTES - 1);
  });

  it("enforces the command's cap at intake, at a character boundary, and takes nothing after it", () => {
    const buffer = new OutputBuffer(5);
    buffer.push("stdout", "abc");
    buffer.push("stdout", "dé€"); // 1 + 2 + 3 bytes: only "dé" would be 6 > 5, so only "d" fits
    expect(buffer.truncated).toBe(true);
    buffer.push("stderr", "more");
    expect(buffer.takeAll()).toEqual([{ stream: "stdout", data: "abcd" }]);
    buffer.push("stdout", "after");
    expect(buffer.isEmpty).toBe(true);
  });

  it("holds at most what a result's tail may carry while nothing is sent, counting what was already sent against the cap", () => {
    const buffer = new OutputBuffer(10 * MAX_TAIL_BYTES);
    buffer.push("stdout", "x".repeat(MAX_TAIL_BYTES - 10));
    buffer.push("stdout", "y".repeat(20));
    expect(buffer.truncated).toBe(true);
    expect(buffer.bytes).toBe(MAX_TAIL_BYTES);

    const capped = new OutputBuffer(30);
    capped.push("stdout", "a".repeat(20));
    capped.shift(); // sent: no longer held, still counted against the command's cap
    capped.push("stdout", "b".repeat(20));
    expect(capped.truncated).toBe(true);
    expect(capped.takeAll()).toEqual([{ stream: "stdout", data: "b".repeat(10) }]);
  });

  it("shift takes the oldest chunk and unshift puts one back first in line, both keeping the byte count", () => {
    const buffer = new OutputBuffer(1024);
    expect(buffer.shift()).toBeUndefined();
    buffer.push("stdout", "one");
    buffer.push("stderr", "two€");
    const first = buffer.shift()!;
    expect(first).toEqual({ stream: "stdout", data: "one" });
    expect(buffer.bytes).toBe(6);
    expect(buffer.chunkCount).toBe(1);
    buffer.unshift(first);
    expect(buffer.bytes).toBe(9);
    expect(buffer.chunkCount).toBe(2);
    expect(buffer.takeAll()).toEqual([
      { stream: "stdout", data: "one" },
      { stream: "stderr", data: "two€" },
    ]);
  });
});

describe("UTF-8 helpers", () => {
  it("truncate and split never cut a character, and keep everything that fits", () => {
    expect(truncateUtf8("abc", 0)).toBe("");
    expect(truncateUtf8("abc", -1)).toBe("");
    expect(truncateUtf8("abc", 3)).toBe("abc");
    expect(truncateUtf8("a€", 3)).toBe("a");
    expect(truncateUtf8("a€", 4)).toBe("a€");
    expect(truncateUtf8("a€b", 4)).toBe("a€");
    expect(truncateUtf8("€", 2)).toBe("");
    expect(splitUtf8("", 4)).toEqual([]);
    expect(splitUtf8("abcdef", 4)).toEqual(["abcd", "ef"]);
    expect(splitUtf8("a€b", 2)).toEqual(["a", "€", "b"]);
    expect(splitUtf8("ab€", 4)).toEqual(["ab", "€"]);
    expect(splitUtf8("€€", 3)).toEqual(["€", "€"]);
  });
});
