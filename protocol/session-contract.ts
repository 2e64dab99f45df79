// The contract between the Pages edge and an endpoint's session Durable Object:
// who is calling (the identity the edge verified) and the HTTP paths the DO
// answers. The session worker has no public route, so only the edge can set
// the identity header; the console imports this, never workers/.
import { z } from "zod";

export const MEMBER_ROLES = ["admin", "technician", "noc"] as const;

export const peerIdentitySchema = z.object({
  /**
   * "viewer": a console member's socket; "runtime": the endpoint's runtime;
   * "approver": the public approval page, acting for whoever holds a link;
   * "directory": the console pushing tenant-directory facts (the client's policy).
   */
  peer: z.enum(["viewer", "runtime", "approver", "directory"]),
  endpointId: z.string().min(1),
  /** Empty for approvers: the link, not a tenant membership, is their credential. */
  orgId: z.string(),
  userId: z.string().nullable(),
  userName: z.string().nullable(),
  /** The member's email, so the session never asks the requester to approve their own command. */
  userEmail: z.string().nullable().default(null),
  role: z.enum(MEMBER_ROLES).nullable().default(null),
  canRun: z.boolean(),
  /** The caller's address as the edge saw it, for the audit trail. */
  address: z.string().nullable().default(null),
});
export type PeerIdentity = z.input<typeof peerIdentitySchema>;
export type VerifiedPeerIdentity = z.output<typeof peerIdentitySchema>;

export const IDENTITY_HEADERS = { identity: "x-caisey-identity" } as const;

export function readPeerIdentity(request: Request): VerifiedPeerIdentity | null {
  const raw = request.headers.get(IDENTITY_HEADERS.identity);
  if (!raw) return null;
  try {
    const parsed = peerIdentitySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Paths on the session DO (behind `https://session.internal`). */
export const SESSION_PATHS = {
  viewer: "/viewer",
  runtime: "/runtime",
  checkin: "/checkin",
  approvalView: "/approval/view",
  approvalDecide: "/approval/decide",
  /** The console replaces the session's copy of the client's approval policy. */
  policy: "/policy",
  /** The console revokes the runtime's credential, reinstates it after re-enrollment, or decommissions the endpoint. */
  lifecycle: "/lifecycle",
} as const;

export const lifecycleRequestSchema = z.object({
  /**
   * revoke: the runtime is disconnected now and refused until reinstated;
   * reinstate: a re-enrolled runtime (new credential, same endpoint) may connect again;
   * decommission: revoked for good, nothing new runs, transcript and audit stay readable.
   */
  action: z.enum(["revoke", "reinstate", "decommission"]),
});
export type LifecycleRequest = z.infer<typeof lifecycleRequestSchema>;

export const SESSION_CLOSE_CODES = {
  unauthorized: 4401,
  forbidden: 4403,
  replaced: 4409,
  /** The runtime's credential was revoked (or the endpoint decommissioned): do not reconnect with it. */
  revoked: 4410,
} as const;
