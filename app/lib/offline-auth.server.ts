// Offline auth for local development and CI (docs/decisions/0002-auth.md).
//
// Offline mode changes configuration only: @clerk/remix still verifies every
// request (rootAuthLoader / getAuth) with CLERK_JWT_KEY, networklessly. This
// module mints Clerk-shaped v2 session tokens with the matching private key
// (WebCrypto, so it runs in workerd and Node 20 alike) and refuses to run
// anywhere that could be production.
import type { Role } from "~/db/schema";
import type { Env } from "./env.server";

export type AuthMode = { mode: "clerk" } | { mode: "offline"; signingKeyPem: string; jwtKeyPem: string };

/** Offline tokens are issued by this fake Frontend API host (RFC 2606 reserves .invalid). */
export const OFFLINE_CLERK_HOST = "clerk.offline.invalid";
export const OFFLINE_ISSUER = `https://${OFFLINE_CLERK_HOST}`;
/** clerk-js cannot load offline to refresh 60-second tokens, so offline tokens live a working day. */
export const OFFLINE_TOKEN_TTL_SECONDS = 8 * 60 * 60;
/** Same-origin stand-in for Clerk's Frontend API; set CLERK_PROXY_URL to this (relative is fine with @clerk/remix). */
export const OFFLINE_PROXY_PATH = "/offline/clerk";
export const OFFLINE_SIGN_IN_PATH = "/offline/sign-in";

const SESSION_COOKIE = "__session";
const CLIENT_UAT_COOKIE = "__client_uat";
/** The cookie outlives the token: an expired token is re-minted by the handshake stand-in. */
const SESSION_COOKIE_MAX_AGE = 7 * 24 * 60 * 60;
const CLIENT_UAT_COOKIE_MAX_AGE = 365 * 24 * 60 * 60;

/** Prefix/suffix @clerk/backend's loadClerkJwkFromPem strips: only RSA-2048 with e=65537 works. */
const SPKI_RSA2048_PREFIX = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA";
const SPKI_RSA2048_SUFFIX = "IDAQAB";

const RS256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

class OfflineAuthConfigError extends Error {
  constructor(message: string) {
    super(`Offline auth refused: ${message}`);
    this.name = "OfflineAuthConfigError";
  }
}

/** The Frontend API host encoded in a Clerk publishable key, or null if it is not one. */
export function decodePublishableKeyHost(pk: string): string | null {
  const match = /^pk_(live|test)_([A-Za-z0-9+/=]+)$/.exec((pk ?? "").trim());
  if (!match) return null;
  let decoded: string;
  try {
    decoded = atob(match[2]);
  } catch {
    return null;
  }
  if (!decoded.endsWith("$")) return null;
  const host = decoded.slice(0, -1);
  if (!host || host.includes("$") || !host.includes(".")) return null;
  return host;
}

/**
 * Loopback names and addresses: the only hosts an offline-mode server answers
 * on. Offline sign-in lets whoever reaches the server act as any member, so a
 * development stack exposed on a LAN or a public hostname must refuse, not serve.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  const v4 = mapped ? mapped[1]! : host;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * True only when offline auth is on and valid. A misconfigured offline mode
 * counts as off: everything that relaxes in offline mode (the capture mailbox,
 * trusting the request's own origin, the rate-limit switch) stays closed.
 */
export function isOfflineMode(env: Env): boolean {
  try {
    return resolveAuthMode(env).mode === "offline";
  } catch {
    return false;
  }
}

/**
 * Decides between real Clerk and offline auth. Fails closed: a request for
 * offline mode that could reach production throws instead of degrading.
 */
