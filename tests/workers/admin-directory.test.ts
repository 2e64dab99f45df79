// The admin screens' model functions against real D1 (and, for the push, the
// real session DOs): clients created, edited, archived and restored; endpoint
// names and tags; each audited in the tenant's directory chain, each refused for
// the technician and NOC roles and for another tenant's admin with nothing changed.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import type { Role } from "~/db/schema";
import {
  archiveClient,
  createClient,
  getClientForOrg,
  listClients,
  restoreClient,
  updateClient,
} from "~/models/clients.server";
import { changeWithAudit, DirectoryError, listDirectoryAudit, verifyDirectoryAudit, type DirectoryActor } from "~/models/directory-audit.server";
import { updateEndpointDetails } from "~/models/endpoint-details.server";
import { getEndpointForOrg, listTagNames } from "~/models/endpoints.server";
import { createEnrollmentToken, EnrollmentError, listEnrollmentTokens, redeemEnrollmentToken } from "~/models/enrollment.server";
import { listMembers } from "~/models/members.server";
import { refreshSessionPolicies } from "~/models/session-policy.server";
import { sha256Hex } from "~/lib/crypto.server";
import { DEMO_ORG, OTHER_ORG } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import { runInSession, sessionStub } from "./socket";

const db = () => createDb(env.DB);
let counter = 0;
const unique = (label: string) => `${label} ${Date.now().toString(36)}-${counter++}`;

function actor(role: Role, orgId = DEMO_ORG.id): DirectoryActor {
  const userId = orgId === DEMO_ORG.id ? { admin: "user_demo_admin", technician: "user_demo_tech", noc: "user_demo_noc" }[role] : "user_other_admin";
  return { userId, name: `${role} of ${orgId}`, role, orgId, address: "203.0.113.7" };
}
const ADMIN = actor("admin");
const OTHER_ADMIN = actor("admin", OTHER_ORG.id);

async function expectRefused(promise: Promise<unknown>, status: number) {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(DirectoryError);
  expect((error as DirectoryError).status).toBe(status);
}

async function snapshot() {
  const clients = await env.DB.prepare("SELECT * FROM clients ORDER BY id").all();
  const tokens = await env.DB.prepare("SELECT id, revoked_at FROM enrollment_tokens ORDER BY id").all();
  const endpoints = await env.DB.prepare("SELECT id, display_name FROM endpoints ORDER BY id").all();
  const tags = await env.DB.prepare("SELECT * FROM endpoint_tags ORDER BY endpoint_id, tag_id").all();
  const audit = await env.DB.prepare("SELECT org_id, seq FROM directory_audit ORDER BY org_id, seq").all();
  return JSON.stringify([clients.results, tokens.results, endpoints.results, tags.results, audit.results]);
}

const FIELDS = { name: "", contactName: "Grace Hopper", contactEmail: "grace@client.test", timeZone: "europe/berlin", notes: "Key safe in reception" };

