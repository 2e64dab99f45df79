// Client approval inside one endpoint's session: per-approver links,
// decisions, withdrawal, re-issue and expiry (delivery: approval-delivery.ts).
// The session orchestrates; these modules own the approval tables.
import {
  approvalDecisionSchema,
  approvalLookupSchema,
  maskEmail,
  type Approver,
  type ApprovalView,
  type SessionPolicy,
} from "../../../protocol/approvals";
import type { VerifiedPeerIdentity } from "../../../protocol/session-contract";
import { describeZodError, type Actor } from "../../../protocol/messages";
import { ApprovalDelivery } from "./approval-delivery";
import { approverLabel, type ApprovalCommand, type ApprovalHost, type ApprovalResponse, type LinkRow, type RequestRow } from "./approval-model";
import { approvalBindingHash, secretHashFromToken } from "./approvals";

export type { ApprovalCommand, ApprovalHost, ApprovalResponse } from "./approval-model";
export { approverLabel } from "./approval-model";

/**
 * The approvers who may be asked: never the requester themself, whatever the
 * policy says (separation of duties holds even if staff slipped onto the list).
 */
export function eligibleApprovers(policy: SessionPolicy, requesterEmail: string | null): Approver[] {
  const requester = requesterEmail?.trim().toLowerCase();
  return policy.approvers.filter((a) => a.email.trim().toLowerCase() !== requester);
}

export class ApprovalFlow {
  /** Sending each approver their link (ADR 0009): retried, a fresh secret per attempt. */
  readonly delivery: ApprovalDelivery;

  constructor(private readonly host: ApprovalHost) {
    this.delivery = new ApprovalDelivery(host, (commandId) => this.getRequest(commandId));
  }

  /** Holds `command` for the client's consent and queues one link per approver for delivery. */
  request(input: {
    command: ApprovalCommand;
    reason: string;
    rule: string;
    approvers: Approver[];
    requester: Actor;
    requesterAddress: string | null;
    linkTtlHours: number;
    now: number;
  }): void {
    const { command, now } = input;
    const expiresAt = now + input.linkTtlHours * 3_600_000;
    this.host.sql.exec(
      `INSERT INTO approval_requests (command_id, reason, rule, requester_id, requested_at, expires_at, state)
       VALUES (?, ?, ?, ?, ?, ?, 'pending')`,
      command.id,
      input.reason,
      input.rule,
      input.requester.userId,
      now,
      expiresAt,
    );
    for (const approver of input.approvers) {
      this.host.sql.exec(
        `INSERT INTO approval_links (id, command_id, approver_name, approver_email, binding_hash, delivery, attempts, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, 'queued', 0, ?)`,
        `apl_${crypto.randomUUID()}`,
        command.id,
        approver.name,
        approver.email,
        approvalBindingHash(this.host.endpointId(), command.id, command.text, input.requester.userId, approver.email),
        now,
      );
    }
    const pattern = input.rule.startsWith("matches /") ? input.rule.slice("matches /".length, -1) : null;
    this.host.appendEvent("command.approval_requested", {
      commandId: command.id,
      reason: input.reason,
      pattern,
      rule: input.rule,
      approvers: input.approvers.map(approverLabel),
      expiresAt,
    });
    this.host.audit.append({
      kind: "approval.requested",
      actorId: input.requester.userId,
      actorName: input.requester.name,
      actorAddress: input.requesterAddress,
      commandId: command.id,
      status: "pending_approval",
      detail: { text: command.text, reason: input.reason, rule: input.rule, approvers: input.approvers, expiresAt },
    });
  }

  /** The approval page opened a link: recorded once per approver, then the request as that approver sees it. */
  view(body: unknown, identity: VerifiedPeerIdentity): ApprovalResponse {
    const parsed = approvalLookupSchema.safeParse(body);
    if (!parsed.success) return { status: 400, body: { error: describeZodError(parsed.error) } };
    const found = this.findLink(parsed.data.token);
    if (!found) return invalidLink();
    const { link, command } = found;
    if (link.viewed_at === null) {
      this.host.sql.exec("UPDATE approval_links SET viewed_at = ? WHERE id = ?", Date.now(), link.id);
      this.host.audit.append({
        kind: "approval.viewed",
        actorId: approverActorId(link),
        actorName: link.approver_name,
        actorAddress: identity.address,
        commandId: command.id,
        status: command.status,
        detail: { approver: link.approver_email },
      });
    }
    this.expireIfDue(command.id, Date.now());
    return { status: 200, body: this.viewFor(link) };
  }

  /** A decision from the approver the link was minted for; single use across all approvers. */
  decide(body: unknown, identity: VerifiedPeerIdentity): ApprovalResponse {
    const parsed = approvalDecisionSchema.safeParse(body);
    if (!parsed.success) return { status: 400, body: { error: describeZodError(parsed.error) } };
    const found = this.findLink(parsed.data.token);
    if (!found) return invalidLink();
    const { link, command } = found;
    const now = Date.now();
    this.expireIfDue(command.id, now);
    const request = this.getRequest(command.id)!;
    if (request.state === "expired") return { status: 410, body: { error: "This link has expired.", view: this.viewFor(link) } };
    if (request.state !== "pending" || command.status !== "pending_approval") {
      const error = request.state === "withdrawn" || request.state === "pending" ? "The technician withdrew this request." : "This request has already been decided.";
      return { status: 409, body: { error, view: this.viewFor(link) } };
    }
    const { decision } = parsed.data;
    this.host.sql.exec(
      `UPDATE approval_requests SET state = ?, decided_by = ?, decided_email = ?, decided_at = ?, decided_address = ?
       WHERE command_id = ? AND state = 'pending'`,
      decision === "approve" ? "approved" : "denied",
      link.approver_name,
      link.approver_email,
      now,
      identity.address,
      command.id,
    );
    this.host.appendEvent("command.approval_decided", {
      commandId: command.id,
      decision,
      by: link.approver_name,
      byAddress: maskEmail(link.approver_email),
    });
    this.host.audit.append({
      kind: "approval.decided",
      actorId: approverActorId(link),
      actorName: link.approver_name,
      actorAddress: identity.address,
      commandId: command.id,
      status: decision === "approve" ? "approved" : "denied",
      detail: { text: command.text, approver: link.approver_email },
    });
    if (decision === "approve") this.host.release(command.id);
    else this.host.finish(command.id, "denied", `Denied by ${link.approver_name}`);
    return { status: 200, body: { view: this.viewFor(link) } };
  }

