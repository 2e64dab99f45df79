// The endpoint's runtime, over its socket or its HTTPS check-ins: the same
// rules for both (redelivery of unreported work, idempotent results, one
// command at a time over the socket, updates offered only when idle).
import type { Connection } from "partyserver";
import {
  DEFAULT_CHECKIN_INTERVAL_MS,
  type CheckinRequest,
  type FullCheckinResponse,
  type RuntimeBoundMessage,
  type RuntimeMessage,
  type ViewerBoundMessage,
} from "../../../protocol/messages";
import { SESSION_CLOSE_CODES, type VerifiedPeerIdentity as PeerIdentity } from "../../../protocol/session-contract";
import type { AuditLog } from "./audit-log";
import { COMPACT_CHECKIN_KEY, compactAnswersSetting } from "./checkin-answer";
import type { CommandQueue } from "./command-queue";
import type { CommandStore } from "./command-store";
import type { PolicyCopy } from "./policy-copy";
import { estimateFromCheckinSample, estimateFromEcho, estimateFromOneWay, type RuntimeClock } from "./runtime-clock";
import type { ConnectionState, RuntimePresence } from "./runtime-presence";
import type { RuntimeReports } from "./runtime-reports";
import type { RuntimeUpdates } from "./runtime-updates";
import type { SessionStore } from "./session-store";

/** How long a check-in may take to arrive (the runtime's request timeout): bounds a one-way clock estimate. */
const CHECKIN_MAX_TRANSIT_MS = 15_000;

export interface RuntimeChannelHost {
  store: SessionStore;
  commands: CommandStore;
  queue: CommandQueue;
  reports: RuntimeReports;
  presence: RuntimePresence;
  clock: RuntimeClock;
  updates: RuntimeUpdates;
  policyCopy: PolicyCopy;
  audit: AuditLog;
  send(connection: Connection, message: RuntimeBoundMessage): void;
  broadcast(message: ViewerBoundMessage): void;
  waitUntil(promise: Promise<unknown>): void;
  scheduleAlarm(): void;
}

export class RuntimeChannel {
  constructor(private readonly host: RuntimeChannelHost) {}

  connected(connection: Connection<ConnectionState>, identity: PeerIdentity, others: Iterable<Connection>): void {
    for (const other of others) if (other.id !== connection.id) other.close(SESSION_CLOSE_CODES.replaced, "Replaced by a newer runtime connection");
    this.host.presence.socketConnected();
    this.refreshCopies(() => this.offerUpdate());
    this.host.audit.append({ kind: "runtime.connected", actorAddress: identity.address, detail: { transport: "websocket" } });
    this.host.send(connection, { type: "clock", serverTime: Date.now() });
  }

  handle(connection: Connection<ConnectionState>, message: RuntimeMessage): void {
    const address = connection.state?.address ?? null;
    switch (message.type) {
      case "hello":
        return this.hello(connection, message);
      case "update_status": {
        const refused = this.host.updates.onStatus(message.status, address);
        if (refused) this.host.send(connection, { type: "error", code: "refused", message: `Update status refused: ${refused}` });
        return;
      }
      case "clock":
        // NTP-style: the runtime read its clock somewhere inside the exchange; half the round trip bounds the error.
        this.host.clock.record(estimateFromEcho(message.serverTime, message.runtimeTime, Date.now()));
        return;
      case "started":
        return this.host.reports.started(message.commandId, message.startedAt, address);
      case "output":
        return this.host.reports.output(message.commandId, message.index, message.chunk, address);
      case "result":
        if (this.host.reports.result(message.result, address)) {
          this.host.send(connection, { type: "ack", commandId: message.result.commandId });
        } else {
          this.host.send(connection, { type: "error", code: "refused", message: `Result for ${message.result.commandId} refused: the session never dispatched it` });
        }
        this.host.presence.touchLastSeen();
        this.dispatch(); // the next step of a sequence may now be due
        this.offerUpdate(); // held back while the command ran
        return;
    }
  }

  /** Sends every due command to a connected runtime; check-in runtimes collect theirs when they check in. */
  dispatch(): void {
    const runtime = this.host.presence.current();
    const now = Date.now();
    if (runtime?.state?.helloAt) {
      for (const command of this.host.queue.takeDue(now, true)) this.host.send(runtime, { type: "dispatch", command: this.host.commands.toDispatched(command) });
    } else {
      this.host.queue.settle(now);
    }
    this.host.scheduleAlarm();
  }

