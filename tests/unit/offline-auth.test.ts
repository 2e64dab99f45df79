// Offline auth goes through the real Clerk verification path: tokens minted
// here are checked by @clerk/backend's authenticateRequest (and @clerk/remix's
// getAuth) with CLERK_JWT_KEY, exactly as in production.
import { createClerkClient } from "@clerk/backend";
import { getAuth } from "@clerk/remix/ssr.server";
import dotenv from "dotenv";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  OFFLINE_ISSUER,
  clearSessionCookieHeaders,
  decodePublishableKeyHost,
  mintOfflineSessionToken,
  resolveAuthMode,
  sessionCookieHeaders,
  verifyOfflineTokenSignature,
} from "../../app/lib/offline-auth.server";
import type { Env } from "../../app/lib/env.server";
import { ensureDevVars, generateOfflineKeyPair, offlineAuthVars, parseDotenv } from "../../scripts/dev-keys.mjs";

const ORIGIN = "http://127.0.0.1:8788";
const vars = offlineAuthVars();
const MEMBER = {
  userId: "user_demo_tech",
  orgId: "org_demo_northwind",
  orgSlug: "northwind",
  role: "technician",
  profile: { email: "tom@northwind.test", name: "Tom Technician", orgName: "Northwind IT" },
} as const;

function offlineEnv(overrides: Partial<Env> = {}): Env {
  return { DB: {} as D1Database, ENDPOINT_SESSION: {} as DurableObjectNamespace, EDGE_RATE_LIMITER: {} as Env["EDGE_RATE_LIMITER"], ...vars, ...overrides } as Env;
}

function pageRequest(cookie: string, path = "/endpoints") {
  return new Request(`${ORIGIN}${path}`, {
    headers: { cookie, "sec-fetch-dest": "document", accept: "text/html" },
  });
}

function clerk(jwtKey = vars.CLERK_JWT_KEY, proxyUrl?: string) {
  return createClerkClient({
    secretKey: vars.CLERK_SECRET_KEY,
    publishableKey: vars.CLERK_PUBLISHABLE_KEY,
    jwtKey,
    proxyUrl,
  });
}

// @clerk/remix reads process.env before bindings; keep this process clean.
const savedEnv: Record<string, string | undefined> = {};
beforeAll(() => {
  for (const key of Object.keys(process.env)) {
    if (key.startsWith("CLERK_") || key.startsWith("CAISEY_")) {
      savedEnv[key] = process.env[key];
      delete process.env[key];
    }
  }
});
afterAll(() => Object.assign(process.env, savedEnv));

