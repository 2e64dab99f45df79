// Messages from technicians' pages: one handler per message type, each page
// rate limited by its own token bucket.
import type { Connection } from "partyserver";
import type { Viewer, ViewerBoundMessage, ViewerMessage } from "../../../protocol/messages";
import type { VerifiedPeerIdentity as PeerIdentity } from "../../../protocol/session-contract";
import type { ApprovalFlow } from "./approval-flow";
import type { AuditLog } from "./audit-log";
import type { CommandIntake, RunRequest } from "./command-intake";
import type { CommandStore } from "./command-store";
import type { EventLog } from "./event-log";
import type { TranscriptReplay } from "./replay";
import { cancelPermitted, identityMay, refusalAudit } from "./permissions";
import type { ConnectionState } from "./runtime-presence";
import type { SequenceFlow } from "./sequence-flow";
import type { SessionStore } from "./session-store";
import { TokenBucket } from "./token-bucket";

/** Per viewer connection: a token bucket, in message "costs" (a replay costs more than a run). */
const VIEWER_BUCKET = { capacity: 40, refillPerSecond: 10 } as const;
const VIEWER_MESSAGE_COST: Record<ViewerMessage["type"], number> = { sync: 10, history: 10, run: 1, run_sequence: 2, cancel: 1, reissue_approval: 1, sequence_action: 1 };

type ErrorCode = Extract<ViewerBoundMessage, { type: "error" }>["code"];

export interface ViewerHost {
  store: SessionStore;
  commands: CommandStore;
  events: EventLog;
  audit: AuditLog;
  replay: TranscriptReplay;
  intake: CommandIntake;
  approvals: ApprovalFlow;
  sequences: SequenceFlow;
  send(connection: Connection, message: ViewerBoundMessage): void;
  /** Asks the runtime holding a command to stop it (when one is connected). */
  sendCancelToRuntime(commandId: string): void;
  /** Sends or settles whatever became due. */
  dispatch(): void;
  viewerConnections(): Iterable<Connection<ConnectionState>>;
  broadcast(message: ViewerBoundMessage, exceptConnectionId?: string): void;
}

export class ViewerChannel {
  /** In memory: a hibernation wake starts every bucket full. */
  private readonly buckets = new Map<string, TokenBucket>();
  /** Runs are accepted one at a time, in arrival order: the first may have to read the policy before the session has a copy. */
  private runQueue: Promise<void> = Promise.resolve();

  constructor(private readonly host: ViewerHost) {}

  handle(connection: Connection<ConnectionState>, identity: PeerIdentity, message: ViewerMessage): void {
    if (!this.takeTokens(connection.id, VIEWER_MESSAGE_COST[message.type])) {
      const requestId = "requestId" in message ? message.requestId : undefined;
      return this.error(connection, "rate_limited", "Too many messages from this page; wait a moment and try again.", requestId);
    }
    switch (message.type) {
      case "sync":
        return this.sync(connection, message.afterSeq);
      case "history":
        for (const frame of this.host.replay.history(message.beforeSeq)) this.host.send(connection, frame);
        return;
      case "run":
      case "run_sequence":
        return this.run(connection, identity, message);
      case "cancel":
        return this.cancel(connection, identity, message.commandId);
      case "reissue_approval":
        return this.reissue(connection, identity, message.commandId);
      case "sequence_action":
        return this.sequenceAction(connection, identity, message.sequenceId, message.action);
    }
  }

  closed(connectionId: string): void {
    this.buckets.delete(connectionId);
  }

  /** Who is watching: one entry per member, however many pages they have open. */
  announcePresence(leavingConnectionId?: string): void {
    const viewers = new Map<string, Viewer>();
    for (const connection of this.host.viewerConnections()) {
      const state = connection.state;
      if (connection.id === leavingConnectionId || !state?.userId) continue;
      const viewer = viewers.get(state.userId);
      if (viewer) viewer.connections += 1;
      else viewers.set(state.userId, { userId: state.userId, name: state.userName ?? state.userId, connections: 1 });
    }
    this.host.broadcast({ type: "presence", viewers: [...viewers.values()] }, leavingConnectionId);
  }

