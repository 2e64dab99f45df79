import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Env } from "../../app/lib/env.server";
import { ConfigurationError, configuredPublicOrigin, publicOrigin, publicUrl } from "../../app/lib/public-origin.server";
import { safeRedirectPath } from "../../app/lib/redirect";
import { contentSecurityPolicy, withSecurityHeaders } from "../../app/lib/security-headers.server";
import { ensureDevVars, offlineAuthVars, parseDotenv } from "../../scripts/dev-keys.mjs";

const ORIGIN = "https://console.caisey.test";

describe("safeRedirectPath", () => {
  it("keeps same-origin paths, and absolute URLs of a trusted origin as their path", () => {
    expect(safeRedirectPath("/clients?q=1#x", "/")).toBe("/clients?q=1#x");
    expect(safeRedirectPath("/endpoints/ep_1", "/")).toBe("/endpoints/ep_1");
    expect(safeRedirectPath(`${ORIGIN}/endpoints?a=b`, "/", [ORIGIN])).toBe("/endpoints?a=b");
    expect(safeRedirectPath("/a/./b/../c", "/")).toBe("/a/c");
  });

  it.each([
    "/.//evil.example",
    "/./..//evil.example/x",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "https://evil.example/",
    `${ORIGIN}.evil.example/`,
    `${ORIGIN}//evil.example`,
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\t/evil.example",
    "/\n/evil.example",
    "clients",
    "",
    "   ",
  ])("refuses %j", (raw) => {
    expect(safeRedirectPath(raw, "/fallback", [ORIGIN])).toBe("/fallback");
  });

  it("refuses absolute URLs when no origin is trusted, and non-strings", () => {
    expect(safeRedirectPath(`${ORIGIN}/endpoints`, "/")).toBe("/");
    expect(safeRedirectPath(null, "/")).toBe("/");
    expect(safeRedirectPath(undefined, "")).toBe("");
    expect(safeRedirectPath("javascript:alert(1)", "/", ["null"])).toBe("/");
  });
});