describe("offline session tokens through @clerk/backend", () => {
  it("a minted token signs in with the member's user, organisation and org role", async () => {
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER });
    const state = await clerk().authenticateRequest(pageRequest(`__session=${token}; __client_uat=${iat}`));
    expect(state.status).toBe("signed-in");
    expect(state.isSignedIn).toBe(true);
    const auth = state.toAuth();
    expect(auth?.userId).toBe("user_demo_tech");
    expect(auth && "orgId" in auth ? auth.orgId : null).toBe("org_demo_northwind");
    expect(auth && "orgRole" in auth ? auth.orgRole : null).toBe("org:technician");
    expect(auth && "orgSlug" in auth ? auth.orgSlug : null).toBe("northwind");
  });

  it("the token is a Clerk v2 session token, valid for 8 hours, with a key-derived kid", async () => {
    const now = Date.UTC(2026, 0, 1, 9, 0, 0);
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER, now });
    const [header, payload] = token.split(".").slice(0, 2).map((part) => JSON.parse(Buffer.from(part, "base64url").toString()));
    expect(iat).toBe(now / 1000);
    expect(header).toMatchObject({ alg: "RS256", typ: "JWT" });
    expect(header.kid).toMatch(/^offline_/);
    expect(payload).toMatchObject({
      v: 2,
      iss: OFFLINE_ISSUER,
      sub: "user_demo_tech",
      iat,
      nbf: iat,
      exp: iat + 8 * 3600,
      o: { id: "org_demo_northwind", rol: "technician", slg: "northwind" },
    });
    expect(payload.sid).toMatch(/^sess_/);
    const other = offlineAuthVars({ privateKeyPem: generateOfflineKeyPair().privateKeyPem });
    const { token: otherToken } = await mintOfflineSessionToken({ signingKeyPem: other.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER });
    expect(JSON.parse(Buffer.from(otherToken.split(".")[0], "base64url").toString()).kid).not.toBe(header.kid);
  });

  it("@clerk/remix getAuth (the app's code path) reads the same token from context.cloudflare.env", async () => {
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER, role: "noc" });
    const auth = await getAuth({
      request: pageRequest(`__session=${token}; __client_uat=${iat}`),
      context: { cloudflare: { env: offlineEnv() } },
      params: {},
    } as never);
    expect(auth.userId).toBe("user_demo_tech");
    expect(auth.orgId).toBe("org_demo_northwind");
    expect(auth.orgRole).toBe("org:noc");
  });

  it("a token signed by another key is signed out, without a handshake", async () => {
    const attacker = generateOfflineKeyPair();
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: attacker.privateKeyPem, ...MEMBER, role: "admin" });
    const state = await clerk().authenticateRequest(pageRequest(`__session=${token}; __client_uat=${iat}`));
    expect(state.status).toBe("signed-out");
    expect(state.isSignedIn).toBe(false);
    expect(state.toAuth()?.userId ?? null).toBeNull();
    expect(state.headers.get("location")).toBeNull();
    expect(await verifyOfflineTokenSignature(token, vars.CLERK_JWT_KEY)).toBeNull();
  });

  it("an offline token is rejected when only Clerk's production key is trusted", async () => {
    const production = generateOfflineKeyPair(); // stands in for Clerk's instance key
    // A fresh offline key: @clerk/backend caches the CLERK_JWT_KEY JWK per token kid for the
    // life of the process, and a production process never has the offline key configured.
    const offline = generateOfflineKeyPair();
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: offline.privateKeyPem, ...MEMBER });
    const state = await clerk(production.publicKeyPem).authenticateRequest(pageRequest(`__session=${token}; __client_uat=${iat}`));
    expect(state.isSignedIn).toBe(false);
  });

  it("an expired token keeps a valid signature but does not sign in; page loads go to the handshake", async () => {
    const now = Date.now() - 9 * 3600 * 1000;
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER, now });

    const claims = await verifyOfflineTokenSignature(token, vars.CLERK_JWT_KEY);
    expect(claims?.sub).toBe("user_demo_tech");
    expect(claims?.o).toEqual({ id: "org_demo_northwind", rol: "technician", slg: "northwind" });
    expect(claims!.exp).toBeLessThan(Date.now() / 1000);

    const page = await clerk(vars.CLERK_JWT_KEY, `${ORIGIN}/offline/clerk`).authenticateRequest(
      pageRequest(`__session=${token}; __client_uat=${iat}`),
    );
    expect(page.isSignedIn).toBe(false);
    expect(page.status).toBe("handshake");
    const location = new URL(page.headers.get("location")!);
    expect(location.origin + location.pathname).toBe(`${ORIGIN}/offline/clerk/v1/client/handshake`);
    expect(location.searchParams.get("redirect_url")).toBe(`${ORIGIN}/endpoints`);

    const api = await clerk().authenticateRequest(
      new Request(`${ORIGIN}/api/x`, { headers: { cookie: `__session=${token}; __client_uat=${iat}`, "sec-fetch-dest": "empty" } }),
    );
    expect(api.status).toBe("signed-out");
  });

  it("a relative CLERK_PROXY_URL is resolved by @clerk/remix against the request origin", async () => {
    const { token, iat } = await mintOfflineSessionToken({
      signingKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY,
      ...MEMBER,
      now: Date.now() - 9 * 3600 * 1000,
    });
    const thrown = await getAuth({
      request: pageRequest(`__session=${token}; __client_uat=${iat}`, "/clients?q=1"),
      context: { cloudflare: { env: offlineEnv({ CLERK_PROXY_URL: "/offline/clerk" }) } },
      params: {},
    } as never).then(
      () => null,
      (error: unknown) => error,
    );
    expect(thrown).toBeInstanceOf(Response);
    const response = thrown as Response;
    expect(response.status).toBe(307);
    const location = new URL(response.headers.get("location")!);
    expect(location.origin + location.pathname).toBe(`${ORIGIN}/offline/clerk/v1/client/handshake`);
    expect(location.searchParams.get("redirect_url")).toBe(`${ORIGIN}/clients?q=1`);
  });

  it("a signature check rejects tampered claims", async () => {
    const { token } = await mintOfflineSessionToken({ signingKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER });
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p, "base64url").toString());
    payload.o.rol = "admin";
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    expect(await verifyOfflineTokenSignature(forged, vars.CLERK_JWT_KEY)).toBeNull();
    expect(await verifyOfflineTokenSignature("not.a.jwt", vars.CLERK_JWT_KEY)).toBeNull();
  });
});

