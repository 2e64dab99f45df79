// The runtime's message handling: turns dispatches into executions exactly
// once, keeps results in the outbox until acked, resends them after every
// (re)connect. It owns both transports (the WebSocket and HTTPS check-in) and
// ONE state (journal, outbox, acked list, running commands), so switching
// between them never loses a result or runs a command twice.
import * as os from "node:os";
import {
  DEFAULT_CHECKIN_INTERVAL_MS,
  PROTOCOL_VERSION,
  type CheckinRequest,
  type ClockSample,
  type CheckinResponse,
  type CommandResult,
  type DispatchedCommand,
  type RuntimeBoundMessage,
  type RuntimeMessage,
  type RuntimeUpdateOffer,
  type RuntimeUpdateStatus,
} from "../../protocol/messages";
import { CheckinLoop, checkinUrl, MAX_RESULTS_PER_CHECKIN, MAX_STARTED_PER_CHECKIN } from "./checkin";
import { websocketRetryDelay } from "./backoff";
import { ReconnectingConnection } from "./connection";
import { execute, type Execution, type ExecutorOptions } from "./executor";
import { writeFileDurable } from "./fs-durable";
import { connectUrl, type Identity } from "./identity";
import { AckedList, Journal } from "./journal";
import { killOrphans, nodeProcessHost, type ProcessHost } from "./orphans";
import { errorText, type Logger } from "./log";
import { Outbox } from "./outbox";
import type { StatePaths } from "./paths";
import { runtimeOs } from "./platform";
import { RUNTIME_PLATFORM, RUNTIME_VERSION } from "./version";

export const NOT_RERUN_ERROR = "interrupted: the runtime stopped or crashed while this command was running; it was not run again";

export type TransportChoice = "auto" | "websocket" | "checkin";
export type Transport = "websocket" | "checkin";

/** In auto mode, this many failed WebSocket connection attempts in a row switch to check-in. */
export const WEBSOCKET_FAILURES_BEFORE_CHECKIN = 2;
/** How often a check-in runtime sends the session a clock sample (ADR 0017). */
const CLOCK_SAMPLE_EVERY_MS = 10 * 60_000;
/** `status` shows the last contact; on the socket it is refreshed at most this often. */
const CONTACT_WRITE_INTERVAL_MS = 60_000;

export interface AgentOptions {
  identity: Identity;
  paths: StatePaths;
  log: Logger;
  hostname?: string;
  executor?: ExecutorOptions;
  /** Default "auto": WebSocket, falling back to check-in when the socket cannot connect. */
  transport?: TransportChoice;
  /** Check-in interval until the server suggests one. */
  checkinIntervalMs?: number;
  /** How processes are identified and killed (the orphan sweep); the real OS unless a test injects one. */
  processHost?: ProcessHost;
  /** Called once when the server rejects the credential; the agent has already stopped reconnecting. */
  onRejected(reason: string): void;
  /** The server offered an update (socket or check-in); the updater decides what to do with it. */
  onUpdateOffer?(offer: RuntimeUpdateOffer): void;
  /**
   * An update trial (updater.ts): the agent only proves it can reach the server. It claims no
   * work (the server redelivers it to whichever version stays) and calls this once connected.
   */
  onTrialConnected?(): void;
}

type Active = { execution?: Execution; cancelRequested: boolean; queued?: DispatchedCommand };

