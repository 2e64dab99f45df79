import { Server, type Connection, type ConnectionContext } from "partyserver";
import {
  checkinRequestSchema,
  describeZodError,
  parseMessage,
  runtimeMessageSchema,
  viewerMessageSchema,
  type RuntimeBoundMessage,
  type TranscriptEvent,
  type ViewerBoundMessage,
} from "../../../protocol/messages";
import { readPeerIdentity, SESSION_CLOSE_CODES as CLOSE_CODES, SESSION_PATHS } from "../../../protocol/session-contract";
import { AlarmArbiter } from "./alarm";
import { ApprovalFlow } from "./approval-flow";
import { AuditLog } from "./audit-log";
import { checkinHttpAnswer, COMPACT_CHECKIN_KEY } from "./checkin-answer";
import { CommandIntake } from "./command-intake";
import { CommandQueue } from "./command-queue";
import { CommandStore } from "./command-store";
import { DirectoryCalls } from "./directory-calls";
import type { SessionEnv } from "./env";
import { EventLog } from "./event-log";
import type { PlacementHost } from "./placement";
import { PolicyCopy } from "./policy-copy";
import { TranscriptReplay } from "./replay";
import { RuntimeChannel } from "./runtime-channel";
import { RuntimeClock } from "./runtime-clock";
import { RuntimePresence, type ConnectionState } from "./runtime-presence";
import { RuntimeReports } from "./runtime-reports";
import { RuntimeUpdates } from "./runtime-updates";
import { Retention } from "./retention";
import { OpenConnections } from "./open-connections";
import { migrate } from "./schema";
import { SequenceFlow } from "./sequence-flow";
import { SessionStore } from "./session-store";
import { TokenBucket } from "./token-bucket";
import { ViewerChannel } from "./viewer-channel";

/** Check-ins per endpoint: a burst (a runtime draining its outbox) and then one every few seconds. */
const CHECKIN_BUCKET = { capacity: 10, refillPerSecond: 0.5 } as const;
const CHECKIN_RETRY_AFTER_S = 5;

/**
 * One per enrolled endpoint, addressed by endpoint id: a small orchestrator.
 * It authenticates each peer, routes each message type to exactly one
 * handler in its module, and fans events out; the modules own the state
 * (docs/decisions/0028-session-modules.md). Every state change appends to the
 * event log, which is what viewers render and replay after reconnecting.
 */
export class EndpointSession extends Server<Cloudflare.Env & SessionEnv> {
  static options = { hibernate: true };

  private readonly store = new SessionStore(this.ctx.storage.sql);
  private readonly open = new OpenConnections((peer) => this.getConnections<ConnectionState>(peer));
  private readonly events = new EventLog(this.store, (events) => this.broadcastEvents(events));
  /** Appends are local and synchronous (never waiting on D1); an alarm replicates them. */
  private readonly audit = new AuditLog(this.ctx.storage.sql, () => ({ endpointId: this.name, orgId: this.store.value("org_id") ?? null }), () => this.wakeUps.requestSchedule());
  /** The runtime's clock as measured here: every time the runtime reports is converted to server time with it. */
  private readonly clock = new RuntimeClock({ get: (key) => this.store.value(key), set: (key, value) => this.store.setValue(key, value) });
  private readonly commands = new CommandStore({ store: this.store, events: this.events, audit: this.audit, clock: this.clock });
  private readonly replay = new TranscriptReplay(this.ctx.storage.sql);
  private readonly policyCopy = new PolicyCopy(this.ctx.storage.sql, () => ({ db: this.env.DB, endpointId: this.name }));
  private readonly checkinBucket = new TokenBucket(CHECKIN_BUCKET.capacity, CHECKIN_BUCKET.refillPerSecond);

  private readonly updates = new RuntimeUpdates({
    sql: this.ctx.storage.sql,
    audit: this.audit,
    directory: () => ({ db: this.env.DB, endpointId: this.name, orgId: this.store.value("org_id") ?? null }),
    waitUntil: (promise) => this.ctx.waitUntil(promise),
  });

