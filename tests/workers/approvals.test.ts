// Client approval inside the session DO, against real workerd, real D1 (the
// directory and the capture mailbox) and the real DO SQLite: who receives a
// link, who can decide, and that nothing runs that nobody allowed.
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_APPROVAL_PATTERNS } from "../../protocol/approvals";
import { IDENTITY_HEADERS, SESSION_PATHS } from "../../protocol/session-contract";
import {
  ADVISORY_TEST_POLICY,
  checkin,
  connectDirect,
  connectRuntime,
  connectViewer,
  mailTo,
  refreshSessionPolicy,
  registerEndpoint,
  result,
  runInSession,
  sessionAudit,
  sessionStub,
  TEST_APPROVER,
  type TestSocket,
  viewerIdentity,
  waitForMail,
  endpointIdsFor,
} from "./socket";

const freshEndpoint = endpointIdsFor("ep_approval_test");
const SECOND_APPROVER = { name: "Omar Okafor", email: "omar@client.test" };

async function approverCall(endpointId: string, path: "view" | "decide", body: unknown): Promise<{ status: number; json(): Promise<any> }> {
  const response: Response = await sessionStub(endpointId).fetch(
    `https://session.internal${path === "view" ? SESSION_PATHS.approvalView : SESSION_PATHS.approvalDecide}`,
    {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-partykit-room": endpointId,
        [IDENTITY_HEADERS.identity]: JSON.stringify({ peer: "approver", endpointId, orgId: "", userId: null, userName: null, canRun: false, address: "192.0.2.10" }),
      },
      body: JSON.stringify(body),
    },
  );
  return { status: response.status, json: () => response.json() };
}

async function setup(policy = ADVISORY_TEST_POLICY) {
  const endpointId = freshEndpoint();
  await registerEndpoint(endpointId, policy);
  const requester = await connectViewer(endpointId, viewerIdentity(endpointId));
  const colleague = await connectViewer(endpointId, viewerIdentity(endpointId, { userId: "user_colleague", userName: "Cole", userEmail: "cole@msp.test" }));
  const runtime = await connectRuntime(endpointId);
  await runtime.waitFor((m) => m.type === "clock");
  return { endpointId, requester, colleague, runtime };
}

/** Sends a run and waits until the session has accepted it (queued event) or refused it (error). */
async function run(viewer: TestSocket, text: string, extra: Record<string, unknown> = {}) {
  const from = viewer.messages.length;
  const requestId = crypto.randomUUID();
  viewer.send({ type: "run", requestId, text, shell: "powershell", reason: "Apply updates", ...extra });
  const answer = await viewer.waitFor(
    (m) => (m.type === "error" && m.requestId === requestId) || (m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.requestId === requestId)),
    5_000,
    from,
  );
  if (answer.type === "error") return { error: answer };
  return { commandId: answer.events.find((e: any) => e.kind === "command.queued").commandId as string };
}

async function commandStatus(endpointId: string, commandId: string): Promise<string> {
  return runInSession(sessionStub(endpointId), (_instance, state) => state.storage.sql.exec("SELECT status FROM commands WHERE id = ?", commandId).one().status);
}

const auditKinds = sessionAudit;

/** Every frame a console socket received, as text: a link secret must never be in it. */
function everythingSeenBy(...sockets: TestSocket[]): string {
  return sockets.map((s) => JSON.stringify(s.messages)).join("\n");
}

