// Edge routes that are not pages: the browser's transcript socket and the
// endpoint runtime's enroll/connect calls. Each authenticates first and then
// forwards to the endpoint's Durable Object with the verified identity in
// x-caisey-* headers, which the DO trusts because it has no public route.
import { createDb } from "~/db/client.server";
import { API_PREFIX, handleApiRequest } from "./api-v1.server";
import { authenticateMember, CAN_RUN_COMMANDS } from "~/lib/auth.server";
import type { Env } from "~/lib/env.server";
import { sha256Hex } from "~/lib/crypto.server";
import { takeRateLimits } from "~/lib/rate-limit.server";
import { callerAddress, guardRequest, isSameOriginRequest } from "~/lib/request.server";
import { getEndpointForOrg } from "~/models/endpoints.server";
import { enrollRuntime } from "~/models/endpoint-lifecycle.server";
import { authenticateRuntimeCredential, EnrollmentError } from "~/models/enrollment.server";
import { NOT_PLACED_REASON, sessionStubFor, type SessionAddress } from "~/models/session-call.server";
import { placeSession, recordRuntimeColo, sessionAddress } from "~/models/session-placement.server";
import { edgeOriginOf, locationHintFor } from "@protocol/placement";
import { describeZodError, enrollRequestSchema, type EnrollResponse } from "@protocol/messages";
import { IDENTITY_HEADERS, RATE_LIMIT_KEYS, SESSION_PATHS, type PeerIdentity } from "@protocol/session-contract";

export const VIEWER_SOCKET_PREFIX = "/parties/endpoint/";

export async function handleEdgeRequest(request: Request, env: Env): Promise<Response | null> {
  // The one origin check for the whole Pages project: server.ts calls this
  // before Remix, so documents, ?_data requests, fetchers and sockets all pass
  // through it (docs/decisions/0010-edge-hardening.md).
  const refused = guardRequest(request, env);
  if (refused) return refused;
  const url = new URL(request.url);
  if (url.pathname.startsWith(VIEWER_SOCKET_PREFIX)) return handleViewerSocket(request, env, url);
  if (url.pathname.startsWith(API_PREFIX)) return handleApiRequest(request, env);
  if (url.pathname === "/agent/enroll") return handleEnroll(request, env);
  if (url.pathname === "/agent/connect") return handleRuntimeConnect(request, env, SESSION_PATHS.runtime);
  if (url.pathname === "/agent/checkin") {
    if (request.method !== "POST") return jsonError(405, "Use POST");
    return handleRuntimeConnect(request, env, SESSION_PATHS.checkin);
  }
  return null;
}

/**
 * The runtime's own HTTP API: JSON for a program, never rendered by a browser,
 * so server.ts leaves off the browser security headers (CSP and friends,
 * ~450 bytes on every check-in of a metered link; docs/decisions/0015-runtime-network.md).
 */
export function isRuntimeApiRequest(request: Request): boolean {
  const { pathname } = new URL(request.url);
  return pathname === "/agent/checkin" || pathname === "/agent/enroll";
}

export function jsonError(status: number, error: string, issues?: string[]): Response {
  return Response.json(issues ? { error, issues } : { error }, { status });
}

async function handleViewerSocket(request: Request, env: Env, url: URL): Promise<Response> {
  const endpointId = decodeURIComponent(url.pathname.slice(VIEWER_SOCKET_PREFIX.length).split("/")[0] ?? "");
  if (!endpointId) return jsonError(404, "Unknown endpoint");
  // Defence in depth behind guardRequest: a page on another site must not open a socket with this user's cookies.
  if (!isSameOriginRequest(request, env)) return jsonError(403, "Cross-origin sockets are refused");
  const member = await authenticateMember({ request, context: { cloudflare: { env } } });
  if ("kind" in member) {
    return member.kind === "signed_out" ? jsonError(401, "Sign in to watch this endpoint") : jsonError(403, member.message);
  }
  const endpoint = await getEndpointForOrg(createDb(env.DB), member.org.id, endpointId);
  if (!endpoint) return jsonError(404, "Unknown endpoint");
  // Watching must not create the session here, near the technician: it is created near the endpoint.
  if (endpoint.placedAt === null) return jsonError(409, `Nothing to watch yet: ${NOT_PLACED_REASON}.`);
  return forwardToSession(env, request, sessionAddress(endpoint), SESSION_PATHS.viewer, {
    peer: "viewer",
    endpointId,
    orgId: member.org.id,
    userId: member.userId,
    userName: member.name,
    userEmail: member.email,
    role: member.role,
    canRun: CAN_RUN_COMMANDS.includes(member.role),
    address: callerAddress(request),
  });
}

