// Fleet runs and recurring maintenance windows against real D1 and real session
// Durable Objects (ADR 0026): targeting stays inside the tenant, the work goes
// through each session's one run path, offline targets keep it queued, and
// windowed work waits for the endpoint's next window in the client's zone.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { createFleetRun, FleetRunError, getFleetRunProgress, resolveFleetTargets, saveEndpointFilter } from "~/models/fleet-runs.server";
import { saveMaintenanceWindow } from "~/models/maintenance-windows.server";
import { localWallMs, nextOpening } from "../../protocol/maintenance-windows";
import { connectDirect, replicateAudit, result, roundTrip, runInSession, runtimeHello, runtimeIdentity, sessionSql, sessionStub, type TestSocket } from "./socket";

let counter = 0;
const unique = (label: string) => `${label}_${Date.now()}_${counter++}`;
const ZONE = "America/New_York";

interface Tenant {
  orgId: string;
  clientA: string;
  clientB: string;
  ep: { a1: string; a2: string; b1: string; b2: string };
  foreign: string;
  foreignOrg: string;
}

/**
 * Two clients of one tenant (A in New York time), tagged endpoints of each OS, one never connected
 * (no session), and another tenant's endpoint carrying a tag of the same name.
 */
async function fleetTenant(): Promise<Tenant> {
  const orgId = unique("org_fleet");
  const foreignOrg = unique("org_foreign");
  const clientA = `${orgId}_a`;
  const clientB = `${orgId}_b`;
  const ep = { a1: `${orgId}_a1`, a2: `${orgId}_a2`, b1: `${orgId}_b1`, b2: `${orgId}_b2` };
  const foreign = `${foreignOrg}_x1`;
  const now = Date.now();
  const statements = [
    env.DB.prepare("INSERT INTO organisations (id, name, slug) VALUES (?, ?, ?), (?, ?, ?)").bind(orgId, orgId, orgId, foreignOrg, foreignOrg, foreignOrg),
    env.DB.prepare("INSERT INTO clients (id, org_id, name, time_zone) VALUES (?, ?, 'Acme Plant', ?), (?, ?, 'Beta Mill', 'UTC'), (?, ?, 'Foreign', 'UTC')").bind(
      clientA, orgId, ZONE, clientB, orgId, `${foreignOrg}_c`, foreignOrg,
    ),
    // Advisory deny-list with no pattern: the fleet's commands need no approval here.
    ...[clientA, clientB, `${foreignOrg}_c`].map((clientId) =>
      env.DB.prepare(
        `INSERT INTO approval_policies (client_id, org_id, mode, allowed_commands, patterns, approvers, link_ttl_hours, updated_by, updated_at)
         VALUES (?, ?, 'denylist', '[]', '[]', '[{"name":"Priya Patel","email":"priya@client.test"}]', 24, 'test', ?)`,
      ).bind(clientId, clientId === `${foreignOrg}_c` ? foreignOrg : orgId, now),
    ),
    env.DB.prepare("INSERT INTO tags (id, org_id, name) VALUES (?, ?, 'line-1'), (?, ?, 'line-1')").bind(`${orgId}_line1`, orgId, `${foreignOrg}_line1`, foreignOrg),
    env.DB.prepare(
      `INSERT INTO endpoints (id, org_id, client_id, hostname, os, placed_at) VALUES
         (?1, ?5, ?6, 'acme-01', 'linux', ?8), (?2, ?5, ?6, 'acme-02', 'windows', ?8), (?3, ?5, ?7, 'beta-01', 'linux', ?8), (?4, ?5, ?7, 'beta-02', 'linux', NULL)`,
    ).bind(ep.a1, ep.a2, ep.b1, ep.b2, orgId, clientA, clientB, now),
    env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os, placed_at) VALUES (?, ?, ?, 'foreign-01', 'linux', ?)").bind(foreign, foreignOrg, `${foreignOrg}_c`, now),
    env.DB.prepare("INSERT INTO endpoint_tags (endpoint_id, tag_id) VALUES (?, ?), (?, ?), (?, ?)").bind(ep.a1, `${orgId}_line1`, ep.b1, `${orgId}_line1`, foreign, `${foreignOrg}_line1`),
  ];
  await env.DB.batch(statements);
  return { orgId, clientA, clientB, ep, foreign, foreignOrg };
}

const technician = { userId: "user_fleet_tech", name: "Tess Tech", email: "tess@msp.test", role: "technician" as const };

async function runtimeOf(orgId: string, endpointId: string): Promise<TestSocket> {
  const socket = await connectDirect(endpointId, { ...runtimeIdentity(endpointId), orgId });
  socket.send(runtimeHello);
  await socket.waitFor((m) => m.type === "clock");
  return socket;
}

/** Each session's audit replication to D1, as its alarm does shortly after the events. */
async function replicate(...endpointIds: string[]): Promise<void> {
  for (const id of endpointIds) await replicateAudit(id);
}