describe("separation of duties: only the client's approvers receive a link", () => {
  it("emails each approver their own link, never the requester or a colleague, and runs the command once approved", async () => {
    const { endpointId, requester, colleague, runtime } = await setup({ ...ADVISORY_TEST_POLICY, approvers: [TEST_APPROVER, SECOND_APPROVER] });
    const { commandId } = await run(requester, "Restart-Computer -Force");
    const priya = await waitForMail(TEST_APPROVER.email, endpointId);
    const omar = await waitForMail(SECOND_APPROVER.email, endpointId);
    expect(priya.token).not.toBe(omar.token);
    expect(priya.token.startsWith(`${endpointId}~`)).toBe(true);
    expect(await mailTo("tess@msp.test", endpointId)).toHaveLength(0);
    expect(await mailTo("cole@msp.test", endpointId)).toHaveLength(0);

    // The console sees who was asked and that the mail went out, never a secret.
    await requester.waitFor((m) => m.type === "events" && m.events.filter((e: any) => e.kind === "command.approval_delivery" && e.state === "sent").length > 0);
    await colleague.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_requested"));
    const seen = everythingSeenBy(requester, colleague);
    for (const token of [priya.token, omar.token]) expect(seen).not.toContain(token.split("~")[1]);
    expect(seen).not.toContain("approval_link");
    const requested = requester.events().find((e) => e.kind === "command.approval_requested");
    expect(requested).toMatchObject({ commandId, reason: "Apply updates", approvers: [{ name: "Priya Patel", address: "p•••@client.test" }, { name: "Omar Okafor", address: "o•••@client.test" }] });
    expect(runtime.messages.some((m) => m.type === "dispatch")).toBe(false);

    // The page acts for the approver the link was minted for; viewing is recorded once per approver.
    const view = await approverCall(endpointId, "view", { token: priya.token });
    expect(view.status).toBe(200);
    expect(await view.json()).toMatchObject({ commandId, reason: "Apply updates", approver: TEST_APPROVER, state: "pending", requestedBy: "Tess Tech" });
    await approverCall(endpointId, "view", { token: priya.token });
    await approverCall(endpointId, "view", { token: omar.token });

    const decided = await approverCall(endpointId, "decide", { token: priya.token, decision: "approve", approverName: "Someone Else" });
    expect(decided.status).toBe(200);
    expect((await decided.json()).view).toMatchObject({ state: "approved", decidedBy: "Priya Patel" });
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
    expect(dispatch.command).toMatchObject({ commandId, text: "Restart-Computer -Force" });

    // Single use across approvers: Omar's link now only shows what happened.
    const late = await approverCall(endpointId, "decide", { token: omar.token, decision: "deny" });
    expect(late.status).toBe(409);
    expect((await late.json()).view).toMatchObject({ state: "approved", decidedBy: "Priya Patel", approver: SECOND_APPROVER });

    const audit = await auditKinds(endpointId);
    const views = audit.filter((e: any) => e.kind === "approval.viewed");
    expect(views.map((e: any) => e.actorName).sort()).toEqual(["Omar Okafor", "Priya Patel"]);
    expect(audit.filter((e: any) => e.kind === "approval.delivered")).toHaveLength(2);
    expect(audit.find((e: any) => e.kind === "approval.decided")).toMatchObject({ actorName: "Priya Patel", actorId: "approver:priya@client.test", actorAddress: "192.0.2.10", status: "approved" });
  });

  it("never asks the requester to approve their own command, even when the policy lists them", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId, { ...ADVISORY_TEST_POLICY, approvers: [{ name: "Tess Tech", email: "TESS@msp.test" }] });
    const requester = await connectViewer(endpointId, viewerIdentity(endpointId));
    const refused = await run(requester, "shutdown /r /t 0");
    expect(refused.error).toMatchObject({ code: "no_approvers" });
    expect(refused.error.message).toMatch(/only approver .* is you/);
    expect(await mailTo("tess@msp.test", endpointId)).toHaveLength(0);
    expect(await runInSession(sessionStub(endpointId), (_i, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM commands").one().n)).toBe(0);

    // With a client approver beside them, only the client approver is asked.
    const both = freshEndpoint();
    await registerEndpoint(both, { ...ADVISORY_TEST_POLICY, approvers: [{ name: "Tess Tech", email: "tess@msp.test" }, TEST_APPROVER] });
    const viewer = await connectViewer(both, viewerIdentity(both));
    const { commandId } = await run(viewer, "shutdown /r /t 0");
    expect(commandId).toBeTruthy();
    const requested = viewer.events().find((e) => e.kind === "command.approval_requested");
    expect(requested.approvers).toEqual([{ name: "Priya Patel", address: "p•••@client.test" }]);
  });

  it("never asks a member of the MSP, even one who joined after the policy listed them", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId, { ...ADVISORY_TEST_POLICY, approvers: [TEST_APPROVER, { name: "Cole", email: "cole@msp.test" }] });
    await env.DB.prepare("INSERT INTO members (org_id, user_id, name, email, role) VALUES ('org_test', ?, 'Cole', 'Cole@MSP.test', 'technician')")
      .bind(`user_cole_${endpointId}`)
      .run();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    await run(viewer, "Restart-Computer");
    const requested = viewer.events().find((e) => e.kind === "command.approval_requested");
    expect(requested.approvers).toEqual([{ name: "Priya Patel", address: "p•••@client.test" }]);
  });

  it("requires a reason the client can read for anything that needs approval", async () => {
    const { requester } = await setup();
    const refused = await run(requester, "Restart-Computer", { reason: "" });
    expect(refused.error).toMatchObject({ code: "invalid_message" });
    expect(refused.error.message).toMatch(/reason/);
  });

  it("refuses to re-issue for anyone but an admin; an admin's re-issue kills the old links", async () => {
    const { endpointId, requester, runtime } = await setup();
    const { commandId } = await run(requester, "Restart-Computer");
    const first = await waitForMail(TEST_APPROVER.email, endpointId);
    requester.send({ type: "reissue_approval", commandId });
    await requester.waitFor((m) => m.type === "error" && m.code === "forbidden");

    const admin = await connectViewer(endpointId, viewerIdentity(endpointId, { userId: "user_admin", userName: "Ada Admin", userEmail: "ada@msp.test", role: "admin" }));
    admin.send({ type: "reissue_approval", commandId });
    const second = await waitForMail(TEST_APPROVER.email, endpointId, 2);
    expect(second.token).not.toBe(first.token);
    expect((await approverCall(endpointId, "view", { token: first.token })).status).toBe(404);
    expect((await approverCall(endpointId, "decide", { token: first.token, decision: "approve" })).status).toBe(404);
    expect(runtime.messages.some((m) => m.type === "dispatch")).toBe(false);
    expect((await approverCall(endpointId, "decide", { token: second.token, decision: "approve" })).status).toBe(200);
    await runtime.waitFor((m) => m.type === "dispatch" && m.command.commandId === commandId);
    expect((await auditKinds(endpointId)).some((e: any) => e.kind === "approval.reissued" && e.actorName === "Ada Admin")).toBe(true);
  });

  it("lets the requester withdraw a request; the approver's link then says so and decides nothing", async () => {
    const { endpointId, requester, runtime } = await setup();
    const { commandId } = await run(requester, "net user guest /active:yes");
    const mail = await waitForMail(TEST_APPROVER.email, endpointId);
    requester.send({ type: "cancel", commandId });
    await requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.commandId === commandId && e.status === "cancelled"));
    const decided = await approverCall(endpointId, "decide", { token: mail.token, decision: "approve" });
    expect(decided.status).toBe(409);
    expect(await decided.json()).toMatchObject({ error: expect.stringMatching(/withdrew/), view: { state: "withdrawn" } });
    expect(await commandStatus(endpointId, commandId!)).toBe("cancelled");
    expect(runtime.messages.some((m) => m.type === "dispatch")).toBe(false);
  });
});