describe("resolveAuthMode fails closed", () => {
  it("returns offline mode with the keys for a valid offline configuration", () => {
    const mode = resolveAuthMode(offlineEnv());
    expect(mode.mode).toBe("offline");
    if (mode.mode !== "offline") throw new Error("unreachable");
    expect(mode.signingKeyPem).toContain("BEGIN PRIVATE KEY");
    expect(mode.jwtKeyPem).toContain("BEGIN PUBLIC KEY");
  });

  it("returns clerk mode when the switch is off, whatever else is set", () => {
    expect(resolveAuthMode(offlineEnv({ CAISEY_OFFLINE_AUTH: undefined }))).toEqual({ mode: "clerk" });
    expect(resolveAuthMode(offlineEnv({ CAISEY_OFFLINE_AUTH: "0" }))).toEqual({ mode: "clerk" });
    expect(resolveAuthMode(offlineEnv({ CAISEY_OFFLINE_AUTH: "true" }))).toEqual({ mode: "clerk" });
    expect(resolveAuthMode(offlineEnv({ CAISEY_OFFLINE_AUTH: undefined, CAISEY_ENV: "production" }))).toEqual({ mode: "clerk" });
  });

  it("throws in production", () => {
    expect(() => resolveAuthMode(offlineEnv({ CAISEY_ENV: "production" }))).toThrow(/CAISEY_ENV is "production"/);
    expect(() => resolveAuthMode(offlineEnv({ CAISEY_ENV: "Production " }))).toThrow(/production/);
  });

  it("throws for a publishable key of a real Clerk instance", () => {
    const real = `pk_live_${Buffer.from("clerk.example.com$").toString("base64")}`;
    expect(() => resolveAuthMode(offlineEnv({ CLERK_PUBLISHABLE_KEY: real }))).toThrow(/clerk\.example\.com.*\.invalid/);
    const dev = `pk_test_${Buffer.from("happy-hippo-12.clerk.accounts.dev$").toString("base64")}`;
    expect(() => resolveAuthMode(offlineEnv({ CLERK_PUBLISHABLE_KEY: dev }))).toThrow(/\.invalid/);
    const invalidLookalike = `pk_live_${Buffer.from("clerk.invalid.example.com$").toString("base64")}`;
    expect(() => resolveAuthMode(offlineEnv({ CLERK_PUBLISHABLE_KEY: invalidLookalike }))).toThrow(/\.invalid/);
    expect(() => resolveAuthMode(offlineEnv({ CLERK_PUBLISHABLE_KEY: "" }))).toThrow(/CLERK_PUBLISHABLE_KEY/);
    expect(() => resolveAuthMode(offlineEnv({ CLERK_PUBLISHABLE_KEY: "pk_live_garbage" }))).toThrow(/CLERK_PUBLISHABLE_KEY/);
  });

  it("throws when a key is missing or malformed", () => {
    expect(() => resolveAuthMode(offlineEnv({ CAISEY_OFFLINE_SIGNING_KEY: undefined }))).toThrow(/CAISEY_OFFLINE_SIGNING_KEY/);
    expect(() => resolveAuthMode(offlineEnv({ CAISEY_OFFLINE_SIGNING_KEY: "" }))).toThrow(/CAISEY_OFFLINE_SIGNING_KEY/);
    expect(() => resolveAuthMode(offlineEnv({ CLERK_JWT_KEY: undefined }))).toThrow(/CLERK_JWT_KEY/);
    expect(() => resolveAuthMode(offlineEnv({ CLERK_JWT_KEY: vars.CAISEY_OFFLINE_SIGNING_KEY }))).toThrow(/CLERK_JWT_KEY/);
  });

  it("decodes publishable key hosts", () => {
    expect(decodePublishableKeyHost(vars.CLERK_PUBLISHABLE_KEY)).toBe("clerk.offline.invalid");
    expect(decodePublishableKeyHost(`pk_live_${Buffer.from("clerk.example.com$").toString("base64")}`)).toBe("clerk.example.com");
    expect(decodePublishableKeyHost("sk_live_abc")).toBeNull();
    expect(decodePublishableKeyHost(`pk_live_${Buffer.from("nodollar.com").toString("base64")}`)).toBeNull();
  });
});

