// The session's side of runtime self-update (docs/decisions/0016-runtime-updates.md),
// against real D1 and the real session DO: what the runtime reports, when the
// tenant's target is offered, which progress reports are accepted, the audit.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SESSION_PATHS, type RuntimeTarget } from "../../protocol/session-contract";
import {
  checkin,
  connectDirect,
  connectViewer,
  directoryCall,
  eventually,
  registerEndpoint,
  result,
  runtimeHello,
  runtimeIdentity,
  sessionAudit,
  sessionAuditKinds,
  viewerIdentity,
  type TestSocket,
} from "./socket";

let counter = 0;
const unique = (label: string) => `${label}_${Date.now()}_${counter++}`;
const SHA = "a".repeat(64);

function target(version: string, overrides: Partial<RuntimeTarget> = {}): RuntimeTarget {
  return {
    version,
    allowDowngrade: false,
    setAt: Date.now() + counter++,
    setBy: "Ada Admin",
    artifacts: [{ platform: "linux-x64", size: 1234, sha256: SHA, signature: "c2lnbmF0dXJl", url: `/runtime/download/linux-x64?version=${version}` }],
    ...overrides,
  };
}

/** What an admin's save does: the target in the directory, then "re-read it" to the session. */
/** The target is per tenant: each test's endpoint gets a tenant of its own. */
const orgOf = (endpointId: string) => `org_${endpointId}`;

async function newEndpoint(label: string): Promise<string> {
  const endpointId = unique(label);
  await registerEndpoint(endpointId, undefined, { orgId: orgOf(endpointId) });
  return endpointId;
}

async function setTarget(endpointId: string, value: RuntimeTarget | null): Promise<{ status: number; body: any }> {
  await env.DB.prepare("UPDATE organisations SET runtime_target_version = ?, runtime_target = ? WHERE id = ?")
    .bind(value?.version ?? null, value ? JSON.stringify(value) : null, orgOf(endpointId))
    .run();
  return directoryCall(endpointId, SESSION_PATHS.runtimeTarget, {}, orgOf(endpointId));
}

const identityOf = (endpointId: string) => ({ ...runtimeIdentity(endpointId), orgId: orgOf(endpointId) });

async function runtimeAt(endpointId: string, version: string, platform: string | undefined = "linux-x64"): Promise<TestSocket> {
  const socket = await connectDirect(endpointId, identityOf(endpointId));
  socket.send({ ...runtimeHello, runtimeVersion: version, ...(platform ? { platform } : {}) });
  await socket.waitFor((m) => m.type === "clock");
  return socket;
}

async function endpointRow(endpointId: string) {
  return env.DB.prepare("SELECT runtime_version, runtime_platform, runtime_update FROM endpoints WHERE id = ?").bind(endpointId).first<any>();
}

async function waitForRow(endpointId: string, check: (row: any) => boolean) {
  for (let i = 0; i < 100; i++) {
    const row = await endpointRow(endpointId);
    if (check(row)) return row;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`directory row never matched: ${JSON.stringify(await endpointRow(endpointId))}`);
}