describe("decisions", () => {
  it("never sends a denied command, and asks when the technician flags a command the policy would let through", async () => {
    const { endpointId, requester, runtime } = await setup();
    const { commandId } = await run(requester, "Get-LocalUser", { privileged: true });
    const mail = await waitForMail(TEST_APPROVER.email, endpointId);
    expect((await approverCall(endpointId, "decide", { token: mail.token, decision: "deny" })).status).toBe(200);
    const finished = await requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished"));
    expect(finished.events.find((e: any) => e.kind === "command.finished")).toMatchObject({ commandId, status: "denied", error: "Denied by Priya Patel" });

    requester.send({ type: "run", requestId: crypto.randomUUID(), text: "Get-Date", shell: "powershell" });
    const dispatched = await runtime.waitFor((m) => m.type === "dispatch");
    expect(dispatched.command.text).toBe("Get-Date"); // the only dispatch: the denied command never went out
  });

  it("refuses expired, tampered, malformed and foreign links and changes nothing", async () => {
    const { endpointId, requester, runtime } = await setup();
    const first = await run(requester, "net user guest /active:yes");
    const firstMail = await waitForMail(TEST_APPROVER.email, endpointId, 1);
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE approval_requests SET expires_at = ? WHERE command_id = ?", Date.now() - 1, first.commandId);
    });
    expect((await (await approverCall(endpointId, "view", { token: firstMail.token })).json()).state).toBe("expired");
    expect((await approverCall(endpointId, "decide", { token: firstMail.token, decision: "approve" })).status).toBe(410);
    expect(await commandStatus(endpointId, first.commandId!)).toBe("expired");

    // The command text changed after the link was issued: the link no longer binds to it.
    const second = await run(requester, "reg add HKLM\\Software\\Caisey /v Test /d 1");
    const secondMail = await waitForMail(TEST_APPROVER.email, endpointId, 2);
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE commands SET text = 'format C:' WHERE id = ?", second.commandId);
    });
    expect((await approverCall(endpointId, "view", { token: secondMail.token })).status).toBe(404);
    expect((await approverCall(endpointId, "decide", { token: secondMail.token, decision: "approve" })).status).toBe(404);

    await run(requester, "shutdown /r /t 0");
    const third = await waitForMail(TEST_APPROVER.email, endpointId, 3);
    const [, secret] = third.token.split("~");
    const tampered = `${endpointId}~${secret!.slice(0, -1)}${secret!.endsWith("A") ? "B" : "A"}`;
    expect((await approverCall(endpointId, "decide", { token: tampered, decision: "approve" })).status).toBe(404);
    expect((await approverCall(endpointId, "view", { token: "not-a-token" })).status).toBe(404);
    expect((await approverCall(endpointId, "decide", { token: third.token, decision: "maybe" })).status).toBe(400);

    // Another endpoint's session does not know this secret.
    const other = await setup();
    expect((await approverCall(other.endpointId, "view", { token: `${other.endpointId}~${secret}` })).status).toBe(404);
    expect((await approverCall(other.endpointId, "view", { token: third.token })).status).toBe(404);

    expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(0);
    expect((await (await approverCall(endpointId, "view", { token: third.token })).json()).state).toBe("pending");
  });

  it("answers only approver identities on its approval routes", async () => {
    const endpointId = freshEndpoint();
    const anonymous = await sessionStub(endpointId).fetch(`https://session.internal${SESSION_PATHS.approvalView}`, {
      method: "POST",
      headers: { "x-partykit-room": endpointId },
      body: JSON.stringify({ token: "x" }),
    });
    expect(anonymous.status).toBe(401);
  });
});