describe("PUBLIC_ORIGIN", () => {
  it("is normalised to a bare origin and required in production", () => {
    expect(configuredPublicOrigin({ PUBLIC_ORIGIN: "https://Console.Caisey.test/" })).toBe(ORIGIN);
    expect(configuredPublicOrigin({})).toBeNull();
    expect(() => configuredPublicOrigin({ CAISEY_ENV: "production" })).toThrow(new ConfigurationError("PUBLIC_ORIGIN is not configured"));
    expect(() => publicOrigin({})).toThrow("PUBLIC_ORIGIN is not configured");
    expect(() => configuredPublicOrigin({ PUBLIC_ORIGIN: "https://console.caisey.test/app" })).toThrow(/origin only/);
    expect(() => configuredPublicOrigin({ PUBLIC_ORIGIN: "javascript:alert(1)" })).toThrow(/http\(s\)/);
    expect(() => configuredPublicOrigin({ PUBLIC_ORIGIN: "http://console.caisey.test", CAISEY_ENV: "production" })).toThrow(/https in production/);
    expect(publicUrl({ PUBLIC_ORIGIN: ORIGIN }, "/clients/cl_1")).toBe(`${ORIGIN}/clients/cl_1`);
    expect(() => publicUrl({ PUBLIC_ORIGIN: ORIGIN }, "//evil.example")).toThrow();
  });

  it("scripts/dev-keys.mjs writes it into the root .dev.vars and keeps it following the port", () => {
    const dir = mkdtempSync(join(tmpdir(), "caisey-public-origin-"));
    try {
      const path = join(dir, ".dev.vars");
      writeFileSync(path, "KEEP=1\n");
      ensureDevVars(path, { origin: "http://127.0.0.1:8790" });
      expect(parseDotenv(readFileSync(path, "utf8"))).toMatchObject({ KEEP: "1", PUBLIC_ORIGIN: "http://127.0.0.1:8790", CAISEY_OFFLINE_AUTH: "1" });
      expect(ensureDevVars(path, { origin: "http://127.0.0.1:8790" }).changed).toBe(false);
      expect(ensureDevVars(path, { origin: "http://127.0.0.1:8788" }).changed).toBe(true);
      const text = readFileSync(path, "utf8");
      expect(parseDotenv(text).PUBLIC_ORIGIN).toBe("http://127.0.0.1:8788");
      expect(text.match(/^PUBLIC_ORIGIN=/gm)).toHaveLength(1);
      // Local Clerk webhooks are verified as in production, with a secret of the developer's own.
      const webhookSecret = parseDotenv(text).CLERK_WEBHOOK_SIGNING_SECRET;
      expect(webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      ensureDevVars(path, { origin: "http://127.0.0.1:8790" });
      expect(parseDotenv(readFileSync(path, "utf8")).CLERK_WEBHOOK_SIGNING_SECRET).toBe(webhookSecret);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Content-Security-Policy", () => {
  const offline = { ...offlineAuthVars(), PUBLIC_ORIGIN: ORIGIN } as unknown as Env;
  const directive = (policy: string, name: string) => policy.split("; ").find((d) => d.startsWith(`${name} `));

  it("allows inline scripts only with the nonce, never frames the console, and loads nothing from Clerk offline", () => {
    const policy = contentSecurityPolicy(offline, "abc123==");
    expect(directive(policy, "script-src")).toBe("script-src 'self' 'nonce-abc123=='");
    expect(directive(policy, "frame-ancestors")).toBe("frame-ancestors 'none'");
    expect(directive(policy, "connect-src")).toBe("connect-src 'self' wss://console.caisey.test");
    expect(directive(policy, "style-src")).toBe("style-src 'self'");
    expect(directive(policy, "object-src")).toBe("object-src 'none'");
    expect(policy).not.toContain("unsafe-eval");
    expect(policy).not.toContain("upgrade-insecure-requests");
  });

  it("allows the Frontend API host encoded in the publishable key, as Clerk documents, in Clerk mode", () => {
    const pk = `pk_test_${Buffer.from("neat-owl-12.clerk.accounts.dev$").toString("base64")}`;
    const clerk = { CLERK_PUBLISHABLE_KEY: pk, CLERK_SECRET_KEY: "sk", PUBLIC_ORIGIN: ORIGIN, CAISEY_ENV: "production" } as Env;
    const policy = contentSecurityPolicy(clerk, "n");
    const fapi = "https://neat-owl-12.clerk.accounts.dev";
    expect(directive(policy, "script-src")).toBe(`script-src 'self' 'nonce-n' ${fapi} https://challenges.cloudflare.com`);
    expect(directive(policy, "connect-src")).toBe(`connect-src 'self' wss://console.caisey.test ${fapi}`);
    expect(directive(policy, "img-src")).toBe("img-src 'self' data: https://img.clerk.com");
    expect(directive(policy, "frame-src")).toBe("frame-src https://challenges.cloudflare.com");
    expect(directive(policy, "worker-src")).toBe("worker-src 'self' blob:");
    expect(policy).toContain("upgrade-insecure-requests");
  });

  it("sets the headers on every response, keeps a route's stricter Referrer-Policy, and HSTS only in production", () => {
    const page = withSecurityHeaders(new Response("<p>x</p>"), offline, "n");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("referrer-policy")).toBe("same-origin");
    expect(page.headers.get("strict-transport-security")).toBeNull();
    const approval = withSecurityHeaders(new Response("", { headers: { "Referrer-Policy": "no-referrer" } }), offline, "n");
    expect(approval.headers.get("referrer-policy")).toBe("no-referrer");
    const production = { PUBLIC_ORIGIN: ORIGIN, CAISEY_ENV: "production", CLERK_PUBLISHABLE_KEY: "" } as Env;
    expect(withSecurityHeaders(new Response(""), production, "n").headers.get("strict-transport-security")).toBe("max-age=63072000; includeSubDomains");
  });
});
