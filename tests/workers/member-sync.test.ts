// Tenants and members follow Clerk (docs/decisions/0020-tenant-onboarding.md): just-in-time provisioning from a
// verified token, verified webhooks for changes, and removals that a token minted earlier cannot undo.
import { env } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import type { Env } from "~/lib/env.server";
import { handleClerkWebhook, memberExists, provisionFromToken } from "~/models/member-sync.server";
import { SESSION_CLOSE_CODES, SESSION_PATHS } from "../../protocol/session-contract";
import { ADVISORY_TEST_POLICY, connectViewer, directoryCall, freshEndpoint, registerEndpoint, roundTrip, sessionAudit, sessionAuditKinds, viewerIdentity } from "./socket";

const SECRET = `whsec_${btoa("caisey-test-webhook-secret-0123456789")}`;
const testEnv = (): Env => ({ ...(env as unknown as Env), CLERK_WEBHOOK_SIGNING_SECRET: SECRET });
let counter = 0;
const fresh = (label: string) => `${label}_${Date.now()}_${counter++}`;

function signedRequest(payload: unknown, secret = SECRET, at = new Date()): Request {
  const body = JSON.stringify(payload);
  const id = `msg_${fresh("wh")}`;
  const signature = new Webhook(secret).sign(id, at, body);
  return new Request("http://127.0.0.1:8788/webhooks/clerk", {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "svix-id": id, "svix-timestamp": String(Math.floor(at.getTime() / 1000)), "svix-signature": signature },
  });
}

function membershipEvent(type: string, orgId: string, userId: string, role = "org:technician", timestamp = Date.now()) {
  return {
    type,
    object: "event",
    timestamp,
    data: {
      id: fresh("orgmem"),
      role,
      created_at: timestamp,
      updated_at: timestamp,
      organization: { id: orgId, name: "Fresh MSP", slug: orgId },
      public_user_data: { user_id: userId, first_name: "Fay", last_name: "Fresh", identifier: `${userId}@fresh.test` },
    },
  };
}

const claims = { email: "ada@fresh.test", name: "Ada Fresh", org_name: "Fresh MSP" };

describe("tenant onboarding from Clerk", () => {
  it("provisions a brand-new organisation and its first admin from a verified token's claims", async () => {
    const db = createDb(env.DB);
    const orgId = fresh("org_new");
    const outcome = await provisionFromToken(db, { userId: "user_ada", orgId, orgSlug: "fresh-msp", role: "admin", issuedAtMs: Date.now(), claims });
    expect(outcome).toEqual({ provisioned: true });
    expect(await env.DB.prepare("SELECT name, slug FROM organisations WHERE id = ?").bind(orgId).first()).toEqual({ name: "Fresh MSP", slug: "fresh-msp" });
    expect(await env.DB.prepare("SELECT name, email, role FROM members WHERE org_id = ? AND user_id = 'user_ada'").bind(orgId).first()).toEqual({
      name: "Ada Fresh",
      email: "ada@fresh.test",
      role: "admin",
    });
  });

  it("refuses to provision without the claims it needs, changing nothing", async () => {
    const orgId = fresh("org_noclaims");
    const outcome = await provisionFromToken(createDb(env.DB), { userId: "user_x", orgId, orgSlug: null, role: "admin", issuedAtMs: Date.now(), claims: { email: "not-an-email" } });
    expect(outcome).toMatchObject({ provisioned: false, message: expect.stringMatching(/lacks the email, name and org_name claims/) });
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM organisations WHERE id = ?").bind(orgId).first("n")).toBe(0);
  });

  it("applies verified membership webhooks, and a removal beats any token issued before it", async () => {
    const orgId = fresh("org_hook");
    const db = createDb(env.DB);
    const created = await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.created", orgId, "user_fay")));
    expect(created).toMatchObject({ status: 200, body: { ok: true, applied: expect.stringContaining("as technician") } });
    expect(await memberExists(db, orgId, "user_fay")).toBe(true);

    const updated = await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.updated", orgId, "user_fay", "org:noc")));
    expect(updated.status).toBe(200);
    expect(await env.DB.prepare("SELECT role FROM members WHERE org_id = ? AND user_id = 'user_fay'").bind(orgId).first("role")).toBe("noc");

    const tokenIssuedAt = Date.now() - 1_000; // still valid when the removal arrives
    const removed = await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.deleted", orgId, "user_fay")));
    expect(removed.status).toBe(200);
    expect(await memberExists(db, orgId, "user_fay")).toBe(false);
    // The old token cannot bring the member back.
    const again = await provisionFromToken(db, { userId: "user_fay", orgId, orgSlug: orgId, role: "noc", issuedAtMs: tokenIssuedAt, claims });
    expect(again).toMatchObject({ provisioned: false, message: expect.stringMatching(/access to this organisation was removed/) });
    expect(await memberExists(db, orgId, "user_fay")).toBe(false);
    // A "created" retried from before the removal does not undo it either.
    await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.created", orgId, "user_fay", "org:admin", tokenIssuedAt)));
    expect(await memberExists(db, orgId, "user_fay")).toBe(false);
    // Re-invited later: a token issued after the removal provisions again.
    expect(await provisionFromToken(db, { userId: "user_fay", orgId, orgSlug: orgId, role: "noc", issuedAtMs: Date.now() + 1_000, claims })).toEqual({ provisioned: true });
  });

  it("refuses unsigned, forged and unconfigured webhooks, changing nothing", async () => {
    const orgId = fresh("org_forged");
    const event = membershipEvent("organizationMembership.created", orgId, "user_mallory", "org:admin");
    const forged = await handleClerkWebhook(testEnv(), signedRequest(event, `whsec_${btoa("someone-elses-secret-0123456789abcdef")}`));
    expect(forged).toMatchObject({ status: 401, body: { ok: false } });
    const unsigned = await handleClerkWebhook(testEnv(), new Request("http://127.0.0.1:8788/webhooks/clerk", { method: "POST", body: JSON.stringify(event) }));
    expect(unsigned.status).toBe(401);
    const stale = await handleClerkWebhook(testEnv(), signedRequest(event, SECRET, new Date(Date.now() - 60 * 60_000)));
    expect(stale.status).toBe(401);
    const unconfigured = await handleClerkWebhook({ ...testEnv(), CLERK_WEBHOOK_SIGNING_SECRET: undefined }, signedRequest(event));
    expect(unconfigured.status).toBe(503);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM organisations WHERE id = ?").bind(orgId).first("n")).toBe(0);
  });
});