describe("the session enforces each command's state against the runtime", () => {
  /** A command held for approval and a sequence step whose window opens in 7 days: neither was dispatched. */
  async function undispatchedWork() {
    const ctx = await setup();
    const held = await run(ctx.requester, "Restart-Computer");
    const requestId = crypto.randomUUID();
    ctx.requester.send({ type: "run_sequence", requestId, name: "Later", steps: [{ text: "echo later", shell: "sh" }], notBefore: Date.now() + 7 * 86_400_000 });
    const queued = await ctx.requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.requestId === `${requestId}#0`));
    const windowed = queued.events.find((e: any) => e.kind === "command.queued").commandId as string;
    return { ...ctx, held: held.commandId!, windowed };
  }

  it("refuses started, output and result for commands it never dispatched, audits it, and runs nothing on the next hello", async () => {
    const { endpointId, runtime, requester, held, windowed } = await undispatchedWork();
    for (const commandId of [held, windowed, "cmd_made_up"]) {
      runtime.send({ type: "started", commandId, startedAt: Date.now() });
      runtime.send({ type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "forged" } });
      runtime.send({ type: "result", result: result(commandId, "succeeded", "forged") });
    }
    await runtime.waitFor((m) => m.type === "error" && m.code === "refused" && m.message.includes("cmd_made_up"));
    expect(runtime.messages.some((m) => m.type === "ack")).toBe(false);
    expect(await commandStatus(endpointId, held)).toBe("pending_approval");
    expect(await commandStatus(endpointId, windowed)).toBe("queued");
    expect(everythingSeenBy(requester)).not.toContain("forged");

    const refusals = (await auditKinds(endpointId)).filter((e: any) => e.kind === "runtime.refused");
    expect(refusals.map((e: any) => JSON.parse(e.detail).message).sort()).toEqual(["output", "output", "output", "result", "result", "result", "started", "started", "started"]);
    expect(refusals.find((e: any) => e.commandId === held)).toMatchObject({ actorAddress: "198.51.100.9", status: "pending_approval" });

    // A reconnecting runtime gets only what was really dispatched: nothing.
    runtime.close();
    const again = await connectRuntime(endpointId);
    await again.waitFor((m) => m.type === "clock");
    const check = await connectViewer(endpointId, viewerIdentity(endpointId));
    check.send({ type: "run", requestId: crypto.randomUUID(), text: "echo probe", shell: "sh" });
    const dispatched = await again.waitFor((m) => m.type === "dispatch");
    expect(dispatched.command.text).toBe("echo probe");
    expect(again.messages.filter((m) => m.type === "dispatch")).toHaveLength(1);
  });

  it("does not acknowledge a check-in result for undispatched work, and still accepts real results", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId);
    const requester = await connectViewer(endpointId, viewerIdentity(endpointId));
    const held = await run(requester, "Restart-Computer");
    const plain = await run(requester, "echo fine");
    const first = await checkin(endpointId, {});
    expect(first.body.dispatch.map((d: any) => d.commandId)).toEqual([plain.commandId]);
    const second = await checkin(endpointId, {
      started: [{ commandId: held.commandId, startedAt: Date.now() }],
      results: [result(held.commandId!, "succeeded", "forged"), result(plain.commandId!, "succeeded", "fine")],
    });
    expect(second.status).toBe(200);
    expect(second.body.acks).toEqual([plain.commandId]);
    expect(second.body.dispatch).toEqual([]);
    expect(await commandStatus(endpointId, held.commandId!)).toBe("pending_approval");
    expect(await commandStatus(endpointId, plain.commandId!)).toBe("succeeded");
  });
});

