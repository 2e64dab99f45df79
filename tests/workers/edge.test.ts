import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { handleEdgeRequest } from "~/edge/router.server";
import type { Env } from "~/lib/env.server";
import { isSameOriginRequest } from "~/lib/request.server";
import { createEnrollmentToken } from "~/models/enrollment.server";
import { DEMO_ORG, DEMO_RUNTIME_TOKEN } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { TestSocket } from "./socket";

const ORIGIN = "http://127.0.0.1:8788";
/** PUBLIC_ORIGIN as vitest.workers.config.ts binds it. */
const PUBLIC = "https://console.caisey.test";

function upgrade(path: string, headers: Record<string, string> = {}) {
  return new Request(`${ORIGIN}${path}`, { headers: { upgrade: "websocket", ...headers } });
}

async function enroll(body: unknown) {
  const response = await handleEdgeRequest(
    new Request(`${ORIGIN}/agent/enroll`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    env,
  );
  return { status: response!.status, body: (await response!.json()) as any };
}

// Viewer-socket authentication runs through @clerk/remix, whose CommonJS build
// does not load in the vitest pool; it is tested against the real local stack
// in e2e/console.spec.ts instead.
describe("runtime edge routes: authenticate, then forward to the endpoint's session", () => {
  it("enrolls a runtime once per token use, and connects it with its credential only", async () => {
    await seedDemo();
    const bad = await enroll({ token: "short", hostname: "" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/token/);
    expect((await enroll({ token: "cae_unknown-token-value-123456", hostname: "x", os: "linux" })).status).toBe(401);

    const enrolled = await enroll({ token: DEMO_RUNTIME_TOKEN, hostname: "edge-test-host", os: "linux", osVersion: "Debian 12" });
    expect(enrolled.status).toBe(201);
    expect(enrolled.body.clientName).toBe("Acme Manufacturing");
    const stored = await env.DB.prepare("SELECT credential_hash, org_id FROM endpoints WHERE id = ?").bind(enrolled.body.endpointId).first<any>();
    expect(stored.org_id).toBe(DEMO_ORG.id);
    expect(stored.credential_hash).not.toContain(enrolled.body.credential);

    expect((await handleEdgeRequest(upgrade("/agent/connect"), env))!.status).toBe(401);
    const spoof = JSON.stringify({ peer: "runtime", endpointId: enrolled.body.endpointId, orgId: DEMO_ORG.id, userId: null, userName: null, canRun: false });
    expect((await handleEdgeRequest(upgrade("/agent/connect", { authorization: "Bearer nope", "x-caisey-identity": spoof }), env))!.status).toBe(401);

    const response = await handleEdgeRequest(upgrade("/agent/connect", { authorization: `Bearer ${enrolled.body.credential}` }), env);
    expect(response!.status).toBe(101);
    const runtime = new TestSocket(response!.webSocket!, enrolled.body.endpointId);
    await runtime.waitFor((m) => m.type === "clock");
    for (let i = 0; i < 50; i++) {
      const row = await env.DB.prepare("SELECT online FROM endpoints WHERE id = ?").bind(enrolled.body.endpointId).first<any>();
      if (row.online === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await env.DB.prepare("SELECT online FROM endpoints WHERE id = ?").bind(enrolled.body.endpointId).first<any>()).online).toBe(1);
    runtime.close();
  });

  it("never lets concurrent redemptions exceed a token's use limit, and creates no endpoint for a refused one", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const created = await createEnrollmentToken(db, { label: "pair", ttlHours: 1, maxUses: 2, orgId: DEMO_ORG.id, clientId: "cl_bayside", createdBy: "test" });
    const endpointCount = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM endpoints WHERE client_id = 'cl_bayside'").first<{ n: number }>())!.n;
    const before = await endpointCount();
    const attempts = await Promise.all(
      Array.from({ length: 5 }, (_, i) => enroll({ token: created.token, hostname: `race-${i}`, os: "windows" })),
    );
    expect(attempts.map((a) => a.status).sort()).toEqual([201, 201, 401, 401, 401]);
    expect(await endpointCount()).toBe(before + 2);
    const token = await env.DB.prepare("SELECT uses FROM enrollment_tokens WHERE id = ?").bind(created.id).first<{ uses: number }>();
    expect(token!.uses).toBe(2);

    const expired = await createEnrollmentToken(db, { label: "old", ttlHours: 1, maxUses: 5, orgId: DEMO_ORG.id, clientId: "cl_bayside", createdBy: "test", now: Date.now() - 2 * 3_600_000 });
    expect((await enroll({ token: expired.token, hostname: "late", os: "linux" })).status).toBe(401);
    expect(await endpointCount()).toBe(before + 2);
    expect((await env.DB.prepare("SELECT uses FROM enrollment_tokens WHERE id = ?").bind(expired.id).first<{ uses: number }>())!.uses).toBe(0);
  });

  it("refuses a transcript socket opened from another site before it authenticates anyone", async () => {
    const response = await handleEdgeRequest(upgrade("/parties/endpoint/ep_demo_acme_01", { origin: "https://evil.example" }), env);
    expect(response!.status).toBe(403);
    expect(((await response!.json()) as any).error).toMatch(/did not come from the Caisey console .*Origin https:\/\/evil\.example/);
    const flagged = await handleEdgeRequest(upgrade("/parties/endpoint/ep_demo_acme_01", { "sec-fetch-site": "cross-site" }), env);
    expect(flagged!.status).toBe(403);
    // The per-route check behind the guard uses the same helper.
    expect(isSameOriginRequest(upgrade("/parties/endpoint/ep_demo_acme_01", { origin: "https://evil.example" }), env)).toBe(false);
    expect(isSameOriginRequest(upgrade("/parties/endpoint/ep_demo_acme_01", { origin: PUBLIC }), env)).toBe(true);
  });

  it("leaves every other path to Remix", async () => {
    expect(await handleEdgeRequest(new Request(`${ORIGIN}/endpoints`), env)).toBeNull();
  });
});

// The one origin check (app/lib/request.server.ts guardRequest) runs first in
// handleEdgeRequest, which server.ts calls before Remix: a refusal here means
// the Remix action never ran. Every action route is exercised end to end, with
// D1 checked, in e2e/edge-hardening.spec.ts.
describe("edge origin guard: every state-changing request comes from this site", () => {
  const DATA_PATH = `/clients/cl_acme?_data=${encodeURIComponent("routes/_console.clients.$clientId")}`;
  const post = (path: string, headers: Record<string, string>, base = ORIGIN) =>
    new Request(`${base}${path}`, {
      method: "POST",
      body: new URLSearchParams({ intent: "save-policy", patterns: "", approvers: "", linkTtlHours: "1" }),
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    });
  // A real (development) Clerk instance's key shapes: the guard refuses everything without them (clerk-config.server.ts).
  const clerkEnv = (): Env => ({
    ...(env as unknown as Env),
    CAISEY_OFFLINE_AUTH: undefined,
    CLERK_PUBLISHABLE_KEY: `pk_test_${btoa("neat-owl-12.clerk.accounts.dev$")}`,
    CLERK_SECRET_KEY: "sk_test_edge",
  });

  it("refuses a Remix data request and a document POST from a foreign Origin, naming why", async () => {
    const data = await handleEdgeRequest(post(DATA_PATH, { origin: "https://evil.example", "sec-fetch-site": "cross-site" }), env);
    expect(data!.status).toBe(403);
    expect(data!.headers.get("x-remix-catch")).toBe("yes");
    expect(((await data!.json()) as any).error).toMatch(/^Refused: this request did not come from the Caisey console \(the browser marked it Sec-Fetch-Site: cross-site\), so nothing was changed\.$/);

    const document = await handleEdgeRequest(post("/clients/cl_acme", { origin: "https://evil.example" }), env);
    expect(document!.status).toBe(403);
    expect(document!.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await document!.text()).toContain("its Origin https://evil.example is not https://console.caisey.test");

    for (const method of ["PUT", "PATCH", "DELETE"]) {
      const other = await handleEdgeRequest(new Request(`${ORIGIN}/review`, { method, headers: { origin: "https://evil.example" } }), env);
      expect(other!.status).toBe(403);
    }
  });

  it("refuses any request to a non-loopback Host while offline sign-in is switched on (pages, forms, sockets; not the runtime's bearer routes)", async () => {
    const publicHost = "https://caisey.example.com";
    for (const request of [
      new Request(`${publicHost}/endpoints`),
      new Request(`${publicHost}/offline/sign-in?as=user_demo_admin`),
      post("/clients/cl_acme", { origin: publicHost }, publicHost),
      new Request("http://192.168.1.20:8788/endpoints"),
    ]) {
      const refused = await handleEdgeRequest(request, env);
      expect(refused?.status, request.url).toBe(421);
      expect(await refused!.text()).toMatch(/offline \(development\) sign-in, which only answers on loopback addresses/);
    }
    // A misconfigured offline mode is refused there too; Clerk mode serves any Host it is deployed on.
    expect((await handleEdgeRequest(new Request(`${publicHost}/endpoints`), { ...(env as unknown as Env), CLERK_JWT_KEY: "" }))?.status).toBe(421);
    expect(await handleEdgeRequest(new Request(`${publicHost}/endpoints`), clerkEnv())).toBeNull();
    for (const loopback of ["http://127.0.0.1:8788", "http://localhost:8788", "http://[::1]:8788", "http://app.localhost:8788"]) {
      expect(await handleEdgeRequest(new Request(`${loopback}/endpoints`), env), loopback).toBeNull();
    }
  });

  it("refuses same-site and Origin-less browser requests, and opaque origins", async () => {
    const cases: Record<string, string>[] = [
      { origin: PUBLIC, "sec-fetch-site": "same-site" }, // a sibling subdomain: SameSite cookies would ride along
      { origin: PUBLIC, "sec-fetch-site": "none" },
      { "sec-fetch-site": "same-origin" }, // a fetch-metadata browser always sends Origin on POST
      { origin: "null" },
      { origin: `${PUBLIC}.evil.example` },
      { origin: "https://console.caisey.test:444" },
    ];
    for (const headers of cases) {
      expect((await handleEdgeRequest(post(DATA_PATH, headers), env))?.status, JSON.stringify(headers)).toBe(403);
    }
  });

  it("hands same-origin requests, safe methods and header-less tools on to Remix", async () => {
    expect(await handleEdgeRequest(post(DATA_PATH, { origin: PUBLIC, "sec-fetch-site": "same-origin" }), env)).toBeNull();
    expect(await handleEdgeRequest(post(DATA_PATH, { origin: PUBLIC }), env)).toBeNull();
    expect(await handleEdgeRequest(post(DATA_PATH, {}), env)).toBeNull();
    expect(await handleEdgeRequest(new Request(`${ORIGIN}/clients/cl_acme`, { headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site" } }), env)).toBeNull();
    // Offline mode (as in this pool) also trusts the request's own origin: anyone reaching it can sign in as anyone anyway.
    expect(await handleEdgeRequest(post(DATA_PATH, { origin: ORIGIN, "sec-fetch-site": "same-origin" }), env)).toBeNull();
  });

  it("with Clerk, trusts only PUBLIC_ORIGIN, never the Host the request names", async () => {
    const hostOrigin = await handleEdgeRequest(post(DATA_PATH, { origin: ORIGIN, "sec-fetch-site": "same-origin" }), clerkEnv());
    expect(hostOrigin!.status).toBe(403);
    const attackerHost = await handleEdgeRequest(post(DATA_PATH, { origin: "https://evil.example" }, "https://evil.example"), clerkEnv());
    expect(attackerHost!.status).toBe(403);
    expect(await handleEdgeRequest(post(DATA_PATH, { origin: PUBLIC, "sec-fetch-site": "same-origin" }), clerkEnv())).toBeNull();
  });

  it("exempts only the runtime's bearer-authenticated routes", async () => {
    const foreign = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
    const enrollResponse = await handleEdgeRequest(
      new Request(`${ORIGIN}/agent/enroll`, { method: "POST", body: "{}", headers: { "content-type": "application/json", ...foreign } }),
      env,
    );
    expect(enrollResponse!.status).toBe(400); // reached the route: refused for its body, not its origin
    const checkin = await handleEdgeRequest(new Request(`${ORIGIN}/agent/checkin`, { method: "POST", body: "{}", headers: foreign }), env);
    expect(checkin!.status).toBe(401);
    expect((await handleEdgeRequest(upgrade("/agent/connect", foreign), env))!.status).toBe(401);
    // Look-alike paths are not exempt.
    expect((await handleEdgeRequest(post("/agent/enroll/", foreign), env))!.status).toBe(403);
    expect((await handleEdgeRequest(post("/agent/checkin?x=1", foreign), env))!.status).toBe(401);
  });

  it("fails closed in production without PUBLIC_ORIGIN, on every request", async () => {
    const production = {
      ...clerkEnv(),
      CAISEY_ENV: "production",
      PUBLIC_ORIGIN: undefined,
      CLERK_PUBLISHABLE_KEY: `pk_live_${btoa("clerk.console.caisey.test$")}`,
      CLERK_SECRET_KEY: "sk_live_edge",
    } as Env;
    for (const request of [new Request(`${PUBLIC}/endpoints`), post(DATA_PATH, { origin: PUBLIC })]) {
      const response = await handleEdgeRequest(request, production);
      expect(response!.status).toBe(500);
      expect(await response!.text()).toBe("PUBLIC_ORIGIN is not configured\n");
    }
    const plainHttp = await handleEdgeRequest(new Request(`${PUBLIC}/endpoints`), { ...production, PUBLIC_ORIGIN: "http://console.caisey.test" } as Env);
    expect(plainHttp!.status).toBe(500);
    expect(await handleEdgeRequest(new Request(`${PUBLIC}/endpoints`), { ...production, PUBLIC_ORIGIN: PUBLIC } as Env)).toBeNull();
  });

  it("serves nothing to browsers while Clerk is off and its keys are missing or wrong; runtimes keep working", async () => {
    const production = { ...clerkEnv(), CAISEY_ENV: "production", PUBLIC_ORIGIN: PUBLIC } as Env;
    const cases: [Partial<Env>, string][] = [
      [{ CLERK_PUBLISHABLE_KEY: undefined, CLERK_SECRET_KEY: undefined }, "CLERK_PUBLISHABLE_KEY and CLERK_SECRET_KEY are not set"],
      [{ CLERK_SECRET_KEY: "" }, "CLERK_SECRET_KEY is not set"],
      [{ CLERK_PUBLISHABLE_KEY: (env as unknown as Env).CLERK_PUBLISHABLE_KEY }, "offline development key, but offline auth is off"],
      [{ CLERK_SECRET_KEY: "not-a-key" }, "CLERK_SECRET_KEY is not a Clerk secret key"],
      [{}, "a development instance's (pk_test_)"],
    ];
    for (const [change, reason] of cases) {
      for (const request of [new Request(`${PUBLIC}/endpoints`), new Request(`${PUBLIC}/`), post(DATA_PATH, { origin: PUBLIC }), new Request(`${PUBLIC}/webhooks/clerk`, { method: "POST" })]) {
        const response = await handleEdgeRequest(request, { ...production, ...change } as Env);
        expect(response!.status, `${request.url} with ${reason}`).toBe(503);
        expect(await response!.text()).toContain(reason);
      }
    }
    const missing = { ...production, CLERK_PUBLISHABLE_KEY: undefined, CLERK_SECRET_KEY: undefined } as Env;
    const checkin = await handleEdgeRequest(new Request(`${PUBLIC}/agent/checkin`, { method: "POST", body: "{}" }), missing);
    expect(checkin!.status).toBe(401); // reached the route: refused for its credential, not for Clerk
  });
});
