import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { handleEdgeRequest } from "~/edge/router.server";
import { createEnrollmentToken } from "~/models/enrollment.server";
import { DEMO_ORG, DEMO_RUNTIME_TOKEN } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { TestSocket } from "./socket";

const ORIGIN = "http://127.0.0.1:8788";

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
    const runtime = new TestSocket(response!.webSocket!);
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
    expect(await response!.json()).toEqual({ error: "Cross-origin sockets are refused" });
    const flagged = await handleEdgeRequest(upgrade("/parties/endpoint/ep_demo_acme_01", { "sec-fetch-site": "cross-site" }), env);
    expect(flagged!.status).toBe(403);
  });

  it("leaves every other path to Remix", async () => {
    expect(await handleEdgeRequest(new Request(`${ORIGIN}/endpoints`), env)).toBeNull();
  });
});