export class Agent {
  private readonly active = new Map<string, Active>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private connection!: ReconnectingConnection;
  private checkin!: CheckinLoop;
  private stopping = false;
  private mode: Transport = "websocket";
  private websocketRetryTimer: NodeJS.Timeout | undefined;
  private websocketRetries = 0;
  /** The last check-in exchange's timestamps, and when a sample was last sent (the session measures our clock with it). */
  private clockSample: ClockSample | undefined;
  private clockSampleSentAt = 0;
  /** Check-ins failed since the last one that got through (the network may be down). */
  private checkinFailures = 0;
  /** Commands from check-in waiting for their turn: a batch runs one after another, never concurrently. */
  private queue: { command: DispatchedCommand; entry: Active }[] = [];
  private draining = false;
  /** `started` notices not yet delivered by a check-in. */
  private pendingStarted: { commandId: string; startedAt: number }[] = [];
  /** Results the server asked for again (a repeated dispatch): they go first in the next check-in. */
  private readonly resendFirst = new Set<string>();
  private outboxAtRequest = new Set<string>();
  private lastContactWrite: { transport: Transport; at: number } | undefined;
  private rejectedReported = false;
  /** Possible survivors of a dead run that could not be verified (and were left alone), by command id. */
  private readonly unverifiedOrphans = new Map<string, string>();
  /** Update progress not yet delivered: sent on the socket when it opens, or with the next check-in. */
  private pendingUpdateStatus: RuntimeUpdateStatus[] = [];
  /** Set while an update waits to take over: new work is left with the server, which redelivers it. */
  private holdingNewWork = false;
  private helloSent = false;

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
    await agent.settleOrphans();
    const { server, credential } = options.identity;
    agent.connection = new ReconnectingConnection(connectUrl(server), credential, agent, log);
    agent.checkin = new CheckinLoop(checkinUrl(server), credential, agent, log, options.checkinIntervalMs ?? DEFAULT_CHECKIN_INTERVAL_MS);
    return agent;
  }

  /**
   * Before any work is taken: commands of a previous run that died under them
   * may still be running as orphans. Kill them and report each command
   * interrupted now, so a retry the technician starts can never run next to it.
   */
  private async settleOrphans(): Promise<void> {
    const { log } = this.options;
    const host = this.options.processHost ?? nodeProcessHost;
    const reports = await killOrphans(this.journal.spawned(), (id) => !this.outbox.get(id) && !this.acked.has(id), {
      host,
      graceMs: this.options.executor?.killGraceMs,
    });
    for (const report of reports) {
      log.warn(`command ${report.commandId} was running when the runtime last stopped: ${report.note}`);
      if (!report.killed) {
        this.unverifiedOrphans.set(report.commandId, report.note);
        continue;
      }
      const startedAt = this.journal.startedAt(report.commandId) ?? Date.now();
      const now = Date.now();
      await this.outbox.put({
        commandId: report.commandId,
        status: "interrupted",
        exitCode: null,
        startedAt,
        finishedAt: now,
        durationMs: Math.max(0, now - startedAt),
        tail: [],
        truncated: false,
        error: `${NOT_RERUN_ERROR}; ${report.note}`,
      });
    }
  }

  get outboxSize(): number {
    return this.outbox.size;
  }

  get transport(): Transport {
    return this.mode;
  }

  private get choice(): TransportChoice {
    return this.options.transport ?? "auto";
  }

  start(): void {
    const { identity, log } = this.options;
    log.info(
      `runtime ${RUNTIME_VERSION} starting for endpoint ${identity.endpointId} (${this.journal.size} commands in journal, ${this.outbox.size} results awaiting ack)`,
    );
    if (this.choice === "checkin") {
      this.mode = "checkin";
      log.info(`using HTTPS check-in every ${seconds(this.checkin.interval)} (--transport checkin)`);
      this.checkin.start();
      return;
    }
    this.connection.start();
  }

  // ConnectionHandlers ---------------------------------------------------------

  onOpen(): void {
    if (this.mode === "checkin") {
      this.options.log.info("WebSocket connected; leaving HTTPS check-in");
      this.leaveCheckin();
    }
    this.mode = "websocket";
    this.noteContact("websocket");
    // Update reports go before hello: the session decides on an offer when it handles hello, and must
    // already know that a version just rolled back (or failed) so it does not offer it again.
    for (const status of this.pendingUpdateStatus.splice(0)) this.send({ type: "update_status", status });
    this.send({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      runtimeVersion: RUNTIME_VERSION,
      hostname: this.hostname,
      os: runtimeOs(),
      clock: Date.now(),
      ...(RUNTIME_PLATFORM ? { platform: RUNTIME_PLATFORM } : {}),
    });
    this.helloSent = true;
    // Commands that started while on check-in and still run: the transcript should show them running.
    const started = this.pendingStarted.filter((s) => this.active.has(s.commandId));
    this.pendingStarted = [];
    for (const s of started) this.send({ type: "started", ...s });
    const pending = this.outbox.all();
    if (pending.length) this.options.log.info(`resending ${pending.length} unacknowledged result(s)`);
    for (const result of pending) this.send({ type: "result", result });
  }

  onMessage(message: RuntimeBoundMessage): void {
    this.noteContact("websocket");
    if (this.helloSent) this.options.onTrialConnected?.();
    switch (message.type) {
      case "dispatch":
        return this.onDispatch(message.command);
      case "cancel":
        return this.onCancel(message.commandId);
      case "ack":
        this.track(this.onAck(message.commandId));
        return;
      case "clock":
        this.send({ type: "clock", serverTime: message.serverTime, runtimeTime: Date.now() });
        return;
      case "error":
        this.options.log.warn(`server reported ${message.code}: ${message.message}`);
        return;
      case "update":
        this.options.onUpdateOffer?.(message.offer);
        return;
    }
  }

  onRejected(reason: string): void {
    if (this.rejectedReported) return;
    this.rejectedReported = true;
    this.checkin.stop();
    clearInterval(this.websocketRetryTimer);
    void this.connection.stop();
    this.options.log.error(`the server rejected this runtime's credential (${reason}); enroll again with: caisey-runtime enroll --force ...`);
    this.options.onRejected(reason);
  }

  onConnectFailed(reason: string, consecutiveFailures: number): boolean {
    if (this.choice !== "auto" || this.stopping) return true;
    if (this.mode === "checkin") {
      // A retry from check-in mode failed: stay on check-in, which keeps working meanwhile.
      this.options.log.info(`WebSocket still unavailable (${reason}); staying on HTTPS check-in`);
      return false;
    }
    if (consecutiveFailures < WEBSOCKET_FAILURES_BEFORE_CHECKIN) return true;
    this.mode = "checkin";
    this.options.log.warn(`WebSocket unavailable (${reason}); using HTTPS check-in every ${seconds(this.checkin.interval)}`);
    this.checkin.start();
    this.websocketRetries = 0;
    this.scheduleWebsocketRetry();
    return false;
  }

  /**
   * While check-ins carry the work, the WebSocket is tried again 5-10 s after
   * the fallback, then with jittered backoff capped at 60 s: a short outage
   * must not leave an interactive endpoint on 30 s check-ins for minutes.
   */
  private scheduleWebsocketRetry(): void {
    clearTimeout(this.websocketRetryTimer);
    const delay = websocketRetryDelay(this.websocketRetries);
    this.websocketRetries += 1;
    this.websocketRetryTimer = setTimeout(() => {
      if (this.mode !== "checkin" || this.stopping) return;
      this.connection.probe();
      this.scheduleWebsocketRetry();
    }, delay);
  }

  private leaveCheckin(): void {
    this.checkin.stop();
    clearInterval(this.websocketRetryTimer);
    this.websocketRetryTimer = undefined;
  }

  // CheckinHandlers ------------------------------------------------------------

  checkinRequest(): CheckinRequest {
    const all = this.outbox.all();
    const first = all.filter((r) => this.resendFirst.has(r.commandId));
    const rest = all.filter((r) => !this.resendFirst.has(r.commandId));
    this.outboxAtRequest = new Set(all.map((r) => r.commandId));
    return {
      protocol: PROTOCOL_VERSION,
      runtimeVersion: RUNTIME_VERSION,
      hostname: this.hostname,
      os: runtimeOs(),
      clock: Date.now(),
      started: this.pendingStarted.slice(0, MAX_STARTED_PER_CHECKIN),
      results: [...first, ...rest].slice(0, MAX_RESULTS_PER_CHECKIN),
      ...(RUNTIME_PLATFORM ? { platform: RUNTIME_PLATFORM } : {}),
      updateStatus: this.pendingUpdateStatus.slice(0, 10),
      ...(this.clockSampleDue() ? { clockSample: this.clockSample } : {}),
      compactAnswers: true,
      ...(this.clockSampleWanted() ? { wantTime: true as const } : {}),
    };
  }

  /**
   * An idle compact answer carries no server time, so we ask for it on the
   * check-in before a sample is due (and while we have none): the sample we send
   * is then one interval old, as with full answers.
   */
  private clockSampleWanted(): boolean {
    if (this.clockSample === undefined) return true;
    const now = Date.now();
    const nextSampleAt = this.clockSampleDue() ? now + CLOCK_SAMPLE_EVERY_MS : this.clockSampleSentAt + CLOCK_SAMPLE_EVERY_MS;
    return now + this.checkin.interval >= nextSampleAt;
  }

  /** A sample goes with the first check-in that has one, then every ten minutes: clocks drift slowly, links are metered. */
  private clockSampleDue(): boolean {
    return this.clockSample !== undefined && Date.now() - this.clockSampleSentAt >= CLOCK_SAMPLE_EVERY_MS;
  }

  async onCheckinResponse(request: CheckinRequest, response: CheckinResponse): Promise<boolean> {
    this.noteContact("checkin");
    if (request.clockSample) this.clockSampleSentAt = Date.now();
    if (response.serverTime !== undefined) this.clockSample = { sentAt: request.clock, serverTime: response.serverTime, receivedAt: Date.now() };
    // The network is back after an outage: the WebSocket may be too, so try it now rather than at the next retry.
    if (this.checkinFailures > 0 && this.choice === "auto" && this.mode === "checkin" && !this.stopping) this.connection.probe();
    this.checkinFailures = 0;
    this.options.onTrialConnected?.();
    const deliveredStatus = new Set(request.updateStatus);
    this.pendingUpdateStatus = this.pendingUpdateStatus.filter((s) => !deliveredStatus.has(s));
    if (response.update) this.options.onUpdateOffer?.(response.update);
    const delivered = new Set(request.started);
    this.pendingStarted = this.pendingStarted.filter((s) => !delivered.has(s));
    for (const id of request.results.map((r) => r.commandId)) this.resendFirst.delete(id);
    for (const id of response.acks) await this.onAck(id);
    const work: Promise<unknown>[] = [];
    for (const command of response.dispatch) {
      const started = this.claim(command, "checkin");
      if (started) work.push(started);
    }
    for (const id of response.cancel) {
      const done = this.cancel(id);
      if (done) work.push(this.track(done));
    }
    this.drainQueue();
    // Results settled by this answer (not rerun, cancelled before starting) are in the outbox once these resolve.
    await Promise.all(work);
    const sent = new Set(request.results.map((r) => r.commandId));
    const unsent = this.outbox.all().filter((r) => !sent.has(r.commandId));
    // Something new to deliver, or the server is taking results and more are waiting: go again now.
    return unsent.length > 0 && (response.acks.length > 0 || unsent.some((r) => !this.outboxAtRequest.has(r.commandId)));
  }

  onCheckinFailed(): void {
    this.checkinFailures += 1;
    // Maybe the network changed (or the server lacks check-in): try the socket too, it may work again.
    if (this.choice === "auto" && this.mode === "checkin" && !this.stopping) this.connection.probe();
  }

  // Commands -------------------------------------------------------------------

  private onDispatch(command: DispatchedCommand): void {
    this.claim(command, "websocket");
  }

  /**
   * Takes a dispatched command exactly once. From the socket it starts at
   * once; from check-in it joins the queue that runs one command at a time.
   * Returns work that settles a repeat (result stored in the outbox).
   */
  private claim(command: DispatchedCommand, via: Transport): Promise<unknown> | undefined {
    const { log } = this.options;
    const id = command.commandId;
    if (this.stopping) return undefined; // the server redelivers it after we reconnect
    if (this.holdingNewWork || this.options.onTrialConnected) {
      if (!this.journal.has(id)) return undefined; // left with the server: it redelivers it to the version that stays
    }
    if (this.active.has(id)) return undefined; // a redelivery of what is running (or queued) now; its result will follow
    if (this.journal.has(id)) {
      const stored = this.outbox.get(id);
      if (stored) {
        log.info(`command ${id} already ran; resending its result`);
        if (!this.send({ type: "result", result: stored })) this.resendFirst.add(id);
      } else if (this.acked.has(id)) {
        log.info(`command ${id} already ran and its result was acknowledged; ignoring`);
      } else {
        log.warn(`command ${id} was interrupted by a runtime restart; reporting it interrupted without running it again`);
        this.active.set(id, { cancelRequested: false });
        const orphan = this.unverifiedOrphans.get(id);
        // A possible survivor is named, so nobody retries it believing it is gone.
        const error = orphan ? `${NOT_RERUN_ERROR}; ${orphan}` : NOT_RERUN_ERROR;
        return this.track(this.completeWithoutRunning(id, "interrupted", error, this.journal.startedAt(id)));
      }
      return undefined;
    }
    const entry: Active = { cancelRequested: false };
    this.active.set(id, entry);
    if (via === "checkin") {
      entry.queued = command;
      this.queue.push({ command, entry });
      return undefined;
    }
    this.track(this.run(command, entry));
    return undefined;
  }

  /** Runs the check-in queue in order, one command at a time; checks in right after the batch. */
  private drainQueue(): void {
    if (this.draining || !this.queue.length || this.stopping) return;
    this.draining = true;
    this.track(
      (async () => {
        try {
          while (this.queue.length && !this.stopping) {
            const { command, entry } = this.queue.shift()!;
            entry.queued = undefined;
            await this.run(command, entry).catch((error) => this.options.log.error(errorText(error)));
          }
        } finally {
          this.draining = false;
        }
        // The server sends a sequence's next step only once it has this batch's results.
        if (this.mode === "checkin" && !this.stopping) this.checkin.wake();
      })(),
    );
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
      await this.completeWithoutRunning(id, cancelled ? "cancelled" : "interrupted", cancelled ? null : "interrupted: the runtime stopped before the command started; it did not run");
      return;
    }
    log.info(`running command ${id} (${command.shell}): ${preview(command.text)}`);
    const host = this.options.processHost ?? nodeProcessHost;
    const onSpawn = (pid: number) => {
      this.track(this.journal.recordSpawn(id, { pid, identity: host.identity(pid), at: Date.now() }));
    };
    const execution = execute(command, this, { ...this.options.executor, log, onSpawn });
    entry.execution = execution;
    let result = await execution.result;
    if (this.stopping && result.status === "failed" && result.exitCode === null) {
      // A service manager stopping the runtime signals the whole group (systemd's control-group kill):
      // the command died of the same stop, before the runtime could stop it itself.
      result = { ...result, status: "interrupted", error: `interrupted: the runtime was stopping (${result.error ?? "killed"})` };
    }
    log.info(`command ${id} ${result.status}${result.exitCode === null ? "" : ` (exit ${result.exitCode})`} in ${Math.round(result.durationMs)} ms`);
    // Still "active" until the result is in the outbox, so a redelivery meanwhile is not mistaken for a crash.
    await this.complete(result);
    this.active.delete(id);
  }

  private async completeWithoutRunning(id: string, status: CommandResult["status"], error: string | null, startedAt?: number): Promise<void> {
    const now = Date.now();
    const started = Math.min(startedAt ?? now, now);
    try {
      await this.complete({ commandId: id, status, exitCode: null, startedAt: started, finishedAt: now, durationMs: now - started, tail: [], truncated: false, error });
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
    // On check-in a result goes out with the next check-in; outside a batch that is now (a batch checks in when it ends).
    if (!this.send({ type: "result", result }) && this.mode === "checkin" && !this.draining) this.checkin.wake();
  }

  private onCancel(commandId: string): void {
    const done = this.cancel(commandId);
    if (done) this.track(done);
  }

  /** Kills a running command, or settles a queued one as cancelled without starting it. */
  private cancel(commandId: string): Promise<void> | undefined {
    const entry = this.active.get(commandId);
    if (!entry) {
      this.options.log.info(`cancel for ${commandId} ignored: it is not running`);
      return undefined;
    }
    this.options.log.info(`cancelling command ${commandId}`);
    entry.cancelRequested = true;
    const queued = entry.queued;
    if (queued) {
      // Not started yet: journal it (so it can never run later) and report it cancelled now.
      this.queue = this.queue.filter((q) => q.entry !== entry);
      entry.queued = undefined;
      return this.run(queued, entry);
    }
    entry.execution?.cancel();
    return undefined;
  }

  private async onAck(commandId: string): Promise<void> {
    // Into the acked list first: a crash between the two steps must not make
    // the id look like "started, result lost".
    await this.acked.add(commandId);
    await this.outbox.remove(commandId);
    this.resendFirst.delete(commandId);
  }

  // Updates (updater.ts) ----------------------------------------------------------

  /** Reports update progress now if the socket is up, else with the next check-in or socket hello. */
  reportUpdate(status: RuntimeUpdateStatus): void {
    if (this.helloSent && this.connection.isOpen && this.send({ type: "update_status", status })) return;
    this.pendingUpdateStatus.push(status);
    if (this.pendingUpdateStatus.length > 10) this.pendingUpdateStatus.shift();
    if (this.mode === "checkin" && !this.stopping) this.checkin.wake();
  }

  /** Stops taking new work and resolves once nothing runs: an update never interrupts a command. */
  async drainForUpdate(): Promise<void> {
    this.holdingNewWork = true;
    while (this.active.size > 0 || this.queue.length > 0 || this.draining) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await this.settle();
    }
  }

  /** Update reports not yet delivered, for a clean shutdown before an update trial to hand on. */
  undeliveredUpdateStatus(): RuntimeUpdateStatus[] {
    return [...this.pendingUpdateStatus];
  }

  // Plumbing --------------------------------------------------------------------

  /** Which socket connection messages go out on now (MessageSink: streamed output is re-sent if it closes). */
  link(): number {
    return this.connection.link;
  }

  /**
   * Sends over the socket when it is open. On check-in nothing is streamed:
   * `started` waits for the next check-in, output stays in the command's
   * tail, results wait in the outbox.
   */
  send(message: RuntimeMessage): boolean {
    if (this.connection.send(message)) return true;
    if (message.type === "started" && this.mode === "checkin") {
      this.pendingStarted.push({ commandId: message.commandId, startedAt: message.startedAt });
      return true;
    }
    return false;
  }

  private get hostname(): string {
    return this.options.hostname ?? os.hostname();
  }

  /** Remembers the transport and the last contact for `status`; cheap: at most one small write a minute. */
  private noteContact(transport: Transport): void {
    const now = Date.now();
    const last = this.lastContactWrite;
    if (last && last.transport === transport && now - last.at < CONTACT_WRITE_INTERVAL_MS) return;
    this.lastContactWrite = { transport, at: now };
    const record = JSON.stringify({ transport, lastContactAt: now });
    this.track(
      writeFileDurable(this.options.paths.transport, `${record}\n`).catch((error) =>
        this.options.log.warn(`could not record the last contact: ${errorText(error)}`),
      ),
    );
  }

  private track<T>(work: Promise<T>): Promise<T | void> {
    const tracked = work.catch((error) => this.options.log.error(errorText(error)));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return tracked;
  }

  private async settle(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  /** Queued commands never started: forget them, the server offers them again. */
  private dropQueue(): void {
    for (const { command } of this.queue) this.active.delete(command.commandId);
    this.queue = [];
  }

  /**
   * Stops for good: kills running commands, saves their results to the outbox,
   * gives the server a moment to take (and ack) them, then closes.
   */
  async shutdown(reason: string, ackWaitMs = 1500): Promise<void> {
    const { log } = this.options;
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.websocketRetryTimer);
    this.dropQueue();
    if (this.active.size) log.info(`stopping ${this.active.size} running command(s)`);
    for (const entry of this.active.values()) entry.execution?.stop(`interrupted: the runtime stopped (${reason}) while this command was running; it was not run again`);
    await this.settle();
    if (this.checkin.isRunning) {
      this.checkin.stop();
      this.checkin.abortInFlight(); // its results stay in the outbox; the final check-in carries them
      await this.checkin.idle();
      await this.settle();
      if (this.outbox.size > 0 && !this.connection.isOpen) {
        const outcome = await this.checkin.final(ackWaitMs);
        if (outcome.kind !== "ok") log.warn(`final check-in failed (${outcome.reason})`);
        await this.settle();
      }
    }
    const deadline = Date.now() + ackWaitMs;
    while (this.connection.isOpen && (this.outbox.size > 0 || this.connection.bufferedAmount > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await this.settle();
    }
    await this.connection.stop(1000, "runtime stopping");
    await this.settle();
    await Promise.all([this.journal.close(), this.acked.close()]);
    if (this.outbox.size) log.info(`${this.outbox.size} result(s) stay in the outbox and are sent on the next start`);
  }

  /** For a fatal stop where the socket is already gone (credential rejected). */
  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.websocketRetryTimer);
    this.checkin.stop();
    this.checkin.abortInFlight();
    this.dropQueue();
    for (const entry of this.active.values()) entry.execution?.stop("interrupted: the runtime stopped (its credential was rejected) while this command was running");
    await this.settle();
    await this.checkin.idle();
    await Promise.all([this.journal.close(), this.acked.close()]);
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function preview(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine;
}
