// Client approval inside one endpoint's session: per-approver links, their
// delivery by email (retried, every attempt with a freshly minted secret, so
// no link is ever stored), decisions, withdrawal, re-issue and expiry.
// The session orchestrates; this module owns the approval tables.
import {
  approvalDecisionSchema,
  approvalLookupSchema,
  maskEmail,
  type Approver,
  type ApprovalState,
  type ApprovalView,
  type SessionPolicy,
} from "../../../protocol/approvals";
import type { VerifiedPeerIdentity } from "../../../protocol/session-contract";
import { describeZodError, type Actor, type ApproverLabel, type TranscriptEvent } from "../../../protocol/messages";
import { approvalBindingHash, newApprovalSecret, secretHashFromToken } from "./approvals";
import type { AuditLog } from "./audit-log";
import type { SessionEnv } from "./env";
import { composeApprovalEmail } from "./mail/compose";
import { MailDeliveryError, mailerFromEnv } from "./mail/mailer";

/** Attempts per approver before a delivery is given up (and shown as failed). */
export const MAX_DELIVERY_ATTEMPTS = 5;
/** Backoff after the n-th failed attempt. */
const RETRY_DELAYS_MS = [15_000, 60_000, 5 * 60_000, 15 * 60_000];
/** A send that never came back (the instance was evicted mid-send) is tried again after this. */
const SEND_LEASE_MS = 60_000;

type EventBody<K extends TranscriptEvent["kind"]> = Omit<Extract<TranscriptEvent, { kind: K }>, "seq" | "at" | "kind">;

/** What the approval flow needs of a command row. */
export interface ApprovalCommand {
  id: string;
  text: string;
  shell: string;
  status: string;
  requested_by_id: string;
  requested_by_name: string;
  sequence_name: string | null;
  step_index: number;
  step_count: number;
}

/** The narrow interface the session gives this module. */
export interface ApprovalHost {
  endpointId(): string;
  readonly sql: SqlStorage;
  env(): SessionEnv;
  readonly audit: AuditLog;
  appendEvent<K extends TranscriptEvent["kind"]>(kind: K, body: EventBody<K>): void;
  getCommand(commandId: string): ApprovalCommand | undefined;
  /** The session's copy of the client's policy (for names, time zone and link lifetime). */
  policy(): SessionPolicy | null;
  /** The client said yes: the session queues it (and dispatches it if the runtime is there). */
  release(commandId: string): void;
  /** The command ends without running. */
  finish(commandId: string, status: "denied" | "expired" | "cancelled", error: string): void;
  waitUntil(promise: Promise<unknown>): void;
  scheduleAlarm(): void;
}

type RequestRow = {
  command_id: string;
  reason: string;
  rule: string | null;
  requester_id: string;
  requested_at: number;
  expires_at: number;
  state: ApprovalState;
  decided_by: string | null;
  decided_email: string | null;
  decided_at: number | null;
};

type LinkRow = {
  id: string;
  command_id: string;
  approver_name: string;
  approver_email: string;
  binding_hash: string;
  secret_hash: string | null;
  issued_at: number | null;
  viewed_at: number | null;
  delivery: "queued" | "sending" | "sent" | "failed";
  attempts: number;
  next_attempt_at: number | null;
};

export type ApprovalResponse = { status: number; body: unknown };

export function approverLabel(approver: { name: string; email: string }): ApproverLabel {
  return { name: approver.name, address: maskEmail(approver.email) };
}

/**
 * The approvers who may be asked: never the requester themself, whatever the
 * policy says (separation of duties holds even if staff slipped onto the list).
 */
export function eligibleApprovers(policy: SessionPolicy, requesterEmail: string | null): Approver[] {
  const requester = requesterEmail?.trim().toLowerCase();
  return policy.approvers.filter((a) => a.email.trim().toLowerCase() !== requester);
}

export class ApprovalFlow {
  constructor(private readonly host: ApprovalHost) {}

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

  /** Starts sending whatever is due; the sends run after the current message is handled. */
  kickDelivery(): void {
    this.host.waitUntil(this.deliverDue(Date.now()));
  }

