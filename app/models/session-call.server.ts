// The console calling an endpoint's session Durable Object over HTTP: as the
// tenant directory (policy refreshes, lifecycle changes) or for the public
// approval page. One place builds the identity header and bounds the wait, so
// no page can hang on a stuck DO.
import type { Env } from "~/lib/env.server";
import { IDENTITY_HEADERS, type PeerIdentity } from "../../protocol/session-contract";

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
  call: { endpointId: string; orgId: string; path: string; body: unknown; actor: DirectoryActor; timeoutMs?: number },
): Promise<SessionCallResult> {
  return callSession(env, {
    ...call,
    identity: {
      peer: "directory",
      endpointId: call.endpointId,
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
  call: { endpointId: string; path: string; body: unknown; identity: PeerIdentity; timeoutMs?: number },
): Promise<SessionCallResult> {
  const timeoutMs = call.timeoutMs ?? SESSION_CALL_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const stub = env.ENDPOINT_SESSION.get(env.ENDPOINT_SESSION.idFromName(call.endpointId));
    const request = stub.fetch(`https://session.internal${call.path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        // partyserver takes the DO's name from this header; two-process dev loses it otherwise.
        "x-partykit-room": call.endpointId,
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
