// The console pushing a client's policy change to every endpoint session of
// that client, against real D1 and the real session DOs: each session re-reads
// the policy itself and applies it to the next command.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { saveApprovalPolicy } from "~/models/approval-policies.server";
import { setClientTimeZone } from "~/models/clients.server";
import { refreshSessionPolicies } from "~/models/session-policy.server";
import { DEMO_ORG, OTHER_ORG } from "../../scripts/seed.mjs";
import { seedDemo } from "./helpers";
import {
  connectDirect,
  connectViewer,
  refreshSessionPolicy,
  runInSession,
  runtimeHello,
  runtimeIdentity,
  sessionStub,
  viewerIdentity,
  type TestSocket,
} from "./socket";

const ADMIN = { userId: "user_demo_admin", name: "Ada Admin" };
const APPROVER = { name: "Grace Hopper", email: "grace@client.test" };
let counter = 0;
const unique = (label: string) => `${label}_${Date.now()}_${counter++}`;

/** A demo-tenant client with `count` endpoints, on the defaults (allow-list, nothing listed). */
async function clientWithEndpoints(count: number): Promise<{ clientId: string; endpoints: { id: string; hostname: string }[] }> {
  await seedDemo();
  const clientId = unique("cl_push");
  const endpoints = Array.from({ length: count }, (_, i) => ({ id: unique(`ep_push_${i}`), hostname: `push-${String(i).padStart(2, "0")}-${clientId}` }));
  await env.DB.batch([
    env.DB.prepare("INSERT INTO clients (id, org_id, name, contact_name, contact_email) VALUES (?, ?, ?, ?, ?)").bind(clientId, DEMO_ORG.id, `Client ${clientId}`, APPROVER.name, APPROVER.email),
    ...endpoints.map((endpoint) =>
      env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os, placed_at) VALUES (?, ?, ?, ?, 'linux', ?)").bind(endpoint.id, DEMO_ORG.id, clientId, endpoint.hostname, Date.now()),
    ),
  ]);
  return { clientId, endpoints };
}

/** A technician's console and the endpoint's runtime, both of the demo tenant. */
async function openSession(endpointId: string): Promise<{ viewer: TestSocket; runtime: TestSocket }> {
  const viewer = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId: DEMO_ORG.id }));
  const runtime = await connectDirect(endpointId, { ...runtimeIdentity(endpointId), orgId: DEMO_ORG.id });
  runtime.send(runtimeHello);
  await runtime.waitFor((m) => m.type === "clock");
  return { viewer, runtime };
}

/** Runs `text` and returns the status the session gave it: "pending_approval" or on its way to the runtime. */
async function statusOf(viewer: TestSocket, text: string): Promise<string> {
  const requestId = crypto.randomUUID();
  const from = viewer.messages.length;
  viewer.send({ type: "run", requestId, text, shell: "bash", reason: "Checking the printer" });
  const queued = (await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.requestId === requestId), 5_000, from))
    .events.find((e: any) => e.kind === "command.queued" && e.requestId === requestId);
  const next = await viewer.waitFor(
    (m) => m.type === "events" && m.events.some((e: any) => e.commandId === queued.commandId && (e.kind === "command.approval_requested" || e.kind === "command.dispatched")),
    5_000,
    from,
  );
  const event = next.events.find((e: any) => e.commandId === queued.commandId && e.kind !== "command.queued");
  return event.kind === "command.approval_requested" ? "pending_approval" : "dispatched";
}

/** The session's own copy of the policy (its internal table), for facts no command shows, like the time zone. */
async function sessionCopy(endpointId: string): Promise<any> {
  return runInSession(sessionStub(endpointId), (_instance, state) => {
    const row = state.storage.sql.exec("SELECT body FROM session_policy WHERE id = 1").toArray()[0] as { body: string } | undefined;
    return row ? JSON.parse(row.body) : null;
  });
}

describe("refreshSessionPolicies", () => {
  it("makes every session of the client re-read the policy, so the next command follows the new one", async () => {
    const { clientId, endpoints } = await clientWithEndpoints(3);
    const db = createDb(env.DB);
    const [first] = endpoints;
    const { viewer, runtime } = await openSession(first!.id);
    expect(await statusOf(viewer, "hostname")).toBe("pending_approval"); // defaults: everything asks

    await saveApprovalPolicy(db, DEMO_ORG.id, clientId, { mode: "allowlist", allowedCommands: ["hostname"], patterns: [], approvers: [APPROVER], linkTtlHours: 24 }, ADMIN.name);
    const outcome = await refreshSessionPolicies(env, DEMO_ORG.id, clientId, ADMIN);
    expect(outcome).toEqual({ refreshed: 3, failed: [] });

    expect(await statusOf(viewer, "hostname")).toBe("dispatched");
    expect(await statusOf(viewer, "whoami")).toBe("pending_approval");
    for (const endpoint of endpoints) {
      expect(await sessionCopy(endpoint.id)).toMatchObject({ mode: "allowlist", allowedCommands: ["hostname"] });
    }
    viewer.close();
    runtime.close();
  });

  it("pushes a time-zone change too", async () => {
    const { clientId, endpoints } = await clientWithEndpoints(2);
    const db = createDb(env.DB);
    expect(await refreshSessionPolicies(env, DEMO_ORG.id, clientId, ADMIN)).toEqual({ refreshed: 2, failed: [] });
    expect(await sessionCopy(endpoints[0]!.id)).toMatchObject({ timeZone: "UTC" });

    expect(await setClientTimeZone(db, DEMO_ORG.id, clientId, "Asia/Tokyo")).toMatchObject({ ok: true });
    expect(await refreshSessionPolicies(env, DEMO_ORG.id, clientId, ADMIN)).toEqual({ refreshed: 2, failed: [] });
    for (const endpoint of endpoints) expect(await sessionCopy(endpoint.id)).toMatchObject({ timeZone: "Asia/Tokyo" });
  });

  it("names the sessions that could not be updated and still updates the rest", async () => {
    const { clientId, endpoints } = await clientWithEndpoints(10);
    // This endpoint's session already serves another tenant, so it refuses our call (403).
    const stray = endpoints[4]!;
    expect((await refreshSessionPolicy(stray.id, "org_elsewhere")).status).toBe(200);

    const outcome = await refreshSessionPolicies(env, DEMO_ORG.id, clientId, ADMIN);
    expect(outcome).toEqual({ refreshed: 9, failed: [{ endpointId: stray.id, hostname: stray.hostname }] });
  });

  it("touches no session of another tenant's client, and a client without endpoints refreshes nothing", async () => {
    const { clientId } = await clientWithEndpoints(0);
    expect(await refreshSessionPolicies(env, DEMO_ORG.id, clientId, ADMIN)).toEqual({ refreshed: 0, failed: [] });
    // cl_acme belongs to the demo tenant: asked as Contoso, there is nothing to refresh.
    expect(await refreshSessionPolicies(env, OTHER_ORG.id, "cl_acme", { userId: "user_other_admin", name: "Carl Contoso" })).toEqual({ refreshed: 0, failed: [] });
  });
});
