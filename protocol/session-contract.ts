// The contract between the Pages edge and an endpoint's session Durable Object:
// who is calling (the identity the edge verified) and the HTTP paths the DO
// answers. The session worker has no public route, so only the edge can set
// the identity header; the console imports this, never workers/.
import * as z from "zod";
import { sessionPlacementSchema } from "./placement";
import { runSequenceMessageSchema, scriptRefSchema } from "./messages";
import { runtimePlatformSchema, runtimeVersionSchema } from "./runtime-release";

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
  /**
   * Runtimes: when the edge checked the credential against the directory. A
   * revoke clears the credential there first, so a check after the session's
   * revoke can only be a re-enrolled runtime's new credential.
   */
  authenticatedAt: z.number().int().nonnegative().nullable().default(null),
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
  /** The edge creates the session where the runtime's first contact says (enrollment), and tells it where it is. */
  placement: "/placement",
  /** The console tells the session the tenant's runtime target version changed: it re-reads it from the directory. */
  runtimeTarget: "/runtime-target",
  /**
   * The console's server queues a sequence for a member, an API token or an alert webhook (a directory peer
   * whose role and canRun are the caller's; the session applies the role matrix and the approval policy as
   * for a viewer's run_sequence).
   */
  queueSequence: "/sequence",
  /** The console queues one fleet run's work on this endpoint, as the member who started the run (ADR 0026). */
  fleetQueue: "/fleet-queue",
  /** A member (or, deleted with its organisation, every member) lost access: their live sockets close now. */
  memberRemoved: "/member-removed",
} as const;

export const queueSequenceRequestSchema = z.object({
  sequence: runSequenceMessageSchema,
  script: scriptRefSchema.nullable().default(null),
});
export type QueueSequenceRequest = z.input<typeof queueSequenceRequestSchema>;

/** The session's answer: the steps it holds for this request (also for a repeated request id: nothing is queued twice). */
export const queueSequenceResponseSchema = z.object({
  requestId: z.string(),
  sequenceId: z.string(),
  duplicate: z.boolean(),
  steps: z.array(z.object({ commandId: z.string(), step: z.number().int().nonnegative(), text: z.string(), status: z.string() })),
});
export type QueueSequenceResponse = z.infer<typeof queueSequenceResponseSchema>;

/**
 * One fleet run's work for one endpoint: the same run / run_sequence message a
 * technician's page sends (validated by the session with viewerMessageSchema),
 * queued through the same path, under the run's requestId so a repeat queues
 * nothing twice. The caller's identity (peer "directory") carries the member who
 * started the fleet run, with their role and whether they may run commands.
 */
export const fleetQueueRequestSchema = z.object({
  fleetRunId: z.string().min(1).max(128),
  run: z.record(z.string(), z.unknown()),
});
export type FleetQueueRequest = z.infer<typeof fleetQueueRequestSchema>;

/** The session's answer: the commands it holds for the run (one per step), or why it queued nothing. */
export const fleetQueueAnswerSchema = z.union([
  z.object({
    queued: z.literal(true),
    sequenceId: z.string().nullable(),
    commands: z.array(z.object({ commandId: z.string(), step: z.number().int().nonnegative(), status: z.string() })).min(1),
  }),
  z.object({ queued: z.literal(false), code: z.string(), error: z.string() }),
]);
export type FleetQueueAnswer = z.infer<typeof fleetQueueAnswerSchema>;

/** Who lost access (null: everyone, the organisation was deleted); the tenant is the caller's (the directory identity's orgId). */
export const memberRemovedRequestSchema = z.object({ userId: z.string().min(1).max(200).nullable() });
export type MemberRemovedRequest = z.infer<typeof memberRemovedRequestSchema>;
/** The session's answer: how many of the member's sockets it closed (0 when none was open). */
export const memberRemovedAnswerSchema = z.object({ closed: z.number().int().nonnegative() });

export const placementRequestSchema = z.object({ placement: sessionPlacementSchema });
export type PlacementRequest = z.infer<typeof placementRequestSchema>;

export const lifecycleRequestSchema = z.object({
  /**
   * revoke: the runtime is disconnected now and refused until reinstated;
   * reinstate: a re-enrolled runtime (new credential, same endpoint) may connect again;
   * decommission: revoked for good, nothing new runs, transcript and audit stay readable.
   */
  action: z.enum(["revoke", "reinstate", "decommission"]),
});
export type LifecycleRequest = z.infer<typeof lifecycleRequestSchema>;

/**
 * The tenant's runtime target (docs/decisions/0016-runtime-updates.md), as the console stores it in
 * `organisations.runtime_target` and each session reads it: the version and, per platform, what a runtime
 * needs to fetch and verify it. Null in the directory: no target, nothing is offered.
 */