  private readonly sequences = new SequenceFlow({
    sql: this.ctx.storage.sql,
    appendEvent: (kind, body) => this.events.append(kind, body),
    audit: (entry) => this.audit.append(entry),
    skip: (commandId, error, by) => this.commands.finish(commandId, { status: "skipped", exitCode: null, error, timings: null, ...(by ? { by } : {}) }),
    policy: () => this.policyCopy.current(),
  });

  private readonly presence = new RuntimePresence({
    store: this.store,
    audit: this.audit,
    runtimeConnections: () => this.open.of("runtime"),
    broadcast: (message) => this.broadcastToViewers(message),
    directory: () => ({ db: this.env.DB, endpointId: this.name }),
    waitUntil: (promise) => this.ctx.waitUntil(promise),
  });

  private readonly queue = new CommandQueue({
    store: this.store,
    commands: this.commands,
    sequences: this.sequences,
    events: this.events,
    audit: this.audit,
    onlineSince: () => this.presence.onlineSince(),
  });

  private readonly reports = new RuntimeReports({ store: this.store, commands: this.commands, events: this.events, audit: this.audit, clock: this.clock, sequences: this.sequences });

  private readonly approvals = new ApprovalFlow({
    endpointId: () => this.name,
    sql: this.ctx.storage.sql,
    env: () => this.env,
    audit: this.audit,
    appendEvent: (kind, body) => this.events.append(kind, body),
    getCommand: (commandId) => this.commands.get(commandId),
    policy: () => this.policyCopy.current(),
    release: (commandId) => {
      this.store.exec("UPDATE commands SET status = 'queued' WHERE id = ? AND status = 'pending_approval'", commandId);
      this.runtime.dispatch();
    },
    finish: (commandId, status, error) => this.commands.finish(commandId, { status, exitCode: null, error, timings: null }),
    waitUntil: (promise) => this.ctx.waitUntil(promise),
    scheduleAlarm: () => this.wakeUps.requestSchedule(),
  });

  private readonly runtime = new RuntimeChannel({
    store: this.store,
    commands: this.commands,
    queue: this.queue,
    reports: this.reports,
    presence: this.presence,
    clock: this.clock,
    updates: this.updates,
    policyCopy: this.policyCopy,
    audit: this.audit,
    send: (connection, message) => this.send(connection, message),
    broadcast: (message) => this.broadcastToViewers(message),
    waitUntil: (promise) => this.ctx.waitUntil(promise),
    scheduleAlarm: () => this.wakeUps.requestSchedule(),
  });

  private readonly intake = new CommandIntake({
    store: this.store,
    commands: this.commands,
    events: this.events,
    audit: this.audit,
    approvals: this.approvals,
    policyCopy: this.policyCopy,
    decommissioned: () => this.presence.decommissioned(),
  });

  private readonly viewers = new ViewerChannel({
    store: this.store,
    commands: this.commands,
    events: this.events,
    audit: this.audit,
    replay: this.replay,
    intake: this.intake,
    approvals: this.approvals,
    sequences: this.sequences,
    send: (connection, message) => this.send(connection, message),
    sendCancelToRuntime: (commandId) => {
      const runtime = this.presence.current();
      if (runtime) this.send(runtime, { type: "cancel", commandId });
    },
    dispatch: () => this.runtime.dispatch(),
    viewerConnections: () => this.open.of("viewer"),
    broadcast: (message, exceptConnectionId) => this.broadcastToViewers(message, exceptConnectionId),
  });

  private readonly placementHost: PlacementHost = {
    getRuntimeValue: (key) => this.store.value(key),
    setRuntimeValue: (key, value) => this.store.setValue(key, value),
    audit: (entry) => this.audit.append(entry),
    platformJurisdiction: () => (this.ctx.id as { jurisdiction?: string }).jurisdiction,
    preloadPolicy: () => (this.policyCopy.current() ? Promise.resolve(null) : this.policyCopy.reload()),
  };