export function resolveAuthMode(env: Env): AuthMode {
  if (env.CAISEY_OFFLINE_AUTH !== "1") return { mode: "clerk" };

  if ((env.CAISEY_ENV ?? "").trim().toLowerCase() === "production") {
    throw new OfflineAuthConfigError('CAISEY_OFFLINE_AUTH=1 but CAISEY_ENV is "production".');
  }
  const pk = env.CLERK_PUBLISHABLE_KEY ?? "";
  const host = decodePublishableKeyHost(pk);
  if (!host) {
    throw new OfflineAuthConfigError("CLERK_PUBLISHABLE_KEY is missing or is not a valid Clerk publishable key.");
  }
  if (!host.toLowerCase().endsWith(".invalid")) {
    throw new OfflineAuthConfigError(
      `CLERK_PUBLISHABLE_KEY encodes the host "${host}"; offline mode requires a host ending in ".invalid" ` +
        `(expected pk_live_ + base64("${OFFLINE_CLERK_HOST}$")).`,
    );
  }
  if (!pk.startsWith("pk_live_")) {
    // pk_test_ makes the SDK demand a dev-browser cookie from Clerk on every page load.
    throw new OfflineAuthConfigError("CLERK_PUBLISHABLE_KEY must be a pk_live_ key in offline mode.");
  }
  const signingKeyPem = normalisePem(env.CAISEY_OFFLINE_SIGNING_KEY);
  if (!signingKeyPem) throw new OfflineAuthConfigError("CAISEY_OFFLINE_SIGNING_KEY is not set.");
  if (!signingKeyPem.includes("-----BEGIN PRIVATE KEY-----")) {
    throw new OfflineAuthConfigError("CAISEY_OFFLINE_SIGNING_KEY must be a PKCS#8 PEM private key (BEGIN PRIVATE KEY).");
  }
  const jwtKeyPem = normalisePem(env.CLERK_JWT_KEY);
  if (!jwtKeyPem) throw new OfflineAuthConfigError("CLERK_JWT_KEY is not set (offline verification must be networkless).");
  if (!isClerkCompatibleSpki(jwtKeyPem)) {
    throw new OfflineAuthConfigError("CLERK_JWT_KEY must be an RSA-2048 (e=65537) SPKI PEM public key (BEGIN PUBLIC KEY).");
  }
  return { mode: "offline", signingKeyPem, jwtKeyPem };
}

export interface OfflineTokenInput {
  signingKeyPem: string;
  userId: string;
  orgId: string;
  orgSlug: string;
  role: Role;
  /** The custom session claims Clerk is configured to add (docs/deploy.md): email, name, org_name. */
  profile: { email: string; name: string; orgName: string };
  /** Defaults to OFFLINE_TOKEN_TTL_SECONDS (8 hours). */
  ttlSeconds?: number;
  /** Milliseconds since the epoch (like Date.now()); defaults to now. */
  now?: number;
}

/** Clerk v2 session token claims as minted here. */
export interface OfflineSessionClaims {
  v: 2;
  iss: string;
  sub: string;
  sid: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  o: { id: string; rol: string; slg: string };
  [claim: string]: unknown;
}

/** Mints an RS256 Clerk v2 session token; getAuth reads it as orgId, orgSlug and orgRole "org:<role>". */
export async function mintOfflineSessionToken(input: OfflineTokenInput): Promise<{ token: string; iat: number }> {
  const { key, kid } = await importSigningKey(input.signingKeyPem);
  const iat = Math.floor((input.now ?? Date.now()) / 1000);
  const ttl = input.ttlSeconds ?? OFFLINE_TOKEN_TTL_SECONDS;
  const claims: OfflineSessionClaims = {
    v: 2,
    iss: OFFLINE_ISSUER,
    sub: input.userId,
    sid: `sess_offline_${randomId()}`,
    iat,
    nbf: iat,
    exp: iat + ttl,
    jti: randomId(),
    o: { id: input.orgId, rol: input.role, slg: input.orgSlug },
    email: input.profile.email,
    name: input.profile.name,
    org_name: input.profile.orgName,
  };
  const header = { alg: "RS256", typ: "JWT", kid };
  const signingInput = `${base64UrlEncodeJson(header)}.${base64UrlEncodeJson(claims)}`;
  const signature = await crypto.subtle.sign(RS256, key, new TextEncoder().encode(signingInput));
  return { token: `${signingInput}.${base64UrlEncode(new Uint8Array(signature))}`, iat };
}

/**
 * Verifies an RS256 signature with the offline public key and returns the
 * claims, deliberately ignoring exp/nbf: the handshake stand-in uses it to
 * re-mint an expired offline token. Never use it to authenticate a request.
 */
export async function verifyOfflineTokenSignature(
  token: string,
  jwtKeyPem: string,
): Promise<OfflineSessionClaims | null> {
  const parts = (token ?? "").split(".");
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(base64UrlDecodeText(parts[0])) as { alg?: string };
    if (header.alg !== "RS256") return null;
    const key = await crypto.subtle.importKey("spki", pemToDer(jwtKeyPem), RS256, false, ["verify"]);
    const valid = await crypto.subtle.verify(
      RS256,
      key,
      base64UrlDecode(parts[2]),
      new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    if (!valid) return null;
    const claims = JSON.parse(base64UrlDecodeText(parts[1])) as OfflineSessionClaims;
    if (!claims || typeof claims !== "object" || typeof claims.sub !== "string" || !claims.sub) return null;
    return claims;
  } catch {
    return null;
  }
}