  private takeTokens(connectionId: string, cost: number): boolean {
    let bucket = this.buckets.get(connectionId);
    if (!bucket) this.buckets.set(connectionId, (bucket = new TokenBucket(VIEWER_BUCKET.capacity, VIEWER_BUCKET.refillPerSecond)));
    return bucket.take(Date.now(), cost);
  }

  /**
   * Replays what the viewer missed, then marks it synced so live events start
   * exactly where the replay ended (withheld until then: applied first, they
   * would make the viewer skip the replay).
   */
  private sync(connection: Connection<ConnectionState>, afterSeq: number): void {
    this.host.events.flush(); // events already broadcast to synced viewers must not be replayed and sent live again
    for (const frame of this.host.replay.catchUp(afterSeq)) this.host.send(connection, frame);
    connection.setState({ ...connection.state!, synced: true });
  }

  private run(connection: Connection, identity: PeerIdentity, message: RunRequest): void {
    this.runQueue = this.runQueue
      .then(async () => {
        const refused = await this.host.intake.accept(identity, message);
        if (refused) return this.error(connection, refused.code, refused.message, message.requestId);
        this.host.dispatch();
      })
      .catch((error: unknown) => {
        console.error("run failed", error);
        this.error(connection, "internal", "The command could not be queued; try again", message.requestId);
      });
  }

  /** Retry / skip / abort for a sequence paused on an interrupted step; anything else is refused and audited. */
  private sequenceAction(connection: Connection, identity: PeerIdentity, sequenceId: string, action: "retry" | "skip" | "abort"): void {
    if (!identityMay(identity, "sequence.resume")) {
      this.host.audit.append(refusalAudit(identity, "sequence.resume", { sequenceId, action }));
      return this.error(connection, "forbidden", "Your role cannot change a sequence");
    }
    const refused = this.host.sequences.act(sequenceId, action, actor(identity), identity.address);
    if (refused) return this.error(connection, refused.refused, refused.message);
    this.host.dispatch();
  }

  private reissue(connection: Connection, identity: PeerIdentity, commandId: string): void {
    if (identity.role !== "admin" || !identity.userId) return this.error(connection, "forbidden", "Only an admin can re-issue approval links");
    const refused = this.host.approvals.reissue(commandId, actor(identity), identity.address);
    if (refused) this.error(connection, "conflict", refused);
  }

  private cancel(connection: Connection, identity: PeerIdentity, commandId: string): void {
    const command = this.host.commands.get(commandId);
    if (!cancelPermitted(identity, command)) {
      this.host.audit.append(refusalAudit(identity, "command.cancel", {}, command ? commandId : null));
      return this.error(connection, "forbidden", "Your role cannot cancel commands");
    }
    if (!command) return this.error(connection, "not_found", `No command ${commandId}`);
    const by = actor(identity);
    if (!["pending_approval", "queued", "dispatched", "running"].includes(command.status)) {
      return this.error(connection, "conflict", `Command already ${command.status}`);
    }
    this.host.audit.append({ kind: "command.cancel_requested", actorId: by.userId, actorName: by.name, actorAddress: identity.address, commandId, status: command.status, detail: {} });
    if (command.status === "pending_approval") {
      this.host.approvals.withdraw(commandId, by, identity.address);
      this.host.commands.finish(commandId, { status: "cancelled", exitCode: null, error: `Approval request withdrawn by ${by.name}`, timings: null, by });
    } else if (command.status === "queued") {
      this.host.commands.finish(commandId, { status: "cancelled", exitCode: null, error: `Cancelled by ${by.name} before it was sent`, timings: null, by });
    } else {
      this.host.store.exec("UPDATE commands SET cancel_requested = 1 WHERE id = ?", commandId);
      this.host.events.append("command.cancel_requested", { commandId, by });
      this.host.sendCancelToRuntime(commandId);
    }
  }

  private error(connection: Connection, code: ErrorCode, message: string, requestId?: string): void {
    this.host.send(connection, { type: "error", code, message, ...(requestId ? { requestId } : {}) });
  }
}

function actor(identity: PeerIdentity): { userId: string; name: string } {
  return { userId: identity.userId!, name: identity.userName ?? identity.userId! };
}