  private readonly directory = new DirectoryCalls({
    store: this.store,
    commands: this.commands,
    approvals: this.approvals,
    presence: this.presence,
    policyCopy: this.policyCopy,
    updates: this.updates,
    audit: this.audit,
    placement: this.placementHost,
    broadcast: (message) => this.broadcastToViewers(message),
    offerUpdate: () => this.runtime.offerUpdate(),
    scheduleAlarm: () => this.wakeUps.requestSchedule(),
    dispatch: () => this.runtime.dispatch(),
    closeViewersOf: (orgId, userId) => {
      const removed = this.open.of("viewer").filter((v) => v.state?.orgId === orgId && (userId === null || v.state.userId === userId));
      for (const viewer of removed) viewer.close(CLOSE_CODES.accessRemoved, "Your access to this organisation was removed");
      return removed.length;
    },
    acceptFromDirectory: async (sink, identity, message) => {
      const refused = await this.intake.accept(identity, message);
      if (refused) return sink.send(JSON.stringify({ type: "error", code: refused.code, message: refused.message, requestId: message.requestId }));
      this.runtime.dispatch();
    },
  });

  private readonly retention = new Retention({ store: this.store, events: this.events, audit: this.audit, retentionDays: () => this.policyCopy.current()?.retentionDays ?? null });
  /** One alarm: check-in liveness, approval expiry, result deadlines and windows, approval delivery, audit replication, retention. */
  private readonly wakeUps = new AlarmArbiter((at) => void this.ctx.storage.setAlarm(at), [
    this.presence,
    { nextWakeAt: () => this.approvals.nextWakeAt(), wake: (now) => this.approvals.expireDue(now) },
    {
      nextWakeAt: (now) => this.queue.nextWakeAt(now),
      wake: (now) => {
        this.queue.timeOutUnreported(now);
        this.runtime.dispatch();
      },
    },
    { nextWakeAt: () => this.approvals.delivery.nextWakeAt(), wake: (now) => this.approvals.delivery.deliverDue(now) },
    { nextWakeAt: () => this.audit.nextWakeAt(), wake: () => this.audit.wake(this.env.DB, this.env.AUDIT_MAC_KEY) },
    this.retention,
  ]);

  /**
   * Socket events in strict arrival order. partyserver awaits its own start-up
   * before each handler, so an event that arrives while the instance wakes
   * from hibernation could otherwise overtake the one before it (a runtime's
   * result handled before its output, read as output lost in transit).
   */
  private inbox: Promise<unknown> = Promise.resolve();

  onStart(): void {
    migrate(this.ctx.storage.sql);
  }

