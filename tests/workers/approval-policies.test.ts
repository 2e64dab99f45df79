// The console's side of client approval policies, against real D1 and the
// real session DO: the policy and time-zone model behind the client page, what
// the session reads of it, and the public approval page's calls to the DO.
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
import { setClientTimeZone } from "~/models/clients.server";
import { DEFAULT_APPROVAL_PATTERNS, DEFAULT_LINK_TTL_HOURS, type ApprovalPolicy } from "../../protocol/approvals";
import { readSessionPolicy } from "../../workers/session/src/approvals";
import { DEMO_CLIENTS, DEMO_ORG, DEMO_POLICIES, OTHER_ORG } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { connectDirect, connectViewer, runtimeHello, runtimeIdentity, viewerIdentity, waitForMail } from "./socket";

let counter = 0;
const unique = (label: string) => `${label}_${Date.now()}_${counter++}`;

const policyRows = async (clientId: string) =>
  (await env.DB.prepare("SELECT * FROM approval_policies WHERE client_id = ?").bind(clientId).all()).results;

/** A client of its own per test (D1 is shared by the tests of this file), with one endpoint. */
async function freshClient(
  options: { orgId?: string; contact?: { name: string; email: string } | null; timeZone?: string } = {},
): Promise<{ clientId: string; endpointId: string }> {
  await seedDemo();
  const clientId = unique("cl_policy");
  const endpointId = unique("ep_policy");
  const contact = options.contact === undefined ? { name: "Grace Hopper", email: "grace@client.test" } : options.contact;
  await env.DB.batch([
    env.DB.prepare("INSERT INTO clients (id, org_id, name, contact_name, contact_email, time_zone) VALUES (?, ?, ?, ?, ?, ?)").bind(
      clientId,
      options.orgId ?? DEMO_ORG.id,
      `Client ${clientId}`,
      contact?.name ?? null,
      contact?.email ?? null,
      options.timeZone ?? "UTC",
    ),
    env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os, placed_at) VALUES (?, ?, ?, ?, 'linux', ?)").bind(
      endpointId,
      options.orgId ?? DEMO_ORG.id,
      clientId,
      `host-${endpointId}`,
      Date.now(),
    ),
  ]);
  return { clientId, endpointId };
}

const policy = (overrides: Partial<ApprovalPolicy> = {}): ApprovalPolicy => ({
  mode: "allowlist",
  allowedCommands: [],
  patterns: [],
  approvers: [{ name: "Grace Hopper", email: "grace@client.test" }],
  linkTtlHours: 24,
  ...overrides,
});