  /**
   * Sends every due link. Each attempt mints a new secret for its approver
   * (replacing the previous one), so a link exists only in the email that
   * carried it, and a failed or re-issued send leaves nothing usable behind.
   */
  async deliverDue(now: number): Promise<void> {
    const due = this.host.sql
      .exec<LinkRow>(
        `SELECT l.* FROM approval_links l JOIN approval_requests r ON r.command_id = l.command_id
         WHERE r.state = 'pending' AND l.delivery IN ('queued', 'sending') AND l.next_attempt_at <= ?
         ORDER BY l.next_attempt_at`,
        now,
      )
      .toArray();
    if (!due.length) return;
    const mailer = mailerFromEnv(this.host.env());
    const origin = publicOrigin(this.host.env());
    const sends: Promise<void>[] = [];
    for (const link of due) {
      const { token, secretHash } = newApprovalSecret(this.host.endpointId());
      const attempt = link.attempts + 1;
      // Claimed synchronously: a concurrent pass sees the lease, not a due row.
      this.host.sql.exec(
        "UPDATE approval_links SET delivery = 'sending', secret_hash = ?, attempts = ?, next_attempt_at = ? WHERE id = ?",
        secretHash,
        attempt,
        now + SEND_LEASE_MS,
        link.id,
      );
      if ("error" in mailer || !origin) {
        this.deliveryFailed(link, attempt, "error" in mailer ? mailer.error : "PUBLIC_ORIGIN is not configured, so no link can be built", true);
        continue;
      }
      let email: ReturnType<typeof composeApprovalEmail> | null;
      try {
        email = this.composeFor(link, `${origin}/approve/${token}`);
      } catch {
        this.deliveryFailed(link, attempt, "the approval email could not be composed", true);
        continue;
      }
      if (!email) continue;
      sends.push(
        mailer.send(email).then(
          () => this.delivered(link, attempt),
          (error: unknown) => {
            const permanent = error instanceof MailDeliveryError ? error.permanent : false;
            const message = error instanceof MailDeliveryError ? error.message : "the mail provider could not be reached";
            this.deliveryFailed(link, attempt, message, permanent);
          },
        ),
      );
    }
    await Promise.all(sends);
    this.host.scheduleAlarm();
  }

  private composeFor(link: LinkRow, url: string) {
    const command = this.host.getCommand(link.command_id);
    const request = this.getRequest(link.command_id);
    const policy = this.host.policy();
    if (!command || !request) return null;
    return composeApprovalEmail({
      approver: { name: link.approver_name, email: link.approver_email },
      url,
      reason: request.reason,
      text: command.text,
      shell: command.shell,
      sequence: command.sequence_name ? { name: command.sequence_name, step: command.step_index, steps: command.step_count } : null,
      requestedBy: command.requested_by_name,
      hostname: policy?.hostname ?? this.host.endpointId(),
      clientName: policy?.clientName ?? "",
      timeZone: policy?.timeZone ?? "UTC",
      expiresAt: request.expires_at,
    });
  }

  private delivered(link: LinkRow, attempt: number): void {
    const now = Date.now();
    const updated = this.host.sql.exec(
      "UPDATE approval_links SET delivery = 'sent', issued_at = ?, next_attempt_at = NULL, last_error = NULL WHERE id = ? AND attempts = ?",
      now,
      link.id,
      attempt,
    );
    if (updated.rowsWritten === 0) return; // re-issued meanwhile: that send's link is already dead
    this.host.appendEvent("command.approval_delivery", {
      commandId: link.command_id,
      approver: approverLabel({ name: link.approver_name, email: link.approver_email }),
      state: "sent",
      attempt,
      error: null,
      nextAttemptAt: null,
    });
    this.host.audit.append({
      kind: "approval.delivered",
      actorName: link.approver_name,
      commandId: link.command_id,
      status: "pending_approval",
      detail: { approver: link.approver_email, attempt },
    });
  }

  private deliveryFailed(link: LinkRow, attempt: number, error: string, permanent: boolean): void {
    const giveUp = permanent || attempt >= MAX_DELIVERY_ATTEMPTS;
    const nextAttemptAt = giveUp ? null : Date.now() + RETRY_DELAYS_MS[Math.min(attempt - 1, RETRY_DELAYS_MS.length - 1)]!;
    const updated = this.host.sql.exec(
      "UPDATE approval_links SET delivery = ?, secret_hash = NULL, next_attempt_at = ?, last_error = ? WHERE id = ? AND attempts = ?",
      giveUp ? "failed" : "queued",
      nextAttemptAt,
      error,
      link.id,
      attempt,
    );
    if (updated.rowsWritten === 0) return;
    console.error(`approval delivery to ${maskEmail(link.approver_email)} failed (attempt ${attempt}): ${error}`);
    this.host.appendEvent("command.approval_delivery", {
      commandId: link.command_id,
      approver: approverLabel({ name: link.approver_name, email: link.approver_email }),
      state: giveUp ? "failed" : "retrying",
      attempt,
      error,
      nextAttemptAt,
    });
    this.host.audit.append({
      kind: "approval.delivery_failed",
      actorName: link.approver_name,
      commandId: link.command_id,
      status: "pending_approval",
      detail: { approver: link.approver_email, attempt, error, willRetry: !giveUp },
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
    this.kickDelivery();
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

  /** The earliest moment something here needs the alarm: an expiry or a delivery retry. */
  nextWakeAt(): number | null {
    const row = this.host.sql
      .exec<{ at: number | null }>(
        `SELECT MIN(at) AS at FROM (
           SELECT expires_at AS at FROM approval_requests WHERE state = 'pending'
           UNION ALL
           SELECT l.next_attempt_at FROM approval_links l JOIN approval_requests r ON r.command_id = l.command_id
           WHERE r.state = 'pending' AND l.delivery IN ('queued', 'sending'))`,
      )
      .toArray()[0];
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

function publicOrigin(env: SessionEnv): string | null {
  try {
    return env.PUBLIC_ORIGIN ? new URL(env.PUBLIC_ORIGIN).origin : null;
  } catch {
    return null;
  }
}
