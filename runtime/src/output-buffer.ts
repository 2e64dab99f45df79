import { MAX_TAIL_BYTES, MAX_TAIL_CHUNKS as PROTOCOL_MAX_TAIL_CHUNKS, type OutputChunk, type OutputStream } from "../../protocol/messages";

/** Largest chunk we send; well under the protocol's limit so messages stay small. */
export const CHUNK_BYTES = 16 * 1024;
/** The protocol's cap on chunks carried in a result's tail. */
export const MAX_TAIL_CHUNKS = PROTOCOL_MAX_TAIL_CHUNKS;
/**
 * Output held back while no connection is open travels in the result's tail;
 * beyond this it is dropped (and the result marked truncated) so the result
 * message stays far below a WebSocket frame limit (1 MiB on Cloudflare).
 */
export const MAX_HELD_BYTES = MAX_TAIL_BYTES;

type Pending = { stream: OutputStream; data: string; bytes: number };

/** Longest prefix of `text` that fits in `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return "";
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString("utf8");
}

/** Splits into pieces of at most `maxBytes` UTF-8 bytes, never inside a character (one longer than `maxBytes` is a piece of its own). */
export function splitUtf8(text: string, maxBytes: number): string[] {
  const bytes = Buffer.from(text, "utf8");
  const pieces: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + maxBytes, bytes.length);
    if (end < bytes.length) while (end > start && (bytes[end]! & 0xc0) === 0x80) end -= 1;
    // A limit smaller than one character: that character goes whole (backing off further would never advance).
    if (end === start) for (end = start + 1; end < bytes.length && (bytes[end]! & 0xc0) === 0x80; ) end += 1;
    pieces.push(bytes.subarray(start, end).toString("utf8"));
    start = end;
  }
  return pieces;
}

/**
 * Output accepted from a command but not yet sent, in arrival order across
 * both streams. Enforces the command's output cap at intake, so the process
 * keeps running (its pipes keep draining) while nothing more is forwarded.
 */
export class OutputBuffer {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private acceptedBytes = 0;
  truncated = false;

  constructor(private readonly maxOutputBytes: number) {}

  get isEmpty(): boolean {
    return this.pending.length === 0;
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  get chunkCount(): number {
    return this.pending.length;
  }

  push(stream: OutputStream, text: string): void {
    if (!text || this.truncated) return;
    let bytes = Buffer.byteLength(text, "utf8");
    const room = Math.min(this.maxOutputBytes - this.acceptedBytes, MAX_HELD_BYTES - this.pendingBytes);
    if (bytes > room) {
      text = truncateUtf8(text, room);
      bytes = Buffer.byteLength(text, "utf8");
      this.truncated = true;
    }
    this.acceptedBytes += bytes;
    this.pendingBytes += bytes;
    for (const piece of splitUtf8(text, CHUNK_BYTES)) this.append(stream, piece);
  }

  private append(stream: OutputStream, data: string): void {
    const bytes = Buffer.byteLength(data, "utf8");
    const last = this.pending[this.pending.length - 1];
    // Coalescing small writes is the point of buffering: fewer, fuller messages.
    if (last && last.stream === stream && last.bytes + bytes <= CHUNK_BYTES) {
      last.data += data;
      last.bytes += bytes;
    } else {
      this.pending.push({ stream, data, bytes });
    }
  }

  /** Removes and returns the oldest pending chunk. */
  shift(): OutputChunk | undefined {
    const next = this.pending.shift();
    if (!next) return undefined;
    this.pendingBytes -= next.bytes;
    return { stream: next.stream, data: next.data };
  }

  /** Puts back a chunk that could not be sent, keeping it first in line. */
  unshift(chunk: OutputChunk): void {
    const bytes = Buffer.byteLength(chunk.data, "utf8");
    this.pending.unshift({ ...chunk, bytes });
    this.pendingBytes += bytes;
  }

  takeAll(): OutputChunk[] {
    const chunks = this.pending.map(({ stream, data }) => ({ stream, data }));
    this.pending = [];
    this.pendingBytes = 0;
    return chunks;
  }
}