describe("clients", () => {
  it("an admin creates a client: stored with the canonical time zone, and recorded in the tenant's chain", async () => {
    await seedDemo();
    const name = unique("Globex");
    const { id } = await createClient(db(), ADMIN, { ...FIELDS, name });
    const client = await getClientForOrg(db(), DEMO_ORG.id, id);
    expect(client).toMatchObject({ name, contactName: "Grace Hopper", contactEmail: "grace@client.test", timeZone: "Europe/Berlin", notes: "Key safe in reception", archivedAt: null });
    const [event] = await listDirectoryAudit(db(), DEMO_ORG.id, { type: "client", id });
    expect(event).toMatchObject({ kind: "client.created", actorName: ADMIN.name, detail: { name, timeZone: "Europe/Berlin", notes: "(set)" } });
    expect(await verifyDirectoryAudit(db(), DEMO_ORG.id)).toMatchObject({ ok: true });
  });

  it("refuses technicians, NOC and invalid input, changing nothing", async () => {
    await seedDemo();
    const before = await snapshot();
    for (const role of ["technician", "noc"] as const) {
      await expectRefused(createClient(db(), actor(role), { ...FIELDS, name: unique("Nope") }), 403);
      await expectRefused(updateClient(db(), actor(role), "cl_delta", { notes: "x" }), 403);
      await expectRefused(archiveClient(db(), actor(role), "cl_delta"), 403);
    }
    await expectRefused(createClient(db(), ADMIN, { ...FIELDS, name: unique("Bad zone"), timeZone: "Mars/Olympus" }), 400);
    await expectRefused(createClient(db(), ADMIN, { ...FIELDS, name: " " }), 400);
    await expectRefused(createClient(db(), ADMIN, { ...FIELDS, name: unique("Bad email"), contactEmail: "not an email" }), 400);
    await expectRefused(createClient(db(), ADMIN, { ...FIELDS, name: "acme manufacturing" }), 409); // same name, other case
    expect(await snapshot()).toBe(before);
  });

  it("refuses a contact who is one of the MSP's own members (the contact is the default approver)", async () => {
    await seedDemo();
    const before = await snapshot();
    const error = await createClient(db(), ADMIN, { ...FIELDS, name: unique("Staffed"), contactEmail: "TOM@northwind.test" }).catch((e) => e);
    expect(error).toBeInstanceOf(DirectoryError);
    expect(error.message).toMatch(/member of your organisation/);
    await expectRefused(updateClient(db(), ADMIN, "cl_delta", { contactEmail: "nora@northwind.test" }), 400);
    expect(await snapshot()).toBe(before);
  });

  it("another tenant's admin gets 404 for the demo tenant's clients and changes nothing", async () => {
    await seedDemo();
    const before = await snapshot();
    await expectRefused(updateClient(db(), OTHER_ADMIN, "cl_delta", { name: "Stolen" }), 404);
    await expectRefused(archiveClient(db(), OTHER_ADMIN, "cl_delta"), 404);
    await expectRefused(restoreClient(db(), OTHER_ADMIN, "cl_delta"), 404);
    expect(await snapshot()).toBe(before);
  });

  it("an edit records what changed (notes only as changed) and says when the sessions must re-read the policy", async () => {
    await seedDemo();
    const { id } = await createClient(db(), ADMIN, { ...FIELDS, name: unique("Initech") });
    expect(await updateClient(db(), ADMIN, id, { notes: "New alarm code" })).toEqual({ changed: ["notes"], sessionsNeedRefresh: false });
    expect(await updateClient(db(), ADMIN, id, { notes: "New alarm code" })).toEqual({ changed: [], sessionsNeedRefresh: false });
    expect(await updateClient(db(), ADMIN, id, { timeZone: "Asia/Tokyo", contactName: "Grace B. Hopper" })).toEqual({
      changed: ["contactName", "timeZone"],
      sessionsNeedRefresh: true,
    });
    const events = await listDirectoryAudit(db(), DEMO_ORG.id, { type: "client", id });
    expect(events.map((e) => e.kind)).toEqual(["client.updated", "client.updated", "client.created"]);
    expect(events[1]!.detail).toEqual({ notes: "(changed)" });
    expect(events[0]!.detail).toEqual({ contactName: { from: "Grace Hopper", to: "Grace B. Hopper" }, timeZone: { from: "Europe/Berlin", to: "Asia/Tokyo" } });
  });

  it("a time-zone and contact change reaches every placed session of the client; an unplaced one is not created", async () => {
    await seedDemo();
    const { id } = await createClient(db(), ADMIN, { ...FIELDS, name: unique("Pushed") });
    const placed = `ep_admin_placed_${counter++}_${Date.now()}`;
    const unplaced = `ep_admin_unplaced_${counter++}_${Date.now()}`;
    await env.DB.batch([
      env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os, placed_at) VALUES (?, ?, ?, 'placed-host', 'linux', ?)").bind(placed, DEMO_ORG.id, id, Date.now()),
      env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os) VALUES (?, ?, ?, 'unplaced-host', 'linux')").bind(unplaced, DEMO_ORG.id, id),
    ]);
    const update = await updateClient(db(), ADMIN, id, { timeZone: "Pacific/Auckland", contactName: "Linus T", contactEmail: "linus@client.test" });
    expect(update.sessionsNeedRefresh).toBe(true);
    expect(await refreshSessionPolicies(env, DEMO_ORG.id, id, ADMIN)).toEqual({ refreshed: 1, failed: [] });
    const copy = await runInSession(sessionStub(placed), (_instance, state) => {
      const row = state.storage.sql.exec("SELECT body FROM session_policy WHERE id = 1").toArray()[0] as { body: string } | undefined;
      return row ? JSON.parse(row.body) : null;
    });
    expect(copy).toMatchObject({ timeZone: "Pacific/Auckland", approvers: [{ name: "Linus T", email: "linus@client.test" }] });
  });

  it("archiving hides the client, revokes its outstanding tokens and refuses new enrollments; restoring lists it again", async () => {
    await seedDemo();
    const { id } = await createClient(db(), ADMIN, { ...FIELDS, name: unique("Umbrella") });
    const token = await createEnrollmentToken(db(), { label: "", ttlHours: 24, maxUses: 5, orgId: DEMO_ORG.id, clientId: id, createdBy: ADMIN.name });
    expect((await listClients(db(), DEMO_ORG.id)).map((c) => c.id)).toContain(id);

    expect(await archiveClient(db(), ADMIN, id)).toEqual({ revokedTokens: 1 });
    await expectRefused(archiveClient(db(), ADMIN, id), 409);
    expect((await listClients(db(), DEMO_ORG.id)).map((c) => c.id)).not.toContain(id);
    expect((await listClients(db(), DEMO_ORG.id, { includeArchived: true })).find((c) => c.id === id)?.archivedAt).toEqual(expect.any(Number));
    expect((await listEnrollmentTokens(db(), DEMO_ORG.id, id))[0]!.revokedAt).toEqual(expect.any(Number));
    const refused = await createEnrollmentToken(db(), { label: "", ttlHours: 24, maxUses: 1, orgId: DEMO_ORG.id, clientId: id, createdBy: ADMIN.name }).catch((e) => e);
    expect(refused).toBeInstanceOf(EnrollmentError);
    expect(refused.status).toBe(409);
    const enroll = { token: token.token, hostname: "late-host", os: "linux", osVersion: "6" } as const;
    await expect(redeemEnrollmentToken(db(), enroll as never)).rejects.toBeInstanceOf(EnrollmentError);

    // A token that escaped revocation (e.g. written by hand) still enrolls nothing for an archived client.
    const stray = "cae_stray_" + counter++;
    await env.DB.prepare("INSERT INTO enrollment_tokens (id, org_id, client_id, token_hash, created_by, expires_at, max_uses) VALUES (?, ?, ?, ?, 'x', ?, 5)")
      .bind(`et_stray_${counter++}`, DEMO_ORG.id, id, await sha256Hex(stray), Date.now() + 3_600_000)
      .run();
    await expect(redeemEnrollmentToken(db(), { ...enroll, token: stray } as never)).rejects.toBeInstanceOf(EnrollmentError);

    await restoreClient(db(), ADMIN, id);
    expect((await listClients(db(), DEMO_ORG.id)).map((c) => c.id)).toContain(id);
    expect((await redeemEnrollmentToken(db(), { ...enroll, token: stray } as never)).endpointId).toMatch(/^ep_/);
    const kinds = (await listDirectoryAudit(db(), DEMO_ORG.id, { type: "client", id })).map((e) => e.kind);
    expect(kinds).toEqual(["client.restored", "client.archived", "client.created"]);
  });
});