  async onAlarm(): Promise<void> {
    await this.wakeUps.fire();
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    return this.inOrder(() => super.webSocketMessage(ws, message));
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void> {
    return this.inOrder(() => super.webSocketClose(ws, code, reason, wasClean));
  }

  private inOrder(handle: () => Promise<void>): Promise<void> {
    const turn = this.inbox.then(handle);
    this.inbox = turn.catch(() => undefined);
    return turn;
  }

  /** HTTP from the edge only: runtime check-ins, the console's directory calls and the public approval page's calls. */
  async onRequest(request: Request): Promise<Response> {
    const identity = readPeerIdentity(request);
    if (!identity || identity.peer === "viewer" || identity.endpointId !== this.name || !this.name) {
      return Response.json({ error: "Unauthenticated" }, { status: 401 });
    }
    const path = new URL(request.url).pathname;
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "Body must be JSON" }, { status: 400 });
    }
    if (request.method !== "POST") return Response.json({ error: "Not found" }, { status: 404 });
    if (identity.peer === "directory") {
      if (!this.presence.bindTenant(identity)) return Response.json({ error: "Identity is bound to another tenant" }, { status: 403 });
      return this.directory.handle(path, body, identity);
    }
    if (identity.peer === "runtime") {
      if (path !== SESSION_PATHS.checkin) return Response.json({ error: "Not found" }, { status: 404 });
      const parsed = checkinRequestSchema.safeParse(body);
      if (!parsed.success) return Response.json({ error: `Invalid check-in: ${describeZodError(parsed.error)}` }, { status: 400 });
      if (!this.presence.bindTenant(identity)) return Response.json({ error: "Identity is bound to another tenant" }, { status: 403 });
      if (this.presence.refusesRevoked(identity)) return Response.json({ error: "This runtime's credential was revoked; enroll again" }, { status: 403 });
      if (!this.checkinBucket.take(Date.now())) {
        return Response.json({ error: "Checking in too often; wait before the next check-in" }, { status: 429, headers: { "Retry-After": String(CHECKIN_RETRY_AFTER_S) } });
      }
      return checkinHttpAnswer(this.runtime.checkin(parsed.data, identity), parsed.data, this.store.value(COMPACT_CHECKIN_KEY));
    }
    const approval =
      path === SESSION_PATHS.approvalView ? this.approvals.view(body, identity) : path === SESSION_PATHS.approvalDecide ? this.approvals.decide(body, identity) : null;
    return approval ? Response.json(approval.body, { status: approval.status }) : Response.json({ error: "Not found" }, { status: 404 });
  }

  getConnectionTags(_connection: Connection, context: ConnectionContext): string[] {
    const identity = readPeerIdentity(context.request);
    return identity ? [identity.peer] : [];
  }

  onConnect(connection: Connection<ConnectionState>, context: ConnectionContext): void {
    this.open.changed();
    const identity = readPeerIdentity(context.request);
    if (!identity) return connection.close(CLOSE_CODES.unauthorized, "Unauthenticated");
    if (identity.endpointId !== this.name) return connection.close(CLOSE_CODES.forbidden, "Identity is bound to another endpoint");
    if (!this.presence.bindTenant(identity)) return connection.close(CLOSE_CODES.forbidden, "Identity is bound to another tenant");
    if (identity.peer === "runtime" && this.presence.refusesRevoked(identity)) return connection.close(CLOSE_CODES.revoked, "This runtime's credential was revoked");
    connection.setState(identity);
    if (identity.peer === "runtime") {
      this.runtime.connected(connection, identity, this.open.of("runtime"));
    } else {
      this.send(connection, { type: "runtime", runtime: this.presence.state() });
      this.viewers.announcePresence();
    }
  }

  onClose(connection: Connection<ConnectionState>): void {
    this.open.changed();
    if (connection.state?.peer === "runtime") {
      const stillConnected = this.open.of("runtime").some((c) => c.id !== connection.id);
      if (stillConnected) return;
      this.presence.setOnline(false, null);
      this.audit.append({ kind: "runtime.disconnected", actorAddress: connection.state.address, detail: {} });
    } else {
      this.viewers.closed(connection.id);
      this.viewers.announcePresence(connection.id);
    }
  }

  onMessage(connection: Connection<ConnectionState>, raw: string | ArrayBuffer): void {
    const identity = connection.state;
    if (!identity) return connection.close(CLOSE_CODES.unauthorized, "Unauthenticated");
    if (identity.peer === "viewer") {
      const parsed = parseMessage(viewerMessageSchema, raw);
      if (!parsed.ok) return this.send(connection, { type: "error", code: "invalid_message", message: parsed.error });
      this.viewers.handle(connection, identity, parsed.value);
    } else {
      const parsed = parseMessage(runtimeMessageSchema, raw);
      if (!parsed.ok) return this.send(connection, { type: "error", code: "invalid_message", message: parsed.error });
      this.runtime.handle(connection, parsed.value);
    }
  }

  /** Live events go only to viewers that have had their replay (the replay ends where they begin). */
  private broadcastEvents(events: TranscriptEvent[]): void {
    this.broadcastToViewers({ type: "events", events, replay: false, lastSeq: events[events.length - 1]!.seq }, undefined, true);
  }

  private broadcastToViewers(message: ViewerBoundMessage, exceptConnectionId?: string, syncedOnly = false): void {
    const frame = JSON.stringify(message);
    for (const connection of this.open.of("viewer")) {
      if (connection.id === exceptConnectionId || (syncedOnly && !connection.state?.synced)) continue;
      try {
        connection.send(frame);
      } catch {
        // A viewer that went away mid-send is cleaned up by onClose.
      }
    }
  }

  private send(connection: Connection, message: ViewerBoundMessage | RuntimeBoundMessage): void {
    try {
      connection.send(JSON.stringify(message));
    } catch {
      // The peer disconnected; it resyncs (viewer) or gets redelivery (runtime) on reconnect.
    }
  }
}