  /** The technician (or a colleague) withdrew the request before anyone decided. */
  withdraw(commandId: string, by: Actor, address: string | null): void {
    const moved = this.host.sql.exec("UPDATE approval_requests SET state = 'withdrawn' WHERE command_id = ? AND state = 'pending'", commandId);
    if (moved.rowsWritten === 0) return;
    this.host.audit.append({ kind: "approval.withdrawn", actorId: by.userId, actorName: by.name, actorAddress: address, commandId, status: "cancelled", detail: {} });
  }

  /** Admins: every approver gets a new link (the old ones die) and the request a new expiry. */
  reissue(commandId: string, by: Actor, address: string | null): string | null {
    const request = this.getRequest(commandId);
    const command = this.host.getCommand(commandId);
    if (!request || !command) return `No approval request for ${commandId}`;
    const now = Date.now();
    this.expireIfDue(commandId, now);
    if (this.getRequest(commandId)!.state !== "pending" || command.status !== "pending_approval") {
      return "Only a request still waiting for a decision can be re-issued";
    }
    const expiresAt = now + (this.host.policy()?.linkTtlHours ?? 24) * 3_600_000;
    this.host.sql.exec("UPDATE approval_requests SET expires_at = ? WHERE command_id = ?", expiresAt, commandId);
    this.host.sql.exec(
      `UPDATE approval_links SET secret_hash = NULL, delivery = 'queued', attempts = 0, next_attempt_at = ?, issued_at = NULL,
              viewed_at = NULL, last_error = NULL WHERE command_id = ?`,
      now,
      commandId,
    );
    this.host.appendEvent("command.approval_reissued", { commandId, by, expiresAt });
    this.host.audit.append({ kind: "approval.reissued", actorId: by.userId, actorName: by.name, actorAddress: address, commandId, status: "pending_approval", detail: { expiresAt } });
    this.delivery.kick();
    return null;
  }

  /** Requests nobody decided in time end as expired, so they stop blocking their sequence. */
  expireDue(now: number): void {
    const expired = this.host.sql
      .exec<{ command_id: string }>("SELECT command_id FROM approval_requests WHERE state = 'pending' AND expires_at <= ?", now)
      .toArray();
    for (const { command_id } of expired) this.expireIfDue(command_id, now);
  }

  private expireIfDue(commandId: string, now: number): void {
    const moved = this.host.sql.exec(
      "UPDATE approval_requests SET state = 'expired' WHERE command_id = ? AND state = 'pending' AND expires_at <= ?",
      commandId,
      now,
    );
    if (moved.rowsWritten === 0) return;
    if (this.host.getCommand(commandId)?.status === "pending_approval") {
      this.host.finish(commandId, "expired", "No decision before the approval links expired");
    }
  }

  /** The earliest pending request's expiry. */
  nextWakeAt(): number | null {
    const row = this.host.sql.exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM approval_requests WHERE state = 'pending'").toArray()[0];
    return row?.at ?? null;
  }

  private findLink(token: string): { link: LinkRow; command: ApprovalCommand } | null {
    const secretHash = secretHashFromToken(token, this.host.endpointId());
    if (!secretHash) return null;
    const link = this.host.sql.exec<LinkRow>("SELECT * FROM approval_links WHERE secret_hash = ?", secretHash).toArray()[0];
    if (!link) return null;
    const command = this.host.getCommand(link.command_id);
    const request = this.getRequest(link.command_id);
    if (!command || !request) return null;
    const binding = approvalBindingHash(this.host.endpointId(), command.id, command.text, request.requester_id, link.approver_email);
    return binding === link.binding_hash ? { link, command } : null;
  }

  private getRequest(commandId: string): RequestRow | undefined {
    return this.host.sql.exec<RequestRow>("SELECT * FROM approval_requests WHERE command_id = ?", commandId).toArray()[0];
  }

  private viewFor(link: LinkRow): ApprovalView {
    const command = this.host.getCommand(link.command_id)!;
    const request = this.getRequest(link.command_id)!;
    const policy = this.host.policy();
    return {
      commandId: command.id,
      reason: request.reason,
      text: command.text,
      shell: command.shell,
      sequence: command.sequence_name ? { name: command.sequence_name, step: command.step_index, steps: command.step_count } : null,
      requestedBy: command.requested_by_name,
      requestedAt: request.requested_at,
      expiresAt: request.expires_at,
      state: request.state,
      decidedBy: request.decided_by,
      decidedAt: request.decided_at,
      approver: { name: link.approver_name, email: link.approver_email },
      endpointId: this.host.endpointId(),
      hostname: policy?.hostname ?? this.host.endpointId(),
      clientName: policy?.clientName ?? "",
      timeZone: policy?.timeZone ?? "UTC",
    };
  }
}

function approverActorId(link: LinkRow): string {
  return `approver:${link.approver_email.toLowerCase()}`;
}

function invalidLink(): ApprovalResponse {
  return { status: 404, body: { error: "This approval link is not valid." } };
}
