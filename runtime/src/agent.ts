// The runtime's message handling: turns dispatches into executions exactly
// once, keeps results in the outbox until acked, resends them after every
// (re)connect.
import * as os from "node:os";
import {
  PROTOCOL_VERSION,
  type CommandResult,
  type DispatchedCommand,
  type RuntimeBoundMessage,
  type RuntimeMessage,
} from "../../protocol/messages";
import { ReconnectingConnection } from "./connection";
import { execute, type Execution, type ExecutorOptions } from "./executor";
import { connectUrl, type Identity } from "./identity";
import { AckedList, Journal } from "./journal";
import { errorText, type Logger } from "./log";
import { Outbox } from "./outbox";
import type { StatePaths } from "./paths";
import { runtimeOs } from "./platform";
import { RUNTIME_VERSION } from "./version";

export const NOT_RERUN_ERROR = "runtime restarted while this command was running; it was not run again";

export interface AgentOptions {
  identity: Identity;
  paths: StatePaths;
  log: Logger;
  hostname?: string;
  executor?: ExecutorOptions;
  /** Called once when the server rejects the credential; the agent has already stopped reconnecting. */
  onRejected(reason: string): void;
}

type Active = { execution?: Execution; cancelRequested: boolean };

export class Agent {
  private readonly active = new Map<string, Active>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private connection!: ReconnectingConnection;
  private stopping = false;

  private constructor(
    private readonly options: AgentOptions,
    private readonly journal: Journal,
    private readonly outbox: Outbox,
    private readonly acked: AckedList,
  ) {}

  static async open(options: AgentOptions): Promise<Agent> {
    const { paths, log } = options;
    const journal = await Journal.open(paths.journal);
    const outbox = await Outbox.open(paths.outbox, log);
    const acked = await AckedList.open(paths.acked);
    const agent = new Agent(options, journal, outbox, acked);
    agent.connection = new ReconnectingConnection(connectUrl(options.identity.server), options.identity.credential, agent, log);
    return agent;
  }

  get outboxSize(): number {
    return this.outbox.size;
  }

  start(): void {
    const { identity, log } = this.options;
    log.info(
      `runtime ${RUNTIME_VERSION} starting for endpoint ${identity.endpointId} (${this.journal.size} commands in journal, ${this.outbox.size} results awaiting ack)`,
    );
    this.connection.start();
  }

  // ConnectionHandlers ---------------------------------------------------------

  onOpen(): void {
    this.send({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      runtimeVersion: RUNTIME_VERSION,
      hostname: this.options.hostname ?? os.hostname(),
      os: runtimeOs(),
      clock: Date.now(),
    });
    const pending = this.outbox.all();
    if (pending.length) this.options.log.info(`resending ${pending.length} unacknowledged result(s)`);
    for (const result of pending) this.send({ type: "result", result });
  }

  onMessage(message: RuntimeBoundMessage): void {
    switch (message.type) {
      case "dispatch":
        return this.onDispatch(message.command);
      case "cancel":
        return this.onCancel(message.commandId);
      case "ack":
        return this.track(this.onAck(message.commandId));
      case "clock":
        this.send({ type: "clock", serverTime: message.serverTime, runtimeTime: Date.now() });
        return;
      case "error":
        this.options.log.warn(`server reported ${message.code}: ${message.message}`);
        return;
    }
  }

  onRejected(reason: string): void {
    this.options.log.error(`the server rejected this runtime's credential (${reason}); enroll again with: caisey-runtime enroll --force ...`);
    this.options.onRejected(reason);
  }

  // Commands -------------------------------------------------------------------

  private onDispatch(command: DispatchedCommand): void {
    const { log } = this.options;
    const id = command.commandId;
    if (this.stopping) return; // the server redelivers it after we reconnect
    if (this.active.has(id)) return; // a redelivery of what is running now; its result will follow
    if (this.journal.has(id)) {
      const stored = this.outbox.get(id);
      if (stored) {
        log.info(`command ${id} already ran; resending its result`);
        this.send({ type: "result", result: stored });
      } else if (this.acked.has(id)) {
        log.info(`command ${id} already ran and its result was acknowledged; ignoring`);
      } else {
        log.warn(`command ${id} was interrupted by a runtime restart; reporting it failed without running it again`);
        this.active.set(id, { cancelRequested: false });
        this.track(this.completeWithoutRunning(id, "failed", NOT_RERUN_ERROR));
      }
      return;
    }
    const entry: Active = { cancelRequested: false };
    this.active.set(id, entry);
    this.track(this.run(command, entry));
  }

