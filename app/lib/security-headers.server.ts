// Security headers for every response of the Pages project (server.ts applies
// them to Remix and edge responses alike). The CSP allows inline scripts only
// with this request's nonce (Remix's hydration scripts, React's streaming
// scripts), which entry.server.tsx and root.tsx render.
import type { Env } from "./env.server";
import { decodePublishableKeyHost, isOfflineMode } from "./offline-auth.server";
import { configuredPublicOrigin, isProduction } from "./public-origin.server";

/** 128 random bits, base64: a fresh nonce for every response. */
export function createCspNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

/** Hosts Clerk documents for its CSP (clerk.com/docs/guides/secure/best-practices/csp-headers). */
const CLERK_IMAGES = "https://img.clerk.com";
const CLERK_BOT_PROTECTION = "https://challenges.cloudflare.com";

/**
 * Where clerk-js and its API live in Clerk mode: the Frontend API host encoded
 * in the publishable key, or CLERK_PROXY_URL's origin when it is absolute.
 * Offline mode loads nothing from Clerk, so nothing is added there.
 */
function clerkSources(env: Env): string[] {
  if (isOfflineMode(env)) return [];
  const sources: string[] = [];
  const host = decodePublishableKeyHost(env.CLERK_PUBLISHABLE_KEY ?? "");
  if (host && /^[a-z0-9.-]+(:\d+)?$/i.test(host)) sources.push(`https://${host}`);
  if (env.CLERK_PROXY_URL && /^https:\/\//i.test(env.CLERK_PROXY_URL)) {
    try {
      sources.push(new URL(env.CLERK_PROXY_URL).origin);
    } catch {
      // not a URL: Clerk itself will refuse it
    }
  }
  return sources;
}

/** ws(s): form of an http(s) origin; older Safari does not match ws: against 'self'. */
function socketOrigin(origin: string): string {
  return origin.replace(/^http/, "ws");
}

export function contentSecurityPolicy(env: Env, nonce: string): string {
  let origin: string | null = null;
  try {
    origin = configuredPublicOrigin(env);
  } catch {
    origin = null; // server.ts answers 500 before any page renders in this case
  }
  const clerk = clerkSources(env);
  const inClerkMode = clerk.length > 0;
  const directives: Record<string, string[]> = {
    "default-src": ["'self'"],
    "script-src": ["'self'", `'nonce-${nonce}'`, ...clerk, ...(inClerkMode ? [CLERK_BOT_PROTECTION] : [])],
    // Clerk's components style themselves with runtime CSS-in-JS.
    "style-src": ["'self'", ...(inClerkMode ? ["'unsafe-inline'"] : [])],
    "img-src": ["'self'", "data:", ...(inClerkMode ? [CLERK_IMAGES] : [])],
    "font-src": ["'self'"],
    "connect-src": ["'self'", ...(origin ? [socketOrigin(origin)] : []), ...clerk],
    "worker-src": ["'self'", ...(inClerkMode ? ["blob:"] : [])],
    "frame-src": inClerkMode ? [CLERK_BOT_PROTECTION] : ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
  };
  const policy = Object.entries(directives).map(([name, values]) => `${name} ${values.join(" ")}`);
  if (isProduction(env)) policy.push("upgrade-insecure-requests");
  return policy.join("; ");
}

/**
 * Sets the security headers on a response. A route's own Referrer-Policy
 * (the approval page's no-referrer) is kept; everything else is enforced.
 * WebSocket handshakes (101) pass through untouched: their Response carries
 * the socket and cannot be copied.
 */
export function withSecurityHeaders(response: Response, env: Env, nonce: string): Response {
  if (response.status === 101 || response.webSocket) return response;
  const secured = new Response(response.body, response);
  const headers = secured.headers;
  headers.set("Content-Security-Policy", contentSecurityPolicy(env, nonce));
  headers.set("X-Frame-Options", "DENY");
  headers.set("X-Content-Type-Options", "nosniff");
  if (!headers.has("Referrer-Policy")) headers.set("Referrer-Policy", "same-origin");
  if (isProduction(env)) headers.set("Strict-Transport-Security", "max-age=63072000; includeSubDomains");
  return secured;
}
