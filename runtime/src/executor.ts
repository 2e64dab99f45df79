// Runs one dispatched command and produces its complete result. Output is
// streamed as it comes, but whatever is still unsent when the process ends
// travels in the result's `tail`, so the last output and the exit status reach
// the server in ONE message: the console never waits on a separate trailing
// output frame (which is where Nagle/delayed-ACK stalls come from).
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { StringDecoder } from "node:string_decoder";
import type { CommandResult, DispatchedCommand, FinalStatus, OutputChunk, OutputStream, RuntimeMessage } from "../../protocol/messages";
import { errorText, silentLogger, type Logger } from "./log";
import { CHUNK_BYTES, MAX_HELD_BYTES, MAX_TAIL_CHUNKS, OutputBuffer } from "./output-buffer";
import { resolveShell } from "./platform";
import type { TextFilter } from "./powershell";
import { killProcessTree } from "./process-tree";

export interface MessageSink {
  /** Returns false when there is no open connection, i.e. the message was not sent. */
  send(message: RuntimeMessage): boolean;
  /** The connection a message sent now goes out on (0 or absent: none, or not told apart). */
  link?(): number;
}

export interface ExecutorOptions {
  /** Output is coalesced for this long before being streamed. */
  flushIntervalMs?: number;
  /** After SIGTERM, how long the process tree gets before SIGKILL. */
  killGraceMs?: number;
  log?: Logger;
  /** The command's process exists (its pid leads its process group on POSIX): for the journal's orphan sweep. */
  onSpawn?: (pid: number) => void;
}

export interface Execution {
  readonly commandId: string;
  readonly result: Promise<CommandResult>;
  /** A technician's cancel: kill the tree, report "cancelled". */
  cancel(): void;
  /**
   * The runtime is shutting down: kill the tree, report "interrupted" with
   * `reason` and the output so far. The result comes only after the tree was
   * SIGKILLed too, so nothing of the command outlives the runtime.
   */
  stop(reason: string): void;
}

const DEFAULT_FLUSH_INTERVAL_MS = 15;
const DEFAULT_KILL_GRACE_MS = 500;
/** Stream at once, not on the timer, when this much is waiting: coalescing has nothing more to gain. */
const FLUSH_NOW_BYTES = 4 * CHUNK_BYTES;
/** Largest tail we put in a result; anything before it is streamed first. */
const MAX_TAIL_BYTES = MAX_HELD_BYTES;
/**
 * A background process (`cmd &`) can keep the output pipes open after the
 * command itself exited; we stop waiting for them once they go quiet.
 */
const PIPE_QUIET_AFTER_EXIT_MS = 200;
const PIPE_MAX_WAIT_AFTER_EXIT_MS = 2000;
const MAX_ERROR_LENGTH = 2000;

type KillReason = { status: "timed_out" | "cancelled" } | { status: "interrupted"; error: string };

export function execute(command: DispatchedCommand, sink: MessageSink, options: ExecutorOptions = {}): Execution {
  return new CommandExecution(command, sink, options);
}

class CommandExecution implements Execution {
  readonly result: Promise<CommandResult>;
  private resolveResult!: (result: CommandResult) => void;
  private readonly buffer: OutputBuffer;
  private readonly flushIntervalMs: number;
  private readonly killGraceMs: number;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private nextIndex = 0;
  /**
   * Streamed chunks, newest last, with the connection each went out on: a chunk
   * sent just before its connection dropped may never have arrived, so the
   * result's tail carries it again (the session keeps one copy per index).
   */
  private readonly streamed: { index: number; chunk: OutputChunk; bytes: number; link: number }[] = [];
  private streamedBytes = 0;
  private startedAt = Date.now();
  private startedMono = performance.now();
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private spawnError: string | undefined;
  private killReason: KillReason | undefined;
  /** Settles once the SIGKILL escalation has run. */
  private escalated: Promise<void> | undefined;
  private readonly onSpawn: ((pid: number) => void) | undefined;
  private finished = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private startedTimer: NodeJS.Timeout | undefined;
  private startedAnnounced = false;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private quietTimer: NodeJS.Timeout | undefined;
  private maxWaitTimer: NodeJS.Timeout | undefined;
  private readonly decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
  /** The shell's own stderr format turned back into text (PowerShell's CLIXML errors). */
  private stderrFilter: TextFilter | undefined;