async function handleEnroll(request: Request, env: Env): Promise<Response> {
  if (request.method !== "POST") return jsonError(405, "Use POST");
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return jsonError(400, "Body must be JSON");
  }
  const parsed = enrollRequestSchema.safeParse(body);
  if (!parsed.success) return jsonError(400, `Invalid enrollment request: ${describeZodError(parsed.error)}`);
  // Before the token is looked up or used: a refused attempt changes nothing.
  // The address first, so one address cannot make limiter objects for many guessed tokens.
  const limited = await takeRateLimits(env, [
    { key: RATE_LIMIT_KEYS.enrollAddress(callerAddress(request)), policy: "enroll_address" },
    { key: RATE_LIMIT_KEYS.enrollToken(await sha256Hex(parsed.data.token)), policy: "enroll_token" },
  ]);
  if (!limited.ok) {
    if (limited.reason === "unavailable") return jsonError(503, "Enrollment is unavailable right now; nothing was changed. Try again in a minute.");
    return Response.json(
      { error: `Too many enrollment attempts; nothing was changed. Try again in ${limited.retryAfterSeconds} seconds.` },
      { status: 429, headers: { "Retry-After": String(limited.retryAfterSeconds) } },
    );
  }
  try {
    const enrolled = await enrollRuntime(env, parsed.data, callerAddress(request), edgeOriginOf(request.cf));
    const response: EnrollResponse = {
      endpointId: enrolled.endpointId,
      credential: enrolled.credential,
      clientName: enrolled.clientName,
    };
    return Response.json(response, { status: 201 });
  } catch (error) {
    if (error instanceof EnrollmentError) return jsonError(error.status, error.message);
    throw error;
  }
}

/** The runtime's socket and its HTTPS check-in authenticate the same way. */
async function handleRuntimeConnect(request: Request, env: Env, sessionPath: typeof SESSION_PATHS.runtime | typeof SESSION_PATHS.checkin): Promise<Response> {
  const credential = request.headers.get("authorization")?.match(/^Bearer (\S+)$/)?.[1];
  if (!credential) return jsonError(401, "Missing runtime credential");
  const endpoint = await authenticateRuntimeCredential(createDb(env.DB), credential);
  if (!endpoint) return jsonError(401, "Runtime credential rejected; enroll again");
  const origin = edgeOriginOf(request.cf);
  if (endpoint.placedAt === null) {
    // Enrollment could not create the session; this contact is the runtime's too, so it may.
    const placement = { ...endpoint, locationHint: endpoint.locationHint ?? locationHintFor(origin) };
    if (!(await placeSession(env, placement, origin.colo))) return jsonError(503, "The endpoint's session could not be created yet; try again shortly");
    endpoint.locationHint = placement.locationHint;
    endpoint.placedAt = Date.now();
  } else if (sessionPath === SESSION_PATHS.runtime) {
    await recordRuntimeColo(env, endpoint, origin.colo);
  }
  return forwardToSession(env, request, sessionAddress(endpoint), sessionPath, {
    peer: "runtime",
    authenticatedAt: Date.now(),
    endpointId: endpoint.id,
    orgId: endpoint.orgId,
    userId: null,
    userName: null,
    canRun: false,
    address: callerAddress(request),
  });
}

/** Forwards with a fresh header set so no client-supplied x-caisey-* header survives. */
export function forwardToSession(env: Env, request: Request, session: SessionAddress, sessionPath: string, identity: PeerIdentity): Promise<Response> {
  const endpointId = session.endpointId;
  const headers = new Headers();
  for (const name of ["upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol", "content-type"]) {
    const value = request.headers.get(name);
    if (value) headers.set(name, value);
  }
  headers.set("x-partykit-room", endpointId);
  headers.set(IDENTITY_HEADERS.identity, JSON.stringify(identity));
  const stub = sessionStubFor(env, session);
  const target = new URL(request.url);
  target.pathname = sessionPath;
  return stub.fetch(target.toString(), {
    method: request.method,
    headers,
    body: request.method === "GET" || request.method === "HEAD" ? undefined : request.body,
  });
}
