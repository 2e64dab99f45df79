import { Server, type Connection, type ConnectionContext } from "partyserver";
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  checkinRequestSchema,
  COMMAND_OUTCOMES,
  DEFAULT_CHECKIN_INTERVAL_MS,
  describeZodError,
  parseMessage,
  runtimeMessageSchema,
  viewerMessageSchema,
  type CheckinRequest,
  type FullCheckinResponse,
  type CommandResult,
  type DispatchedCommand,
  type OutputChunk,
  type RuntimeBoundMessage,
  type RuntimeMessage,
  type RuntimeState,
  type Timings,
  type TranscriptEvent,
  type TruncationReason,
  type ViewerBoundMessage,
  type ViewerMessage,
  type Viewer,
} from "../../../protocol/messages";
import { approvalRule } from "../../../protocol/approvals";
import {
  lifecycleRequestSchema,
  readPeerIdentity,
  SESSION_CLOSE_CODES,
  SESSION_PATHS,
  type VerifiedPeerIdentity as PeerIdentity,
} from "../../../protocol/session-contract";
import { ApprovalFlow, eligibleApprovers } from "./approval-flow";
import { TokenBucket } from "./token-bucket";
import { checkinHttpAnswer, COMPACT_CHECKIN_KEY, compactAnswersSetting } from "./checkin-answer";
import { estimateFromCheckinSample, estimateFromEcho, estimateFromOneWay, RuntimeClock } from "./runtime-clock";
import { onPlacement, type PlacementHost } from "./placement";
import { PolicyCopy } from "./policy-copy";
import { TranscriptReplay } from "./replay";
import { AuditLog } from "./audit-log";
import { RuntimeUpdates } from "./runtime-updates";
import type { SessionEnv } from "./env";
import { migrate } from "./schema";
import { SequenceFlow, type SequenceStepRow } from "./sequence-flow";

/** How long a check-in may take to arrive (the runtime's request timeout): bounds a one-way clock estimate. */
const CHECKIN_MAX_TRANSIT_MS = 15_000;
/** Refused runtime messages audited per instance, so a misbehaving runtime cannot flood the chain. */
const MAX_AUDITED_REFUSALS = 200;

/**
 * How long past a command's own time limit an online runtime may take to
 * report it (kill grace, pipe drain, an outbox flush after reconnecting).
 */
const RESULT_GRACE_MS = 2 * DEFAULT_CHECKIN_INTERVAL_MS + 30_000;

/**
 * When an online runtime has had every chance to report a command: its time
 * limit after dispatch, or the moment the runtime came back online, plus the
 * grace. Bindings: online_since, grace.
 */
const RESULT_DEADLINE_SQL = "MAX(COALESCE(dispatched_at, created_at) + timeout_ms, ?) + ?";

/** Commands running at once on one endpoint, not counting those marked to run alongside. */
const MAX_RUNNING_COMMANDS = 1;
/** Check-ins per endpoint: a burst (a runtime draining its outbox) and then one every few seconds. */
const CHECKIN_BUCKET = { capacity: 10, refillPerSecond: 0.5 } as const;
const CHECKIN_RETRY_AFTER_S = 5;
/** Per viewer connection: a token bucket, in message "costs" (a replay costs more than a run). */
const VIEWER_BUCKET = { capacity: 40, refillPerSecond: 10 } as const;
const VIEWER_MESSAGE_COST: Record<ViewerMessage["type"], number> = { sync: 10, history: 10, run: 1, run_sequence: 2, cancel: 1, reissue_approval: 1, sequence_action: 1 };

export const CLOSE_CODES = SESSION_CLOSE_CODES;

type ConnectionState = PeerIdentity & {
  /** Runtime: when it said hello (only then is work dispatched to it). */
  helloAt?: number;
  /** Viewer: has had its replay, so live events continue it without a gap or overlap. */
  synced?: boolean;
};

type CommandRow = {
  id: string;
  request_id: string;
  text: string;
  shell: DispatchedCommand["shell"];
  timeout_ms: number;
  requested_by_id: string;
  requested_by_name: string;
  sequence_id: string | null;
  sequence_name: string | null;
  step_index: number;
  step_count: number;
  stop_on_failure: number;
  not_before: number | null;
  expires_at: number | null;
  cancel_requested: number;
  status: string;
  created_at: number;
  dispatched_at: number | null;
  started_at: number | null;
  /** The start time as the runtime's clock read it; started_at is it in server time (ADR 0017). */
  runtime_started_at: number | null;
  clock_offset_ms: number | null;
  clock_uncertainty_ms: number | null;
  finished_at: number | null;
  received_at: number | null;
  output_bytes: number;
  truncated: number;
  alongside: number;
  error: string | null;
  idempotent: number;
  retry_of: string | null;
  resolution: SequenceStepRow["resolution"];
};

type RunRequest = Extract<ViewerMessage, { type: "run" | "run_sequence" }>;

type EventBody<K extends TranscriptEvent["kind"]> = Omit<Extract<TranscriptEvent, { kind: K }>, "seq" | "at" | "kind">;

/**
 * One per enrolled endpoint, addressed by endpoint id. A small state machine:
 * each message type has exactly one handler; every state change appends to
 * the event log, which is what viewers render and replay after reconnecting.
 */
export class EndpointSession extends Server<Cloudflare.Env & SessionEnv> {
  static options = { hibernate: true };

  private runQueue: Promise<void> = Promise.resolve();
  private readonly refusalsAudited = new Set<string>();
  private readonly replay = new TranscriptReplay(this.ctx.storage.sql);
  private readonly policyCopy = new PolicyCopy(this.ctx.storage.sql, () => ({ db: this.env.DB, endpointId: this.name }));
  /** Per viewer connection id: its rate-limit bucket (in memory: a hibernation wake starts it full). */
  private readonly viewerBuckets = new Map<string, TokenBucket>();
  private readonly checkinBucket = new TokenBucket(CHECKIN_BUCKET.capacity, CHECKIN_BUCKET.refillPerSecond);

  /** The alarm time last set by this instance, so an unchanged one is not written again. */
  private alarmAt: number | undefined;

  /** Events appended during the current message, sent together when it is handled. */
  private readonly pendingEvents: TranscriptEvent[] = [];

  /** Appends are local and synchronous (never waiting on D1); an alarm replicates them. */
  private readonly audit = new AuditLog(
    this.ctx.storage.sql,
    () => ({ endpointId: this.name, orgId: this.getRuntimeValue("org_id") ?? null }),
    () => this.scheduleAlarm(),
  );

  private readonly runtimeUpdates = new RuntimeUpdates({
    sql: this.ctx.storage.sql,
    audit: this.audit,
    directory: () => ({ db: this.env.DB, endpointId: this.name, orgId: this.getRuntimeValue("org_id") ?? null }),
    waitUntil: (promise) => this.ctx.waitUntil(promise),
  });

  private readonly approvals = new ApprovalFlow({
    endpointId: () => this.name,
    sql: this.ctx.storage.sql,
    env: () => this.env,
    audit: this.audit,
    appendEvent: (kind, body) => this.appendEvent(kind, body),
    getCommand: (commandId) => this.getCommand(commandId),
    policy: () => this.policyCopy.current(),
    release: (commandId) => {
      this.ctx.storage.sql.exec("UPDATE commands SET status = 'queued' WHERE id = ? AND status = 'pending_approval'", commandId);
      this.dispatchQueued();
    },
    finish: (commandId, status, error) => this.finishCommand(this.getCommand(commandId)!, { status, exitCode: null, error, timings: null }),
    waitUntil: (promise) => this.ctx.waitUntil(promise),
    scheduleAlarm: () => this.scheduleAlarm(),
  });

