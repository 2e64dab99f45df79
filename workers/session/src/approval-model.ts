// The approval tables' rows and what the approval modules need of the session.
import { maskEmail, type ApprovalState, type SessionPolicy } from "../../../protocol/approvals";
import type { ApproverLabel, TranscriptEvent } from "../../../protocol/messages";
import type { AuditLog } from "./audit-log";
import type { SessionEnv } from "./env";
import type { EventBody } from "./session-store";

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

export type RequestRow = {
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

export type LinkRow = {
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
