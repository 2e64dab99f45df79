// Who may do what (docs/roles.md is the same matrix in prose). One table for
// the console (which buttons show, which actions a route accepts) and the
// session (the authority: it refuses and audits whatever the table does not
// allow). No zod here: components import it.
import type { MEMBER_ROLES } from "./session-contract";

export type MemberRole = (typeof MEMBER_ROLES)[number];

export const PERMISSIONS = {
  "transcript.watch": "Watch an endpoint's live transcript and read its history",
  "command.run": "Run a live single command on an endpoint",
  "command.cancel": "Cancel any queued or running command",
  "sequence.queue": "Queue a diagnostic sequence (from the library or drafted on the page)",
  "sequence.cancel": "Cancel a queued or running step of a diagnostic sequence",
  "sequence.resume": "Retry, skip or abort a sequence paused on an interrupted step",
  "approval.reissue": "Re-issue a pending request's approval links",
  "library.edit": "Create and edit library scripts (each save is a new version)",
  "library.archive": "Archive or restore a library script",
  "enrollment.manage": "Create enrollment tokens for a client",
  "endpoint.lifecycle": "Revoke, rotate or decommission an endpoint",
  "policy.edit": "Edit a client's approval policy and time zone",
  "review.read": "Read the review list of finished work",
  "tokens.manage": "Create and revoke API tokens and alert webhooks",
} as const;
export type Permission = keyof typeof PERMISSIONS;

export const ROLE_PERMISSIONS: Record<MemberRole, readonly Permission[]> = {
  admin: [
    "transcript.watch",
    "command.run",
    "command.cancel",
    "sequence.queue",
    "sequence.cancel",
    "sequence.resume",
    "approval.reissue",
    "library.edit",
    "library.archive",
    "enrollment.manage",
    "endpoint.lifecycle",
    "policy.edit",
    "review.read",
    "tokens.manage",
  ],
  technician: [
    "transcript.watch",
    "command.run",
    "command.cancel",
    "sequence.queue",
    "sequence.cancel",
    "sequence.resume",
    "library.edit",
    "library.archive",
    "enrollment.manage",
    "review.read",
  ],
  noc: ["transcript.watch", "sequence.queue", "sequence.cancel", "library.edit", "review.read"],
};

export function roleMay(role: MemberRole | null | undefined, permission: Permission): boolean {
  return role ? ROLE_PERMISSIONS[role].includes(permission) : false;
}

/** Every role that has `permission`, for a route's allowed-roles list. */
export function rolesWith(permission: Permission): MemberRole[] {
  return (Object.keys(ROLE_PERMISSIONS) as MemberRole[]).filter((role) => roleMay(role, permission));
}
