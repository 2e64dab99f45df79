// Delivery of approval links by email (ADR 0009): one link per approver,
// retried with backoff, every attempt with a freshly minted secret, so no
// link is ever stored and a failed or re-issued send leaves nothing usable.
import { maskEmail } from "../../../protocol/approvals";
import { approverLabel, type ApprovalHost, type LinkRow, type RequestRow } from "./approval-model";
import { newApprovalSecret } from "./approvals";
import type { SessionEnv } from "./env";
import { composeApprovalEmail } from "./mail/compose";
import { MailDeliveryError, mailerFromEnv } from "./mail/mailer";

/** Attempts per approver before a delivery is given up (and shown as failed). */
export const MAX_DELIVERY_ATTEMPTS = 5;
/** Backoff after the n-th failed attempt. */
const RETRY_DELAYS_MS = [15_000, 60_000, 5 * 60_000, 15 * 60_000];
/** A send that never came back (the instance was evicted mid-send) is tried again after this. */
const SEND_LEASE_MS = 60_000;

export class ApprovalDelivery {
  constructor(
    private readonly host: ApprovalHost,
    private readonly getRequest: (commandId: string) => RequestRow | undefined,
  ) {}

  /** Starts sending whatever is due; the sends run after the current message is handled. */
  kick(): void {
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

  /** The next delivery attempt due (a retry, or a send whose lease ran out). */
  nextWakeAt(): number | null {
    const row = this.host.sql
      .exec<{ at: number | null }>(
        `SELECT MIN(l.next_attempt_at) AS at FROM approval_links l JOIN approval_requests r ON r.command_id = l.command_id
         WHERE r.state = 'pending' AND l.delivery IN ('queued', 'sending')`,
      )
      .toArray()[0];
    return row?.at ?? null;
  }
}

function publicOrigin(env: SessionEnv): string | null {
  try {
    return env.PUBLIC_ORIGIN ? new URL(env.PUBLIC_ORIGIN).origin : null;
  } catch {
    return null;
  }
}