describe("client approval policies (D1)", () => {
  it("gives a client without a policy the allow-list defaults (everything asks), the contact as approver; the session reads the same", async () => {
    const { clientId, endpointId } = await freshClient({ timeZone: "Europe/Berlin" });
    const db = createDb(env.DB);
    expect(await getApprovalPolicy(db, DEMO_ORG.id, clientId)).toEqual({
      mode: "allowlist",
      allowedCommands: [],
      patterns: [...DEFAULT_APPROVAL_PATTERNS],
      approvers: [{ name: "Grace Hopper", email: "grace@client.test" }],
      linkTtlHours: DEFAULT_LINK_TTL_HOURS,
      isDefault: true,
      updatedBy: null,
      updatedAt: null,
    });
    expect(await readSessionPolicy(env.DB, endpointId)).toEqual({
      version: 0,
      mode: "allowlist",
      allowedCommands: [],
      patterns: [...DEFAULT_APPROVAL_PATTERNS],
      approvers: [{ name: "Grace Hopper", email: "grace@client.test" }],
      linkTtlHours: DEFAULT_LINK_TTL_HOURS,
      hostname: `host-${endpointId}`,
      clientName: `Client ${clientId}`,
      timeZone: "Europe/Berlin",
      maintenanceWindows: [],
      retentionDays: 90,
    });
    // An endpoint the directory does not know: null, never a default.
    expect(await readSessionPolicy(env.DB, unique("ep_unknown"))).toBeNull();

    // A client without a complete contact has no default approver (as in the session DO).
    const bare = await freshClient({ contact: null });
    expect(await getApprovalPolicy(db, DEMO_ORG.id, bare.clientId)).toMatchObject({ mode: "allowlist", approvers: [], isDefault: true });
    expect(await readSessionPolicy(env.DB, bare.endpointId)).toMatchObject({ mode: "allowlist", allowedCommands: [], approvers: [] });
  });

  it("seeds Acme on the advisory deny-list (for the demo runtime and e2e) and Bayside on an allow-list, with the clients' time zones", async () => {
    await seedDemo();
    const db = createDb(env.DB);
    expect(DEMO_POLICIES.find((p) => p.clientId === "cl_acme")!.patterns).toEqual([...DEFAULT_APPROVAL_PATTERNS]);
    expect(await getApprovalPolicy(db, DEMO_ORG.id, "cl_acme")).toMatchObject({
      mode: "denylist",
      patterns: [...DEFAULT_APPROVAL_PATTERNS],
      approvers: [{ name: "Priya Patel", email: "priya@acme.test" }],
      isDefault: false,
    });
    const bayside = await getApprovalPolicy(db, DEMO_ORG.id, "cl_bayside");
    expect(bayside).toMatchObject({ mode: "allowlist", approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }], isDefault: false });
    expect(bayside!.allowedCommands).toEqual(expect.arrayContaining(["hostname", "whoami", "ipconfig /all", "Get-Service"]));
    expect(await getApprovalPolicy(db, DEMO_ORG.id, "cl_delta")).toMatchObject({ mode: "allowlist", isDefault: true });

    const zones = await env.DB.prepare("SELECT id, time_zone FROM clients WHERE id IN ('cl_acme','cl_bayside','cl_cobalt','cl_delta','cl_other_fabrikam')").all<{ id: string; time_zone: string }>();
    expect(Object.fromEntries(zones.results.map((row) => [row.id, row.time_zone]))).toEqual(
      Object.fromEntries(DEMO_CLIENTS.map((client) => [client.id, client.timeZone])),
    );
    expect(Object.fromEntries(DEMO_CLIENTS.map((c) => [c.id, c.timeZone]))).toEqual({
      cl_acme: "America/Chicago",
      cl_bayside: "Australia/Sydney",
      cl_cobalt: "Europe/Berlin",
      cl_delta: "America/New_York",
      cl_other_fabrikam: "UTC",
    });
    const acmeEndpoint = await readSessionPolicy(env.DB, "ep_acme_01");
    expect(acmeEndpoint).toMatchObject({ mode: "denylist", timeZone: "America/Chicago", clientName: "Acme Manufacturing" });
  });

  it("saves mode and allowed commands and reads them back; saving again updates the one row; the session reads the new version", async () => {
    const { clientId, endpointId } = await freshClient();
    const db = createDb(env.DB);
    const first = await saveApprovalPolicy(
      db,
      DEMO_ORG.id,
      clientId,
      policy({ mode: "allowlist", allowedCommands: ["hostname", "ipconfig /all"], patterns: ["\\bformat\\b"], linkTtlHours: 4 }),
      "Ada Admin",
    );
    expect(first).toMatchObject({
      mode: "allowlist",
      allowedCommands: ["hostname", "ipconfig /all"],
      patterns: ["\\bformat\\b"],
      approvers: [{ name: "Grace Hopper", email: "grace@client.test" }],
      linkTtlHours: 4,
      isDefault: false,
      updatedBy: "Ada Admin",
    });
    expect(await getApprovalPolicy(db, DEMO_ORG.id, clientId)).toEqual(first);
    expect(await readSessionPolicy(env.DB, endpointId)).toMatchObject({ mode: "allowlist", allowedCommands: ["hostname", "ipconfig /all"], version: first.updatedAt });

    const second = await saveApprovalPolicy(
      db,
      DEMO_ORG.id,
      clientId,
      policy({
        mode: "denylist",
        allowedCommands: [],
        patterns: ["Remove-Item\\s+-Recurse"],
        approvers: [{ name: "Grace Hopper", email: "grace@client.test" }, { name: "Ana Ruiz", email: "ana@client.test" }],
        linkTtlHours: 168,
      }),
      "Ada Admin",
    );
    expect(second).toMatchObject({ mode: "denylist", allowedCommands: [], patterns: ["Remove-Item\\s+-Recurse"], linkTtlHours: 168, isDefault: false });
    expect(await policyRows(clientId)).toHaveLength(1);
    const seen = await readSessionPolicy(env.DB, endpointId);
    expect(seen).toMatchObject({ mode: "denylist", patterns: ["Remove-Item\\s+-Recurse"], linkTtlHours: 168, version: second.updatedAt });
    expect(seen!.approvers).toEqual(second.approvers);
    expect(second.updatedAt!).toBeGreaterThanOrEqual(first.updatedAt!);
  });

  it("rejects an invalid policy and saves nothing; the form parser names the bad line", async () => {
    const { clientId } = await freshClient();
    const db = createDb(env.DB);
    const attempt = saveApprovalPolicy(db, DEMO_ORG.id, clientId, policy({ mode: "denylist", patterns: ["ok", "(unclosed"] }), "Ada Admin");
    await expect(attempt).rejects.toBeInstanceOf(ApprovalPolicyError);
    await expect(attempt).rejects.toThrow(/pattern 2/);
    await expect(saveApprovalPolicy(db, DEMO_ORG.id, clientId, policy({ linkTtlHours: 0 }), "Ada Admin")).rejects.toMatchObject({ status: 400 });
    await expect(
      saveApprovalPolicy(db, DEMO_ORG.id, clientId, { ...policy(), mode: "everything" as never }, "Ada Admin"),
    ).rejects.toMatchObject({ status: 400 });
    expect(await policyRows(clientId)).toHaveLength(0);
    expect((await getApprovalPolicy(db, DEMO_ORG.id, clientId))?.isDefault).toBe(true);

    const form = { mode: "denylist", allowedCommands: "", patterns: "", approvers: "", linkTtlHours: "24" } as const;
    expect(parsePolicyForm({ ...form, patterns: "\\bsudo\\b\n\n[a-" })).toEqual({ ok: false, error: "Invalid regular expression on line 3 of the patterns: [a-" });
    expect(parsePolicyForm({ ...form, approvers: "Leo Grant <leo@bayside.test>\nnot an approver" })).toMatchObject({ ok: false, error: expect.stringContaining("line 2") });
    expect(parsePolicyForm({ ...form, approvers: "Leo Grant <leo@bayside.test>\nLeo G <LEO@bayside.test>" })).toMatchObject({ ok: false, error: expect.stringContaining("line 2") });
    expect(parsePolicyForm({ ...form, allowedCommands: `hostname\n${"x".repeat(501)}` })).toMatchObject({ ok: false, error: expect.stringContaining("line 2") });
    expect(parsePolicyForm({ ...form, linkTtlHours: "1000" })).toMatchObject({ ok: false, error: expect.stringContaining("Link lifetime") });
    expect(parsePolicyForm({ ...form, mode: "everything" as never })).toMatchObject({ ok: false, error: expect.stringContaining("allow-list") });
    expect(
      parsePolicyForm({
        mode: "allowlist",
        allowedCommands: "  hostname  \r\n\r\nipconfig /all\nhostname\n",
        patterns: " \\breboot\\b \r\n",
        approvers: "\nLeo Grant <leo@bayside.test>",
        linkTtlHours: "12",
      }),
    ).toEqual({
      ok: true,
      policy: {
        mode: "allowlist",
        allowedCommands: ["hostname", "ipconfig /all"],
        patterns: ["\\breboot\\b"],
        approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }],
        linkTtlHours: 12,
      },
      approverLines: [2],
    });
    // A form without a mode (an older page) gets the safe default.
    expect(parsePolicyForm({ patterns: "", approvers: "", linkTtlHours: "1" })).toMatchObject({ ok: true, policy: { mode: "allowlist" } });
  });

  it("refuses any approver who is a member of the MSP's organisation, whatever the spelling of the address, and names the line", async () => {
    const { clientId } = await freshClient();
    const db = createDb(env.DB);
    for (const email of ["ada@northwind.test", "ADA@Northwind.Test", "nora@northwind.test"]) {
      await expect(
        saveApprovalPolicy(db, DEMO_ORG.id, clientId, policy({ approvers: [{ name: "Grace Hopper", email: "grace@client.test" }, { name: "Staff", email }] }), "Ada Admin"),
      ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/^Approver 2 \(Staff <.+>\) is a member of your organisation/) });
    }
    // Through the form, the error names the textarea line (blank lines count, as the admin sees them).
    const parsed = parsePolicyForm({ mode: "allowlist", allowedCommands: "", patterns: "", approvers: "Grace Hopper <grace@client.test>\n\nTom <Tom@NorthWind.test>", linkTtlHours: "24" });
    if (!parsed.ok) throw new Error(parsed.error);
    const viaForm = saveApprovalPolicy(db, DEMO_ORG.id, clientId, parsed.policy, "Ada Admin", { approverLines: parsed.approverLines });
    await expect(viaForm).rejects.toMatchObject({ status: 400 });
    await expect(viaForm).rejects.toThrow("Approver on line 3 (Tom <Tom@NorthWind.test>) is a member of your organisation. Approvers must be the client's own people, never staff.");
    expect(await policyRows(clientId)).toHaveLength(0);

    // A member of ANOTHER organisation is not our staff: they may approve for our client.
    const saved = await saveApprovalPolicy(db, DEMO_ORG.id, clientId, policy({ approvers: [{ name: "Carl Contoso", email: "carl@contoso.test" }] }), "Ada Admin");
    expect(saved.approvers).toEqual([{ name: "Carl Contoso", email: "carl@contoso.test" }]);
  });

  it("does not read or write another organisation's client", async () => {
    const foreign = await freshClient({ orgId: OTHER_ORG.id });
    const ours = await freshClient();
    const db = createDb(env.DB);
    await saveApprovalPolicy(db, OTHER_ORG.id, foreign.clientId, policy({ mode: "denylist", patterns: ["secret-pattern"], approvers: [], linkTtlHours: 2 }), "Carl Contoso");

    expect(await getApprovalPolicy(db, DEMO_ORG.id, foreign.clientId)).toBeNull();
    await expect(saveApprovalPolicy(db, DEMO_ORG.id, foreign.clientId, policy({ approvers: [] }), "Ada Admin")).rejects.toMatchObject({ status: 404 });
    await expect(saveApprovalPolicy(db, OTHER_ORG.id, ours.clientId, policy({ approvers: [] }), "Carl Contoso")).rejects.toMatchObject({ status: 404 });
    expect(await setClientTimeZone(db, DEMO_ORG.id, foreign.clientId, "Europe/Paris")).toMatchObject({ ok: false, status: 404 });

    // The owner's policy is intact, and the other tenant's attempt left no row behind.
    expect(await getApprovalPolicy(db, OTHER_ORG.id, foreign.clientId)).toMatchObject({ patterns: ["secret-pattern"], linkTtlHours: 2, updatedBy: "Carl Contoso" });
    expect(await policyRows(ours.clientId)).toHaveLength(0);
    expect(await getApprovalPolicy(db, DEMO_ORG.id, ours.clientId)).toMatchObject({ isDefault: true });
    expect((await env.DB.prepare("SELECT time_zone FROM clients WHERE id = ?").bind(foreign.clientId).first<{ time_zone: string }>())!.time_zone).toBe("UTC");
  });

  it("saves a valid IANA time zone (canonically spelled) and refuses anything else; the session reads it", async () => {
    const { clientId, endpointId } = await freshClient();
    const db = createDb(env.DB);
    expect(await setClientTimeZone(db, DEMO_ORG.id, clientId, " Australia/Sydney ")).toEqual({ ok: true, timeZone: "Australia/Sydney" });
    expect(await readSessionPolicy(env.DB, endpointId)).toMatchObject({ timeZone: "Australia/Sydney" });
    expect(await setClientTimeZone(db, DEMO_ORG.id, clientId, "europe/berlin")).toEqual({ ok: true, timeZone: "Europe/Berlin" });

    for (const bad of ["", "Mars/Olympus_Mons", "GMT+25", "Europe/Berlin; DROP TABLE clients", "x".repeat(80)]) {
      const refused = await setClientTimeZone(db, DEMO_ORG.id, clientId, bad);
      expect(refused).toMatchObject({ ok: false, status: 400, error: expect.stringContaining("is not a time zone") });
    }
    expect(await readSessionPolicy(env.DB, endpointId)).toMatchObject({ timeZone: "Europe/Berlin" });
  });
});