  constructor(
    private readonly command: DispatchedCommand,
    private readonly sink: MessageSink,
    options: ExecutorOptions,
  ) {
    this.buffer = new OutputBuffer(command.maxOutputBytes);
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.log = options.log ?? silentLogger;
    this.onSpawn = options.onSpawn;
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
    this.start();
  }

  get commandId(): string {
    return this.command.commandId;
  }

  cancel(): void {
    this.kill({ status: "cancelled" });
  }

  stop(reason: string): void {
    this.kill({ status: "interrupted", error: reason });
  }

  private start(): void {
    const { command } = this;
    let child: ChildProcess;
    try {
      const shell = resolveShell(command.shell, command.text);
      this.stderrFilter = shell.stderrFilter?.();
      this.startedAt = Date.now();
      this.startedMono = performance.now();
      child = spawn(shell.file, shell.args, {
        // Own process group on POSIX, so a timeout or cancel can kill everything the command started.
        detached: process.platform !== "win32",
        stdio: ["ignore", "pipe", "pipe"],
        windowsHide: true,
        windowsVerbatimArguments: shell.windowsVerbatimArguments,
      });
    } catch (error) {
      this.spawnError = `Could not start the command: ${errorText(error)}`;
      this.finish();
      return;
    }
    this.child = child;
    // A command that ends within one flush interval reports nothing until its
    // result, which carries startedAt: one message instead of three small ones.
    child.once("spawn", () => {
      if (child.pid !== undefined) this.onSpawn?.(child.pid);
      this.startedTimer = setTimeout(() => this.announceStarted(), this.flushIntervalMs);
    });
    child.on("error", (error) => {
      if (child.pid === undefined) {
        this.spawnError = `Could not start the command: ${errorText(error)}`;
        this.finish();
      } else {
        this.log.warn(`command ${command.commandId}: ${errorText(error)}`);
      }
    });
    for (const stream of ["stdout", "stderr"] as const) {
      const pipe = child[stream]!;
      pipe.on("data", (data: Buffer) => this.onData(stream, this.filtered(stream, this.decoders[stream].write(data))));
      pipe.on("end", () => this.onData(stream, this.filtered(stream, this.decoders[stream].end(), true)));
      pipe.on("error", () => {}); // destroyed on purpose after exit; nothing to report
    }
    child.once("exit", (code, signal) => {
      this.exit = { code, signal };
      clearTimeout(this.timeoutTimer);
      this.quietTimer = setTimeout(() => this.finish(), PIPE_QUIET_AFTER_EXIT_MS);
      this.maxWaitTimer = setTimeout(() => this.finish(), PIPE_MAX_WAIT_AFTER_EXIT_MS);
    });
    child.once("close", (code, signal) => {
      this.exit ??= { code, signal };
      this.finish();
    });
    this.timeoutTimer = setTimeout(() => this.kill({ status: "timed_out" }), command.timeoutMs);
  }

  private filtered(stream: OutputStream, text: string, end = false): string {
    const filter = stream === "stderr" ? this.stderrFilter : undefined;
    if (!filter) return text;
    return end ? filter.write(text) + filter.end() : filter.write(text);
  }