describe("fail closed: the policy lives in the session, and unknown means nothing privileged runs", () => {
  it("refuses every command while the client's policy is unknown to the directory", async () => {
    const endpointId = freshEndpoint(); // never registered: the directory does not know it
    const viewer = await connectDirect(endpointId, viewerIdentity(endpointId));
    viewer.send({ type: "sync", afterSeq: 0 });
    const refused = await run(viewer, "echo hello");
    expect(refused.error).toMatchObject({ code: "policy_unavailable" });
  });

  it("keeps holding guarded commands for approval during a D1 outage, from its own copy; without a copy it refuses", async () => {
    const { endpointId, requester, runtime } = await setup();
    const warmUp = await run(requester, "echo warm-up"); // the session now holds a copy of the policy
    await runtime.waitFor((m) => m.type === "dispatch" && m.command.commandId === warmUp.commandId);
    runtime.send({ type: "result", result: result(warmUp.commandId!) });
    await runtime.waitFor((m) => m.type === "ack");
    await breakD1(endpointId);
    const guarded = await run(requester, "Restart-Computer");
    expect(await commandStatus(endpointId, guarded.commandId!)).toBe("pending_approval");
    const plain = await run(requester, "echo during-outage");
    await runtime.waitFor((m) => m.type === "dispatch" && m.command.commandId === plain.commandId);
    expect(runtime.messages.some((m) => m.type === "dispatch" && m.command.commandId === guarded.commandId)).toBe(false);

    const cold = freshEndpoint();
    await registerEndpoint(cold);
    const coldViewer = await connectViewer(cold, viewerIdentity(cold));
    await breakD1(cold);
    const refused = await run(coldViewer, "Restart-Computer");
    expect(refused.error).toMatchObject({ code: "policy_unavailable" });
    const alsoRefused = await run(coldViewer, "echo harmless");
    expect(alsoRefused.error).toMatchObject({ code: "policy_unavailable" });
  });

  it("replaces its copy when the console says the policy changed, and keeps the old copy if D1 cannot answer", async () => {
    const { endpointId, requester } = await setup();
    await run(requester, "echo warm-up");
    await env.DB.prepare("UPDATE approval_policies SET mode = 'allowlist', allowed_commands = '[\"echo ok\"]' WHERE client_id = ?").bind(`cl_${endpointId}`).run();
    const refreshed = await refreshSessionPolicy(endpointId);
    expect(refreshed.status).toBe(200);
    expect((await run(requester, "echo other")).commandId).toBeTruthy();
    expect(requester.events().filter((e) => e.kind === "command.approval_requested")).toHaveLength(1);
    expect((await auditKinds(endpointId)).some((e: any) => e.kind === "policy.updated" && e.actorName === "Ada Admin")).toBe(true);

    await breakD1(endpointId);
    expect((await refreshSessionPolicy(endpointId)).status).toBe(503);
    await run(requester, "echo another");
    expect(requester.events().filter((e) => e.kind === "command.approval_requested")).toHaveLength(2); // still the allow-list copy
  });
});

describe("allow-list mode (the default) cannot be evaded by spelling", () => {
  const allowList = { ...ADVISORY_TEST_POLICY, mode: "allowlist" as const, allowedCommands: ["hostname", "Get-Service Spooler"] };

  it("runs exactly the listed commands without approval and asks for everything else", async () => {
    const { endpointId, requester, runtime } = await setup(allowList);
    const listed = await run(requester, "Get-Service Spooler");
    await runtime.waitFor((m) => m.type === "dispatch" && m.command.commandId === listed.commandId);
    for (const evasion of ["su''do reboot", "s\\udo reboot", "$(printf sud)o reboot", "echo cmVib290 | base64 -d | sh", "hostname; reboot", "Get-Service Spooler | Stop-Service"]) {
      const { commandId } = await run(requester, evasion);
      expect(await commandStatus(endpointId, commandId!)).toBe("pending_approval");
    }
    const requested = requester.events().filter((e) => e.kind === "command.approval_requested");
    expect(requested).toHaveLength(6);
    expect(requested[0].rule).toBe("not on the client's allow-list");
  });

  it("is what a client without a policy of its own gets: everything asks its contact", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId, "defaults");
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const { commandId } = await run(viewer, "hostname");
    expect(await commandStatus(endpointId, commandId!)).toBe("pending_approval");
    await waitForMail(TEST_APPROVER.email, endpointId);
    expect(DEFAULT_APPROVAL_PATTERNS.some((p) => new RegExp(p, "i").test("hostname"))).toBe(false);
  });
});