describe("approval link calls from the Pages app to the session DO", () => {
  const neverCalled = {
    ...env,
    ENDPOINT_SESSION: new Proxy({} as typeof env.ENDPOINT_SESSION, {
      get() {
        throw new Error("a malformed link must not reach a Durable Object");
      },
    }),
  };

  it("answers a malformed link without calling any Durable Object", async () => {
    for (const token of ["", "no-separator", "ep_1~short", "~" + "a".repeat(43), "ep 1~" + "a".repeat(43), `ep_1~${"a".repeat(42)}!`]) {
      expect(await viewApproval(neverCalled, token, null)).toEqual({ ok: false, reason: "invalid", error: INVALID_LINK_MESSAGE });
      expect(await decideApproval(neverCalled, token, "approve", null)).toMatchObject({ ok: false, reason: "invalid" });
    }
  });

  it("answers a well-formed link for an endpoint that was never enrolled without creating its Durable Object", async () => {
    const token = `${unique("ep_unknown")}~${"A".repeat(43)}`;
    expect(await viewApproval(neverCalled, token, "192.0.2.1")).toEqual({ ok: false, reason: "invalid", error: INVALID_LINK_MESSAGE });
    expect(await decideApproval(neverCalled, token, "deny", "192.0.2.1")).toMatchObject({ ok: false, reason: "invalid" });
  });

  it("reports an unknown secret for an enrolled endpoint as invalid, from the real session DO", async () => {
    const { endpointId } = await freshClient();
    const token = `${endpointId}~${"A".repeat(43)}`;
    expect(await viewApproval(env, token, "192.0.2.1")).toMatchObject({ ok: false, reason: "invalid", error: expect.stringContaining("not valid") });
    expect(await decideApproval(env, token, "deny", "192.0.2.1")).toMatchObject({ ok: false, reason: "invalid" });
  });
});