  /** Offers the tenant's target to the socket runtime when it differs and nothing is running (runtime-updates.ts decides). */
  offerUpdate(): void {
    const runtime = this.host.presence.current();
    if (!runtime?.state?.helloAt) return;
    const offer = this.host.updates.offer(this.host.commands.hasUnfinishedDispatch(), runtime.id, runtime.state.address ?? null);
    if (offer) this.host.send(runtime, { type: "update", offer });
  }

  /**
   * The HTTPS path for runtimes behind networks that block WebSockets: the same
   * idempotent result handling and due-command rules as the socket.
   */
  checkin(checkin: CheckinRequest, identity: PeerIdentity): FullCheckinResponse {
    const { presence, clock, updates, reports, queue, commands } = this.host;
    const now = Date.now();
    const wasOnline = presence.state().online;
    const intervalMs = DEFAULT_CHECKIN_INTERVAL_MS;
    if (checkin.clockSample) clock.record(estimateFromCheckinSample(checkin.clockSample, now));
    // Before any sample: the request's own send time, uncertain by as long as a check-in may take to arrive.
    else if (!clock.current()) clock.record(estimateFromOneWay(checkin.clock, now, CHECKIN_MAX_TRANSIT_MS));
    presence.checkedIn(now, intervalMs);
    // A runtime describes itself on its first check-in per process only (metered links).
    if (checkin.runtimeVersion !== undefined) updates.report(checkin.runtimeVersion, checkin.platform);
    // The self-description also says whether it takes compact answers (a rolled-back runtime may not).
    const compact = compactAnswersSetting(checkin);
    if (compact !== undefined) this.host.store.setValue(COMPACT_CHECKIN_KEY, compact);
    for (const status of checkin.updateStatus) updates.onStatus(status, identity.address);
    if (!wasOnline) {
      presence.setOnline(true, "checkin");
      this.refreshCopies();
      this.host.audit.append({ kind: "runtime.connected", actorAddress: identity.address, detail: { transport: "checkin" } });
    } else {
      presence.touchLastSeen();
      // Viewers show when the next check-in is due; each check-in moves it.
      this.host.broadcast({ type: "runtime", runtime: presence.state() });
    }
    for (const { commandId, startedAt } of checkin.started) reports.started(commandId, startedAt, identity.address);
    // A refused result is not acknowledged: the runtime keeps it, and the session keeps nothing of it.
    const acks = checkin.results.filter((result) => reports.result(result, identity.address)).map((r) => r.commandId);
    // Dispatched but unreported work is offered again: the runtime's journal
    // answers a repeat with its stored result, never a second run.
    const redeliver = queue.redeliverable(now, intervalMs);
    const socket = presence.current();
    const due = socket ? [] : queue.takeDue(now, false);
    const cancel = queue.cancelRequested();
    this.host.scheduleAlarm();
    const update = socket ? null : updates.offer(commands.hasUnfinishedDispatch(), "checkin", identity.address);
    return {
      acks,
      dispatch: [...redeliver, ...due].map((command) => commands.toDispatched(command)),
      cancel,
      nextCheckinMs: intervalMs,
      serverTime: now,
      ...(update ? { update } : {}),
    };
  }

  /** Redelivers everything not yet finished (the runtime's journal turns a repeat into a resend of the stored result). */
  private hello(connection: Connection<ConnectionState>, hello: Extract<RuntimeMessage, { type: "hello" }>): void {
    connection.setState({ ...connection.state!, helloAt: Date.now() });
    this.host.updates.report(hello.runtimeVersion, hello.platform);
    this.host.presence.touchLastSeen();
    for (const command of this.host.commands.unfinishedDispatches()) {
      this.host.send(connection, { type: "dispatch", command: this.host.commands.toDispatched(command) });
    }
    this.dispatch();
    this.offerUpdate();
  }

  /** On a connect, the policy copy and the update target are refreshed in the background: no command waits for them. */
  private refreshCopies(afterTarget?: () => void): void {
    const policy = this.host.policyCopy.reloadIfStale();
    if (policy) this.host.waitUntil(policy);
    if (!afterTarget) return;
    const target = this.host.updates.reloadIfStale();
    if (target) this.host.waitUntil(target.then(afterTarget));
  }
}
