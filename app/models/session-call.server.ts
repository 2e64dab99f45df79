// The console calling an endpoint's session Durable Object over HTTP: as the
// tenant directory (policy refreshes, lifecycle changes) or for the public
// approval page. One place builds the identity header and bounds the wait, so
// no page can hang on a stuck DO.
import type { Env } from "~/lib/env.server";
import type { SessionPlacement } from "@protocol/placement";
import { IDENTITY_HEADERS, type PeerIdentity } from "@protocol/session-contract";

/** An endpoint's session as the directory knows it: its name and where it was (or is to be) created. */
export interface SessionAddress {
  endpointId: string;
  placement: Pick<SessionPlacement, "jurisdiction" | "locationHint" | "placedAt">;
}

/**
 * The stub for an endpoint's session, in the namespace of its jurisdiction, with
 * its location hint. Getting a stub creates the object on first use, so only
 * the runtime's first contact may call this for an unplaced session.
 */
export function sessionStubFor(env: Pick<Env, "ENDPOINT_SESSION">, session: SessionAddress): DurableObjectStub {
  const { jurisdiction, locationHint } = session.placement;
  const namespace = jurisdiction ? env.ENDPOINT_SESSION.jurisdiction(jurisdiction) : env.ENDPOINT_SESSION;
  return namespace.get(namespace.idFromName(session.endpointId), locationHint ? { locationHint } : undefined);
}

export const NOT_PLACED_REASON = "the endpoint's session does not exist yet: it is created near the endpoint when its runtime first connects";

/** A session that has not answered by then is treated as unreachable; the caller says what that means. */
export const SESSION_CALL_TIMEOUT_MS = 10_000;

/** Who caused the call; the session audits it under this name and address. */
export interface DirectoryActor {
  userId: string | null;
  name: string;
  address?: string | null;
}

export type SessionCallResult =
  /** The session answered (any status); `body` is its parsed JSON, or null when it was not JSON. */
  | { answered: true; status: number; body: unknown }
  /** No answer: the DO threw, or did not answer within the timeout. */
  | { answered: false; reason: string };

export function callSessionAsDirectory(
  env: Pick<Env, "ENDPOINT_SESSION">,
  call: { session: SessionAddress; orgId: string; path: string; body: unknown; actor: DirectoryActor; timeoutMs?: number; createIfUnplaced?: boolean },
): Promise<SessionCallResult> {
  return callSession(env, {
    ...call,
    identity: {
      peer: "directory",
      endpointId: call.session.endpointId,
      orgId: call.orgId,
      userId: call.actor.userId,
      userName: call.actor.name,
      userEmail: null,
      role: "admin",
      canRun: false,
      address: call.actor.address ?? null,
    },
  });
}

/** One POST to an endpoint's session with the identity the edge vouches for, bounded in time. */
export async function callSession(
  env: Pick<Env, "ENDPOINT_SESSION">,
  call: { session: SessionAddress; path: string; body: unknown; identity: PeerIdentity; timeoutMs?: number; createIfUnplaced?: boolean },
): Promise<SessionCallResult> {
  // Never create a session from the console or the approval page: it would live wherever this request ran.
  if (call.session.placement.placedAt === null && !call.createIfUnplaced) return { answered: false, reason: NOT_PLACED_REASON };
  const timeoutMs = call.timeoutMs ?? SESSION_CALL_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const stub = sessionStubFor(env, call.session);
    const request = stub.fetch(`https://session.internal${call.path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        // partyserver takes the DO's name from this header; two-process dev loses it otherwise.
        "x-partykit-room": call.session.endpointId,
        [IDENTITY_HEADERS.identity]: JSON.stringify(call.identity),
      },
      body: JSON.stringify(call.body),
    });
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const response = await Promise.race([request, timeout]);
    if (response === "timeout") return { answered: false, reason: `no answer within ${timeoutMs} ms` };
    const body: unknown = await response.json().catch(() => null);
    return { answered: true, status: response.status, body };
  } catch (error) {
    return { answered: false, reason: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