async function waitForOnline(endpointId: string, online: boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await env.DB.prepare("SELECT online FROM endpoints WHERE id = ?").bind(endpointId).first<{ online: number }>())?.online !== (online ? 1 : 0)) {
    if (Date.now() > deadline) throw new Error(`${endpointId} never went ${online ? "online" : "offline"} in D1`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("fleet runs", () => {
  it("targets endpoints by client, tag, OS and saved filter, only in service and only in the tenant", async () => {
    const t = await fleetTenant();
    const db = createDb(env.DB);
    const ids = async (selector: Record<string, string>) => (await resolveFleetTargets(db, t.orgId, selector)).map((r) => r.endpointId).sort();
    expect(await ids({ client: t.clientA })).toEqual([t.ep.a1, t.ep.a2].sort());
    expect(await ids({ tag: "line-1" })).toEqual([t.ep.a1, t.ep.b1].sort());
    expect(await ids({ os: "linux" })).toEqual([t.ep.a1, t.ep.b1, t.ep.b2].sort());
    expect(await ids({ os: "linux", client: t.clientB })).toEqual([t.ep.b1, t.ep.b2].sort());
    const filterId = await saveEndpointFilter(db, t.orgId, { name: "Beta linux", client: t.clientB, os: "linux" }, "Tess Tech");
    expect(await ids({ filterId })).toEqual([t.ep.b1, t.ep.b2].sort());
    // Another tenant's client id, or its saved filter, selects nothing of ours and nothing of theirs.
    expect(await ids({ client: `${t.foreignOrg}_c` })).toEqual([]);
    const foreignFilter = await saveEndpointFilter(db, t.foreignOrg, { name: "All linux", os: "linux" }, "Other");
    await expect(resolveFleetTargets(db, t.orgId, { filterId: foreignFilter })).rejects.toBeInstanceOf(FleetRunError);
    // Revoked endpoints are not in service.
    await env.DB.prepare("UPDATE endpoints SET revoked_at = ? WHERE id = ?").bind(Date.now(), t.ep.a1).run();
    expect(await ids({ tag: "line-1" })).toEqual([t.ep.b1]);
    await expect(resolveFleetTargets(db, t.orgId, {})).rejects.toThrow(/Choose the endpoints/);
  });

  it("queues on every target's session; an offline target keeps it queued and completes when its runtime connects; a never-connected one is listed", async () => {
    const t = await fleetTenant();
    const db = createDb(env.DB);
    const online = await runtimeOf(t.orgId, t.ep.a1);
    await waitForOnline(t.ep.a1, true);
    const { fleetRunId } = await createFleetRun(env, db, t.orgId, technician, {
      name: "Disk check",
      steps: [{ text: "df -h" }, { text: "uptime" }, { text: "hostname" }],
      selector: { os: "linux" },
    });

    // The online target runs the sequence step by step through its session's normal path.
    for (const text of ["df -h", "uptime", "hostname"]) {
      const dispatch = await online.waitFor((m) => m.type === "dispatch" && m.command.text === text);
      online.send({ type: "result", result: result(dispatch.command.commandId, "succeeded", `${text} ok\n`) });
    }
    await online.waitFor((m) => m.type === "ack" && m.commandId && online.messages.filter((x) => x.type === "ack").length === 3);
    // The offline target's session holds every step, queued, until its runtime is reachable.
    expect(await sessionSql(t.ep.b1, "SELECT COUNT(*) AS n FROM commands WHERE status = 'queued'")).toEqual([{ n: 3 }]);
    await replicate(t.ep.a1, t.ep.b1);

    let progress = (await getFleetRunProgress(db, t.orgId, fleetRunId))!;
    expect(Object.fromEntries(progress.targets.map((target) => [target.hostname, target.state]))).toEqual({
      "acme-01": "done",
      "beta-01": "offline",
      "beta-02": "never_connected",
    });
    expect(progress.counts).toMatchObject({ done: 1, offline: 1, never_connected: 1, running: 0, failed: 0 });
    // The tenant boundary holds on reads too.
    expect(await getFleetRunProgress(db, t.foreignOrg, fleetRunId)).toBeNull();

    // The offline target's runtime checks in later: the queued work runs, and its result reaches the run.
    const late = await runtimeOf(t.orgId, t.ep.b1);
    const first = await late.waitFor((m) => m.type === "dispatch" && m.command.text === "df -h");
    late.send({ type: "result", result: result(first.command.commandId, "failed", "disk error\n") });
    await late.waitFor((m) => m.type === "ack");
    await replicate(t.ep.b1);
    progress = (await getFleetRunProgress(db, t.orgId, fleetRunId))!;
    const beta = progress.targets.find((target) => target.hostname === "beta-01")!;
    expect(beta.state).toBe("failed");
    expect(beta.detail).toBe("step 1 failed");
    expect(progress.counts).toMatchObject({ done: 1, failed: 1, never_connected: 1, offline: 0 });
    online.close();
    late.close();
  });

  it("a repeat of the same target's hand-over queues nothing twice, and a role that cannot run is refused by the session", async () => {
    const t = await fleetTenant();
    const db = createDb(env.DB);
    await expect(createFleetRun(env, db, t.orgId, { ...technician, role: "noc" }, { name: "x", steps: [{ text: "hostname" }], selector: { client: t.clientA } })).rejects.toThrow(/noc role/);
    const { fleetRunId } = await createFleetRun(env, db, t.orgId, technician, { name: "Who", steps: [{ text: "hostname" }], selector: { client: t.clientA } });
    const requestId = `${fleetRunId}:${t.ep.a1}`;
    // The console retrying the same hand-over (e.g. after a timeout) finds the work already held.
    const response: Response = await sessionStub(t.ep.a1).fetch("https://session.internal/fleet-queue", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-partykit-room": t.ep.a1,
        "x-caisey-identity": JSON.stringify({ peer: "directory", endpointId: t.ep.a1, orgId: t.orgId, userId: "u", userName: "U", role: "technician", canRun: true }),
      },
      body: JSON.stringify({ fleetRunId, run: { type: "run", requestId, text: "hostname" } }),
    });
    expect(response.status).toBe(200);
    expect(await sessionSql(t.ep.a1, "SELECT COUNT(*) AS n FROM commands")).toEqual([{ n: 1 }]);
    const refused: Response = await sessionStub(t.ep.a2).fetch("https://session.internal/fleet-queue", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-partykit-room": t.ep.a2,
        "x-caisey-identity": JSON.stringify({ peer: "directory", endpointId: t.ep.a2, orgId: t.orgId, userId: "u", userName: "U", role: "noc", canRun: false }),
      },
      body: JSON.stringify({ fleetRunId, run: { type: "run", requestId: `${fleetRunId}:other`, text: "hostname" } }),
    });
    expect(refused.status).toBe(403);
    expect(await sessionSql(t.ep.a2, "SELECT request_id FROM commands")).toEqual([{ request_id: `${fleetRunId}:${t.ep.a2}` }]);
  });
});

