import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import {
  ApprovalPolicyError,
  getApprovalPolicy,
  parsePolicyForm,
  saveApprovalPolicy,
} from "~/models/approval-policies.server";
import { decideApproval, INVALID_LINK_MESSAGE, viewApproval } from "~/models/approvals.server";
import { DEFAULT_APPROVAL_PATTERNS, DEFAULT_LINK_TTL_HOURS } from "../../protocol/approvals";
import { loadEndpointPolicy } from "../../workers/session/src/approvals";
import { DEMO_ORG, OTHER_ORG } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { connectRuntime, connectViewer, viewerIdentity } from "./socket";

const policyRows = async (clientId: string) =>
  (await env.DB.prepare("SELECT * FROM approval_policies WHERE client_id = ?").bind(clientId).all()).results;

/** A D1 endpoint row of the demo tenant's first client, so approval links for it reach its session. */
async function enrolledEndpoint(label: string): Promise<string> {
  const id = `ep_${label.replace(/-/g, "_")}_${Date.now()}`;
  await env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os) VALUES (?, ?, 'cl_acme', ?, 'linux')").bind(id, DEMO_ORG.id, label).run();
  return id;
}

describe("client approval policies (D1)", () => {
  it("uses the defaults when the client has no policy, with the client's contact as approver", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const policy = await getApprovalPolicy(db, DEMO_ORG.id, "cl_acme");
    expect(policy).toEqual({
      patterns: [...DEFAULT_APPROVAL_PATTERNS],
      approvers: [{ name: "Priya Patel", email: "priya@acme.test" }],
      linkTtlHours: DEFAULT_LINK_TTL_HOURS,
      isDefault: true,
      updatedBy: null,
      updatedAt: null,
    });

    // A client without a complete contact has no default approver (as in the session DO).
    await env.DB.prepare("INSERT INTO clients (id, org_id, name, contact_name, contact_email) VALUES (?, ?, ?, ?, ?)")
      .bind("cl_nocontact", DEMO_ORG.id, "No Contact Ltd", null, null)
      .run();
    expect(await getApprovalPolicy(db, DEMO_ORG.id, "cl_nocontact")).toMatchObject({ approvers: [], isDefault: true });
  });

  it("saves a policy and reads it back; saving again updates the same row; the session DO sees it", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const first = await saveApprovalPolicy(
      db,
      DEMO_ORG.id,
      "cl_bayside",
      { patterns: ["\\bformat\\b", "Remove-Item\\s+-Recurse"], approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }], linkTtlHours: 4 },
      "Ada Admin",
    );
    expect(first).toMatchObject({
      patterns: ["\\bformat\\b", "Remove-Item\\s+-Recurse"],
      approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }],
      linkTtlHours: 4,
      isDefault: false,
      updatedBy: "Ada Admin",
    });
    expect(await getApprovalPolicy(db, DEMO_ORG.id, "cl_bayside")).toEqual(first);

    const second = await saveApprovalPolicy(
      db,
      DEMO_ORG.id,
      "cl_bayside",
      { patterns: [], approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }, { name: "Ana Ruiz", email: "ana@bayside.test" }], linkTtlHours: 168 },
      "Ada Admin",
    );
    expect(second).toMatchObject({ patterns: [], linkTtlHours: 168, isDefault: false });
    expect(second.approvers).toHaveLength(2);
    expect(await policyRows("cl_bayside")).toHaveLength(1);
    // Other clients are untouched.
    expect((await getApprovalPolicy(db, DEMO_ORG.id, "cl_cobalt"))?.isDefault).toBe(true);

    // The DO reads the same row for this client's endpoints.
    const endpoint = await env.DB.prepare("SELECT id FROM endpoints WHERE client_id = ? LIMIT 1").bind("cl_bayside").first<{ id: string }>();
    const seen = await loadEndpointPolicy(env.DB, endpoint!.id);
    expect(seen).toMatchObject({ patterns: [], linkTtlHours: 168, clientName: "Bayside Dental" });
    expect(seen.approvers).toEqual(second.approvers);
  });

  it("rejects an invalid regular expression and saves nothing", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    const attempt = saveApprovalPolicy(db, DEMO_ORG.id, "cl_cobalt", { patterns: ["ok", "(unclosed"], approvers: [], linkTtlHours: 24 }, "Ada Admin");
    await expect(attempt).rejects.toBeInstanceOf(ApprovalPolicyError);
    await expect(attempt).rejects.toThrow(/pattern 2/);
    await expect(
      saveApprovalPolicy(db, DEMO_ORG.id, "cl_cobalt", { patterns: ["ok"], approvers: [], linkTtlHours: 0 }, "Ada Admin"),
    ).rejects.toMatchObject({ status: 400 });
    expect(await policyRows("cl_cobalt")).toHaveLength(0);
    expect((await getApprovalPolicy(db, DEMO_ORG.id, "cl_cobalt"))?.isDefault).toBe(true);

    // The form parser names the bad line (counting blank lines, as the textarea shows them).
    expect(parsePolicyForm({ patterns: "\\bsudo\\b\n\n[a-", approvers: "", linkTtlHours: "24" })).toEqual({
      ok: false,
      error: "Invalid regular expression on line 3 of the patterns: [a-",
    });
    expect(parsePolicyForm({ patterns: "", approvers: "Leo Grant <leo@bayside.test>\nnot an approver", linkTtlHours: "24" })).toMatchObject({
      ok: false,
      error: expect.stringContaining("line 2"),
    });
    expect(parsePolicyForm({ patterns: "", approvers: "", linkTtlHours: "1000" })).toMatchObject({ ok: false, error: expect.stringContaining("Link lifetime") });
    expect(parsePolicyForm({ patterns: " \\breboot\\b \r\n", approvers: "Leo Grant <leo@bayside.test>", linkTtlHours: "12" })).toEqual({
      ok: true,
      policy: { patterns: ["\\breboot\\b"], approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }], linkTtlHours: 12 },
    });
  });

  it("does not read or write another organisation's client", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    await saveApprovalPolicy(db, OTHER_ORG.id, "cl_other_fabrikam", { patterns: ["secret-pattern"], approvers: [], linkTtlHours: 2 }, "Carl Contoso");

    expect(await getApprovalPolicy(db, DEMO_ORG.id, "cl_other_fabrikam")).toBeNull();
    await expect(
      saveApprovalPolicy(db, DEMO_ORG.id, "cl_other_fabrikam", { patterns: [], approvers: [], linkTtlHours: 1 }, "Ada Admin"),
    ).rejects.toMatchObject({ status: 404 });
    await expect(
      saveApprovalPolicy(db, OTHER_ORG.id, "cl_acme", { patterns: [], approvers: [], linkTtlHours: 1 }, "Carl Contoso"),
    ).rejects.toMatchObject({ status: 404 });

    // The owner's policy is intact, and the other tenant's attempt left no row behind.
    expect(await getApprovalPolicy(db, OTHER_ORG.id, "cl_other_fabrikam")).toMatchObject({ patterns: ["secret-pattern"], linkTtlHours: 2, updatedBy: "Carl Contoso" });
    expect(await policyRows("cl_acme")).toHaveLength(0);
    expect(await getApprovalPolicy(db, DEMO_ORG.id, "cl_acme")).toMatchObject({ isDefault: true });
  });
});