/** Set-Cookie values for a freshly minted token: __session and __client_uat (= iat, seconds). */
export function sessionCookieHeaders(token: string, iat: number, secure: boolean): string[] {
  const attributes = `Path=/; SameSite=Lax; HttpOnly${secure ? "; Secure" : ""}`;
  return [
    `${SESSION_COOKIE}=${token}; ${attributes}; Max-Age=${SESSION_COOKIE_MAX_AGE}`,
    `${CLIENT_UAT_COOKIE}=${iat}; ${attributes}; Max-Age=${CLIENT_UAT_COOKIE_MAX_AGE}`,
  ];
}

/** Set-Cookie values that sign the browser out (both cookies gone: signed-out, no handshake). */
export function clearSessionCookieHeaders(): string[] {
  const expired = "Path=/; SameSite=Lax; HttpOnly; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
  return [`${SESSION_COOKIE}=; ${expired}`, `${CLIENT_UAT_COOKIE}=; ${expired}`];
}

/** Reads one cookie from a request's Cookie header. */
export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
  }
  return null;
}

export function readSessionCookie(request: Request): string | null {
  return readCookie(request, SESSION_COOKIE);
}

/** True when cookies for this request should carry the Secure attribute. */
export function isSecureRequest(request: Request): boolean {
  return new URL(request.url).protocol === "https:";
}

// ---------------------------------------------------------------- internals

function normalisePem(value: string | undefined): string {
  // Tolerate PEMs whose newlines arrived escaped (e.g. from a CI secret).
  return (value ?? "").replace(/\\n/g, "\n").trim();
}

function pemBody(pem: string): string {
  return normalisePem(pem)
    .replace(/-----BEGIN [A-Z ]+-----/, "")
    .replace(/-----END [A-Z ]+-----/, "")
    .replace(/\s+/g, "");
}

function pemToDer(pem: string): ArrayBuffer {
  const bytes = base64Decode(pemBody(pem));
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function isClerkCompatibleSpki(pem: string): boolean {
  if (!pem.includes("-----BEGIN PUBLIC KEY-----")) return false;
  const body = pemBody(pem);
  return body.startsWith(SPKI_RSA2048_PREFIX) && body.endsWith(SPKI_RSA2048_SUFFIX);
}

const signingKeys = new Map<string, Promise<{ key: CryptoKey; kid: string }>>();

/**
 * Imports the PKCS#8 key once per isolate. The kid is derived from the public
 * modulus: @clerk/backend caches the JWK for CLERK_JWT_KEY by the token's kid
 * forever, so two different keys must never share a kid.
 */
function importSigningKey(signingKeyPem: string): Promise<{ key: CryptoKey; kid: string }> {
  const cacheKey = pemBody(signingKeyPem);
  let entry = signingKeys.get(cacheKey);
  if (!entry) {
    entry = (async () => {
      const der = pemToDer(signingKeyPem);
      const extractable = await crypto.subtle.importKey("pkcs8", der, RS256, true, ["sign"]);
      const jwk = (await crypto.subtle.exportKey("jwk", extractable)) as JsonWebKey;
      if (!jwk.n) throw new Error("CAISEY_OFFLINE_SIGNING_KEY is not an RSA private key.");
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(jwk.n));
      const kid = `offline_${base64UrlEncode(new Uint8Array(digest)).slice(0, 22)}`;
      const key = await crypto.subtle.importKey("pkcs8", der, RS256, false, ["sign"]);
      return { key, kid };
    })();
    entry.catch(() => signingKeys.delete(cacheKey));
    signingKeys.set(cacheKey, entry);
  }
  return entry;
}

function randomId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64Decode(value: string): Uint8Array<ArrayBuffer> {
  const binary = atob(value);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function base64UrlEncode(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64UrlEncodeJson(value: unknown): string {
  return base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));
}

function base64UrlDecode(value: string): Uint8Array<ArrayBuffer> {
  const padded = value.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((value.length + 3) % 4);
  return base64Decode(padded);
}

function base64UrlDecodeText(value: string): string {
  return new TextDecoder().decode(base64UrlDecode(value));
}