function organizationEvent(type: "organization.created" | "organization.updated" | "organization.deleted", orgId: string, name = "Fresh MSP") {
  return { type, object: "event", timestamp: Date.now(), data: type === "organization.deleted" ? { id: orgId, deleted: true } : { id: orgId, name, slug: orgId } };
}

describe("organisation webhooks", () => {
  it("creates and renames the tenant; deleting it removes every member and remembers the removals", async () => {
    const orgId = fresh("org_life");
    const db = createDb(env.DB);
    expect(await handleClerkWebhook(testEnv(), signedRequest(organizationEvent("organization.created", orgId, "Plant Ops")))).toMatchObject({ status: 200 });
    expect(await env.DB.prepare("SELECT name, slug FROM organisations WHERE id = ?").bind(orgId).first()).toEqual({ name: "Plant Ops", slug: orgId });
    await handleClerkWebhook(testEnv(), signedRequest(organizationEvent("organization.updated", orgId, "Plant Operations")));
    expect(await env.DB.prepare("SELECT name FROM organisations WHERE id = ?").bind(orgId).first("name")).toBe("Plant Operations");

    await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.created", orgId, "user_ann", "org:admin")));
    await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.created", orgId, "user_bob")));
    const tokenIssuedAt = Date.now() - 1_000;
    expect(await handleClerkWebhook(testEnv(), signedRequest(organizationEvent("organization.deleted", orgId)))).toMatchObject({ status: 200 });
    expect(await memberExists(db, orgId, "user_ann")).toBe(false);
    expect(await memberExists(db, orgId, "user_bob")).toBe(false);
    // The tenant's records stay; a token minted before the deletion cannot bring anyone back.
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM organisations WHERE id = ?").bind(orgId).first("n")).toBe(1);
    const again = await provisionFromToken(db, { userId: "user_ann", orgId, orgSlug: orgId, role: "admin", issuedAtMs: tokenIssuedAt, claims });
    expect(again).toMatchObject({ provisioned: false });
  });
});

