// The console side of an endpoint's lifecycle, end to end inside workerd: the
// admin's revoke / rotate / decommission change D1 (which the edge
// authenticates against) and the endpoint's real session DO (which closes the
// live runtime), and a rotation token re-enrolls the same endpoint.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { handleEdgeRequest } from "~/edge/router.server";
import type { Env } from "~/lib/env.server";
import {
  decommissionEndpoint,
  LifecycleError,
  revokeRuntimeCredential,
  rotateRuntimeCredential,
  SESSION_UNREACHABLE,
  type LifecycleActor,
} from "~/models/endpoint-lifecycle.server";
import { getEndpointForOrg, parseEndpointSearch, searchEndpoints } from "~/models/endpoints.server";
import { authenticateRuntimeCredential, createEnrollmentToken } from "~/models/enrollment.server";
import { DEMO_ORG, DEMO_RUNTIME_TOKEN, FOREIGN_ENDPOINT_ID, OTHER_ORG } from "../../scripts/seed.mjs";
import { SESSION_CLOSE_CODES } from "../../protocol/session-contract";
import { seedDemo } from "./helpers";
import { checkin, connectDirect, replayAll, runtimeHello, runtimeIdentity, sessionAudit, sessionAuditKinds, TestSocket, viewerIdentity } from "./socket";

const ORIGIN = "http://127.0.0.1:8788";
/** PUBLIC_ORIGIN as vitest.workers.config.ts binds it. */
const PUBLIC = "https://console.caisey.test";

const ADMIN: LifecycleActor = { userId: "user_demo_admin", name: "Ada Admin", role: "admin", orgId: DEMO_ORG.id, address: "203.0.113.5" };
const TECHNICIAN: LifecycleActor = { userId: "user_demo_tech", name: "Tom Technician", role: "technician", orgId: DEMO_ORG.id, address: null };
const NOC: LifecycleActor = { userId: "user_demo_noc", name: "Nora NOC", role: "noc", orgId: DEMO_ORG.id, address: null };
const OTHER_ADMIN: LifecycleActor = { userId: "user_other_admin", name: "Carl Contoso", role: "admin", orgId: OTHER_ORG.id, address: null };

let counter = 0;
const uniqueHost = (label: string) => `lifecycle-${label}-${Date.now()}-${counter++}`;

/**
 * /agent/enroll through the edge. Each call comes from its own address: the
 * edge limits enrollment attempts per address, and these tests are not about that.
 */
async function enroll(body: { token: string; hostname: string; os: string; osVersion?: string }) {
  const response = await handleEdgeRequest(
    new Request(`${ORIGIN}/agent/enroll`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json", "cf-connecting-ip": `198.18.${Math.floor(counter / 250)}.${counter++ % 250}` },
    }),
    env,
  );
  return { status: response!.status, body: (await response!.json()) as any };
}

/** A runtime enrolled with a fresh token of the demo tenant's Acme client: its endpoint id and credential. */
async function enrolledRuntime(label: string): Promise<{ endpointId: string; credential: string; hostname: string }> {
  const hostname = uniqueHost(label);
  const token = await createEnrollmentToken(createDb(env.DB), { label, ttlHours: 1, maxUses: 2, orgId: DEMO_ORG.id, clientId: "cl_acme", createdBy: "test" });
  const enrolled = await enroll({ token: token.token, hostname, os: "linux", osVersion: "Debian 12" });
  expect(enrolled.status).toBe(201);
  return { endpointId: enrolled.body.endpointId, credential: enrolled.body.credential, hostname };
}

/** The runtime's socket through the edge, as the real runtime opens it; null when the edge refuses (with its status). */
async function connectThroughEdge(credential: string): Promise<{ status: number; socket: TestSocket | null }> {
  const response = await handleEdgeRequest(
    new Request(`${ORIGIN}/agent/connect`, { headers: { upgrade: "websocket", authorization: `Bearer ${credential}` } }),
    env,
  );
  if (response!.status !== 101) return { status: response!.status, socket: null };
  const socket = new TestSocket(response!.webSocket!, "runtime");
  socket.send({ ...runtimeHello, clock: Date.now() });
  return { status: 101, socket };
}

