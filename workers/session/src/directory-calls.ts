// The console's calls, as the tenant directory: re-read the client's policy or
// the runtime target after an admin saved one, apply an endpoint lifecycle
// decision, record placement. Each is authorised by the edge and bound to the tenant.
import { describeZodError, type ViewerBoundMessage } from "../../../protocol/messages";
import { lifecycleRequestSchema, memberRemovedRequestSchema, SESSION_PATHS, type VerifiedPeerIdentity as PeerIdentity } from "../../../protocol/session-contract";
import type { ApprovalFlow } from "./approval-flow";
import type { AuditLog } from "./audit-log";
import type { CommandRow, CommandStore } from "./command-store";
import { onPlacement, type PlacementHost } from "./placement";
import type { PolicyCopy } from "./policy-copy";
import { onFleetQueue } from "./fleet-queue";
import { queueSequenceOverHttp, type ReplySink } from "./queue-over-http";
import type { RunRequest } from "./command-intake";
import type { RuntimePresence } from "./runtime-presence";
import type { RuntimeUpdates } from "./runtime-updates";
import type { SessionStore } from "./session-store";

export interface DirectoryHost {
  store: SessionStore;
  commands: CommandStore;
  approvals: ApprovalFlow;
  presence: RuntimePresence;
  policyCopy: PolicyCopy;
  updates: RuntimeUpdates;
  audit: AuditLog;
  placement: PlacementHost;
  /** Work queued by the console's server (library runs, the REST API, alert webhooks, fleet runs): refusals go to the sink as viewer error frames. */
  acceptFromDirectory(sink: ReplySink, identity: PeerIdentity, message: RunRequest): Promise<void>;
  broadcast(message: ViewerBoundMessage): void;
  offerUpdate(): void;
  scheduleAlarm(): void;
  /** Sends or settles whatever became due (and sets the alarm for the rest). */
  dispatch(): void;
  /** Closes every live viewer socket of `userId` (null: of anyone) in `orgId` (SESSION_CLOSE_CODES.accessRemoved); how many it closed. */
  closeViewersOf(orgId: string, userId: string | null): number;
}

export class DirectoryCalls {
  constructor(private readonly host: DirectoryHost) {}

  async handle(path: string, body: unknown, identity: PeerIdentity): Promise<Response> {
    if (path === SESSION_PATHS.policy) return this.policyRefresh(identity);
    if (path === SESSION_PATHS.lifecycle) return this.lifecycle(body, identity);
    if (path === SESSION_PATHS.placement) return onPlacement(this.host.placement, body, identity);
    if (path === SESSION_PATHS.runtimeTarget) return this.runtimeTargetRefresh(identity);
    if (path === SESSION_PATHS.queueSequence) return queueSequenceOverHttp({ sql: this.host.store.sql, accept: this.host.acceptFromDirectory }, body, identity);
    if (path === SESSION_PATHS.fleetQueue) {
      return onFleetQueue({ sql: this.host.store.sql, queue: (who, message, sink) => this.host.acceptFromDirectory(sink, who, message) }, body, identity);
    }
    if (path === SESSION_PATHS.memberRemoved) return this.memberRemoved(body, identity);
    return Response.json({ error: "Not found" }, { status: 404 });
  }

  /**
   * A removed member's pages were authorised when their sockets opened: close them now (the edge refuses the
   * reconnect). Audited only when something was closed, so a tenant-wide fan-out leaves no noise elsewhere.
   */
  private memberRemoved(body: unknown, identity: PeerIdentity): Response {
    const parsed = memberRemovedRequestSchema.safeParse(body);
    if (!parsed.success) return Response.json({ error: `Invalid member removal: ${describeZodError(parsed.error)}` }, { status: 400 });
    const closed = this.host.closeViewersOf(identity.orgId, parsed.data.userId);
    if (closed > 0) {
      this.host.audit.append({
        kind: "viewer.access_removed",
        actorId: identity.userId,
        actorName: identity.userName,
        actorAddress: identity.address,
        detail: { userId: parsed.data.userId, socketsClosed: closed },
      });
    }
    return Response.json({ closed });
  }

