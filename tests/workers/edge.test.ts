import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { handleEdgeRequest } from "~/edge/router.server";
import { mintOfflineSessionToken } from "~/lib/offline-auth.server";
import { DEMO_ORG, DEMO_RUNTIME_TOKEN, FOREIGN_ENDPOINT_ID } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { TestSocket } from "./socket";

const ORIGIN = "http://127.0.0.1:8788";

async function sessionCookie(userId: string, role: "admin" | "technician" | "noc", signingKeyPem = env.CAISEY_OFFLINE_SIGNING_KEY!) {
  const { token, iat } = await mintOfflineSessionToken({ signingKeyPem, userId, orgId: DEMO_ORG.id, orgSlug: DEMO_ORG.slug, role });
  return `__session=${token}; __client_uat=${iat}`;
}

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

describe("edge routes: authenticate, then forward to the endpoint's session", () => {
  it("refuses a viewer socket without a session, with a foreign key, or for another tenant's endpoint", async () => {
    await seedDemo();
    expect((await handleEdgeRequest(upgrade("/parties/endpoint/ep_acme_01"), env))!.status).toBe(401);

    const { privateKey } = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    const der = new Uint8Array((await crypto.subtle.exportKey("pkcs8", privateKey)) as ArrayBuffer);
    const foreignPem = `-----BEGIN PRIVATE KEY-----\n${btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n")}\n-----END PRIVATE KEY-----\n`;
    const forged = await sessionCookie("user_demo_tech", "technician", foreignPem);
    expect((await handleEdgeRequest(upgrade("/parties/endpoint/ep_acme_01", { cookie: forged }), env))!.status).toBe(401);

    const cookie = await sessionCookie("user_demo_tech", "technician");
    expect((await handleEdgeRequest(upgrade(`/parties/endpoint/${FOREIGN_ENDPOINT_ID}`, { cookie }), env))!.status).toBe(404);
    expect((await handleEdgeRequest(upgrade("/parties/endpoint/ep_does_not_exist", { cookie }), env))!.status).toBe(404);
  });

  it("forwards an authenticated viewer with its verified identity, ignoring identity headers it sent itself", async () => {
    await seedDemo();
    const cookie = await sessionCookie("user_demo_noc", "noc");
    const spoofed = JSON.stringify({ peer: "viewer", endpointId: "ep_acme_02", orgId: DEMO_ORG.id, userId: "user_demo_admin", userName: "Ada", canRun: true });
    const response = await handleEdgeRequest(upgrade("/parties/endpoint/ep_acme_02", { cookie, "x-caisey-identity": spoofed }), env);
    expect(response!.status).toBe(101);
    const socket = new TestSocket(response!.webSocket!);
    const presence = await socket.waitFor((m) => m.type === "presence");
    expect(presence.viewers).toEqual([{ userId: "user_demo_noc", name: "Nora NOC", connections: 1 }]);
    socket.send({ type: "run", requestId: "noc-run", text: "whoami", shell: "default" });
    expect(await socket.waitFor((m) => m.type === "error")).toMatchObject({ code: "forbidden" });
    socket.close();
  });

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