describe("endpoint details", () => {
  const ENDPOINT = async () => {
    await seedDemo();
    const id = `ep_admin_details_${counter++}_${Date.now()}`;
    await env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os) VALUES (?, ?, 'cl_delta', 'delta-pc-01', 'windows')").bind(id, DEMO_ORG.id).run();
    return id;
  };

  it("an admin sets a display name and tags (existing tags reused case-insensitively); unused tags are dropped", async () => {
    const id = await ENDPOINT();
    const first = unique("Site").replace(/\s/g, "-");
    expect(await updateEndpointDetails(db(), ADMIN, id, { displayName: " Reception PC ", tags: `${first}, front desk,${first.toUpperCase()}` })).toEqual({
      changed: ["displayName", "tags"],
      displayName: "Reception PC",
      tags: [first, "front desk"].sort((a, b) => a.localeCompare(b)),
    });
    const stored = await getEndpointForOrg(db(), DEMO_ORG.id, id);
    expect(stored?.displayName).toBe("Reception PC");
    expect([...stored!.tags].sort()).toEqual([first, "front desk"].sort());
    expect(await listTagNames(db(), DEMO_ORG.id)).toContain(first);

    expect((await updateEndpointDetails(db(), ADMIN, id, { displayName: "Reception PC", tags: "FRONT DESK" })).tags).toEqual(["front desk"]);
    expect(await listTagNames(db(), DEMO_ORG.id)).not.toContain(first);
    expect((await updateEndpointDetails(db(), ADMIN, id, { displayName: "Reception PC", tags: "front desk" })).changed).toEqual([]);
    const events = await listDirectoryAudit(db(), DEMO_ORG.id, { type: "endpoint", id });
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ kind: "endpoint.details_updated", detail: { tags: { to: ["front desk"] } } });
    expect(events[0]!.detail).not.toHaveProperty("displayName");
  });

  it("refuses other roles, another tenant, bad tags and decommissioned endpoints, changing nothing", async () => {
    const id = await ENDPOINT();
    const before = await snapshot();
    await expectRefused(updateEndpointDetails(db(), actor("technician"), id, { displayName: "x", tags: "" }), 403);
    await expectRefused(updateEndpointDetails(db(), actor("noc"), id, { displayName: "x", tags: "" }), 403);
    await expectRefused(updateEndpointDetails(db(), OTHER_ADMIN, id, { displayName: "x", tags: "" }), 404);
    await expectRefused(updateEndpointDetails(db(), ADMIN, id, { displayName: "x", tags: "ok, <script>" }), 400);
    await expectRefused(updateEndpointDetails(db(), ADMIN, id, { displayName: "x", tags: Array.from({ length: 21 }, (_, i) => `t${i}`).join(",") }), 400);
    await expectRefused(updateEndpointDetails(db(), ADMIN, id, { displayName: "x".repeat(101), tags: "" }), 400);
    expect(await snapshot()).toBe(before);
    await env.DB.prepare("UPDATE endpoints SET decommissioned_at = ? WHERE id = ?").bind(Date.now(), id).run();
    await expectRefused(updateEndpointDetails(db(), ADMIN, id, { displayName: "x", tags: "" }), 409);
  });
});