export const runtimeTargetSchema = z.object({
  version: runtimeVersionSchema,
  /** Offered to runtimes newer than it only when the admin said so explicitly. */
  allowDowngrade: z.boolean(),
  setAt: z.number().int().nonnegative(),
  setBy: z.string().max(200),
  artifacts: z
    .array(
      z.object({
        platform: runtimePlatformSchema,
        size: z.number().int().positive(),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        signature: z.string().min(1).max(200),
        /** Absolute, or relative to the runtime's server. */
        url: z.string().min(1).max(2000),
      }),
    )
    .min(1),
});
export type RuntimeTarget = z.infer<typeof runtimeTargetSchema>;

/** The session's answer to a runtimeTarget push. */
export const runtimeTargetReloadedSchema = z.object({ version: runtimeVersionSchema.nullable() });

export const SESSION_CLOSE_CODES = {
  unauthorized: 4401,
  forbidden: 4403,
  replaced: 4409,
  /** The runtime's credential was revoked (or the endpoint decommissioned): do not reconnect with it. */
  revoked: 4410,
  /** The member's access to the tenant was removed: the page must not reconnect as them. */
  accessRemoved: 4411,
} as const;

// ---------------------------------------------------------------------------
// Edge rate limits (docs/decisions/0011-edge-rate-limits.md). The Pages edge
// asks the session worker's EdgeRateLimiter Durable Object, one instance per
// key, over typed RPC (EDGE_RATE_LIMITER binding) before it does any work for
// an unauthenticated caller. The policies live here so the limiter enforces
// numbers the caller cannot choose.

export const RATE_LIMIT_POLICIES = {
  /** Enrollment attempts per caller address. */
  enroll_address: { limit: 10, windowSeconds: 600 },
  /** Enrollment attempts per token: a leaked token cannot enroll endpoints in bulk. */
  enroll_token: { limit: 30, windowSeconds: 3600 },
  /** Views of approval links per caller address (each view costs a D1 read and a session DO call). */
  approval_view: { limit: 60, windowSeconds: 60 },
  /** Approval decisions per caller address. */
  approval_decide: { limit: 10, windowSeconds: 60 },
} as const satisfies Record<string, { limit: number; windowSeconds: number }>;
export type RateLimitPolicy = keyof typeof RATE_LIMIT_POLICIES;

export const rateLimitTakeSchema = z.object({
  policy: z.enum(Object.keys(RATE_LIMIT_POLICIES) as [RateLimitPolicy, ...RateLimitPolicy[]]),
});
export type RateLimitTake = z.infer<typeof rateLimitTakeSchema>;

export const rateLimitVerdictSchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), remaining: z.number().int().nonnegative() }),
  /** retryAfterSeconds: when the oldest counted request leaves the window, so one more is allowed. */
  z.object({ ok: z.literal(false), retryAfterSeconds: z.number().int().positive() }),
]);
export type RateLimitVerdict = z.infer<typeof rateLimitVerdictSchema>;

/** The EdgeRateLimiter Durable Object's RPC surface (the class implements it; the edge calls it). */
export interface EdgeRateLimiterRpc {
  /** Counts one request under `policy` if the window has room; refused requests are not counted. */
  take(request: RateLimitTake): Promise<RateLimitVerdict>;
}

/**
 * The caller's address as a rate-limit key: null (no CF-Connecting-IP: local
 * dev and tests only; Cloudflare always sets it) becomes "unknown", one shared
 * bucket; an IPv6 address counts as its /64, the smallest block one subscriber
 * usually holds, so rotating through it buys nothing.
 */
export function rateLimitAddress(address: string | null): string {
  const trimmed = address?.trim().toLowerCase();
  if (!trimmed) return "unknown";
  if (!trimmed.includes(":")) return trimmed;
  // IPv4-mapped IPv6 (::ffff:192.0.2.1) is one IPv4 caller, not a /64 shared by all of them.
  if (trimmed.includes(".")) return trimmed.slice(trimmed.lastIndexOf(":") + 1);
  const prefix = ipv6Prefix64(trimmed);
  return prefix ? `${prefix}::/64` : trimmed;
}

function ipv6Prefix64(address: string): string | null {
  const [head = "", tail, extra] = address.split("%")[0]!.split("::");
  if (extra !== undefined) return null;
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...right];
  const first = groups.slice(0, 4);
  if (first.length < 4 || !first.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return null;
  return first.map((group) => group.replace(/^0+(?=.)/, "")).join(":");
}

/** Durable Object instance names (idFromName) of the EdgeRateLimiter: one per key. */
export const RATE_LIMIT_KEYS = {
  enrollAddress: (address: string | null) => `enroll:${rateLimitAddress(address)}`,
  /** tokenHash: hex SHA-256 of the enrollment token, so the token itself never names an object. */
  enrollToken: (tokenHash: string) => `enroll-token:${tokenHash}`,
  approvalAddress: (address: string | null) => `approve:${rateLimitAddress(address)}`,
} as const;
