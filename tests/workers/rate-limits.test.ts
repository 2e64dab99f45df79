// Rate limits on the edge's unauthenticated routes (issue 11), against real D1,
// the real EdgeRateLimiter and session Durable Objects: enrollment per address
// and per token, the public approval page's views and decisions per address.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { handleEdgeRequest } from "~/edge/router.server";
import type { Env } from "~/lib/env.server";
import { createEnrollmentToken } from "~/models/enrollment.server";
import { decideApproval, viewApproval } from "~/models/approvals.server";
import { RATE_LIMIT_KEYS, RATE_LIMIT_POLICIES, rateLimitAddress } from "../../protocol/session-contract";
import { DEMO_ORG } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { connectRuntime, connectViewer, registerEndpoint, sessionAuditKinds, TEST_APPROVER, viewerIdentity, waitForMail } from "./socket";

const ORIGIN = "http://127.0.0.1:8788";
let counter = 0;
const unique = (label: string) => `${label}_${Date.now()}_${counter++}`;

async function enrollFrom(address: string | null, body: Record<string, unknown>, bindings: Env = env) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (address) headers["cf-connecting-ip"] = address;
  const response = await handleEdgeRequest(new Request(`${ORIGIN}/agent/enroll`, { method: "POST", body: JSON.stringify(body), headers }), bindings);
  return { status: response!.status, retryAfter: response!.headers.get("retry-after"), body: (await response!.json()) as any };
}

async function freshToken(maxUses = 100) {
  await seedDemo();
  return createEnrollmentToken(createDb(env.DB), { label: unique("rl"), ttlHours: 1, maxUses, orgId: DEMO_ORG.id, clientId: "cl_bayside", createdBy: "test" });
}

