// Endpoint lifecycle in the session DO: a revoked runtime is disconnected at
// once and refused after (socket and check-in) until an admin reinstates it;
// a decommissioned endpoint runs nothing new and keeps its transcript.
import { describe, expect, it } from "vitest";
import { SESSION_CLOSE_CODES, SESSION_PATHS } from "../../protocol/session-contract";
import { checkin, connectDirect, connectRuntime, connectViewer, directoryCall, registerEndpoint, replayAll, runtimeHello, runtimeIdentity, sessionAuditKinds, viewerIdentity, endpointIdsFor } from "./socket";

const freshEndpoint = endpointIdsFor("ep_lifecycle_test");

const lifecycle = (endpointId: string, action: string, orgId = "org_test") => directoryCall(endpointId, SESSION_PATHS.lifecycle, { action }, orgId);
const auditKinds = sessionAuditKinds;

describe("endpoint lifecycle", () => {
  it("disconnects a revoked runtime at once, refuses it on both transports, and lets it back after reinstatement", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");

    const revoked = await lifecycle(endpointId, "revoke");
    expect(revoked).toMatchObject({ status: 200, body: { runtime: { online: false, revoked: true } } });
    expect((await runtime.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);
    await viewer.waitFor((m) => m.type === "runtime" && m.runtime.revoked === true && m.runtime.online === false);

    const again = await connectRuntime(endpointId);
    expect((await again.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);
    expect((await checkin(endpointId, {})).status).toBe(403);

    expect((await lifecycle(endpointId, "reinstate")).status).toBe(200);
    const back = await connectRuntime(endpointId);
    await back.waitFor((m) => m.type === "clock");
    expect(await auditKinds(endpointId)).toEqual(expect.arrayContaining(["runtime.revoked", "runtime.reinstated"]));
  });

  it("takes back a re-enrolled runtime (authenticated after the revoke) even if the console's reinstate never arrived", async () => {
    const endpointId = freshEndpoint();
    await connectViewer(endpointId, viewerIdentity(endpointId));
    await lifecycle(endpointId, "revoke");
    const stale = await connectDirect(endpointId, { ...runtimeIdentity(endpointId), authenticatedAt: Date.now() - 60_000 });
    expect((await stale.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);
    const reenrolled = await connectDirect(endpointId, { ...runtimeIdentity(endpointId), authenticatedAt: Date.now() + 1 });
    reenrolled.send(runtimeHello);
    await reenrolled.waitFor((m) => m.type === "clock");
    expect(await auditKinds(endpointId)).toEqual(expect.arrayContaining(["runtime.revoked", "runtime.reinstated"]));
  });

  it("decommissions: cancels what waits, runs nothing new, keeps the transcript, and cannot be undone by reinstating", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    viewer.send({ type: "run", requestId: "before", text: "echo queued-before", shell: "sh" });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.requestId === "before"));

    expect((await lifecycle(endpointId, "decommission")).status).toBe(200);
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.status === "cancelled"));
    viewer.send({ type: "run", requestId: "after", text: "echo after", shell: "sh" });
    const refused = await viewer.waitFor((m) => m.type === "error" && m.requestId === "after");
    expect(refused.code).toBe("forbidden");
    expect(refused.message).toMatch(/decommissioned/);
    expect((await lifecycle(endpointId, "reinstate")).status).toBe(409);

    const runtime = await connectRuntime(endpointId);
    expect((await runtime.waitForClose()).code).toBe(SESSION_CLOSE_CODES.revoked);
    const transcript = await replayAll(viewer);
    expect(transcript.events.find((e: any) => e.kind === "command.queued").text).toBe("echo queued-before");
    expect(await auditKinds(endpointId)).toContain("endpoint.decommissioned");
  });

  it("answers only the endpoint's own tenant", async () => {
    const endpointId = freshEndpoint();
    await connectViewer(endpointId, viewerIdentity(endpointId));
    expect((await lifecycle(endpointId, "revoke", "org_intruder")).status).toBe(403);
    expect((await lifecycle(endpointId, "explode")).status).toBe(400);
  });
});

describe("check-in rate limit", () => {
  it("answers a runtime that checks in in a loop with 429 and Retry-After, changing nothing", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId);
    const statuses: number[] = [];
    const startedAt = Date.now();
    for (let i = 0; i < 15; i++) statuses.push((await checkin(endpointId, {})).status);
    // The bucket holds 10 and refills one every 2 s: however slowly this machine answered, no more were served.
    const servedAtMost = 10 + Math.floor((Date.now() - startedAt) / 2_000);
    expect(servedAtMost).toBeLessThan(14); // the bound means something only while the loop was faster than the refill
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(servedAtMost);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
  });
});