describe("the directory chain", () => {
  it("records nothing when the change matched no row, stays ordered under concurrent writers, and breaks when a row is edited", async () => {
    await seedDemo();
    const orgId = `org_chain_${counter++}_${Date.now()}`;
    await env.DB.prepare("INSERT INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(orgId, orgId, orgId).run();
    const chainActor = { ...ADMIN, orgId };
    const entry = { kind: "client.updated", subjectType: "client", subjectId: "cl_none", detail: {} } as const;
    const none = await changeWithAudit(db(), chainActor, entry, (d1) => [d1.prepare("UPDATE clients SET notes = 'x' WHERE id = 'cl_none'")]);
    expect(none.applied).toBe(false);
    expect(await verifyDirectoryAudit(db(), orgId)).toEqual({ ok: true, checked: 0 });

    const clientIds = Array.from({ length: 4 }, (_, i) => `cl_chain_${orgId}_${i}`);
    await Promise.all(
      clientIds.map((clientId) =>
        changeWithAudit(db(), chainActor, { ...entry, kind: "client.created", subjectId: clientId }, (d1) => [
          d1.prepare("INSERT INTO clients (id, org_id, name) VALUES (?, ?, ?)").bind(clientId, orgId, clientId),
        ]),
      ),
    );
    expect(await verifyDirectoryAudit(db(), orgId)).toEqual({ ok: true, checked: 4 });

    await env.DB.prepare("UPDATE directory_audit SET actor_name = 'someone else' WHERE org_id = ? AND seq = 2").bind(orgId).run();
    expect(await verifyDirectoryAudit(db(), orgId)).toMatchObject({ ok: false, seq: 2 });
  });
});

describe("members mirror", () => {
  it("lists the tenant's own members with their roles, admins first, and no other tenant's", async () => {
    await seedDemo();
    const list = await listMembers(db(), DEMO_ORG.id);
    expect(list.map((m) => [m.name, m.role])).toEqual([
      ["Ada Admin", "admin"],
      ["Tom Technician", "technician"],
      ["Nora NOC", "noc"],
    ]);
    expect(list.map((m) => m.email)).not.toContain("carl@contoso.test");
  });
});
