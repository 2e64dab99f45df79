import { describe, expect, it } from "vitest";
import { IDENTITY_HEADERS } from "../../workers/session/src/identity";
import { connectRuntime, connectViewer, runInSession, sessionStub, type TestSocket, viewerIdentity } from "./socket";

let counter = 0;
const freshEndpoint = () => `ep_approval_test_${Date.now()}_${counter++}`;

async function approverCall(endpointId: string, path: "view" | "decide", body: unknown): Promise<{ status: number; json(): Promise<any> }> {
  const response: Response = await sessionStub(endpointId).fetch(`https://session.internal/approval/${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-partykit-room": endpointId,
      [IDENTITY_HEADERS.identity]: JSON.stringify({ peer: "approver", endpointId, orgId: "", userId: null, userName: null, canRun: false, address: "192.0.2.10" }),
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: () => response.json() };
}

async function setup() {
  const endpointId = freshEndpoint();
  const requester = await connectViewer(endpointId, viewerIdentity(endpointId));
  const colleague = await connectViewer(endpointId, viewerIdentity(endpointId, { userId: "user_colleague", userName: "Cole" }));
  const runtime = await connectRuntime(endpointId);
  await runtime.waitFor((m) => m.type === "clock");
  return { endpointId, requester, colleague, runtime };
}

async function requestPrivileged(requester: TestSocket, text: string, extra: Record<string, unknown> = {}) {
  const from = requester.messages.length;
  requester.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "powershell", reason: "Apply updates", ...extra });
  const link = await requester.waitFor((m) => m.type === "approval_link", 5_000, from);
  return { commandId: link.commandId as string, token: decodeURIComponent(new URL(link.url).pathname.split("/").pop()!) };
}

describe("client approval of privileged commands", () => {
  it("holds a policy-matched command for approval, shows the link only to the requester, and runs it once approved", async () => {
    const { endpointId, requester, colleague, runtime } = await setup();
    const { commandId, token } = await requestPrivileged(requester, "Restart-Computer -Force");
    expect(token.startsWith(`${endpointId}~`)).toBe(true);

    const prompt = await colleague.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_requested"));
    expect(prompt.events.find((e: any) => e.kind === "command.approval_requested")).toMatchObject({ commandId, reason: "Apply updates", pattern: expect.stringContaining("Restart-Computer") });
    expect(colleague.messages.some((m) => m.type === "approval_link")).toBe(false);
    expect(JSON.stringify(colleague.messages)).not.toContain(token.split("~")[1]);
    await new Promise((r) => setTimeout(r, 50));
    expect(runtime.messages.some((m) => m.type === "dispatch")).toBe(false);

    const view = await approverCall(endpointId, "view", { token });
    expect(view.status).toBe(200);
    expect(await view.json()).toMatchObject({ commandId, text: "Restart-Computer -Force", reason: "Apply updates", requestedBy: "Tess Tech", state: "pending" });

    const decided = await approverCall(endpointId, "decide", { token, decision: "approve", approverName: "Priya Patel" });
    expect(decided.status).toBe(200);
    expect((await decided.json()).view).toMatchObject({ state: "approved", decidedBy: "Priya Patel" });
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
    expect(dispatch.command).toMatchObject({ commandId, text: "Restart-Computer -Force" });
    await colleague.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.approval_decided" && e.by === "Priya Patel"));

    const again = await approverCall(endpointId, "decide", { token, decision: "deny", approverName: "Mallory" });
    expect(again.status).toBe(409);
    expect((await again.json()).error).toMatch(/already been used/);
    await new Promise((r) => setTimeout(r, 50));
    expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(1);

    const audit = await runInSession(sessionStub(endpointId), (instance: any) => instance.audit.all());
    const kinds = audit.map((e: any) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(["approval.requested", "approval.viewed", "approval.decided", "command.dispatched"]));
    expect(audit.find((e: any) => e.kind === "approval.decided")).toMatchObject({ actorName: "Priya Patel", actorAddress: "192.0.2.10", status: "approved" });
  });

  it("never sends a denied command, and needs approval when the technician flags it even without a matching rule", async () => {
    const { endpointId, requester, runtime } = await setup();
    const { commandId, token } = await requestPrivileged(requester, "Get-LocalUser", { privileged: true });
    const denied = await approverCall(endpointId, "decide", { token, decision: "deny", approverName: "Priya Patel" });
    expect(denied.status).toBe(200);
    const finished = await requester.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished"));
    expect(finished.events.find((e: any) => e.kind === "command.finished")).toMatchObject({ commandId, status: "denied", error: "Denied by Priya Patel" });

    requester.send({ type: "run", requestId: crypto.randomUUID(), text: "Get-Date", shell: "powershell" });
    const dispatched = await runtime.waitFor((m) => m.type === "dispatch");
    expect(dispatched.command.text).toBe("Get-Date"); // the only dispatch: the denied command never went out
  });

  it("refuses expired, tampered, malformed and foreign links and changes nothing", async () => {
    const { endpointId, requester, runtime } = await setup();
    const first = await requestPrivileged(requester, "net user guest /active:yes");
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE approvals SET expires_at = ? WHERE command_id = ?", Date.now() - 1, first.commandId);
    });
    const viewExpired = await approverCall(endpointId, "view", { token: first.token });
    expect((await viewExpired.json()).state).toBe("expired");
    const expired = await approverCall(endpointId, "decide", { token: first.token, decision: "approve", approverName: "Priya" });
    expect(expired.status).toBe(410);

    // The command text changed after the link was issued: the link no longer binds to it.
    const second = await requestPrivileged(requester, "reg add HKLM\\Software\\Caisey /v Test /d 1");
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      state.storage.sql.exec("UPDATE commands SET text = 'format C:' WHERE id = ?", second.commandId);
    });
    expect((await approverCall(endpointId, "view", { token: second.token })).status).toBe(404);
    expect((await approverCall(endpointId, "decide", { token: second.token, decision: "approve", approverName: "Priya" })).status).toBe(404);

    const third = await requestPrivileged(requester, "shutdown /r /t 0");
    const [, secret] = third.token.split("~");
    const tampered = `${endpointId}~${secret!.slice(0, -1)}${secret!.endsWith("A") ? "B" : "A"}`;
    expect((await approverCall(endpointId, "decide", { token: tampered, decision: "approve", approverName: "Priya" })).status).toBe(404);
    expect((await approverCall(endpointId, "view", { token: "not-a-token" })).status).toBe(404);
    expect((await approverCall(endpointId, "decide", { token: third.token, decision: "maybe", approverName: "" })).status).toBe(400);

    // Another tenant's endpoint: its DO does not know this secret.
    const other = await setup();
    expect((await approverCall(other.endpointId, "view", { token: `${other.endpointId}~${secret}` })).status).toBe(404);
    expect((await approverCall(other.endpointId, "view", { token: third.token })).status).toBe(404);

    await new Promise((r) => setTimeout(r, 50));
    expect(runtime.messages.filter((m) => m.type === "dispatch")).toHaveLength(0);
    const stillPending = await approverCall(endpointId, "view", { token: third.token });
    expect((await stillPending.json()).state).toBe("pending");
  });

  it("answers only approver identities on its HTTP routes", async () => {
    const endpointId = freshEndpoint();
    const anonymous = await sessionStub(endpointId).fetch("https://session.internal/approval/view", {
      method: "POST",
      headers: { "x-partykit-room": endpointId },
      body: JSON.stringify({ token: "x" }),
    });
    expect(anonymous.status).toBe(401);
  });
});