  private async run(command: DispatchedCommand, entry: Active): Promise<void> {
    const { log } = this.options;
    const id = command.commandId;
    try {
      // On disk before the process exists: after any crash from here on, the id reads as "started".
      await this.journal.record(id);
    } catch (error) {
      // The id stays claimed in memory: the write may have reached the disk, and a
      // wrong "failed" is better than a possible second run.
      log.error(`could not record command ${id} in the journal, not running it: ${errorText(error)}`);
      await this.completeWithoutRunning(id, "failed", `not run: the runtime could not record it in its journal (${errorText(error)})`);
      return;
    }
    if (entry.cancelRequested || this.stopping) {
      const cancelled = entry.cancelRequested;
      await this.completeWithoutRunning(id, cancelled ? "cancelled" : "failed", cancelled ? null : "runtime stopped before the command started");
      return;
    }
    log.info(`running command ${id} (${command.shell}): ${preview(command.text)}`);
    const execution = execute(command, this, { ...this.options.executor, log });
    entry.execution = execution;
    const result = await execution.result;
    log.info(`command ${id} ${result.status}${result.exitCode === null ? "" : ` (exit ${result.exitCode})`} in ${Math.round(result.durationMs)} ms`);
    // Still "active" until the result is in the outbox, so a redelivery meanwhile is not mistaken for a crash.
    await this.complete(result);
    this.active.delete(id);
  }

  private async completeWithoutRunning(id: string, status: CommandResult["status"], error: string | null): Promise<void> {
    const now = Date.now();
    try {
      await this.complete({ commandId: id, status, exitCode: null, startedAt: now, finishedAt: now, durationMs: 0, tail: [], truncated: false, error });
    } finally {
      this.active.delete(id);
    }
  }

  /** Persist, then send: if we crash in between, the outbox resends it after restart. */
  private async complete(result: CommandResult): Promise<void> {
    try {
      await this.outbox.put(result);
    } catch (error) {
      // Still worth sending: the server may ack it before anything else goes wrong.
      this.options.log.error(`could not save the result of ${result.commandId} to the outbox: ${errorText(error)}`);
    }
    this.send({ type: "result", result });
  }

  private onCancel(commandId: string): void {
    const entry = this.active.get(commandId);
    if (!entry) {
      this.options.log.info(`cancel for ${commandId} ignored: it is not running`);
      return;
    }
    this.options.log.info(`cancelling command ${commandId}`);
    entry.cancelRequested = true;
    entry.execution?.cancel();
  }

  private async onAck(commandId: string): Promise<void> {
    // Into the acked list first: a crash between the two steps must not make
    // the id look like "started, result lost".
    await this.acked.add(commandId);
    await this.outbox.remove(commandId);
  }

  // Plumbing --------------------------------------------------------------------

  send(message: RuntimeMessage): boolean {
    return this.connection.send(message);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch((error) => this.options.log.error(errorText(error)));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  /**
   * Stops for good: kills running commands, saves their results to the outbox,
   * gives the server a moment to take (and ack) them, then closes.
   */
  async shutdown(reason: string, ackWaitMs = 1500): Promise<void> {
    const { log } = this.options;
    if (this.stopping) return;
    this.stopping = true;
    if (this.active.size) log.info(`stopping ${this.active.size} running command(s)`);
    for (const entry of this.active.values()) entry.execution?.stop(`runtime stopped (${reason}) while this command was running`);
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    const deadline = Date.now() + ackWaitMs;
    while (this.connection.isOpen && (this.outbox.size > 0 || this.connection.bufferedAmount > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      while (this.inFlight.size) await Promise.all([...this.inFlight]);
    }
    await this.connection.stop(1000, "runtime stopping");
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    await Promise.all([this.journal.close(), this.acked.close()]);
    if (this.outbox.size) log.info(`${this.outbox.size} result(s) stay in the outbox and are sent on the next start`);
  }

  /** For a fatal stop where the socket is already gone (credential rejected). */
  async close(): Promise<void> {
    this.stopping = true;
    for (const entry of this.active.values()) entry.execution?.stop("runtime stopped: credential rejected");
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    await Promise.all([this.journal.close(), this.acked.close()]);
  }
}

function preview(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine;
}
