// A technician's request to run a command or a sequence. Nothing is stored
// unless every step can be honoured: a known policy (fail closed), and for
// steps that need consent a reason and someone other than the requester to ask.
import { approvalRule } from "../../../protocol/approvals";
import { DEFAULT_COMMAND_TIMEOUT_MS, type ScriptRef, type ViewerMessage } from "../../../protocol/messages";
import type { VerifiedPeerIdentity as PeerIdentity } from "../../../protocol/session-contract";
import { eligibleApprovers, type ApprovalFlow } from "./approval-flow";
import type { AuditLog } from "./audit-log";
import type { CommandStore } from "./command-store";
import type { EventLog } from "./event-log";
import { identityMay, refusalAudit, runPermission } from "./permissions";
import type { PolicyCopy } from "./policy-copy";
import type { SessionStore } from "./session-store";

/** A library run also names the script version it rendered (recorded with every step). */
export type RunRequest = Extract<ViewerMessage, { type: "run" | "run_sequence" }> & { script?: ScriptRef };

/** Why a request was refused, as the viewer's error frame carries it. */
export type IntakeRefusal = { code: "forbidden" | "policy_unavailable" | "invalid_message" | "no_approvers"; message: string };

export interface IntakeHost {
  store: SessionStore;
  commands: CommandStore;
  events: EventLog;
  audit: AuditLog;
  approvals: ApprovalFlow;
  policyCopy: PolicyCopy;
  decommissioned(): boolean;
}

export class CommandIntake {
  constructor(private readonly host: IntakeHost) {}

  async accept(identity: PeerIdentity, message: RunRequest): Promise<IntakeRefusal | null> {
    const { store, policyCopy } = this.host;
    const permission = runPermission(message.type === "run_sequence");
    if (!identityMay(identity, permission)) {
      this.host.audit.append(refusalAudit(identity, permission, { requestId: message.requestId }));
      return { code: "forbidden", message: permission === "command.run" ? "Your role cannot run live commands; queue a sequence instead" : "Your role cannot queue sequences" };
    }
    if (this.host.decommissioned()) {
      return { code: "forbidden", message: "This endpoint was decommissioned: nothing new runs on it. Its transcript and audit trail stay readable." };
    }
    // A sequence's steps are stored as "<requestId>#<step>"; its first step marks the request as seen.
    const existing = store.one<{ id: string }>("SELECT id FROM commands WHERE request_id IN (?, ?)", message.requestId, `${message.requestId}#0`);
    if (existing) return null; // a resend after reconnect; the first copy is already in the log
    const policy = policyCopy.current() ?? (await policyCopy.reload());
    if (!policy) {
      return { code: "policy_unavailable", message: "The client's approval policy could not be read, so nothing was queued. Try again in a minute." };
    }
    const requestedBy = { userId: identity.userId, name: identity.userName ?? identity.userId };
    const isSequence = message.type === "run_sequence";
    const steps = isSequence ? message.steps : [{ text: message.text, shell: message.shell, idempotent: false }];
    // The policy's reason first (it is what the client agreed to); a flag alone says so.
    const rules = steps.map(({ text }) => approvalRule(policy, text) ?? (message.privileged ? "flagged by the technician" : null));
    const approvers = eligibleApprovers(policy, identity.userEmail);
    const needsConsent = rules.some((rule) => rule !== null);
    if (needsConsent && !message.reason) {
      return { code: "invalid_message", message: "This needs the client's approval: give a reason the client can read." };
    }
    if (needsConsent && approvers.length === 0) {
      return {
        code: "no_approvers",
        message: policy.approvers.length
          ? "This needs the client's approval, and the only approver on the client's policy is you: someone else must approve it. Ask an admin to add the client's own approver."
          : "This needs the client's approval, but the client's policy names no approver. Ask an admin to add one.",
      };
    }
    const sequence = isSequence ? { id: `seq_${crypto.randomUUID()}`, name: message.name, steps: steps.length, stopOnFailure: message.stopOnFailure } : null;
    // Work for the maintenance window waits for the window's next opening instead of a fixed time.
    const notBefore = message.maintenanceWindow ? null : message.notBefore;
    const expiresAt = isSequence ? message.expiresAt : null;
    const alongside = !isSequence && message.alongside;
    const now = Date.now();

    for (const [step, { text, shell, idempotent }] of steps.entries()) {
      const rule = rules[step] ?? null;
      const commandId = `cmd_${crypto.randomUUID()}`;
      const requestId = isSequence ? `${message.requestId}#${step}` : message.requestId;
      const stepIdempotent = isSequence && idempotent;
      store.exec(
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
        alongside ? 1 : 0,
        stepIdempotent ? 1 : 0,
      );
      if (message.maintenanceWindow) store.exec("UPDATE commands SET maintenance_window = 1 WHERE id = ?", commandId);
      this.host.events.append("command.queued", {
        commandId,
        requestId,
        text,
        shell,
        requestedBy,
        sequence: sequence ? { ...sequence, step } : null,
        notBefore,
        expiresAt,
        ...(alongside ? { alongside: true } : {}),
        ...(stepIdempotent ? { idempotent: true } : {}),
        ...(message.script ? { script: message.script } : {}),
        ...(message.maintenanceWindow ? { maintenanceWindow: true } : {}),
      });
      this.host.audit.append({
        kind: "command.requested",
        actorId: requestedBy.userId,
        actorName: requestedBy.name,
        actorAddress: identity.address,
        commandId,
        status: rule ? "pending_approval" : "queued",
        detail: { text, shell, reason: message.reason, sequence: sequence?.name ?? null, step, notBefore, expiresAt, ...(message.script ? { script: message.script } : {}) },
      });
      if (rule) {
        this.host.approvals.request({
          command: this.host.commands.get(commandId)!,
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
    if (needsConsent) this.host.approvals.delivery.kick();
    return null;
  }
}
