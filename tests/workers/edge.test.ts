import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { handleEdgeRequest } from "~/edge/router.server";
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

  it("leaves every other path to Remix", async () => {
    expect(await handleEdgeRequest(new Request(`${ORIGIN}/endpoints`), env)).toBeNull();
  });
});