async function checkinThroughEdge(credential: string): Promise<number> {
  const response = await handleEdgeRequest(
    new Request(`${ORIGIN}/agent/checkin`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${credential}` },
      body: JSON.stringify({ protocol: 1, runtimeVersion: "test", hostname: "h", os: "linux", clock: Date.now() }),
    }),
    env,
  );
  return response!.status;
}

async function directoryRow(endpointId: string) {
  return (await env.DB.prepare("SELECT credential_hash, revoked_at, decommissioned_at FROM endpoints WHERE id = ?").bind(endpointId).first<any>())!;
}

const auditKinds = sessionAuditKinds;

async function expectLifecycleError(promise: Promise<unknown>, status: number) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LifecycleError);
  expect((error as LifecycleError).status).toBe(status);
}

beforeEach(async () => {
  await seedDemo();
});

describe("revoke", () => {
  it("closes the connected runtime with 4410 and refuses its credential at the edge on both transports", async () => {
    const runtime = await enrolledRuntime("revoke");
    const connected = await connectThroughEdge(runtime.credential);
    expect(connected.status).toBe(101);
    await connected.socket!.waitFor((m) => m.type === "clock");
    expect(await checkinThroughEdge(runtime.credential)).toBe(200);

    const outcome = await revokeRuntimeCredential(env, ADMIN, runtime.endpointId);
    expect(outcome.session).toEqual({ reached: true });
    expect((await connected.socket!.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);

    expect((await connectThroughEdge(runtime.credential)).status).toBe(401);
    expect(await checkinThroughEdge(runtime.credential)).toBe(401);
    const row = await directoryRow(runtime.endpointId);
    expect(row.credential_hash).toBeNull();
    expect(row.revoked_at).toBe(outcome.revokedAt);
    expect(await auditKinds(runtime.endpointId)).toContain("runtime.revoked");
    const audited = (await sessionAudit(runtime.endpointId)).find((e: any) => e.kind === "runtime.revoked");
    expect(audited).toMatchObject({ actorId: ADMIN.userId, actorName: ADMIN.name });
  });

  it("the session itself refuses a runtime the edge authenticated before the revoke, and takes back one authenticated after it", async () => {
    const runtime = await enrolledRuntime("revoke-race");
    const connected = await connectThroughEdge(runtime.credential);
    await connected.socket!.waitFor((m) => m.type === "clock");
    const authenticatedBefore = Date.now();
    await revokeRuntimeCredential(env, ADMIN, runtime.endpointId);
    const revokeDone = Date.now();
    await connected.socket!.waitForClose();

    // A socket and a check-in that passed the edge just before the revoke reach the session after it.
    const before = { ...runtimeIdentity(runtime.endpointId), orgId: DEMO_ORG.id, authenticatedAt: authenticatedBefore };
    const late = await connectDirect(runtime.endpointId, before);
    expect((await late.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);
    const refused = await checkin(runtime.endpointId, {}, before);
    expect(refused.status).toBe(403);
    expect(await auditKinds(runtime.endpointId)).not.toContain("runtime.reinstated");

    // Authenticated after the revoke means a new credential (the old one is gone from D1): the session takes it back.
    const after = { ...before, authenticatedAt: revokeDone + 1 };
    expect((await checkin(runtime.endpointId, {}, after)).status).toBe(200);
    expect(await auditKinds(runtime.endpointId)).toContain("runtime.reinstated");
  });

  it("refuses a revoked or decommissioned endpoint's credential even if its hash were still stored", async () => {
    for (const column of ["revoked_at", "decommissioned_at"]) {
      const runtime = await enrolledRuntime(`belt-${column}`);
      expect(await authenticateRuntimeCredential(createDb(env.DB), runtime.credential)).not.toBeNull();
      await env.DB.prepare(`UPDATE endpoints SET ${column} = ? WHERE id = ?`).bind(Date.now(), runtime.endpointId).run();
      expect(await authenticateRuntimeCredential(createDb(env.DB), runtime.credential)).toBeNull();
      expect((await connectThroughEdge(runtime.credential)).status).toBe(401);
    }
  });

  it("still revokes in D1 when the session cannot be reached, and says what that means", async () => {
    const runtime = await enrolledRuntime("unreachable");
    // Fault injection: the Durable Object namespace fails as it does when the session worker is down.
    const unreachable: Env = {
      ...(env as unknown as Env),
      ENDPOINT_SESSION: {
        idFromName: (name: string) => env.ENDPOINT_SESSION.idFromName(name),
        get: () => ({ fetch: () => Promise.reject(new Error("Durable Object unavailable")) }),
      } as unknown as Env["ENDPOINT_SESSION"],
    };
    const outcome = await revokeRuntimeCredential(unreachable, ADMIN, runtime.endpointId);
    expect(outcome.session).toEqual({ reached: false, message: SESSION_UNREACHABLE.revoke });
    expect((await directoryRow(runtime.endpointId)).credential_hash).toBeNull();
    expect((await connectThroughEdge(runtime.credential)).status).toBe(401);
  });
});

describe("rotate", () => {
  it("re-enrolls the same endpoint with a new credential from a single-use bound token; the old credential stays refused", async () => {
    const runtime = await enrolledRuntime("rotate");
    const connected = await connectThroughEdge(runtime.credential);
    await connected.socket!.waitFor((m) => m.type === "clock");
    const viewer = await connectDirect(runtime.endpointId, viewerIdentity(runtime.endpointId, { orgId: DEMO_ORG.id }));
    viewer.send({ type: "sync", afterSeq: 0 });
    viewer.send({ type: "run", requestId: "before-rotation", text: "echo before-rotation", shell: "sh" });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.requestId === "before-rotation"));

    const rotation = await rotateRuntimeCredential(env, ADMIN, runtime.endpointId);
    expect(rotation.session).toEqual({ reached: true });
    expect(rotation.token).toMatch(/^cae_/);
    expect(rotation.command).toBe(`sudo caisey-runtime enroll --server ${PUBLIC} --token ${rotation.token} --force && sudo systemctl restart caisey-runtime`);
    expect((await connected.socket!.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);
    expect((await connectThroughEdge(runtime.credential)).status).toBe(401);
    const stored = await env.DB.prepare("SELECT token_hash, endpoint_id, max_uses, uses FROM enrollment_tokens WHERE id = ?").bind(rotation.tokenId).first<any>();
    expect(stored).toMatchObject({ endpoint_id: runtime.endpointId, max_uses: 1, uses: 0 });
    expect(stored.token_hash).not.toContain(rotation.token);

    // Pasted on the wrong machine: refused, nothing changed, the token keeps its use.
    const wrongHost = await enroll({ token: rotation.token, hostname: "someone-else", os: "linux" });
    expect(wrongHost.status).toBe(409);
    expect(wrongHost.body.error).toMatch(/Nothing was changed/);
    expect((await enroll({ token: rotation.token, hostname: runtime.hostname, os: "windows" })).status).toBe(409);
    expect(await directoryRow(runtime.endpointId)).toMatchObject({ credential_hash: null });
    const endpointsBefore = (await env.DB.prepare("SELECT COUNT(*) AS n FROM endpoints").first<{ n: number }>())!.n;

    const again = await enroll({ token: rotation.token, hostname: runtime.hostname.toUpperCase(), os: "linux", osVersion: "Debian 13" });
    expect(again.status).toBe(201);
    expect(again.body.endpointId).toBe(runtime.endpointId);
    expect(again.body.credential).not.toBe(runtime.credential);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM endpoints").first<{ n: number }>())!.n).toBe(endpointsBefore);
    expect(await directoryRow(runtime.endpointId)).toMatchObject({ revoked_at: null, decommissioned_at: null });
    expect((await env.DB.prepare("SELECT uses FROM enrollment_tokens WHERE id = ?").bind(rotation.tokenId).first<any>()).uses).toBe(1);

    // The session took it back: the new credential connects, the old one stays refused, the token is spent.
    const back = await connectThroughEdge(again.body.credential);
    expect(back.status).toBe(101);
    await back.socket!.waitFor((m) => m.type === "clock");
    expect((await connectThroughEdge(runtime.credential)).status).toBe(401);
    expect((await enroll({ token: rotation.token, hostname: runtime.hostname, os: "linux" })).status).toBe(401);
    expect(await auditKinds(runtime.endpointId)).toEqual(expect.arrayContaining(["runtime.revoked", "runtime.reinstated"]));

    // Same endpoint id, same session: the transcript from before the rotation is still there.
    const transcript = await replayAll(viewer);
    expect(transcript.events.find((e: any) => e.kind === "command.queued" && e.requestId === "before-rotation")?.text).toBe("echo before-rotation");
    back.socket!.close();
    viewer.close();
  });

  it("withdraws an earlier rotation token when the credential is rotated or revoked again", async () => {
    const runtime = await enrolledRuntime("rotate-twice");
    const first = await rotateRuntimeCredential(env, ADMIN, runtime.endpointId);
    const second = await rotateRuntimeCredential(env, ADMIN, runtime.endpointId);
    expect((await enroll({ token: first.token, hostname: runtime.hostname, os: "linux" })).status).toBe(401);
    await revokeRuntimeCredential(env, ADMIN, runtime.endpointId);
    expect((await enroll({ token: second.token, hostname: runtime.hostname, os: "linux" })).status).toBe(401);
    expect((await directoryRow(runtime.endpointId)).credential_hash).toBeNull();
  });

  it("a plain token enrolls a new endpoint, even with a rotated endpoint's hostname", async () => {
    const runtime = await enrolledRuntime("plain");
    await rotateRuntimeCredential(env, ADMIN, runtime.endpointId);
    const plain = await enroll({ token: DEMO_RUNTIME_TOKEN, hostname: runtime.hostname, os: "linux" });
    expect(plain.status).toBe(201);
    expect(plain.body.endpointId).not.toBe(runtime.endpointId);
  });
});

describe("decommission", () => {
  it("hides the endpoint from the list (a filter shows it), refuses runs and runtimes, and keeps it readable", async () => {
    const runtime = await enrolledRuntime("decommission");
    const connected = await connectThroughEdge(runtime.credential);
    await connected.socket!.waitFor((m) => m.type === "clock");
    const pending = await rotateRuntimeCredential(env, ADMIN, runtime.endpointId);
    const viewer = await connectDirect(runtime.endpointId, viewerIdentity(runtime.endpointId, { orgId: DEMO_ORG.id }));
    viewer.send({ type: "sync", afterSeq: 0 });
    await viewer.waitFor((m) => m.type === "events" && m.replay);

    const db = createDb(env.DB);
    const listed = async (status: string) =>
      (await searchEndpoints(db, DEMO_ORG.id, parseEndpointSearch(new URLSearchParams({ q: runtime.hostname, status })))).rows.map((r) => r.id);
    expect(await listed("")).toEqual([runtime.endpointId]);
    expect(await listed("revoked")).toEqual([runtime.endpointId]);

    await expectLifecycleError(decommissionEndpoint(env, ADMIN, runtime.endpointId, "not-the-hostname"), 400);
    expect((await directoryRow(runtime.endpointId)).decommissioned_at).toBeNull();

    const outcome = await decommissionEndpoint(env, ADMIN, runtime.endpointId, runtime.hostname);
    expect(outcome.session).toEqual({ reached: true });
    expect(outcome.decommissionedAt).toEqual(expect.any(Number));
    await viewer.waitFor((m) => m.type === "runtime" && m.runtime.decommissioned === true);

    expect(await listed("")).toEqual([]);
    expect(await listed("online")).toEqual([]);
    expect(await listed("offline")).toEqual([]);
    expect(await listed("revoked")).toEqual([]);
    expect(await listed("decommissioned")).toEqual([runtime.endpointId]);
    expect(await getEndpointForOrg(db, DEMO_ORG.id, runtime.endpointId)).toMatchObject({ id: runtime.endpointId, decommissionedAt: outcome.decommissionedAt });

    viewer.send({ type: "run", requestId: "after", text: "echo after", shell: "sh" });
    expect(await viewer.waitFor((m) => m.type === "error" && m.requestId === "after")).toMatchObject({ code: "forbidden" });
    expect((await connectThroughEdge(runtime.credential)).status).toBe(401);
    // The rotation token issued before is withdrawn with it, and nothing brings a runtime back.
    expect((await enroll({ token: pending.token, hostname: runtime.hostname, os: "linux" })).status).toBe(401);
    await expectLifecycleError(rotateRuntimeCredential(env, ADMIN, runtime.endpointId), 409);
    await expectLifecycleError(revokeRuntimeCredential(env, ADMIN, runtime.endpointId), 409);
    expect(await auditKinds(runtime.endpointId)).toContain("endpoint.decommissioned");

    // Repeating it changes nothing in D1 and tells the session again.
    const repeated = await decommissionEndpoint(env, ADMIN, runtime.endpointId, runtime.hostname);
    expect(repeated.decommissionedAt).toBe(outcome.decommissionedAt);
    viewer.close();
  });
});

describe("who may change an endpoint's lifecycle", () => {
  it("refuses technicians and NOC staff (403) and other tenants (404), changing nothing", async () => {
    const runtime = await enrolledRuntime("roles");
    const before = await directoryRow(runtime.endpointId);
    for (const actor of [TECHNICIAN, NOC]) {
      await expectLifecycleError(revokeRuntimeCredential(env, actor, runtime.endpointId), 403);
      await expectLifecycleError(rotateRuntimeCredential(env, actor, runtime.endpointId), 403);
      await expectLifecycleError(decommissionEndpoint(env, actor, runtime.endpointId, runtime.hostname), 403);
    }
    await expectLifecycleError(revokeRuntimeCredential(env, OTHER_ADMIN, runtime.endpointId), 404);
    await expectLifecycleError(rotateRuntimeCredential(env, OTHER_ADMIN, runtime.endpointId), 404);
    await expectLifecycleError(decommissionEndpoint(env, OTHER_ADMIN, runtime.endpointId, runtime.hostname), 404);
    await expectLifecycleError(revokeRuntimeCredential(env, ADMIN, FOREIGN_ENDPOINT_ID), 404);
    await expectLifecycleError(decommissionEndpoint(env, ADMIN, FOREIGN_ENDPOINT_ID, "fab-pc-01"), 404);
    expect(await directoryRow(runtime.endpointId)).toEqual(before);
    expect((await directoryRow(FOREIGN_ENDPOINT_ID)).decommissioned_at).toBeNull();
    expect((await connectThroughEdge(runtime.credential)).status).toBe(101);
  });
});
