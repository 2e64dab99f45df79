// A production-shaped local run: `wrangler pages dev` with [env.production] of
// both wrangler files (CAISEY_ENV=production, offline auth off, no .dev.vars),
// real workerd. Without Clerk keys the console must serve nothing but one clear
// refusal; switching offline sign-in on there must not open it up either.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { offlineAuthVars } from "../../scripts/dev-keys.mjs";
import { EnvironmentStack, getWithHost } from "./stack";

let stack: EnvironmentStack | null = null;
afterEach(async () => {
  await stack?.stop();
  stack = null;
});

describe("production configuration, run locally", () => {
  it("refuses to serve the console without Clerk keys, and still serves static files from their own rules", async () => {
    stack = new EnvironmentStack("production", 8931);
    await stack.start();
    for (const path of ["/", "/clients", "/endpoints", "/offline/sign-in", "/sign-in", "/runtime-updates"]) {
      const response = await fetch(`${stack.origin}${path}`, { redirect: "manual" });
      const body = await response.text();
      expect(response.status, `${path}: ${body}`).toBe(503);
      expect(body).toBe('Sign-in is not configured: CLERK_PUBLISHABLE_KEY and CLERK_SECRET_KEY are not set. Nothing is served until it is (docs/deploy.md, "Clerk").\n');
      expect(response.headers.get("cache-control")).toBe("no-store");
      // The function's own headers (server.ts), so this is the Function answering, in production mode.
      expect(response.headers.get("strict-transport-security")).toBe("max-age=63072000; includeSubDomains");
    }
    const offlineSignIn = await fetch(`${stack.origin}/offline/sign-in?index`, { method: "POST", body: new URLSearchParams({ userId: "user_demo_admin", orgId: "org_demo_northwind" }), redirect: "manual" });
    expect(offlineSignIn.status).toBe(503);
    expect(offlineSignIn.headers.get("set-cookie")).toBeNull();

    // public/_routes.json + public/_headers: build output is a static file with immutable caching.
    const asset = readdirSync(join(process.cwd(), "public/build")).find((name) => name.endsWith(".js"))!;
    const script = await fetch(`${stack.origin}/build/${asset}`);
    expect(script.status).toBe(200);
    expect(script.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(script.headers.get("strict-transport-security")).toBeNull(); // served without running the function
    expect((await fetch(`${stack.origin}/favicon.svg`)).status).toBe(200);
  });

  it("does not open up when offline sign-in is switched on in production: public hosts get 421, loopback gets no sign-in", async () => {
    stack = new EnvironmentStack("production", 8932, { ...offlineAuthVars(), CAISEY_OFFLINE_AUTH: "1" });
    await stack.start();
    for (const host of ["console.msp.example", "caisey.pages.dev", "10.0.0.5:8932"]) {
      const response = await getWithHost(stack.origin, "/offline/sign-in", host);
      expect(response.status, host).toBe(421);
      expect(response.body).toContain("only answers on loopback addresses");
    }
    const loopback = await fetch(`${stack.origin}/offline/sign-in`, { redirect: "manual" });
    const body = await loopback.text();
    expect(loopback.status, body).toBeGreaterThanOrEqual(500);
    expect(body).not.toContain("<form");
    const signIn = await fetch(`${stack.origin}/offline/sign-in?index`, { method: "POST", body: new URLSearchParams({ userId: "user_demo_admin", orgId: "org_demo_northwind" }), redirect: "manual" });
    expect(signIn.status).toBeGreaterThanOrEqual(500);
    expect(signIn.headers.get("set-cookie") ?? "").not.toContain("__session=");
  });
});