  /** The runtime's clock as measured here: every time the runtime reports is converted to server time with it. */
  private readonly runtimeClock = new RuntimeClock({ get: (key) => this.getRuntimeValue(key), set: (key, value) => this.setRuntimeValue(key, value) });

  private readonly placementHost: PlacementHost = {
    getRuntimeValue: (key) => this.getRuntimeValue(key) ?? undefined,
    setRuntimeValue: (key, value) => this.setRuntimeValue(key, value),
    audit: (entry) => this.audit.append(entry),
    platformJurisdiction: () => (this.ctx.id as { jurisdiction?: string }).jurisdiction,
    preloadPolicy: () => this.policyCopy.current() ? Promise.resolve(null) : this.policyCopy.reload(),
  };
  private readonly sequences = new SequenceFlow({
    sql: this.ctx.storage.sql,
    appendEvent: (kind, body) => this.appendEvent(kind, body),
    audit: (entry) => this.audit.append(entry),
    skip: (commandId, error, by) => this.finishCommand(this.getCommand(commandId)!, { status: "skipped", exitCode: null, error, timings: null, ...(by ? { by } : {}) }),
  });

  onStart(): void {
    migrate(this.ctx.storage.sql);
  }

  /** HTTP from the edge only: runtime check-ins and the public approval page's calls. */
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
    if (identity.peer === "directory") {
      if (request.method !== "POST") return Response.json({ error: "Not found" }, { status: 404 });
      if (!this.bindTenant(identity)) return Response.json({ error: "Identity is bound to another tenant" }, { status: 403 });
      if (path === SESSION_PATHS.policy) return this.onPolicyRefresh(identity);
      if (path === SESSION_PATHS.lifecycle) return this.onLifecycle(body, identity);
      if (path === SESSION_PATHS.placement) return onPlacement(this.placementHost, body, identity);
      if (path === SESSION_PATHS.runtimeTarget) return this.onRuntimeTargetRefresh(identity);
      return Response.json({ error: "Not found" }, { status: 404 });
    }
    if (identity.peer === "runtime") {
      if (request.method !== "POST" || path !== SESSION_PATHS.checkin) return Response.json({ error: "Not found" }, { status: 404 });
      const parsed = checkinRequestSchema.safeParse(body);
      if (!parsed.success) return Response.json({ error: `Invalid check-in: ${describeZodError(parsed.error)}` }, { status: 400 });
      if (!this.bindTenant(identity)) return Response.json({ error: "Identity is bound to another tenant" }, { status: 403 });
      if (this.refusesRevoked(identity)) return Response.json({ error: "This runtime's credential was revoked; enroll again" }, { status: 403 });
      if (!this.checkinBucket.take(Date.now())) {
        return Response.json({ error: "Checking in too often; wait before the next check-in" }, { status: 429, headers: { "Retry-After": String(CHECKIN_RETRY_AFTER_S) } });
      }
      return checkinHttpAnswer(this.onCheckin(parsed.data, identity), parsed.data, this.getRuntimeValue(COMPACT_CHECKIN_KEY));
    }
    if (request.method !== "POST") return Response.json({ error: "Not found" }, { status: 404 });
    if (path === SESSION_PATHS.approvalView) return respond(this.approvals.view(body, identity));
    if (path === SESSION_PATHS.approvalDecide) return respond(this.approvals.decide(body, identity));
    return Response.json({ error: "Not found" }, { status: 404 });
  }

  // ---------------------------------------------------------------------------
  // The console's calls as the tenant directory.

  private async onPolicyRefresh(identity: PeerIdentity): Promise<Response> {
    const policy = await this.policyCopy.reload();
    if (!policy) return Response.json({ error: "The client's policy could not be read; the session keeps its previous copy" }, { status: 503 });
    this.audit.append({
      kind: "policy.updated",
      actorId: identity.userId,
      actorName: identity.userName,
      detail: { mode: policy.mode, version: policy.version, approvers: policy.approvers.length, allowedCommands: policy.allowedCommands.length },
    });
    return Response.json({ version: policy.version });
  }

  /** An admin saved the tenant's runtime target: re-read it, audit a change, offer it now if the runtime is idle. */
  private async onRuntimeTargetRefresh(identity: PeerIdentity): Promise<Response> {
    const reloaded = await this.runtimeUpdates.reload();
    if (!reloaded) return Response.json({ error: "The runtime target could not be read; the session keeps its previous copy" }, { status: 503 });
    if (reloaded.changed) {
      this.audit.append({
        kind: "runtime.update_target",
        actorId: identity.userId,
        actorName: identity.userName,
        actorAddress: identity.address,
        detail: { version: reloaded.target?.version ?? null, allowDowngrade: reloaded.target?.allowDowngrade ?? false },
      });
    }
    this.offerRuntimeUpdate();
    return Response.json({ version: reloaded.target?.version ?? null });
  }

  // ---------------------------------------------------------------------------
  // Endpoint lifecycle, as an admin decided in the console (the directory in D1
  // stops authenticating a revoked credential; this makes it take effect now).

  private onLifecycle(body: unknown, identity: PeerIdentity): Response {
    const parsed = lifecycleRequestSchema.safeParse(body);
    if (!parsed.success) return Response.json({ error: describeZodError(parsed.error) }, { status: 400 });
    const now = Date.now();
    const actor = { actorId: identity.userId, actorName: identity.userName, actorAddress: identity.address };
    const decommissioned = Boolean(this.getRuntimeValue("decommissioned_at"));
    switch (parsed.data.action) {
      case "revoke":
        this.setRuntimeValue("revoked_at", String(now));
        this.disconnectRuntime("This runtime's credential was revoked");
        this.audit.append({ kind: "runtime.revoked", ...actor, detail: {} });
        break;
      case "reinstate":
        if (decommissioned) return Response.json({ error: "The endpoint was decommissioned; it cannot take a runtime again" }, { status: 409 });
        this.setRuntimeValue("revoked_at", "");
        this.audit.append({ kind: "runtime.reinstated", ...actor, detail: {} });
        break;
      case "decommission": {
        if (decommissioned) break;
        this.setRuntimeValue("revoked_at", String(now));
        this.setRuntimeValue("decommissioned_at", String(now));
        this.disconnectRuntime("The endpoint was decommissioned");
        const by = { userId: identity.userId ?? "directory", name: identity.userName ?? "an admin" };
        for (const command of this.sqlAll<CommandRow>("SELECT * FROM commands WHERE status IN ('queued', 'pending_approval') ORDER BY created_at")) {
          if (command.status === "pending_approval") this.approvals.withdraw(command.id, by, identity.address);
          this.finishCommand(command, { status: "cancelled", exitCode: null, error: "The endpoint was decommissioned before it ran", timings: null });
        }
        this.audit.append({ kind: "endpoint.decommissioned", ...actor, detail: {} });
        break;
      }
    }
    this.broadcastToViewers({ type: "runtime", runtime: this.runtimeState() });
    this.scheduleAlarm();
    return Response.json({ runtime: this.runtimeState() });
  }

  /**
   * Whether a runtime identity falls under a revoke. One the edge authenticated
   * after the revoke holds a new credential (the old one no longer exists in the
   * directory): the session takes it back even if the console's "reinstate"
   * never arrived.
   */
  private refusesRevoked(identity: PeerIdentity): boolean {
    const revokedAt = Number(this.getRuntimeValue("revoked_at") || 0);
    if (!revokedAt) return false;
    if (this.getRuntimeValue("decommissioned_at") || !identity.authenticatedAt || identity.authenticatedAt <= revokedAt) return true;
    this.setRuntimeValue("revoked_at", "");
    this.audit.append({ kind: "runtime.reinstated", actorAddress: identity.address, detail: { reason: "a re-enrolled runtime connected with a new credential" } });
    return false;
  }

  private disconnectRuntime(reason: string): void {
    this.setRuntimeValue("checkin_offline_at", "");
    for (const runtime of this.getConnections<ConnectionState>("runtime")) runtime.close(CLOSE_CODES.revoked, reason);
    if (this.runtimeState().online || this.getRuntimeValue("online_since")) this.setRuntimeOnline(false, null);
  }
  /**
   * The HTTPS path for runtimes behind networks that block WebSockets: the same
   * idempotent result handling and due-command rules as the socket.
   */
  private onCheckin(checkin: CheckinRequest, identity: PeerIdentity): FullCheckinResponse {
    const now = Date.now();
    const wasOnline = this.runtimeState().online;
    const intervalMs = DEFAULT_CHECKIN_INTERVAL_MS;
    if (checkin.clockSample) this.runtimeClock.record(estimateFromCheckinSample(checkin.clockSample, now));
    // Before any sample: the request's own send time, uncertain by as long as a check-in may take to arrive.
    else if (!this.runtimeClock.current()) this.runtimeClock.record(estimateFromOneWay(checkin.clock, now, CHECKIN_MAX_TRANSIT_MS));
    this.setRuntimeValue("checkin_offline_at", String(now + intervalMs * 2.5));
    this.setRuntimeValue("checkin_at", String(now));
    // A runtime describes itself on its first check-in per process only (metered links).
    if (checkin.runtimeVersion !== undefined) this.runtimeUpdates.report(checkin.runtimeVersion, checkin.platform);
    const compactSetting = compactAnswersSetting(checkin);
    if (compactSetting !== undefined) this.setRuntimeValue(COMPACT_CHECKIN_KEY, compactSetting);
    for (const status of checkin.updateStatus) this.runtimeUpdates.onStatus(status, identity.address);
    if (!wasOnline) {
      this.setRuntimeOnline(true, "checkin");
      // As on a socket connect: refresh the policy copy now, in the background, so no command waits for it.
      const refresh = this.policyCopy.reloadIfStale();
      if (refresh) this.ctx.waitUntil(refresh);
      this.audit.append({ kind: "runtime.connected", actorAddress: identity.address, detail: { transport: "checkin" } });
    } else {
      this.touchLastSeen();
    }
    // Viewers show when the next check-in is due; each check-in moves it.
    if (wasOnline) this.broadcastToViewers({ type: "runtime", runtime: this.runtimeState() });
    for (const { commandId, startedAt } of checkin.started) this.onRuntimeStarted(commandId, startedAt, identity.address);
    // A refused result is not acknowledged: the runtime keeps it, and the session keeps nothing of it.
    const acks = checkin.results.filter((result) => this.acceptResult(result, identity.address)).map((r) => r.commandId);
    // Dispatched but unreported work is offered again: the runtime's journal
    // answers a repeat with its stored result, never a second run.
    const redeliver = this.sqlAll<CommandRow>(
      "SELECT * FROM commands WHERE status IN ('dispatched', 'running') AND dispatched_at < ? ORDER BY created_at, step_index",
      now - intervalMs,
    );
    const due = this.currentRuntime() ? [] : this.takeDueCommands(now);
    const cancel = this.sqlAll<{ id: string }>("SELECT id FROM commands WHERE cancel_requested = 1 AND status IN ('dispatched', 'running')").map((r) => r.id);
    this.scheduleAlarm();
    const update = this.currentRuntime() ? null : this.runtimeUpdates.offer(this.hasUnfinishedDispatch(), "checkin", identity.address);
    return {
      acks,
      dispatch: [...redeliver, ...due].map((command) => this.toDispatched(command)),
      cancel,
      nextCheckinMs: intervalMs,
      serverTime: now,
      ...(update ? { update } : {}),
    };
  }

  async onAlarm(): Promise<void> {
    this.alarmAt = undefined;
    const now = Date.now();
    this.settleCheckinLiveness(now);
    this.approvals.expireDue(now);
    this.timeOutUnreportedCommands(now);
    this.dispatchQueued();
    await this.approvals.deliverDue(now);
    if (this.audit.replicationDue()) {
      const outcome = await this.audit.replicate(this.env.DB, this.env.AUDIT_MAC_KEY);
      if ("failed" in outcome) console.error(`audit replication failed, retrying in ${Math.round(outcome.retryInMs)} ms: ${outcome.failed}`);
    }
    this.scheduleAlarm();
  }

  /** A check-in runtime that missed its check-ins goes offline, unless its socket is keeping it online. */
  private settleCheckinLiveness(now: number): void {
    const offlineAt = Number(this.getRuntimeValue("checkin_offline_at") || 0);
    if (offlineAt === 0 || now < offlineAt) return;
    this.setRuntimeValue("checkin_offline_at", "");
    if (this.currentRuntime()) return;
    this.setRuntimeOnline(false, null);
    this.audit.append({ kind: "runtime.disconnected", detail: { transport: "checkin", reason: "missed its check-ins" } });
  }

  /**
   * Work the runtime holds but never reported, although it has been online
   * well past the command's time limit (its journal would have answered a
   * redelivery by now), ends as timed out. While the runtime is offline a
   * result may still be waiting in its outbox, so nothing is given up then.
   */
  private timeOutUnreportedCommands(now: number): void {
    if (!this.runtimeState().online) return;
    const overdue = this.sqlAll<CommandRow>(
      `SELECT * FROM commands WHERE status IN ('dispatched', 'running') AND ${RESULT_DEADLINE_SQL} <= ?`,
      ...this.resultDeadlineBindings(),
      now,
    );
    for (const command of overdue) {
      this.finishCommand(command, {
        status: "timed_out",
        exitCode: null,
        error: `The endpoint did not report a result within ${Math.round((command.timeout_ms + RESULT_GRACE_MS) / 1000)} s although it was online`,
        timings: null,
      });
    }
  }

  /** Bindings for RESULT_DEADLINE_SQL: a runtime that just came back online gets the full grace to report. */
  private resultDeadlineBindings(): [number, number] {
    return [Number(this.getRuntimeValue("online_since") || 0), RESULT_GRACE_MS];
  }

  /** The first authenticated peer binds this session to its tenant; every later one must match. */
  private bindTenant(identity: PeerIdentity): boolean {
    const boundOrg = this.getRuntimeValue("org_id");
    if (!boundOrg) this.setRuntimeValue("org_id", identity.orgId);
    return !boundOrg || boundOrg === identity.orgId;
  }

  getConnectionTags(_connection: Connection, context: ConnectionContext): string[] {
    const identity = readPeerIdentity(context.request);
    return identity ? [identity.peer] : [];
  }

  onConnect(connection: Connection<ConnectionState>, context: ConnectionContext): void {
    const identity = readPeerIdentity(context.request);
    if (!identity) {
      connection.close(CLOSE_CODES.unauthorized, "Unauthenticated");
      return;
    }
    if (identity.endpointId !== this.name) {
      connection.close(CLOSE_CODES.forbidden, "Identity is bound to another endpoint");
      return;
    }
    if (!this.bindTenant(identity)) {
      connection.close(CLOSE_CODES.forbidden, "Identity is bound to another tenant");
      return;
    }
    if (identity.peer === "runtime" && this.refusesRevoked(identity)) {
      connection.close(CLOSE_CODES.revoked, "This runtime's credential was revoked");
      return;
    }
    connection.setState(identity);
    if (identity.peer === "runtime") {
      for (const other of this.getConnections<ConnectionState>("runtime")) {
        if (other.id !== connection.id) other.close(CLOSE_CODES.replaced, "Replaced by a newer runtime connection");
      }
      this.setRuntimeValue("checkin_offline_at", ""); // the socket now says whether it is online
      this.setRuntimeOnline(true, "websocket");
      const refresh = this.policyCopy.reloadIfStale();
      if (refresh) this.ctx.waitUntil(refresh);
      const targetRefresh = this.runtimeUpdates.reloadIfStale();
      if (targetRefresh) this.ctx.waitUntil(targetRefresh.then(() => this.offerRuntimeUpdate()));
      this.audit.append({ kind: "runtime.connected", actorAddress: identity.address, detail: { transport: "websocket" } });
      this.send(connection, { type: "clock", serverTime: Date.now() });
    } else {
      this.send(connection, { type: "runtime", runtime: this.runtimeState() });
      this.broadcastPresence();
    }
  }

  onClose(connection: Connection<ConnectionState>): void {
    if (connection.state?.peer === "runtime") {
      const stillConnected = [...this.getConnections("runtime")].some((c) => c.id !== connection.id);
      if (!stillConnected) {
        this.setRuntimeOnline(false, null);
        this.audit.append({ kind: "runtime.disconnected", actorAddress: connection.state.address, detail: {} });
      }
    } else {
      this.viewerBuckets.delete(connection.id);
      this.broadcastPresence(connection.id);
    }
  }

  onMessage(connection: Connection<ConnectionState>, raw: string | ArrayBuffer): void {
    const identity = connection.state;
    if (!identity) {
      connection.close(CLOSE_CODES.unauthorized, "Unauthenticated");
      return;
    }
    if (identity.peer === "viewer") {
      const parsed = parseMessage(viewerMessageSchema, raw);
      if (!parsed.ok) return this.sendViewerError(connection, "invalid_message", parsed.error);
      if (!this.takeViewerTokens(connection.id, VIEWER_MESSAGE_COST[parsed.value.type])) {
        const requestId = "requestId" in parsed.value ? parsed.value.requestId : undefined;
        return this.sendViewerError(connection, "rate_limited", "Too many messages from this page; wait a moment and try again.", requestId);
      }
      this.handleViewerMessage(connection, identity, parsed.value);
    } else {
      const parsed = parseMessage(runtimeMessageSchema, raw);
      if (!parsed.ok) return this.send(connection, { type: "error", code: "invalid_message", message: parsed.error });
      this.handleRuntimeMessage(connection, parsed.value);
    }
  }

  // ---------------------------------------------------------------------------
  // Viewer (technician console) messages

  private handleViewerMessage(connection: Connection, identity: PeerIdentity, message: ViewerMessage): void {
    switch (message.type) {
      case "sync":
        return this.onViewerSync(connection as Connection<ConnectionState>, message.afterSeq);
      case "history":
        return this.onViewerHistory(connection, message.beforeSeq);
      case "run":
        return this.onViewerRun(connection, identity, message);
      case "cancel":
        return this.onViewerCancel(connection, identity, message.commandId);
      case "reissue_approval":
        return this.onViewerReissue(connection, identity, message.commandId);
      case "run_sequence":
        return this.onViewerRun(connection, identity, message);
      case "sequence_action":
        return this.onViewerSequenceAction(connection, identity, message.sequenceId, message.action);
    }
  }

  /** A token bucket per viewer connection: one page cannot make the session replay its history in a loop. */
  private takeViewerTokens(connectionId: string, cost: number): boolean {
    let bucket = this.viewerBuckets.get(connectionId);
    if (!bucket) this.viewerBuckets.set(connectionId, (bucket = new TokenBucket(VIEWER_BUCKET.capacity, VIEWER_BUCKET.refillPerSecond)));
    return bucket.take(Date.now(), cost);
  }

  /**
   * Replays what the viewer missed, then marks it synced so live events start
   * exactly where the replay ended (withheld until then: applied first, they
   * would make the viewer skip the replay).
   */
  private onViewerSync(connection: Connection<ConnectionState>, afterSeq: number): void {
    this.flushEvents(); // events already broadcast to synced viewers must not be replayed and sent live again
    for (const frame of this.replay.catchUp(afterSeq)) this.send(connection, frame);
    connection.setState({ ...connection.state!, synced: true });
  }

  /** The next page of older commands, for a viewer scrolling back past its window. */
  private onViewerHistory(connection: Connection, beforeSeq: number): void {
    for (const frame of this.replay.history(beforeSeq)) this.send(connection, frame);
  }

  /**
   * Runs are handled one at a time, in arrival order: the first one may have
   * to read the client's policy from the directory before the session has a copy.
   */
  private onViewerRun(connection: Connection, identity: PeerIdentity, message: RunRequest): void {
    this.runQueue = this.runQueue
      .then(() => this.acceptRun(connection, identity, message))
      .catch((error: unknown) => {
        console.error("run failed", error);
        this.sendViewerError(connection, "internal", "The command could not be queued; try again", message.requestId);
      });
  }

  /**
   * A single command is a one-step request; a sequence is several steps run in
   * order. Nothing is stored unless every step can be honoured: a known policy,
   * and for steps that need consent a reason and someone other than the
   * requester to ask.
   */
  private async acceptRun(connection: Connection, identity: PeerIdentity, message: RunRequest): Promise<void> {
    if (!identity.canRun || !identity.userId) {
      return this.sendViewerError(connection, "forbidden", "Your role cannot run commands", message.requestId);
    }
    if (this.getRuntimeValue("decommissioned_at")) {
      return this.sendViewerError(connection, "forbidden", "This endpoint was decommissioned: nothing new runs on it. Its transcript and audit trail stay readable.", message.requestId);
    }
    // A sequence's steps are stored as "<requestId>#<step>"; its first step marks the request as seen.
    const existing = this.sqlOne<{ id: string }>("SELECT id FROM commands WHERE request_id IN (?, ?)", message.requestId, `${message.requestId}#0`);
    if (existing) return; // a resend after reconnect; the first copy is already in the log
    // Fail closed: without the client's policy nobody can say what needs consent.
    const policy = this.policyCopy.current() ?? (await this.policyCopy.reload());
    if (!policy) {
      return this.sendViewerError(
        connection,
        "policy_unavailable",
        "The client's approval policy could not be read, so nothing was queued. Try again in a minute.",
        message.requestId,
      );
    }
    const requestedBy = { userId: identity.userId, name: identity.userName ?? identity.userId };
    const isSequence = message.type === "run_sequence";
    const steps = isSequence ? message.steps : [{ text: message.text, shell: message.shell, idempotent: false }];
    // The policy's reason first (it is what the client agreed to); a flag alone says so.
    const rules = steps.map(({ text }) => approvalRule(policy, text) ?? (message.privileged ? "flagged by the technician" : null));
    const approvers = eligibleApprovers(policy, identity.userEmail);
    if (rules.some((rule) => rule !== null)) {
      if (!message.reason) {
        return this.sendViewerError(connection, "invalid_message", "This needs the client's approval: give a reason the client can read.", message.requestId);
      }
      if (approvers.length === 0) {
        return this.sendViewerError(
          connection,
          "no_approvers",
          policy.approvers.length
            ? "This needs the client's approval, and the only approver on the client's policy is you: someone else must approve it. Ask an admin to add the client's own approver."
            : "This needs the client's approval, but the client's policy names no approver. Ask an admin to add one.",
          message.requestId,
        );
      }
    }
    const sequence = isSequence
      ? { id: `seq_${crypto.randomUUID()}`, name: message.name, steps: steps.length, stopOnFailure: message.stopOnFailure }
      : null;
    const notBefore = isSequence ? message.notBefore : null;
    const expiresAt = isSequence ? message.expiresAt : null;
    const now = Date.now();

    for (const [step, { text, shell, idempotent }] of steps.entries()) {
      const rule = rules[step] ?? null;
      const commandId = `cmd_${crypto.randomUUID()}`;
      const requestId = isSequence ? `${message.requestId}#${step}` : message.requestId;
      this.ctx.storage.sql.exec(
        `INSERT INTO commands (id, request_id, text, shell, timeout_ms, requested_by_id, requested_by_name, status, created_at,
                               sequence_id, sequence_name, step_index, step_count, stop_on_failure, not_before, expires_at, alongside, idempotent)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        commandId,
        requestId,
        text,
        shell,
        message.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
        requestedBy.userId,
        requestedBy.name,
        rule ? "pending_approval" : "queued",
        now,
        sequence?.id ?? null,
        sequence?.name ?? null,
        step,
        steps.length,
        sequence?.stopOnFailure ? 1 : 0,
        notBefore,
        expiresAt,
        !isSequence && message.alongside ? 1 : 0,
        isSequence && idempotent ? 1 : 0,
      );
      this.appendEvent("command.queued", {
        commandId,
        requestId,
        text,
        shell,
        requestedBy,
        sequence: sequence ? { ...sequence, step } : null,
        notBefore,
        expiresAt,
        ...(!isSequence && message.alongside ? { alongside: true } : {}),
        ...(isSequence && idempotent ? { idempotent: true } : {}),
      });
      this.audit.append({
        kind: "command.requested",
        actorId: requestedBy.userId,
        actorName: requestedBy.name,
        actorAddress: identity.address,
        commandId,
        status: rule ? "pending_approval" : "queued",
        detail: { text, shell, reason: message.reason, sequence: sequence?.name ?? null, step, notBefore, expiresAt },
      });
      if (rule) {
        this.approvals.request({
          command: this.getCommand(commandId)!,
          reason: message.reason,
          rule,
          approvers,
          requester: requestedBy,
          requesterAddress: identity.address,
          linkTtlHours: policy.linkTtlHours,
          now,
        });
      }
    }
    if (rules.some((rule) => rule !== null)) this.approvals.kickDelivery();
    this.dispatchQueued();
  }

  /** Retry / skip / abort for a sequence paused on an interrupted step; anything else is refused and audited. */
  private onViewerSequenceAction(connection: Connection, identity: PeerIdentity, sequenceId: string, action: "retry" | "skip" | "abort"): void {
    if (!identity.canRun || !identity.userId) {
      return this.sendViewerError(connection, "forbidden", "Your role cannot change a sequence");
    }
    const by = { userId: identity.userId, name: identity.userName ?? identity.userId };
    const refused = this.sequences.act(sequenceId, action, by, identity.address);
    if (refused) return this.sendViewerError(connection, refused.refused, refused.message);
    this.dispatchQueued();
  }

  private onViewerReissue(connection: Connection, identity: PeerIdentity, commandId: string): void {
    if (identity.role !== "admin" || !identity.userId) {
      return this.sendViewerError(connection, "forbidden", "Only an admin can re-issue approval links");
    }
    const refused = this.approvals.reissue(commandId, { userId: identity.userId, name: identity.userName ?? identity.userId }, identity.address);
    if (refused) this.sendViewerError(connection, "conflict", refused);
  }

  private onViewerCancel(connection: Connection, identity: PeerIdentity, commandId: string): void {
    if (!identity.canRun || !identity.userId) {
      return this.sendViewerError(connection, "forbidden", "Your role cannot cancel commands");
    }
    const command = this.getCommand(commandId);
    if (!command) return this.sendViewerError(connection, "not_found", `No command ${commandId}`);
    const by = { userId: identity.userId, name: identity.userName ?? identity.userId };
    if (["pending_approval", "queued", "dispatched", "running"].includes(command.status)) {
      this.audit.append({ kind: "command.cancel_requested", actorId: by.userId, actorName: by.name, actorAddress: identity.address, commandId, status: command.status, detail: {} });
    }
    if (command.status === "pending_approval") {
      this.approvals.withdraw(commandId, by, identity.address);
      this.finishCommand(command, { status: "cancelled", exitCode: null, error: `Approval request withdrawn by ${by.name}`, timings: null, by });
      return;
    }
    if (command.status === "queued") {
      this.finishCommand(command, { status: "cancelled", exitCode: null, error: `Cancelled by ${by.name} before it was sent`, timings: null, by });
      return;
    }
    if (command.status === "dispatched" || command.status === "running") {
      this.ctx.storage.sql.exec("UPDATE commands SET cancel_requested = 1 WHERE id = ?", commandId);
      this.appendEvent("command.cancel_requested", { commandId, by });
      const runtime = this.currentRuntime();
      if (runtime) this.send(runtime, { type: "cancel", commandId });
      return;
    }
    this.sendViewerError(connection, "conflict", `Command already ${command.status}`);
  }

  // ---------------------------------------------------------------------------
  // Runtime messages

  private handleRuntimeMessage(connection: Connection<ConnectionState>, message: RuntimeMessage): void {
    switch (message.type) {
      case "hello":
        return this.onRuntimeHello(connection, message);
      case "update_status": {
        const refused = this.runtimeUpdates.onStatus(message.status, connection.state?.address ?? null);
        if (refused) this.send(connection, { type: "error", code: "refused", message: `Update status refused: ${refused}` });
        return;
      }
      case "clock":
        return this.onRuntimeClock(message);
      case "started":
        return this.onRuntimeStarted(message.commandId, message.startedAt, connection.state?.address ?? null);
      case "output":
        return this.onRuntimeOutput(message.commandId, message.index, message.chunk, connection.state?.address ?? null);
      case "result":
        return this.onRuntimeResult(connection, message.result);
    }
  }

  private onRuntimeHello(connection: Connection<ConnectionState>, hello: Extract<RuntimeMessage, { type: "hello" }>): void {
    connection.setState({ ...connection.state!, helloAt: Date.now() });
    this.runtimeUpdates.report(hello.runtimeVersion, hello.platform);
    this.touchLastSeen();
    // Redeliver everything not yet finished: the runtime's journal turns a
    // repeat into a resend of the stored result, never a second run.
    for (const command of this.sqlAll<CommandRow>("SELECT * FROM commands WHERE status IN ('dispatched', 'running') ORDER BY created_at")) {
      this.send(connection, { type: "dispatch", command: this.toDispatched(command) });
    }
    this.dispatchQueued();
    this.offerRuntimeUpdate();
  }

  /** Offers the tenant's target to the socket runtime when it differs and nothing is running (runtime-updates.ts decides). */
  private offerRuntimeUpdate(): void {
    const runtime = this.currentRuntime();
    if (!runtime?.state?.helloAt) return;
    const offer = this.runtimeUpdates.offer(this.hasUnfinishedDispatch(), runtime.id, runtime.state.address ?? null);
    if (offer) this.send(runtime, { type: "update", offer });
  }

  private hasUnfinishedDispatch(): boolean {
    return (this.sqlOne<{ n: number }>("SELECT COUNT(*) AS n FROM commands WHERE status IN ('dispatched', 'running')")?.n ?? 0) > 0;
  }

  private onRuntimeClock(message: Extract<RuntimeMessage, { type: "clock" }>): void {
    // NTP-style: the runtime read its clock somewhere inside the exchange; half the round trip bounds the error.
    this.runtimeClock.record(estimateFromEcho(message.serverTime, message.runtimeTime, Date.now()));
  }

  /** Stores the runtime's start time converted to server time, with the raw time and the clock estimate used. */
  private recordRuntimeStart(commandId: string, reportedStartedAt: number): number {
    const { serverMs, clock } = this.runtimeClock.toServerTime(reportedStartedAt);
    this.ctx.storage.sql.exec(
      "UPDATE commands SET started_at = ?, runtime_started_at = ?, clock_offset_ms = ?, clock_uncertainty_ms = ? WHERE id = ?",
      serverMs,
      reportedStartedAt,
      clock?.offsetMs ?? null,
      clock?.uncertaintyMs ?? null,
      commandId,
    );
    return serverMs;
  }

  /**
   * The runtime may only report on work this session dispatched to it.
   * Repeats and late reports about finished work are legal and change nothing
   * ("finished"); a report about work never dispatched (still waiting for
   * approval or its window, or unknown) is refused and audited.
   */
  private reportable(commandId: string, message: "started" | "output" | "result", address: string | null): CommandRow | "finished" | "refused" {
    const command = this.getCommand(commandId);
    if (command && command.dispatched_at !== null) {
      if (command.status === "dispatched" || command.status === "running") return command;
      if (isFinal(command.status)) return "finished";
    }
    this.auditRefusal(commandId, command, message, address);
    return "refused";
  }

  private auditRefusal(commandId: string, command: CommandRow | undefined, message: string, address: string | null): void {
    const key = `${message}:${commandId}`;
    if (this.refusalsAudited.has(key) || this.refusalsAudited.size >= MAX_AUDITED_REFUSALS) return;
    this.refusalsAudited.add(key);
    const reason = command ? `the session never dispatched it (it is ${command.status})` : "the session has no such command";
    this.appendEvent("runtime.refused", { commandId: command ? command.id : null, message, reason });
    this.audit.append({
      kind: "runtime.refused",
      actorAddress: address,
      commandId: command ? command.id : null,
      status: command?.status ?? null,
      detail: { message, commandId, reason },
    });
  }

  private onRuntimeStarted(commandId: string, startedAt: number, address: string | null): void {
    const command = this.reportable(commandId, "started", address);
    if (typeof command === "string" || command.started_at !== null) return;
    const serverStartedAt = this.recordRuntimeStart(commandId, startedAt);
    this.ctx.storage.sql.exec("UPDATE commands SET status = 'running' WHERE id = ?", commandId);
    this.appendEvent("command.started", { commandId, startedAt: serverStartedAt });
  }

  private onRuntimeOutput(commandId: string, index: number, chunk: OutputChunk, address: string | null): void {
    const command = this.reportable(commandId, "output", address);
    if (typeof command === "string") return;
    this.storeOutput(command, index, chunk);
  }

  private onRuntimeResult(connection: Connection<ConnectionState>, result: CommandResult): void {
    if (this.acceptResult(result, connection.state?.address ?? null)) {
      this.send(connection, { type: "ack", commandId: result.commandId });
    } else {
      this.send(connection, { type: "error", code: "refused", message: `Result for ${result.commandId} refused: the session never dispatched it` });
    }
    this.touchLastSeen();
    this.dispatchQueued(); // the next step of a sequence may now be due
    this.offerRuntimeUpdate(); // held back while the command ran
  }

  /**
   * Stores a dispatched command's result; true when the runtime may drop it
   * (stored now or before). Idempotent for finished work; false, with nothing
   * changed, for work the session never dispatched.
   */
  private acceptResult(result: CommandResult, address: string | null): boolean {
    const command = this.reportable(result.commandId, "result", address);
    if (command === "refused") return false;
    if (command === "finished") return true;
    if (command.started_at === null) {
      // Short commands report only their result; it carries the start time.
      this.appendEvent("command.started", { commandId: command.id, startedAt: this.recordRuntimeStart(command.id, result.startedAt) });
    }
    // Streamed chunks lost in transit leave a gap before the tail; the tail still lands at its own indices.
    const tailStart = result.tailStartIndex ?? this.nextChunkIndex(command.id);
    const missingChunks = tailStart > this.storedChunkCount(command.id);
    if (missingChunks && !command.truncated) {
      this.appendEvent("command.truncated", { commandId: command.id, keptBytes: command.output_bytes, reason: "lost_in_transit" });
    }
    result.tail.forEach((chunk, offset) => this.storeOutput(this.getCommand(command.id)!, tailStart + offset, chunk));
    const stored = this.getCommand(command.id)!;
    if (result.truncated && !stored.truncated) {
      // The runtime stopped keeping output on the endpoint: say so, with what reached us.
      this.appendEvent("command.truncated", { commandId: command.id, keptBytes: stored.output_bytes, reason: "runtime_cap" });
    }
    const receivedAt = Date.now();
    this.ctx.storage.sql.exec(
      "UPDATE commands SET received_at = ?, finished_at = ?, duration_ms = ?, truncated = MAX(truncated, ?) WHERE id = ?",
      receivedAt,
      result.finishedAt,
      result.durationMs,
      result.truncated || missingChunks ? 1 : 0,
      command.id,
    );
    this.finishCommand(this.getCommand(command.id)!, {
      status: result.status,
      exitCode: result.exitCode,
      error: result.error,
      timings: this.computeTimings(command, result, receivedAt),
      ...(result.status === "cancelled" ? this.cancelledBy(command.id) : {}),
    });
    if (result.status === "interrupted") this.sequences.onInterrupted(this.getCommand(command.id)!);
    return true;
  }

  // ---------------------------------------------------------------------------
  // Commands

  /** Sends every due command to a connected runtime; check-in runtimes collect theirs in takeDueCommands. */
  private dispatchQueued(): void {
    const runtime = this.currentRuntime();
    if (runtime?.state?.helloAt) {
      for (const command of this.takeDueCommands(Date.now(), true)) this.send(runtime, { type: "dispatch", command: this.toDispatched(command) });
    } else {
      this.settleQueue(Date.now());
    }
    this.scheduleAlarm();
  }

  /**
   * Marks due commands dispatched, in the order they must run. A command is due
   * when it is queued, inside its window, and (in a sequence) every earlier step
   * has finished; steps after a failure in a stop-on-failure sequence are skipped.
   * Over the socket (`oneAtATime`), a command also waits until the ones before
   * it finished, unless it runs alongside; a check-in runtime gets them all, in
   * order, and runs them one after another itself.
   */
  private takeDueCommands(now = Date.now(), oneAtATime = false): CommandRow[] {
    let due = this.settleQueue(now);
    if (oneAtATime) {
      let running = this.sqlOne<{ n: number }>("SELECT COUNT(*) AS n FROM commands WHERE status IN ('dispatched', 'running') AND alongside = 0")?.n ?? 0;
      const ready: CommandRow[] = [];
      let waiting = false; // once one waits, every later one waits too: order is kept
      for (const command of due) {
        if (command.alongside) {
          ready.push(command);
        } else if (waiting || running >= MAX_RUNNING_COMMANDS) {
          waiting = true;
        } else {
          running += 1;
          ready.push(command);
        }
      }
      due = ready;
    }
    for (const command of due) {
      this.ctx.storage.sql.exec("UPDATE commands SET status = 'dispatched', dispatched_at = ? WHERE id = ?", now, command.id);
      this.appendEvent("command.dispatched", { commandId: command.id });
      this.audit.append({ kind: "command.dispatched", commandId: command.id, status: "dispatched", detail: {} });
    }
    return due;
  }

  /** Ends expired and skipped commands; returns the queued ones that are due now. */
  private settleQueue(now: number): CommandRow[] {
    const due: CommandRow[] = [];
    for (const command of this.sqlAll<CommandRow>("SELECT * FROM commands WHERE status = 'queued' ORDER BY created_at, step_index, rowid")) {
      if (command.expires_at !== null && now >= command.expires_at) {
        this.finishCommand(command, { status: "expired", exitCode: null, error: "Its expiry passed before it could run", timings: null });
        continue;
      }
      const gate = this.sequences.gate(command);
      if (gate.kind === "wait") continue;
      if (gate.kind === "skip") {
        this.finishCommand(command, { status: "skipped", exitCode: null, error: gate.reason, timings: null });
        continue;
      }
      if (command.not_before !== null && now < command.not_before) continue;
      due.push(command);
    }
    return due;
  }

  /** One alarm serves audit replication, maintenance windows, expiries, result deadlines and check-in liveness. */
  private scheduleAlarm(): void {
    const now = Date.now();
    const candidates: number[] = [];
    const audit = Number(this.getRuntimeValue("audit_alarm_at") || 0);
    if (audit > 0) candidates.push(audit);
    const window = this.sqlOne<{ at: number | null }>(
      `SELECT MIN(at) AS at FROM (
         SELECT not_before AS at FROM commands WHERE status = 'queued' AND not_before > ?
         UNION ALL SELECT expires_at FROM commands WHERE status = 'queued' AND expires_at > ?)`,
      now,
      now,
    );
    if (window?.at) candidates.push(window.at);
    const offlineAt = Number(this.getRuntimeValue("checkin_offline_at") || 0);
    if (offlineAt > now) candidates.push(offlineAt);
    const approval = this.approvals.nextWakeAt();
    if (approval) candidates.push(approval);
    if (this.runtimeState().online) {
      const result = this.sqlOne<{ at: number | null }>(
        `SELECT MIN(${RESULT_DEADLINE_SQL}) AS at FROM commands WHERE status IN ('dispatched', 'running')`,
        ...this.resultDeadlineBindings(),
      );
      if (result?.at) candidates.push(result.at);
    }
    if (!candidates.length) return;
    const at = Math.max(now, Math.min(...candidates));
    if (at === this.alarmAt) return; // most messages change nothing here; skip the storage write
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  private toDispatched(command: CommandRow): DispatchedCommand {
    return {
      commandId: command.id,
      text: command.text,
      shell: command.shell,
      timeoutMs: command.timeout_ms,
      maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES,
    };
  }

  private storeOutput(command: CommandRow, index: number, chunk: OutputChunk): void {
    if (command.truncated) return;
    const duplicate = this.sqlOne("SELECT 1 AS x FROM events WHERE command_id = ? AND chunk_index = ?", command.id, index);
    if (duplicate) return;
    const bytes = new TextEncoder().encode(chunk.data).byteLength;
    const room = DEFAULT_MAX_OUTPUT_BYTES - command.output_bytes;
    if (bytes <= room) {
      this.appendEvent("command.output", { commandId: command.id, stream: chunk.stream, data: chunk.data }, index);
      this.ctx.storage.sql.exec("UPDATE commands SET output_bytes = output_bytes + ? WHERE id = ?", bytes, command.id);
      return;
    }
    const kept = truncateUtf8(chunk.data, room);
    if (kept) this.appendEvent("command.output", { commandId: command.id, stream: chunk.stream, data: kept }, index);
    const keptBytes = command.output_bytes + new TextEncoder().encode(kept).byteLength;
    this.ctx.storage.sql.exec("UPDATE commands SET output_bytes = ?, truncated = 1 WHERE id = ?", keptBytes, command.id);
    this.appendEvent("command.truncated", { commandId: command.id, keptBytes, reason: "output_cap" });
  }

  private storedChunkCount(commandId: string): number {
    return this.sqlOne<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE command_id = ? AND chunk_index IS NOT NULL", commandId)?.n ?? 0;
  }

  private nextChunkIndex(commandId: string): number {
    const row = this.sqlOne<{ next: number | null }>("SELECT MAX(chunk_index) + 1 AS next FROM events WHERE command_id = ?", commandId);
    return row?.next ?? 0;
  }

  /** Who asked for a cancel the runtime then carried out, from the cancel request in the log. */
  private cancelledBy(commandId: string): { by?: { userId: string; name: string } } {
    const request = this.sqlOne<{ body: string }>(
      "SELECT body FROM events WHERE command_id = ? AND kind = 'command.cancel_requested' ORDER BY seq LIMIT 1",
      commandId,
    );
    const by = request ? (JSON.parse(request.body) as { by?: { userId: string; name: string } }).by : undefined;
    return by ? { by } : {};
  }

  private finishCommand(command: CommandRow, outcome: EventBody<"command.finished"> extends infer B ? Omit<B, "commandId"> : never): void {
    this.ctx.storage.sql.exec(
      "UPDATE commands SET status = ?, exit_code = ?, error = ?, received_at = COALESCE(received_at, ?) WHERE id = ?",
      outcome.status,
      outcome.exitCode,
      outcome.error,
      Date.now(),
      command.id,
    );
    const ran = this.getCommand(command.id)!;
    const endpointClock =
      ran.runtime_started_at !== null && ran.clock_offset_ms !== null
        ? { offsetMs: ran.clock_offset_ms, uncertaintyMs: ran.clock_uncertainty_ms ?? 0, reportedStartedAt: ran.runtime_started_at }
        : null;
    this.appendEvent("command.finished", { commandId: command.id, ...outcome, ...(endpointClock ? { endpointClock } : {}) });
    const finished = this.getCommand(command.id)!;
    const truncation = finished.truncated ? this.truncationOf(finished) : null;
    this.audit.append({
      kind: "command.finished",
      actorId: finished.requested_by_id,
      actorName: finished.requested_by_name,
      commandId: command.id,
      status: outcome.status,
      detail: {
        text: finished.text,
        exitCode: outcome.exitCode,
        error: outcome.error,
        sentAt: finished.created_at,
        dispatchedAt: finished.dispatched_at,
        executedAt: finished.started_at,
        returnedAt: finished.received_at,
        truncated: truncation,
        ...(endpointClock ? { endpointClock } : {}),
      },
    });
  }

  /** How much output was kept and why, from the newest truncation marker of the command. */
  private truncationOf(command: CommandRow): { keptBytes: number; reason: TruncationReason } {
    const marker = this.sqlOne<{ body: string }>(
      "SELECT body FROM events WHERE command_id = ? AND kind = 'command.truncated' ORDER BY seq DESC LIMIT 1",
      command.id,
    );
    const reason = marker ? (JSON.parse(marker.body) as { reason?: TruncationReason }).reason : undefined;
    return { keptBytes: command.output_bytes, reason: reason ?? "output_cap" };
  }


  private computeTimings(command: CommandRow, result: CommandResult, receivedAt: number): Timings {
    const dispatchedAt = command.dispatched_at ?? command.created_at;
    const serverRoundTripMs = Math.max(0, receivedAt - dispatchedAt);
    const onEndpointMs = Math.min(result.durationMs, serverRoundTripMs);
    const network = serverRoundTripMs - onEndpointMs;
    const clock = this.runtimeClock.current();
    let toEndpointMs: number | null = null;
    let backMs: number | null = null;
    if (clock) {
      toEndpointMs = clamp(result.startedAt - clock.offsetMs - dispatchedAt, 0, network);
      backMs = network - toEndpointMs;
    }
    return { queuedMs: Math.max(0, dispatchedAt - command.created_at), toEndpointMs, onEndpointMs, backMs, serverRoundTripMs };
  }

  // ---------------------------------------------------------------------------
  // Runtime presence and D1 directory state

  private currentRuntime(): Connection<ConnectionState> | undefined {
    for (const connection of this.getConnections<ConnectionState>("runtime")) return connection;
    return undefined;
  }

  private runtimeState(): RuntimeState {
    const lastSeen = this.getRuntimeValue("last_seen_at");
    const lastSeenAt = lastSeen ? Number(lastSeen) : null;
    const lifecycle = { revoked: Boolean(this.getRuntimeValue("revoked_at")), decommissioned: Boolean(this.getRuntimeValue("decommissioned_at")) };
    const none = { checkinIntervalMs: null, nextCheckinAt: null };
    if (this.currentRuntime()) return { online: true, lastSeenAt, transport: "websocket", ...lifecycle, ...none };
    const checkinUntil = Number(this.getRuntimeValue("checkin_offline_at") || 0);
    const checkingIn = checkinUntil > Date.now();
    if (!checkingIn) return { online: false, lastSeenAt, transport: null, ...lifecycle, ...none };
    const lastCheckin = Number(this.getRuntimeValue("checkin_at") || 0);
    return { online: true, lastSeenAt, transport: "checkin", ...lifecycle, checkinIntervalMs: DEFAULT_CHECKIN_INTERVAL_MS, nextCheckinAt: lastCheckin ? lastCheckin + DEFAULT_CHECKIN_INTERVAL_MS : null };
  }


  private setRuntimeOnline(online: boolean, transport: RuntimeState["transport"]): void {
    const now = Date.now();
    this.setRuntimeValue("last_seen_at", String(now));
    this.setRuntimeValue("online_since", online ? String(now) : "");
    this.broadcastToViewers({ type: "runtime", runtime: { ...this.runtimeState(), online, transport } });
    this.updateDirectory(online, now);
  }

  /**
   * The session's own record only. The directory learns "last seen" when the
   * runtime goes offline (updateDirectory): while it is online the console
   * shows "online", and no message a command sends waits on, or shares its
   * invocation with, a D1 call (tests/workers/no-central-round-trips.test.ts).
   */
  private touchLastSeen(): void {
    this.setRuntimeValue("last_seen_at", String(Date.now()));
  }

  /** Presence changes only (connect, disconnect, missed check-ins): never while a command is handled. */
  private updateDirectory(online: boolean, at: number): void {
    const write = this.env.DB.prepare("UPDATE endpoints SET online = ?, last_seen_at = ? WHERE id = ?")
      .bind(online ? 1 : 0, at, this.name)
      .run()
      .catch((error: unknown) => console.error("endpoint directory update failed", error));
    this.ctx.waitUntil(write);
  }

  private getRuntimeValue(key: string): string | undefined {
    return this.sqlOne<{ value: string }>("SELECT value FROM runtime_state WHERE key = ?", key)?.value;
  }

  private setRuntimeValue(key: string, value: string): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO runtime_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  // ---------------------------------------------------------------------------
  // Event log and fan-out

  private appendEvent<K extends TranscriptEvent["kind"]>(kind: K, body: EventBody<K>, chunkIndex: number | null = null): void {
    const at = Date.now();
    const commandId = (body as { commandId?: string }).commandId ?? null;
    const row = this.sqlOne<{ seq: number }>(
      "INSERT INTO events (at, kind, command_id, chunk_index, body) VALUES (?, ?, ?, ?, ?) RETURNING seq",
      at,
      kind,
      commandId,
      chunkIndex,
      JSON.stringify(body),
    )!;
    this.pendingEvents.push({ ...body, seq: row.seq, at, kind } as TranscriptEvent);
    if (this.pendingEvents.length === 1) queueMicrotask(() => this.flushEvents());
  }

  /**
   * Everything one message caused goes to viewers as one frame: back-to-back
   * small frames invite a Nagle/delayed-ACK stall on the way to the browser.
   */
  private flushEvents(): void {
    const events = this.pendingEvents.splice(0);
    if (events.length === 0) return;
    this.broadcastToViewers({ type: "events", events, replay: false, lastSeq: events[events.length - 1]!.seq }, undefined, true);
  }



  private broadcastPresence(leavingConnectionId?: string): void {
    const viewers = new Map<string, Viewer>();
    for (const connection of this.getConnections<ConnectionState>("viewer")) {
      const state = connection.state;
      if (connection.id === leavingConnectionId || !state?.userId) continue;
      const viewer = viewers.get(state.userId);
      if (viewer) viewer.connections += 1;
      else viewers.set(state.userId, { userId: state.userId, name: state.userName ?? state.userId, connections: 1 });
    }
    this.broadcastToViewers({ type: "presence", viewers: [...viewers.values()] }, leavingConnectionId);
  }

  private broadcastToViewers(message: ViewerBoundMessage, exceptConnectionId?: string, syncedOnly = false): void {
    const frame = JSON.stringify(message);
    for (const connection of this.getConnections<ConnectionState>("viewer")) {
      if (connection.id === exceptConnectionId) continue;
      if (syncedOnly && !connection.state?.synced) continue;
      try {
        connection.send(frame);
      } catch {
        // A viewer that went away mid-send is cleaned up by onClose.
      }
    }
  }

  private sendViewerError(connection: Connection, code: Extract<ViewerBoundMessage, { type: "error" }>["code"], message: string, requestId?: string): void {
    this.send(connection, { type: "error", code, message, ...(requestId ? { requestId } : {}) });
  }

  private send(connection: Connection, message: ViewerBoundMessage | RuntimeBoundMessage): void {
    try {
      connection.send(JSON.stringify(message));
    } catch {
      // The peer disconnected; it resyncs (viewer) or gets redelivery (runtime) on reconnect.
    }
  }

  // ---------------------------------------------------------------------------

  private getCommand(commandId: string): CommandRow | undefined {
    return this.sqlOne<CommandRow>("SELECT * FROM commands WHERE id = ?", commandId);
  }

  private sqlAll<T>(query: string, ...bindings: unknown[]): T[] {
    return this.ctx.storage.sql.exec(query, ...bindings).toArray() as T[];
  }

  private sqlOne<T>(query: string, ...bindings: unknown[]): T | undefined {
    return this.sqlAll<T>(query, ...bindings)[0];
  }
}

const FINAL: ReadonlySet<string> = new Set(COMMAND_OUTCOMES);

function isFinal(status: string): boolean {
  return FINAL.has(status);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** The longest prefix of `text` that fits in `maxBytes` of UTF-8. */
function truncateUtf8(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return "";
  const bytes = new TextEncoder().encode(text);
  if (bytes.byteLength <= maxBytes) return text;
  return new TextDecoder().decode(bytes.slice(0, maxBytes)).replace(/\uFFFD$/, "");
}

function respond({ status, body }: { status: number; body: unknown }): Response {
  return Response.json(body, { status });
}