  private async policyRefresh(identity: PeerIdentity): Promise<Response> {
    const policy = await this.host.policyCopy.reload();
    if (!policy) return Response.json({ error: "The client's policy could not be read; the session keeps its previous copy" }, { status: 503 });
    this.host.audit.append({
      kind: "policy.updated",
      actorId: identity.userId,
      actorName: identity.userName,
      detail: { mode: policy.mode, version: policy.version, approvers: policy.approvers.length, allowedCommands: policy.allowedCommands.length, retentionDays: policy.retentionDays },
    });
    // The policy carries the maintenance windows: work a new window opens starts now, not at an alarm set for the
    // old windows' next opening (which a window that moved later must not keep either).
    this.host.dispatch();
    return Response.json({ version: policy.version });
  }

  /** An admin saved the tenant's runtime target: re-read it, audit a change, offer it now if the runtime is idle. */
  private async runtimeTargetRefresh(identity: PeerIdentity): Promise<Response> {
    const reloaded = await this.host.updates.reload();
    if (!reloaded) return Response.json({ error: "The runtime target could not be read; the session keeps its previous copy" }, { status: 503 });
    if (reloaded.changed) {
      this.host.audit.append({
        kind: "runtime.update_target",
        actorId: identity.userId,
        actorName: identity.userName,
        actorAddress: identity.address,
        detail: { version: reloaded.target?.version ?? null, allowDowngrade: reloaded.target?.allowDowngrade ?? false },
      });
    }
    this.host.offerUpdate();
    return Response.json({ version: reloaded.target?.version ?? null });
  }

  /** The directory in D1 stops authenticating a revoked credential; this makes the decision take effect now. */
  private lifecycle(body: unknown, identity: PeerIdentity): Response {
    const parsed = lifecycleRequestSchema.safeParse(body);
    if (!parsed.success) return Response.json({ error: describeZodError(parsed.error) }, { status: 400 });
    const { store, presence, audit } = this.host;
    const now = Date.now();
    const actor = { actorId: identity.userId, actorName: identity.userName, actorAddress: identity.address };
    const decommissioned = presence.decommissioned();
    switch (parsed.data.action) {
      case "revoke":
        store.setValue("revoked_at", String(now));
        presence.disconnect("This runtime's credential was revoked");
        audit.append({ kind: "runtime.revoked", ...actor, detail: {} });
        break;
      case "reinstate":
        if (decommissioned) return Response.json({ error: "The endpoint was decommissioned; it cannot take a runtime again" }, { status: 409 });
        store.setValue("revoked_at", "");
        audit.append({ kind: "runtime.reinstated", ...actor, detail: {} });
        break;
      case "decommission": {
        if (decommissioned) break;
        store.setValue("revoked_at", String(now));
        store.setValue("decommissioned_at", String(now));
        presence.disconnect("The endpoint was decommissioned");
        const by = { userId: identity.userId ?? "directory", name: identity.userName ?? "an admin" };
        for (const command of store.all<CommandRow>("SELECT * FROM commands WHERE status IN ('queued', 'pending_approval') ORDER BY created_at")) {
          if (command.status === "pending_approval") this.host.approvals.withdraw(command.id, by, identity.address);
          this.host.commands.finish(command.id, { status: "cancelled", exitCode: null, error: "The endpoint was decommissioned before it ran", timings: null });
        }
        audit.append({ kind: "endpoint.decommissioned", ...actor, detail: {} });
        break;
      }
    }
    this.host.broadcast({ type: "runtime", runtime: presence.state() });
    this.host.scheduleAlarm();
    return Response.json({ runtime: presence.state() });
  }
}