describe("recurring maintenance windows in a real session", () => {
  it("holds windowed work until the endpoint's next window in the client's zone, then runs it when a window is open", async () => {
    const t = await fleetTenant();
    const db = createDb(env.DB);
    const admin = { userId: "user_admin", name: "Ada Admin" };
    // A daily window starting six local hours from now (New York time), an hour long: closed now.
    const localNow = localWallMs(Date.now(), ZONE);
    const localMinute = Math.floor((localNow % 86_400_000) / 60_000);
    const closed = { days: [0, 1, 2, 3, 4, 5, 6], startMinute: (localMinute + 6 * 60) % 1440, durationMinutes: 60 };
    await saveMaintenanceWindow(env, db, t.orgId, { clientId: t.clientA, ...closed }, admin);

    const runtime = await runtimeOf(t.orgId, t.ep.a1);
    await waitForOnline(t.ep.a1, true);
    const { fleetRunId } = await createFleetRun(env, db, t.orgId, technician, {
      name: "Night checks",
      steps: [{ text: "df -h" }, { text: "uptime" }],
      selector: { client: t.clientA },
      schedule: "window",
    });
    // Once the runtime's socket has answered a round trip, anything the session sent it before is in its messages.
    await roundTrip(runtime);
    expect(runtime.messages.filter((m) => m.type === "dispatch")).toEqual([]);
    // The session computed the opening itself and set its alarm for it.
    const expected = nextOpening({ id: "x", ...closed }, ZONE, Date.now()).opensAt;
    const [held] = await sessionSql(t.ep.a1, "SELECT not_before, maintenance_window FROM commands WHERE step_index = 0");
    expect(held).toEqual({ not_before: expected, maintenance_window: 1 });
    expect(await runInSession(sessionStub(t.ep.a1), (_instance: unknown, state: DurableObjectState) => state.storage.getAlarm())).toBeLessThanOrEqual(expected);
    await replicate(t.ep.a1, t.ep.a2);
    const progress = (await getFleetRunProgress(db, t.orgId, fleetRunId))!;
    expect(progress.counts.waiting_for_window).toBe(1); // acme-01 (online); acme-02 has no runtime: offline
    expect(progress.counts.offline).toBe(1);

    // An admin adds a window that is open now (started 30 local minutes ago): the session re-reads its windows
    // with the policy and dispatches the first step at once, not at the alarm it set for the old windows.
    const saved = await saveMaintenanceWindow(env, db, t.orgId, { clientId: t.clientA, days: [0, 1, 2, 3, 4, 5, 6], startMinute: (localMinute + 1440 - 30) % 1440, durationMinutes: 120 }, admin);
    expect(saved.refresh).toEqual({ refreshed: 2, failed: [] });
    // Already handed over when the save returns (the alarm would only have come 500 ms after the refresh's audit event).
    expect(await sessionSql(t.ep.a1, "SELECT status FROM commands WHERE step_index = 0")).toEqual([{ status: "dispatched" }]);
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
    expect(dispatch.command.text).toBe("df -h");
    runtime.close();
  });
});