describe("a removed member loses access at once", () => {
  const removedReason = "Your access to this organisation was removed";

  it("closes the member's live sockets in every session of the tenant, and nobody else's", async () => {
    const orgId = fresh("org_rm");
    const [first, second, elsewhere] = [freshEndpoint("ep_rm_a"), freshEndpoint("ep_rm_b"), freshEndpoint("ep_rm_x")];
    await registerEndpoint(first, ADVISORY_TEST_POLICY, { orgId });
    await registerEndpoint(second, ADVISORY_TEST_POLICY, { orgId });
    const otherOrgId = fresh("org_other");
    await registerEndpoint(elsewhere, ADVISORY_TEST_POLICY, { orgId: otherOrgId });
    await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.created", orgId, "user_fay")));
    const fay = await connectViewer(first, viewerIdentity(first, { orgId, userId: "user_fay", userName: "Fay Fresh" }));
    const fayAgain = await connectViewer(first, viewerIdentity(first, { orgId, userId: "user_fay", userName: "Fay Fresh" }));
    const tess = await connectViewer(first, viewerIdentity(first, { orgId, userId: "user_tess" }));
    const tessOnSecond = await connectViewer(second, viewerIdentity(second, { orgId, userId: "user_tess" }));
    // The same Clerk user in another tenant keeps that access.
    const fayElsewhere = await connectViewer(elsewhere, viewerIdentity(elsewhere, { orgId: otherOrgId, userId: "user_fay" }));

    const removed = await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.deleted", orgId, "user_fay")));
    expect(removed.status).toBe(200);
    expect(await fay.waitForClose()).toEqual({ code: SESSION_CLOSE_CODES.accessRemoved, reason: removedReason });
    expect(await fayAgain.waitForClose()).toEqual({ code: SESSION_CLOSE_CODES.accessRemoved, reason: removedReason });
    for (const open of [tess, tessOnSecond, fayElsewhere]) {
      await roundTrip(open);
      expect(open.closed).toBeNull();
    }
    const audit = (await sessionAudit(first)).filter((event) => event.kind === "viewer.access_removed");
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actorName: "Clerk (access removed)", });
    expect(JSON.parse(audit[0].detail)).toEqual({ userId: "user_fay", socketsClosed: 2 });
    // Sessions that held none of the member's sockets changed nothing.
    expect(await sessionAuditKinds(second)).not.toContain("viewer.access_removed");
    expect(await sessionAuditKinds(elsewhere)).not.toContain("viewer.access_removed");
    for (const socket of [tess, tessOnSecond, fayElsewhere]) socket.close();
  });

  it("a role without access, or the organisation's deletion, closes sockets the same way", async () => {
    const orgId = fresh("org_rm_role");
    const endpointId = freshEndpoint("ep_rm_role");
    await registerEndpoint(endpointId, ADVISORY_TEST_POLICY, { orgId });
    const demoted = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId, userId: "user_dan" }));
    const colleague = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId, userId: "user_cat" }));
    await handleClerkWebhook(testEnv(), signedRequest(membershipEvent("organizationMembership.updated", orgId, "user_dan", "org:member")));
    expect((await demoted.waitForClose()).code).toBe(SESSION_CLOSE_CODES.accessRemoved);
    await roundTrip(colleague);
    expect(colleague.closed).toBeNull();

    await handleClerkWebhook(testEnv(), signedRequest(organizationEvent("organization.deleted", orgId)));
    expect((await colleague.waitForClose()).code).toBe(SESSION_CLOSE_CODES.accessRemoved);
    expect((await sessionAudit(endpointId)).filter((event) => event.kind === "viewer.access_removed").map((event) => JSON.parse(event.detail))).toEqual([
      { userId: "user_dan", socketsClosed: 1 },
      { userId: null, socketsClosed: 1 },
    ]);
  });

  it("refuses a malformed removal call, closing and auditing nothing", async () => {
    const orgId = fresh("org_rm_bad");
    const endpointId = freshEndpoint("ep_rm_bad");
    await registerEndpoint(endpointId, ADVISORY_TEST_POLICY, { orgId });
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId }));
    const before = await sessionAuditKinds(endpointId);
    for (const body of [{}, { userId: "" }, { userId: 42 }, []]) {
      const answer = await directoryCall(endpointId, SESSION_PATHS.memberRemoved, body, orgId);
      expect(answer).toMatchObject({ status: 400, body: { error: expect.stringMatching(/^Invalid member removal/) } });
    }
    await roundTrip(viewer);
    expect(viewer.closed).toBeNull();
    expect(await sessionAuditKinds(endpointId)).toEqual(before);
    viewer.close();
  });
});
