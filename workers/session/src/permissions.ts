// The session's half of the role matrix (protocol/permissions.ts): the edge
// vouches for the caller's role and whether it may run live commands
// (`canRun`); the session decides every request from both, and audits what it
// refuses. NOC staff may queue and cancel diagnostic sequences, never a live
// single command, so a NOC identity needs no `canRun`.
import { roleMay, type Permission } from "../../../protocol/permissions";
import type { VerifiedPeerIdentity } from "../../../protocol/session-contract";
import type { AuditEntry } from "./audit-log";

/** Live actions also need the edge's `canRun`: a role alone never runs a command. */
const NEEDS_CAN_RUN: ReadonlySet<Permission> = new Set(["command.run", "command.cancel", "sequence.resume"]);

export type PermissionIdentity = Pick<VerifiedPeerIdentity, "userId" | "userName" | "role" | "canRun" | "address">;

export function identityMay<T extends PermissionIdentity>(identity: T, permission: Permission): identity is T & { userId: string } {
  if (!identity.userId) return false;
  if (!roleMay(identity.role, permission)) return false;
  return NEEDS_CAN_RUN.has(permission) ? identity.canRun : true;
}

/** A run request needs `command.run` for a single command and `sequence.queue` for a sequence. */
export function runPermission(isSequence: boolean): Permission {
  return isSequence ? "sequence.queue" : "command.run";
}

/**
 * Cancelling: anyone who may cancel commands, or (NOC) a step of a sequence.
 * `command` is undefined when the id is unknown; the caller then says so to a
 * member who may cancel something.
 */
export function cancelPermitted<T extends PermissionIdentity>(identity: T, command: { sequence_id: string | null } | undefined): identity is T & { userId: string } {
  if (identityMay(identity, "command.cancel")) return true;
  return identityMay(identity, "sequence.cancel") && (command === undefined || command.sequence_id !== null);
}

/** The audit record of a refusal, so an attempt beyond one's role leaves a trace. */
export function refusalAudit(identity: PermissionIdentity, permission: Permission, detail: Record<string, unknown> = {}, commandId: string | null = null): AuditEntry {
  return {
    kind: "permission.refused",
    actorId: identity.userId,
    actorName: identity.userName,
    actorAddress: identity.address,
    commandId,
    detail: { permission, role: identity.role, ...detail },
  };
}