describe("viewApproval / decideApproval against a real pending approval", () => {
  it("views the emailed link, approves once as the approver it was minted for, then reports it as used", async () => {
    const approver = { name: "Grace Hopper", email: `grace.${Date.now()}@client.test` };
    const { endpointId } = await freshClient({ contact: approver });
    const requester = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId: DEMO_ORG.id }));
    // The demo tenant's runtime (a session serves one tenant).
    const runtime = await connectDirect(endpointId, { ...runtimeIdentity(endpointId), orgId: DEMO_ORG.id });
    runtime.send(runtimeHello);
    await runtime.waitFor((m) => m.type === "clock");
    // The client is on the defaults (allow-list, nothing listed): this asks.
    requester.send({ type: "run", requestId: crypto.randomUUID(), text: "echo consent", shell: "bash", reason: "Check consent" });
    const { token } = await waitForMail(approver.email, endpointId);
    expect(requester.messages.some((m) => JSON.stringify(m).includes(token))).toBe(false);

    const viewed = await viewApproval(env, token, "192.0.2.20");
    expect(viewed).toMatchObject({
      ok: true,
      mspName: DEMO_ORG.name,
      view: { text: "echo consent", reason: "Check consent", state: "pending", requestedBy: "Tess Tech", endpointId, approver, timeZone: "UTC" },
    });

    const [endpointPart, secret] = token.split("~");
    const tampered = `${endpointPart}~${secret!.slice(0, -1)}${secret!.endsWith("A") ? "B" : "A"}`;
    expect(await viewApproval(env, tampered, null)).toMatchObject({ ok: false, reason: "invalid" });

    const decided = await decideApproval(env, token, "approve", "192.0.2.20");
    expect(decided).toMatchObject({ ok: true, view: { state: "approved", decidedBy: approver.name } });
    await runtime.waitFor((m) => m.type === "dispatch");

    const again = await decideApproval(env, token, "deny", "192.0.2.21");
    expect(again).toMatchObject({ ok: false, reason: "used", view: { state: "approved", decidedBy: approver.name } });
    expect(await viewApproval(env, token, null)).toMatchObject({ ok: true, view: { state: "approved" } });
    requester.close();
    runtime.close();
  });
});