  private onData(stream: OutputStream, text: string): void {
    if (this.finished || !text) return;
    this.buffer.push(stream, text);
    if (this.exit && this.quietTimer) this.quietTimer.refresh();
    if (this.buffer.bytes >= FLUSH_NOW_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), this.flushIntervalMs);
  }

  private announceStarted(): void {
    clearTimeout(this.startedTimer);
    if (this.startedAnnounced || this.finished) return;
    this.startedAnnounced = true;
    this.sink.send({ type: "started", commandId: this.command.commandId, startedAt: this.startedAt });
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.announceStarted();
    for (let chunk = this.buffer.shift(); chunk; chunk = this.buffer.shift()) {
      if (!this.sendOutput(chunk)) {
        // No connection: keep it; it goes out on a later flush or in the tail.
        this.buffer.unshift(chunk);
        return;
      }
    }
  }

  private sendOutput(chunk: OutputChunk): boolean {
    const sent = this.sink.send({ type: "output", commandId: this.command.commandId, index: this.nextIndex, chunk });
    if (!sent) return false;
    const bytes = Buffer.byteLength(chunk.data, "utf8");
    this.streamed.push({ index: this.nextIndex, chunk, bytes, link: this.sink.link?.() ?? 0 });
    this.streamedBytes += bytes;
    while (this.streamed.length > MAX_TAIL_CHUNKS || this.streamedBytes > MAX_TAIL_BYTES) this.streamedBytes -= this.streamed.shift()!.bytes;
    this.nextIndex += 1;
    return true;
  }

  private kill(reason: KillReason): void {
    if (this.finished || this.killReason) return;
    this.killReason = reason;
    clearTimeout(this.timeoutTimer);
    const child = this.child;
    if (!child) return;
    killProcessTree(child, "SIGTERM");
    // Escalate even if the shell already exited: group members that ignore SIGTERM must not linger.
    // On a runtime stop the timer must hold the process open, or the runtime could exit first.
    this.escalated = new Promise((resolve) => {
      const timer = setTimeout(() => {
        killProcessTree(child, "SIGKILL");
        resolve();
      }, this.killGraceMs);
      if (reason.status !== "interrupted") timer.unref();
    });
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const timer of [this.flushTimer, this.startedTimer, this.timeoutTimer, this.quietTimer, this.maxWaitTimer]) clearTimeout(timer);
    const finishedAt = Date.now();
    const durationMs = Math.max(0, Math.round((performance.now() - this.startedMono) * 1000) / 1000);
    if (this.child) {
      for (const stream of ["stdout", "stderr"] as const) {
        const pipe = this.child[stream];
        pipe?.removeAllListeners("data");
        pipe?.destroy();
        this.buffer.push(stream, this.filtered(stream, this.decoders[stream].end(), true));
      }
    }
    const tail = this.takeTail();
    const resent = this.resend(tail.chunks);
    const { status, exitCode, error } = this.outcome();
    const result: CommandResult = {
      commandId: this.command.commandId,
      status,
      exitCode,
      startedAt: this.startedAt,
      finishedAt,
      durationMs,
      tail: [...resent.map((s) => s.chunk), ...tail.chunks],
      tailStartIndex: resent[0]?.index ?? this.nextIndex,
      truncated: this.buffer.truncated || tail.dropped,
      error: error === null ? null : error.slice(0, MAX_ERROR_LENGTH),
    };
    if (status === "interrupted" && this.escalated) void this.escalated.then(() => this.resolveResult(result));
    else this.resolveResult(result);
  }

  /** Everything unsent, as the tail; only what does not fit the tail's limits is streamed ahead of it. */
  private takeTail(): { chunks: OutputChunk[]; dropped: boolean } {
    let dropped = false;
    while (this.buffer.chunkCount > MAX_TAIL_CHUNKS || this.buffer.bytes > MAX_TAIL_BYTES) {
      const chunk = this.buffer.shift()!;
      if (!this.sendOutput(chunk)) dropped = true;
    }
    return { chunks: this.buffer.takeAll(), dropped };
  }

  /**
   * Streamed chunks whose connection has closed since they were sent, from the
   * oldest such one on (the tail must be contiguous), as many of the newest as
   * fit beside the unsent tail; an older gap still shows as lost in transit.
   */
  private resend(unsent: OutputChunk[]): { index: number; chunk: OutputChunk; bytes: number }[] {
    const current = this.sink.link?.() ?? 0;
    const first = this.streamed.findIndex((s) => s.link !== current);
    if (first < 0) return [];
    const resent = this.streamed.slice(first);
    let bytes = resent.reduce((sum, s) => sum + s.bytes, 0) + unsent.reduce((sum, c) => sum + Buffer.byteLength(c.data, "utf8"), 0);
    while (resent.length > 0 && (resent.length + unsent.length > MAX_TAIL_CHUNKS || bytes > MAX_TAIL_BYTES)) bytes -= resent.shift()!.bytes;
    return resent;
  }

  private outcome(): { status: FinalStatus; exitCode: number | null; error: string | null } {
    const exitCode = this.exit?.code ?? null;
    if (this.spawnError !== undefined) return { status: "failed", exitCode: null, error: this.spawnError };
    if (this.killReason?.status === "timed_out") {
      return { status: "timed_out", exitCode, error: `Timed out after ${this.command.timeoutMs} ms; the command and its child processes were killed` };
    }
    if (this.killReason?.status === "cancelled") return { status: "cancelled", exitCode, error: null };
    if (this.killReason?.status === "interrupted") return { status: "interrupted", exitCode, error: this.killReason.error };
    if (exitCode === 0) return { status: "succeeded", exitCode, error: null };
    if (exitCode !== null) return { status: "failed", exitCode, error: null };
    const signal = this.exit?.signal;
    return { status: "failed", exitCode: null, error: signal ? `Terminated by signal ${signal}` : "The command ended without an exit status" };
  }
}
