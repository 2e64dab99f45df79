import { z } from "zod";

/**
 * The identity the Pages edge verified before forwarding a connection. The
 * session worker has no public route, so only the edge can set this header.
 */
export const peerIdentitySchema = z.object({
  /** "approver": the public approval page, acting for a client contact holding a link. */
  peer: z.enum(["viewer", "runtime", "approver"]),
  endpointId: z.string().min(1),
  /** Empty for approvers: the link, not a tenant membership, is their credential. */
  orgId: z.string(),
  userId: z.string().nullable(),
  userName: z.string().nullable(),
  canRun: z.boolean(),
  /** The caller's address as the edge saw it, for the audit trail. */
  address: z.string().nullable().default(null),
});
export type PeerIdentity = z.infer<typeof peerIdentitySchema>;

export const IDENTITY_HEADERS = { identity: "x-caisey-identity" } as const;

export function readPeerIdentity(request: Request): PeerIdentity | null {
  const raw = request.headers.get(IDENTITY_HEADERS.identity);
  if (!raw) return null;
  try {
    const parsed = peerIdentitySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