describe("runtime updates (session side)", () => {
  it("records the reported version and platform in the directory and offers the tenant's target, audited", async () => {
    const endpointId = await newEndpoint("ep_upd_offer");
    const runtime = await runtimeAt(endpointId, "0.9.0");
    await waitForRow(endpointId, (row) => row.runtime_version === "0.9.0" && row.runtime_platform === "linux-x64");
    expect(runtime.messages.some((m) => m.type === "update")).toBe(false); // no target yet

    const answer = await setTarget(endpointId, target("0.9.1"));
    expect(answer).toEqual({ status: 200, body: { version: "0.9.1" } });
    const offer = await runtime.waitFor((m) => m.type === "update");
    expect(offer.offer).toEqual({ version: "0.9.1", platform: "linux-x64", size: 1234, sha256: SHA, signature: "c2lnbmF0dXJl", url: "/runtime/download/linux-x64?version=0.9.1" });
    const audit = await sessionAudit(endpointId);
    expect(audit.find((e) => e.kind === "runtime.update_target")).toMatchObject({ actorName: "Ada Admin", detail: expect.stringContaining('"version":"0.9.1"') });
    expect(audit.find((e) => e.kind === "runtime.update_offered")).toMatchObject({ detail: expect.stringContaining('"from":"0.9.0"') });
    runtime.close();
  });

  it("offers nothing while a command runs, and offers once its result is in", async () => {
    const endpointId = await newEndpoint("ep_upd_busy");
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId: orgOf(endpointId) }));
    const runtime = await runtimeAt(endpointId, "0.9.0");
    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "uptime", shell: "sh" });
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
    await setTarget(endpointId, target("0.9.1"));
    // The push was answered after the session decided: a running command holds the offer back.
    expect(runtime.messages.some((m) => m.type === "update")).toBe(false);
    expect((await sessionAudit(endpointId)).some((e) => e.kind === "runtime.update_offered")).toBe(false);
    const from = runtime.messages.length;
    runtime.send({ type: "result", result: result(dispatch.command.commandId) });
    await runtime.waitFor((m) => m.type === "ack", 5_000, from);
    expect((await runtime.waitFor((m) => m.type === "update", 5_000, from)).offer.version).toBe("0.9.1");
    runtime.close();
    viewer.close();
  });

  it("refuses progress reports for a version it did not offer (audited, nothing changes) and records the offered one's", async () => {
    const endpointId = await newEndpoint("ep_upd_status");
    const runtime = await runtimeAt(endpointId, "0.9.0");
    runtime.send({ type: "update_status", status: { version: "0.9.1", phase: "committed", detail: "" } });
    await runtime.waitFor((m) => m.type === "error" && m.code === "refused" && /offered no update/.test(m.message));
    expect((await sessionAudit(endpointId)).filter((e) => e.kind === "runtime.update_refused")).toHaveLength(1);

    await setTarget(endpointId, target("0.9.1"));
    await runtime.waitFor((m) => m.type === "update");
    runtime.send({ type: "update_status", status: { version: "0.9.5", phase: "committed", detail: "" } });
    await runtime.waitFor((m) => m.type === "error" && /offered 0\.9\.1, not 0\.9\.5/.test(m.message));
    runtime.send({ type: "update_status", status: { version: "0.9.1", phase: "downloading", detail: "" } });
    const row = await waitForRow(endpointId, (r) => r.runtime_update !== null);
    expect(JSON.parse(row.runtime_update)).toMatchObject({ version: "0.9.1", phase: "downloading" });
    const audit = await sessionAudit(endpointId);
    expect(audit.filter((e) => e.kind === "runtime.update_refused")).toHaveLength(2);
    expect(audit.filter((e) => e.kind === "runtime.update_status").map((e) => e.status)).toEqual(["downloading"]);
    runtime.close();
  });

  it("never offers an older version unless the admin allowed the downgrade", async () => {
    const endpointId = await newEndpoint("ep_upd_down");
    const runtime = await runtimeAt(endpointId, "0.9.1");
    await setTarget(endpointId, target("0.9.0"));
    const downgrade = target("0.9.0", { allowDowngrade: true });
    await setTarget(endpointId, downgrade);
    const offers = runtime.messages.filter((m) => m.type === "update");
    expect(offers).toHaveLength(1);
    expect(offers[0].offer.version).toBe("0.9.0");
    runtime.close();
  });

  it("does not offer a version again after it rolled back, until the target is saved again", async () => {
    const endpointId = await newEndpoint("ep_upd_rollback");
    const first = await runtimeAt(endpointId, "0.9.0");
    await setTarget(endpointId, target("0.9.1"));
    await first.waitFor((m) => m.type === "update");
    first.close();
    // The old version, back after the failed trial, reports the rollback before its hello (as the runtime does).
    const again = await connectDirect(endpointId, identityOf(endpointId));
    again.send({ type: "update_status", status: { version: "0.9.1", phase: "rolled_back", detail: "did not connect within 60 s" } });
    // The in-process test socket may reorder back-to-back frames under load (a runtime's TCP stream does not).
    await eventually("the rollback recorded", async () => (await sessionAuditKinds(endpointId)).includes("runtime.update_status"));
    again.send({ ...runtimeHello, runtimeVersion: "0.9.0", platform: "linux-x64" });
    // Handled in order: once this refusal is back, the hello was handled and any offer would have been sent.
    again.send({ type: "update_status", status: { version: "0.0.1", phase: "failed", detail: "" } });
    await again.waitFor((m) => m.type === "error" && /not 0\.0\.1/.test(m.message));
    expect(again.messages.some((m) => m.type === "update")).toBe(false);
    await waitForRow(endpointId, (r) => r.runtime_update?.includes("rolled_back"));
    const answer = await checkin(endpointId, { runtimeVersion: "0.9.0", platform: "linux-x64" }, identityOf(endpointId));
    expect(answer.body.update).toBeUndefined();
    await setTarget(endpointId, target("0.9.1"));
    expect((await again.waitFor((m) => m.type === "update")).offer.version).toBe("0.9.1");
    again.close();
  });

  it("offers over check-in too, and takes check-in progress reports; a runtime without a platform is never offered anything", async () => {
    const endpointId = await newEndpoint("ep_upd_checkin");
    await setTarget(endpointId, target("0.9.1"));
    const unknownPlatform = await checkin(endpointId, { runtimeVersion: "0.9.0" }, identityOf(endpointId));
    expect(unknownPlatform.body.update).toBeUndefined();
    const answer = await checkin(endpointId, { runtimeVersion: "0.9.0", platform: "linux-x64" }, identityOf(endpointId));
    expect(answer.body.update).toMatchObject({ version: "0.9.1", platform: "linux-x64" });
    await checkin(endpointId, { runtimeVersion: "0.9.1", platform: "linux-x64", updateStatus: [{ version: "0.9.1", phase: "committed", detail: "" }] }, identityOf(endpointId));
    const row = await waitForRow(endpointId, (r) => r.runtime_version === "0.9.1" && r.runtime_update?.includes("committed"));
    expect(row.runtime_platform).toBe("linux-x64");
    const done = await checkin(endpointId, { runtimeVersion: "0.9.1", platform: "linux-x64" }, identityOf(endpointId));
    expect(done.body.update).toBeUndefined();
  });
});