describe("delivery", () => {
  it("shows the requester a failed delivery, audits it, and leaves no usable link behind", async () => {
    const { endpointId, requester } = await setup();
    await runInSession(sessionStub(endpointId), (instance: any) => {
      // This instance's configuration only (the object is shared with the test): no API key for the provider.
      instance.env = { ...instance.env, APPROVAL_MAIL_PROVIDER: "resend", RESEND_API_KEY: undefined };
    });
    const { commandId } = await run(requester, "Restart-Computer");
    const failed = await requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_delivery"));
    expect(failed.events.find((e: any) => e.kind === "command.approval_delivery")).toMatchObject({
      commandId,
      approver: { name: "Priya Patel", address: "p•••@client.test" },
      state: "failed",
      attempt: 1,
      error: expect.stringMatching(/RESEND_API_KEY/),
    });
    expect(await mailTo(TEST_APPROVER.email, endpointId)).toHaveLength(0);
    const links = await runInSession(sessionStub(endpointId), (_i, state) => state.storage.sql.exec("SELECT secret_hash, delivery FROM approval_links").toArray());
    expect(links).toEqual([{ secret_hash: null, delivery: "failed" }]);
    expect((await auditKinds(endpointId)).find((e: any) => e.kind === "approval.delivery_failed")).toMatchObject({ actorName: "Priya Patel" });
  });
});

describe("delivery retries", () => {
  it("retries a failed send with a fresh link, shows each attempt, and only the delivered link works", async () => {
    const { endpointId, requester } = await setup();
    await run(requester, "echo warm-up"); // the policy copy is in the session before D1 goes away
    await breakD1(endpointId); // the capture mailbox lives in D1: the send fails, transiently
    const { commandId } = await run(requester, "Restart-Computer");
    const retrying = await requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_delivery"));
    const first = retrying.events.find((e: any) => e.kind === "command.approval_delivery");
    expect(first).toMatchObject({ commandId, state: "retrying", attempt: 1, nextAttemptAt: expect.any(Number) });
    expect(first.nextAttemptAt).toBeGreaterThan(Date.now());

    await restoreD1(endpointId);
    await runInSession(sessionStub(endpointId), (_i, state) => state.storage.sql.exec("UPDATE approval_links SET next_attempt_at = ?", Date.now() - 1));
    expect(await runDurableObjectAlarm(sessionStub(endpointId))).toBe(true);
    await requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_delivery" && e.state === "sent" && e.attempt === 2));
    const mail = await waitForMail(TEST_APPROVER.email, endpointId);
    expect((await mailTo(TEST_APPROVER.email, endpointId))).toHaveLength(1);
    expect((await approverCall(endpointId, "view", { token: mail.token })).status).toBe(200);
    const audit = await auditKinds(endpointId);
    expect(audit.filter((e: any) => e.kind === "approval.delivery_failed")).toHaveLength(1);
    expect(audit.filter((e: any) => e.kind === "approval.delivered")).toHaveLength(1);
  });
});

/** A real outage as the session sees it: every D1 call fails. */
async function breakD1(endpointId: string): Promise<void> {
  await runInSession(sessionStub(endpointId), (instance: any) => {
    instance.workingEnv ??= instance.env;
    // Only this instance's binding: the env object itself is shared with the test.
    instance.env = { ...instance.env, DB: {
      prepare() {
        throw new Error("D1_ERROR: database unavailable");
      },
      batch() {
        return Promise.reject(new Error("D1_ERROR: database unavailable"));
      },
    } };
  });
}

/** The outage ends: the instance gets its real bindings back. */
async function restoreD1(endpointId: string): Promise<void> {
  await runInSession(sessionStub(endpointId), (instance: any) => {
    instance.env = instance.workingEnv;
  });
}