describe("approval link calls from the Pages app to the session DO", () => {
  const neverCalled = {
    ...env,
    ENDPOINT_SESSION: new Proxy({} as DurableObjectNamespace, {
      get() {
        throw new Error("a malformed link must not reach a Durable Object");
      },
    }),
  };

  it("answers a malformed link without calling any Durable Object", async () => {
    for (const token of ["", "no-separator", "ep_1~short", "~" + "a".repeat(43), "ep 1~" + "a".repeat(43), `ep_1~${"a".repeat(42)}!`]) {
      expect(await viewApproval(neverCalled, token, null)).toEqual({ ok: false, reason: "invalid", error: INVALID_LINK_MESSAGE });
      expect(await decideApproval(neverCalled, token, "approve", "Priya Patel", null)).toMatchObject({ ok: false, reason: "invalid" });
    }
  });

  it("answers a well-formed link for an endpoint that was never enrolled without creating its Durable Object", async () => {
    const token = `ep_unknown_${Date.now()}~${"A".repeat(43)}`;
    expect(await viewApproval(neverCalled, token, "192.0.2.1")).toEqual({ ok: false, reason: "invalid", error: INVALID_LINK_MESSAGE });
    expect(await decideApproval(neverCalled, token, "deny", "Priya Patel", "192.0.2.1")).toMatchObject({ ok: false, reason: "invalid" });
  });

  it("reports an unknown secret for an enrolled endpoint as invalid, from the real session DO", async () => {
    await seedDemo();
    const endpointId = await enrolledEndpoint("unknown-secret");
    const token = `${endpointId}~${"A".repeat(43)}`;
    expect(await viewApproval(env, token, "192.0.2.1")).toMatchObject({ ok: false, reason: "invalid", error: expect.stringContaining("not valid") });
    expect(await decideApproval(env, token, "deny", "Priya Patel", "192.0.2.1")).toMatchObject({ ok: false, reason: "invalid" });
  });
});

describe("viewApproval / decideApproval against a real pending approval", () => {
  it("views, approves once, then reports the link as used with who decided", async () => {
    await seedDemo();
    const endpointId = await enrolledEndpoint("pages-approval");
    const requester = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");
    requester.send({ type: "run", requestId: crypto.randomUUID(), text: "echo consent", shell: "bash", reason: "Check consent", privileged: true });
    const link = await requester.waitFor((m) => m.type === "approval_link");
    const token = decodeURIComponent(new URL(link.url).pathname.split("/").pop()!);

    const viewed = await viewApproval(env, token, "192.0.2.20");
    expect(viewed).toMatchObject({ ok: true, view: { text: "echo consent", reason: "Check consent", state: "pending", requestedBy: "Tess Tech", endpointId } });

    const [endpointPart, secret] = token.split("~");
    const tampered = `${endpointPart}~${secret!.slice(0, -1)}${secret!.endsWith("A") ? "B" : "A"}`;
    expect(await viewApproval(env, tampered, null)).toMatchObject({ ok: false, reason: "invalid" });

    const decided = await decideApproval(env, token, "approve", "Priya Patel", "192.0.2.20");
    expect(decided).toMatchObject({ ok: true, view: { state: "approved", decidedBy: "Priya Patel" } });
    await runtime.waitFor((m) => m.type === "dispatch");

    const again = await decideApproval(env, token, "deny", "Mallory", "192.0.2.21");
    expect(again).toMatchObject({ ok: false, reason: "used", view: { state: "approved", decidedBy: "Priya Patel" } });
    expect(await viewApproval(env, token, null)).toMatchObject({ ok: true, view: { state: "approved" } });
    requester.close();
    runtime.close();
  });
});