const tokenUses = async (id: string) => (await env.DB.prepare("SELECT uses FROM enrollment_tokens WHERE id = ?").bind(id).first<{ uses: number }>())!.uses;
const endpointsNamed = async (prefix: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM endpoints WHERE hostname LIKE ?").bind(`${prefix}%`).first<{ n: number }>())!.n;

/** An edge whose limiter cannot be reached (an outage of the session worker's limiter objects). */
const limiterDown: Env = {
  ...env,
  EDGE_RATE_LIMITER: new Proxy({} as Env["EDGE_RATE_LIMITER"], {
    get() {
      throw new Error("limiter unreachable");
    },
  }),
};

describe("enrollment rate limits", () => {
  it("refuses the 11th attempt from one address in 10 minutes with 429 + Retry-After, without using the token; another address still enrolls", async () => {
    const created = await freshToken();
    const address = "198.51.100.23";
    const { limit } = RATE_LIMIT_POLICIES.enroll_address;
    // Guessed tokens count too: guessing is what the limit is for.
    for (let i = 0; i < limit; i++) {
      expect((await enrollFrom(address, { token: `cae_guess-${i}-${"x".repeat(20)}`, hostname: "guess", os: "linux" })).status).toBe(401);
    }
    const hostname = unique("rl-addr");
    const refused = await enrollFrom(address, { token: created.token, hostname, os: "linux" });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatch(/Too many enrollment attempts; nothing was changed/);
    const retryAfter = Number(refused.retryAfter);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(RATE_LIMIT_POLICIES.enroll_address.windowSeconds);
    expect(await tokenUses(created.id)).toBe(0);
    expect(await endpointsNamed(hostname)).toBe(0);

    const elsewhere = await enrollFrom("198.51.100.24", { token: created.token, hostname, os: "linux" });
    expect(elsewhere.status).toBe(201);
    expect(await tokenUses(created.id)).toBe(1);
  });

  it("refuses a token's 31st enrollment in an hour, from any address, leaving its use count alone", async () => {
    const created = await freshToken();
    const hostname = unique("rl-token");
    const { limit } = RATE_LIMIT_POLICIES.enroll_token;
    for (let i = 0; i < limit; i++) {
      expect((await enrollFrom(`192.0.2.${i + 1}`, { token: created.token, hostname: `${hostname}-${i}`, os: "windows" })).status).toBe(201);
    }
    const refused = await enrollFrom("192.0.2.200", { token: created.token, hostname: `${hostname}-late`, os: "windows" });
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(await tokenUses(created.id)).toBe(limit);
    expect(await endpointsNamed(hostname)).toBe(limit);
    // Another token is its own budget.
    const other = await freshToken();
    expect((await enrollFrom("192.0.2.201", { token: other.token, hostname: `${hostname}-other`, os: "windows" })).status).toBe(201);
  });

  it("keys a caller without CF-Connecting-IP (local dev, tests) as 'unknown', and an IPv6 caller by its /64", async () => {
    expect(rateLimitAddress(null)).toBe("unknown");
    expect(RATE_LIMIT_KEYS.enrollAddress(null)).toBe("enroll:unknown");
    expect(rateLimitAddress("2001:db8:0:1:aaaa::1")).toBe(rateLimitAddress("2001:0DB8:0000:0001:ffff:1:2:3"));
    expect(rateLimitAddress("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(rateLimitAddress("2001:db8:0:2::1")).not.toBe(rateLimitAddress("2001:db8:0:1::1"));
    expect(rateLimitAddress("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(rateLimitAddress("192.0.2.1")).toBe("192.0.2.1");

    const created = await freshToken();
    for (let i = 0; i < RATE_LIMIT_POLICIES.enroll_address.limit; i++) {
      await enrollFrom(`2001:db8:77:1::${i + 1}`, { token: `cae_guess-${i}-${"y".repeat(20)}`, hostname: "guess", os: "linux" });
    }
    expect((await enrollFrom("2001:db8:77:1:dead:beef::9", { token: created.token, hostname: "v6", os: "linux" })).status).toBe(429);
    expect(await tokenUses(created.id)).toBe(0);
  });

  it("fails closed with 503 when the limiter cannot be reached, changing nothing", async () => {
    const created = await freshToken();
    const hostname = unique("rl-down");
    const refused = await enrollFrom("198.51.100.77", { token: created.token, hostname, os: "linux" }, limiterDown);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(/nothing was changed/);
    expect(await tokenUses(created.id)).toBe(0);
    expect(await endpointsNamed(hostname)).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// The public approval page. Its loader and action call viewApproval and
// decideApproval, which hold the limiter calls; the route itself cannot run in
// this pool (Clerk's and Remix's CommonJS builds do not load here), so its
// 429 + Retry-After mapping was checked against the real local stack instead
// (see docs/decisions/0011-edge-rate-limits.md).

/** A command on a fresh endpoint waiting for the client's approver; returns the emailed link's token. */
async function pendingApproval(): Promise<{ endpointId: string; token: string; close: () => void }> {
  const endpointId = unique("ep_ratelimit");
  await registerEndpoint(endpointId, "defaults"); // allow-list with nothing listed: every command asks
  const requester = await connectViewer(endpointId, viewerIdentity(endpointId));
  const runtime = await connectRuntime(endpointId);
  await runtime.waitFor((m) => m.type === "clock");
  requester.send({ type: "run", requestId: crypto.randomUUID(), text: "echo limited", shell: "bash", reason: "Rate limit test" });
  const { token } = await waitForMail(TEST_APPROVER.email, endpointId);
  return {
    endpointId,
    token,
    close: () => {
      requester.close();
      runtime.close();
    },
  };
}

const auditKinds = sessionAuditKinds;

describe("approval page rate limits", () => {
  it("refuses the 11th decision from one address in a minute before the session is asked; another address still decides", async () => {
    const { endpointId, token, close } = await pendingApproval();
    const address = "203.0.113.61";
    const wrongSecret = `${endpointId}~${"A".repeat(43)}`;
    for (let i = 0; i < RATE_LIMIT_POLICIES.approval_decide.limit; i++) {
      expect(await decideApproval(env, wrongSecret, "approve", address)).toMatchObject({ ok: false, reason: "invalid" });
    }
    const refused = await decideApproval(env, token, "approve", address);
    expect(refused).toMatchObject({ ok: false, reason: "rate_limited" });
    if (refused.ok || refused.reason !== "rate_limited") throw new Error("expected a rate-limited decision");
    expect(refused.error).toMatch(/^Too many attempts from your network in a short time, so nothing was changed\. Please wait .+, then try again\.$/);
    expect(refused.retryAfterSeconds).toBeGreaterThan(0);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(RATE_LIMIT_POLICIES.approval_decide.windowSeconds);
    // The session never saw it: no decision, the command still waits.
    expect(await auditKinds(endpointId)).not.toContain("approval.decided");
    expect(await viewApproval(env, token, "203.0.113.99")).toMatchObject({ ok: true, view: { state: "pending" } });

    expect(await decideApproval(env, token, "approve", "203.0.113.62")).toMatchObject({ ok: true, view: { state: "approved" } });
    expect(await auditKinds(endpointId)).toContain("approval.decided");
    close();
  });

  it("refuses the 61st view from one address in a minute without reaching the session (no view recorded)", async () => {
    const { endpointId, token, close } = await pendingApproval();
    const address = "203.0.113.71";
    for (let i = 0; i < RATE_LIMIT_POLICIES.approval_view.limit; i++) {
      expect(await viewApproval(env, `ep_nowhere~${"B".repeat(43)}`, address)).toMatchObject({ ok: false, reason: "invalid" });
    }
    const refused = await viewApproval(env, token, address);
    expect(refused).toMatchObject({ ok: false, reason: "rate_limited", error: expect.stringMatching(/opened too many times from your network .* then reload the page\.$/) });
    expect(await auditKinds(endpointId)).not.toContain("approval.viewed");

    expect(await viewApproval(env, token, "203.0.113.72")).toMatchObject({ ok: true, view: { state: "pending" } });
    expect(await auditKinds(endpointId)).toContain("approval.viewed");
    close();
  });

  it("fails closed for views and decisions when the limiter cannot be reached", async () => {
    const { endpointId, token, close } = await pendingApproval();
    expect(await viewApproval(limiterDown, token, "203.0.113.81")).toMatchObject({ ok: false, reason: "unavailable" });
    expect(await decideApproval(limiterDown, token, "deny", "203.0.113.81")).toMatchObject({ ok: false, reason: "unavailable" });
    const kinds = await auditKinds(endpointId);
    expect(kinds).not.toContain("approval.viewed");
    expect(kinds).not.toContain("approval.decided");
    close();
  });

  it("keeps an idle key's limiter object empty: the clean-up alarm deletes its log once the window has passed", async () => {
    const key = RATE_LIMIT_KEYS.approvalAddress("203.0.113.90");
    const stub = env.EDGE_RATE_LIMITER.get(env.EDGE_RATE_LIMITER.idFromName(key));
    expect(await stub.take({ policy: "approval_view" })).toEqual({ ok: true, remaining: RATE_LIMIT_POLICIES.approval_view.limit - 1 });
    await runInDurableObject(stub, async (_instance, state) => {
      expect(await state.storage.getAlarm()).not.toBeNull();
      // As if the window had passed: age the row, then let the alarm run.
      state.storage.sql.exec("UPDATE hits SET at = at - ?", RATE_LIMIT_POLICIES.approval_view.windowSeconds * 1000 + 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await runInDurableObject(stub, async (_instance, state) => {
      expect(state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'hits'").toArray()).toEqual([]);
      expect(await state.storage.getAlarm()).toBeNull();
    });
    // And it counts afresh afterwards.
    expect(await stub.take({ policy: "approval_decide" })).toMatchObject({ ok: true });
  });
});
