import { clerkConfigProblem } from "./clerk-config.server";
import type { Env } from "./env.server";
import { isLoopbackHost, isOfflineMode } from "./offline-auth.server";
import { ConfigurationError, configuredPublicOrigin } from "./public-origin.server";

/** The caller's address as the edge saw it, for the audit trail. */
export function callerAddress(request: Request): string | null {
  // Only the header Cloudflare sets itself; any other is the caller's to invent.
  return request.headers.get("cf-connecting-ip");
}

/**
 * The endpoint runtime's routes. They authenticate with a bearer credential in
 * the Authorization header (or, for enroll, a token in the body), never with a
 * cookie: a browser cannot attach either to a cross-site request, so a forged
 * request carries no authority and the origin check has nothing to protect.
 * The runtime is not a browser and sends no Origin.
 */
export const RUNTIME_BEARER_PATHS: ReadonlySet<string> = new Set(["/agent/enroll", "/agent/connect", "/agent/checkin"]);

/** Webhooks authenticated by their signature; like the runtime's routes they carry no cookie authority. */
export const SIGNED_WEBHOOK_PATHS: ReadonlySet<string> = new Set(["/webhooks/clerk"]);

/**
 * The REST API (/api/v1, docs/decisions/0025-script-library-and-api.md): bearer API tokens only, never a
 * cookie, so like the runtime's routes a forged cross-site request carries no authority.
 */
export const API_BEARER_PREFIX = "/api/v1/";

const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The origins a state-changing browser request may come from: PUBLIC_ORIGIN,
 * plus, only in offline mode, the request's own origin. Offline mode lets
 * anyone who reaches the server sign in as any member, so trusting Host there
 * grants nothing new, and it keeps localhost vs 127.0.0.1 and ad-hoc ports
 * working in development. With Clerk, sessions are real and Host is not ours
 * to trust, so only the configured origin counts. Throws ConfigurationError.
 */
export function trustedOrigins(request: Request, env: Env): string[] {
  const origins: string[] = [];
  const configured = configuredPublicOrigin(env);
  if (configured) origins.push(configured);
  if (isOfflineMode(env)) {
    const own = new URL(request.url).origin;
    if (!origins.includes(own)) origins.push(own);
  }
  return origins;
}

export type OriginCheck = { ok: true } | { ok: false; status: 403 | 500; reason: string };

/**
 * The one origin check (CSRF defence) for every state-changing request and
 * every WebSocket upgrade a browser can send with our cookies.
 *
 * - A browser that says the request is not same-origin (Sec-Fetch-Site
 *   cross-site, same-site or none) is refused: same-site covers a sibling
 *   subdomain, which SameSite cookies do not stop.
 * - Origin must be a trusted origin (see trustedOrigins). Every browser sends
 *   it on POST and on WebSocket handshakes; "null" (sandboxed frames, opaque
 *   redirects) is refused.
 * - A request with neither header is not from a fetch-metadata browser (curl,
 *   the runtime, server-side tests) and cannot ride a victim's cookies, so it
 *   passes; a request that has Sec-Fetch-Site but no Origin is refused.
 */
export function checkRequestOrigin(request: Request, env: Env): OriginCheck {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  if (site !== null && site !== "same-origin") {
    return { ok: false, status: 403, reason: `the browser marked it Sec-Fetch-Site: ${site}` };
  }
  if (origin === null) {
    return site === null ? { ok: true } : { ok: false, status: 403, reason: "it carries no Origin header" };
  }
  let trusted: string[];
  try {
    trusted = trustedOrigins(request, env);
  } catch (error) {
    if (error instanceof ConfigurationError) return { ok: false, status: 500, reason: error.message };
    throw error;
  }
  if (trusted.length === 0) return { ok: false, status: 500, reason: "PUBLIC_ORIGIN is not configured" };
  if (trusted.includes(origin)) return { ok: true };
  return { ok: false, status: 403, reason: `its Origin ${origin} is not ${trusted[0]}` };
}

/** checkRequestOrigin as a yes/no, for per-route defence in depth. */
export function isSameOriginRequest(request: Request, env: Env): boolean {
  return checkRequestOrigin(request, env).ok;
}

function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * The edge guard, run on every request before the edge routes and Remix:
 * fails closed on a production deployment without PUBLIC_ORIGIN, refuses any
 * non-loopback Host while offline auth is switched on, then applies
 * checkRequestOrigin to every non-GET/HEAD/OPTIONS request (documents, Remix
 * `?_data` requests, fetchers) and every WebSocket upgrade, except the
 * runtime's bearer-authenticated routes. Returns the refusal, or null.
 */
export function guardRequest(request: Request, env: Env): Response | null {
  try {
    configuredPublicOrigin(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return new Response(`${error.message}\n`, { status: 500, headers: PLAIN_TEXT });
    throw error;
  }
  const url = new URL(request.url);
  // Checked on the flag alone, valid or not: a half-configured offline mode is still not for the public.
  // The runtime's bearer routes never use offline sign-in (a token or credential from the console is needed),
  // and a runtime behind a plant proxy reaches the server by whatever name the proxy resolves.
  if (env.CAISEY_OFFLINE_AUTH === "1" && !isLoopbackHost(url.hostname) && !RUNTIME_BEARER_PATHS.has(url.pathname)) {
    return refusal(
      request,
      url,
      421,
      `Refused: this server runs offline (development) sign-in, which only answers on loopback addresses such as 127.0.0.1, not on "${url.hostname}". Use Clerk for anything reachable from elsewhere.`,
    );
  }
  // Runtimes and API tokens authenticate without Clerk, so a fleet keeps its sessions while the console's sign-in is being fixed.
  const bearer = RUNTIME_BEARER_PATHS.has(url.pathname) || url.pathname.startsWith(API_BEARER_PREFIX);
  if (env.CAISEY_OFFLINE_AUTH !== "1" && !bearer) {
    const problem = clerkConfigProblem(env);
    if (problem) {
      return refusal(request, url, 503, `Sign-in is not configured: ${problem}. Nothing is served until it is (docs/deploy.md, "Clerk").`);
    }
  }
  if (bearer || SIGNED_WEBHOOK_PATHS.has(url.pathname)) return null;
  if (SAFE_METHODS.has(request.method.toUpperCase()) && !isWebSocketUpgrade(request)) return null;
  const verdict = checkRequestOrigin(request, env);
  if (verdict.ok) return null;
  const message =
    verdict.status === 500
      ? verdict.reason
      : `Refused: this request did not come from the Caisey console (${verdict.reason}), so nothing was changed.`;
  return refusal(request, url, verdict.status, message);
}

const PLAIN_TEXT = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" } as const;

function refusal(request: Request, url: URL, status: number, message: string): Response {
  const wantsJson =
    isWebSocketUpgrade(request) || url.searchParams.has("_data") || (request.headers.get("accept") ?? "").includes("application/json");
  if (!wantsJson) return new Response(`${message}\n`, { status, headers: PLAIN_TEXT });
  const headers = new Headers({ "Cache-Control": "no-store" });
  // Remix's client treats an error response without this header as a network
  // failure; with it, the route's error boundary shows our status and message.
  if (url.searchParams.has("_data")) headers.set("X-Remix-Catch", "yes");
  return Response.json({ error: message }, { status, headers });
}