describe("cookies and redirects", () => {
  it("sets __session and __client_uat for the whole site", () => {
    const [session, uat] = sessionCookieHeaders("tok", 1700000000, true);
    expect(session).toMatch(/^__session=tok; Path=\/; SameSite=Lax; HttpOnly; Secure; Max-Age=\d+$/);
    expect(uat).toMatch(/^__client_uat=1700000000; Path=\/; SameSite=Lax; HttpOnly; Secure; Max-Age=\d+$/);
    expect(sessionCookieHeaders("tok", 1, false).join()).not.toContain("Secure");
    expect(clearSessionCookieHeaders().map((c) => c.split("=")[0])).toEqual(["__session", "__client_uat"]);
    expect(clearSessionCookieHeaders().every((c) => c.includes("Max-Age=0"))).toBe(true);
  });
});

describe("scripts/dev-keys.mjs", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "caisey-dev-keys-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes .dev.vars whose PEMs parse back identically with dotenv (as wrangler reads it)", async () => {
    const path = join(dir, ".dev.vars");
    writeFileSync(path, "# mine\nSOME_OTHER_VAR=keep-me\nCLERK_SECRET_KEY=sk_old\n");
    const result = ensureDevVars(path);
    expect(result.changed).toBe(true);

    const text = readFileSync(path, "utf8");
    const parsed = dotenv.parse(text);
    expect(parsed.SOME_OTHER_VAR).toBe("keep-me");
    expect(text).toContain("# mine");
    expect(text.match(/^CLERK_SECRET_KEY=/gm)).toHaveLength(1);
    expect(parsed).toMatchObject({
      CLERK_PUBLISHABLE_KEY: vars.CLERK_PUBLISHABLE_KEY,
      CLERK_SECRET_KEY: "sk_offline_unused",
      CLERK_PROXY_URL: "/offline/clerk",
      CAISEY_OFFLINE_AUTH: "1",
    });
    expect(parsed.CLERK_JWT_KEY).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    expect(parsed.CAISEY_OFFLINE_SIGNING_KEY).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    // Round trip: the private key re-derives exactly the written public key, and our parser agrees with dotenv.
    expect(offlineAuthVars({ privateKeyPem: parsed.CAISEY_OFFLINE_SIGNING_KEY }).CLERK_JWT_KEY).toBe(parsed.CLERK_JWT_KEY);
    expect(parseDotenv(text)).toEqual(parsed);

    // The parsed values form a working offline configuration.
    const mode = resolveAuthMode({ ...offlineEnv(), ...parsed } as Env);
    expect(mode.mode).toBe("offline");
    const { token, iat } = await mintOfflineSessionToken({ signingKeyPem: parsed.CAISEY_OFFLINE_SIGNING_KEY, ...MEMBER });
    const state = await clerk(parsed.CLERK_JWT_KEY).authenticateRequest(pageRequest(`__session=${token}; __client_uat=${iat}`));
    expect(state.toAuth()?.userId).toBe("user_demo_tech");

    // Idempotent: a second run keeps the same keys.
    expect(ensureDevVars(path).changed).toBe(false);
    expect(readFileSync(path, "utf8")).toBe(text);
  });

  it("repairs a mismatched public key but keeps the signing key", () => {
    const path = join(dir, "mismatch.vars");
    const first = offlineAuthVars({ privateKeyPem: generateOfflineKeyPair().privateKeyPem });
    const wrong = generateOfflineKeyPair().publicKeyPem;
    const esc = (v: string) => `"${v.replace(/\n/g, "\\n")}"`;
    writeFileSync(
      path,
      `CAISEY_OFFLINE_AUTH=1\nCAISEY_OFFLINE_SIGNING_KEY=${esc(first.CAISEY_OFFLINE_SIGNING_KEY)}\nCLERK_JWT_KEY="${wrong.trimEnd()}\n"\nOTHER=1\n`,
    );
    expect(ensureDevVars(path).changed).toBe(true);
    const parsed = dotenv.parse(readFileSync(path, "utf8"));
    expect(parsed.CAISEY_OFFLINE_SIGNING_KEY).toBe(first.CAISEY_OFFLINE_SIGNING_KEY);
    expect(parsed.CLERK_JWT_KEY).toBe(first.CLERK_JWT_KEY);
    expect(parsed.OTHER).toBe("1");
    expect(Object.keys(parsed).filter((k) => k === "CLERK_JWT_KEY")).toHaveLength(1);
  });

  it("leaves a file that opts out of offline auth alone", () => {
    const path = join(dir, "real.vars");
    const content = "CAISEY_OFFLINE_AUTH=0\nCLERK_PUBLISHABLE_KEY=pk_live_real\n";
    writeFileSync(path, content);
    expect(ensureDevVars(path).changed).toBe(false);
    expect(readFileSync(path, "utf8")).toBe(content);
  });
});
