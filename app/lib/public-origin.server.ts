// The console's public origin (PUBLIC_ORIGIN): the one origin browsers may
// change state from, and the base of every absolute URL the console hands out.
// Never derived from the Host header: behind proxies, preview hostnames and
// DNS rebinding, Host is whatever the client or an intermediary says.
import type { Env } from "./env.server";

/** A deployment problem the operator must fix; answered as a 500 that names it. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigurationError";
  }
}

export function isProduction(env: Pick<Env, "CAISEY_ENV">): boolean {
  return (env.CAISEY_ENV ?? "").trim().toLowerCase() === "production";
}

/**
 * PUBLIC_ORIGIN as a bare origin ("https://console.example"), or null when it
 * is not set outside production. Throws ConfigurationError when it is missing
 * in production, or set to something that is not an origin (a path, a query,
 * credentials), or plain http in production.
 */
export function configuredPublicOrigin(env: Pick<Env, "PUBLIC_ORIGIN" | "CAISEY_ENV">): string | null {
  const raw = (env.PUBLIC_ORIGIN ?? "").trim();
  if (!raw) {
    if (isProduction(env)) throw new ConfigurationError("PUBLIC_ORIGIN is not configured");
    return null;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigurationError(`PUBLIC_ORIGIN is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigurationError(`PUBLIC_ORIGIN must be an http(s) origin, got ${JSON.stringify(raw)}`);
  }
  if (url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== "")) {
    throw new ConfigurationError(`PUBLIC_ORIGIN must be an origin only (like https://console.example), got ${JSON.stringify(raw)}`);
  }
  if (isProduction(env) && url.protocol !== "https:") {
    throw new ConfigurationError(`PUBLIC_ORIGIN must use https in production, got ${JSON.stringify(raw)}`);
  }
  return url.origin;
}

/**
 * The origin absolute URLs are built from (enrollment instructions, links).
 * Throws ConfigurationError("PUBLIC_ORIGIN is not configured") when unset:
 * a link built from Host could point a reader at an attacker's host.
 */
export function publicOrigin(env: Pick<Env, "PUBLIC_ORIGIN" | "CAISEY_ENV">): string {
  const origin = configuredPublicOrigin(env);
  if (!origin) throw new ConfigurationError("PUBLIC_ORIGIN is not configured");
  return origin;
}

/** An absolute URL on the public origin for a same-origin path ("/clients/x"). */
export function publicUrl(env: Pick<Env, "PUBLIC_ORIGIN" | "CAISEY_ENV">, path: string): string {
  if (!path.startsWith("/") || path.startsWith("//")) throw new Error(`publicUrl needs an absolute path, got ${JSON.stringify(path)}`);
  return new URL(path, publicOrigin(env)).toString();
}
