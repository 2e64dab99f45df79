// NOC review, transcript export queries and tenant chain verification against
// real D1 (workerd). Audit events are seeded as valid hash chains, the way the
// endpoint Durable Object replicates them.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { commandsToCsv, commandsToText, listEndpointCommands, transcriptExportResponse } from "~/models/transcript-export.server";
import { countUnreviewedFailures, csvField, defaultWindowStart, listReviewActivity, markReviewed, parseReviewFilters, parseReviewItems, resolveWindow, reviewFiltersSchema, toDatetimeLocal, type ReviewFilters } from "~/models/review.server";
import { verifyTenantAuditChains } from "~/models/audit-chains.server";
import { InvalidCursorError } from "~/lib/keyset-cursor";
import { describeTruncation } from "~/lib/truncation";
import type { AuditEvent } from "../../protocol/audit";
import { linkAuditChain } from "../audit-chain";
import { seedDemo } from "./helpers";

const db = () => createDb(env.DB);
const filters = (overrides: Partial<Record<keyof ReviewFilters, string>> = {}) => reviewFiltersSchema.parse(overrides);
let counter = 0;
const unique = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${counter++}`;

type Seeded = Omit<AuditEvent, "endpointId" | "orgId" | "seq" | "prevHash" | "hash">;

/** A tenant with one client, `endpointCount` endpoints and three members; ids unique to this test. */
async function seedTenant(endpointCount = 2) {
  const orgId = unique("org_review");
  const clients = [`${orgId}_cl_a`, `${orgId}_cl_b`];
  const endpoints = Array.from({ length: endpointCount }, (_, i) => ({ id: `${orgId}_ep_${i}`, hostname: `${orgId}-host-${i}`, clientId: clients[i % 2] }));
  await env.DB.batch([
    env.DB.prepare("INSERT INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(orgId, `Org ${orgId}`, orgId),
    ...clients.map((id, i) => env.DB.prepare("INSERT INTO clients (id, org_id, name) VALUES (?, ?, ?)").bind(id, orgId, `Client ${i === 0 ? "A" : "B"} ${orgId}`)),
    ...["user_tech", "user_tech2", "user_noc"].map((userId) =>
      env.DB.prepare("INSERT INTO members (org_id, user_id, name, email, role) VALUES (?, ?, ?, ?, ?)").bind(orgId, userId, userId, `${userId}@t.test`, "technician"),
    ),
    ...endpoints.map((e) => env.DB.prepare("INSERT INTO endpoints (id, org_id, client_id, hostname, os) VALUES (?, ?, ?, ?, 'linux')").bind(e.id, orgId, e.clientId, e.hostname)),
  ]);
  return { orgId, clients, endpoints };
}

/** Appends events to an endpoint's chain in D1 (valid hashes), returning them. */
async function appendChain(endpointId: string, orgId: string, events: Seeded[]): Promise<AuditEvent[]> {
  const last = await env.DB.prepare("SELECT seq, hash FROM audit_events WHERE endpoint_id = ? ORDER BY seq DESC LIMIT 1").bind(endpointId).first<{ seq: number; hash: string }>();
  const chain = await linkAuditChain(events.map((event) => ({ ...event, endpointId, orgId })), last ?? null);
  await env.DB.batch(
    chain.map((e) =>
      env.DB.prepare(
        `INSERT INTO audit_events (endpoint_id, seq, org_id, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).bind(e.endpointId, e.seq, e.orgId, e.at, e.kind, e.actorId, e.actorName, e.actorAddress, e.commandId, e.status, e.detail, e.prevHash, e.hash),
    ),
  );
  return chain;
}

const TECHS = { user_tech: "Tess Tech", user_tech2: "Theo Two" } as Record<string, string>;

/** A command's requested + dispatched + finished events. */
function command(opts: { commandId: string; text: string; at: number; status: string; exitCode?: number | null; actorId?: string; truncated?: unknown }): Seeded[] {
  const actorId = opts.actorId ?? "user_tech";
  const actor = { actorId, actorName: TECHS[actorId] ?? actorId, actorAddress: "203.0.113.7", commandId: opts.commandId };
  return [
    { ...actor, at: opts.at - 300, kind: "command.requested", status: "queued", detail: JSON.stringify({ text: opts.text, shell: "default" }) },
    { ...actor, actorId: null, actorName: null, actorAddress: null, at: opts.at - 200, kind: "command.dispatched", status: "dispatched", detail: "{}" },
    {
      ...actor,
      at: opts.at,
      kind: "command.finished",
      status: opts.status,
      detail: JSON.stringify({ text: opts.text, exitCode: opts.exitCode ?? null, sentAt: opts.at - 300, dispatchedAt: opts.at - 200, executedAt: opts.at - 150, returnedAt: opts.at - 10, truncated: opts.truncated ?? null }),
    },
  ];
}

function approvalRequested(commandId: string, text: string, at: number): Seeded[] {
  const actor = { actorId: "user_tech", actorName: "Tess Tech", actorAddress: "203.0.113.7", commandId };
  return [
    { ...actor, at: at - 10, kind: "command.requested", status: "pending_approval", detail: JSON.stringify({ text, shell: "powershell" }) },
    { ...actor, at, kind: "approval.requested", status: "pending_approval", detail: JSON.stringify({ approvers: ["priya@acme.test"] }) },
  ];
}

const HOUR = 3_600_000;

describe("review activity (D1)", () => {
  it("defaults the window to 18:00 UTC yesterday until now, and parses from/to as UTC", () => {
    const now = Date.UTC(2026, 10, 22, 9, 30);
    expect(defaultWindowStart(now)).toBe(Date.UTC(2026, 10, 21, 18, 0));
    expect(defaultWindowStart(Date.UTC(2026, 2, 1, 0, 5))).toBe(Date.UTC(2026, 1, 28, 18, 0));
    expect(resolveWindow({ from: "", to: "" }, now)).toEqual({ fromMs: Date.UTC(2026, 10, 21, 18, 0), toMs: null, from: "2026-11-21T18:00", to: "" });
    const custom = resolveWindow({ from: "2026-11-01T08:00", to: "2026-11-02T09:15" }, now);
    expect(custom.fromMs).toBe(Date.UTC(2026, 10, 1, 8, 0));
    expect(custom.toMs).toBe(Date.UTC(2026, 10, 2, 9, 16)); // the whole "to" minute is included
    expect(parseReviewFilters(new URLSearchParams("status=bogus&from=yesterday&client=cl_x"))).toMatchObject({ status: "", from: "", client: "cl_x" });
    expect(parseReviewItems(["ep_a:3", "ep:with:colons:12", "nope", "ep_b:-1", "ep_c:x", ":4"])).toEqual([
      { endpointId: "ep_a", seq: 3 },
      { endpointId: "ep:with:colons", seq: 12 },
    ]);
  });

  it("lists finished commands and pending approvals in the window, newest first, with every filter", async () => {
    await seedDemo();
    const now = Date.now();
    const { orgId, clients, endpoints } = await seedTenant(2);
    const [ep0, ep1] = endpoints;
    await appendChain(ep0.id, orgId, [
      ...command({ commandId: "c_old", text: "echo old", at: defaultWindowStart(now) - HOUR, status: "failed", exitCode: 1 }),
      ...command({ commandId: "c_fail", text: "Get-Service spooler", at: now - 50 * 60_000, status: "failed", exitCode: 2 }),
      ...command({ commandId: "c_ok", text: "whoami", at: now - 40 * 60_000, status: "succeeded", exitCode: 0, actorId: "user_tech2" }),
      ...approvalRequested("c_pending", "Restart-Computer -Force", now - 30 * 60_000),
    ]);
    await appendChain(ep1.id, orgId, [
      ...command({ commandId: "c_timeout", text: "ping -t 10.0.0.1", at: now - 20 * 60_000, status: "timed_out" }),
      ...command({ commandId: "c_cancel", text: "sleep 999", at: now - 10 * 60_000, status: "cancelled" }),
      // Approval that was decided: not pending any more, so not listed.
      ...approvalRequested("c_decided", "Stop-Service wuauserv", now - 9 * 60_000),
      { actorId: null, actorName: "Priya", actorAddress: null, commandId: "c_decided", at: now - 8 * 60_000, kind: "approval.decided", status: "approved", detail: "{}" },
    ]);
    const list = async (f: Partial<Record<keyof ReviewFilters, string>> = {}, userId = "user_noc") =>
      (await listReviewActivity(db(), orgId, userId, filters(f), { now })).rows;

    const all = await list();
    expect(all.map((r) => r.commandId)).toEqual(["c_cancel", "c_timeout", "c_pending", "c_ok", "c_fail"]);
    const failed = all.find((r) => r.commandId === "c_fail")!;
    expect(failed).toMatchObject({
      endpointId: ep0.id, hostname: ep0.hostname, clientId: clients[0], clientName: `Client A ${orgId}`, text: "Get-Service spooler",
      status: "failed", exitCode: 2, technicianId: "user_tech", technicianName: "Tess Tech", reviewed: false, kind: "command.finished",
    });
    expect(failed.sentAt).toBe(now - 50 * 60_000 - 300);
    expect(failed.executedAt).toBe(now - 50 * 60_000 - 150);
    expect(failed.returnedAt).toBe(now - 50 * 60_000 - 10);
    // The pending approval takes its text from the command.requested event.
    expect(all.find((r) => r.commandId === "c_pending")).toMatchObject({ status: "pending_approval", text: "Restart-Computer -Force", exitCode: null });

    // Window: an explicit from/to.
    const wide = await list({ from: toDatetimeLocal(defaultWindowStart(now) - 2 * HOUR) });
    expect(wide.map((r) => r.commandId)).toContain("c_old");
    const narrow = await list({ from: toDatetimeLocal(now - 45 * 60_000), to: toDatetimeLocal(now - 25 * 60_000) });
    expect(narrow.map((r) => r.commandId)).toEqual(["c_pending", "c_ok"]);

    // Each filter.
    expect((await list({ status: "failed" })).map((r) => r.commandId)).toEqual(["c_fail"]);
    expect((await list({ status: "timed_out" })).map((r) => r.commandId)).toEqual(["c_timeout"]);
    expect((await list({ status: "pending_approval" })).map((r) => r.commandId)).toEqual(["c_pending"]);
    expect((await list({ status: "succeeded" })).map((r) => r.commandId)).toEqual(["c_ok"]);
    expect((await list({ status: "cancelled" })).map((r) => r.commandId)).toEqual(["c_cancel"]);
    expect((await list({ client: clients[1] })).map((r) => r.commandId)).toEqual(["c_cancel", "c_timeout"]);
    expect((await list({ endpoint: ep0.id })).map((r) => r.commandId)).toEqual(["c_pending", "c_ok", "c_fail"]);
    expect((await list({ host: ep1.hostname.toUpperCase() })).map((r) => r.commandId)).toEqual(["c_cancel", "c_timeout"]);
    expect((await list({ technician: "user_tech2" })).map((r) => r.commandId)).toEqual(["c_ok"]);
    expect(await list({ technician: "user_tech2", status: "failed" })).toEqual([]);

    // Pagination: keyset pages of 2 walk every row exactly once.
    const seen: string[] = [];
    let after = "";
    for (let i = 0; i < 5; i++) {
      const page = await listReviewActivity(db(), orgId, "user_noc", filters({ after }), { now, pageSize: 2 });
      seen.push(...page.rows.map((r) => r.commandId!));
      if (!page.nextCursor) break;
      after = page.nextCursor;
    }
    expect(seen).toEqual(all.map((r) => r.commandId));
  });

  it("never lists another tenant's events and never marks them reviewed", async () => {
    await seedDemo();
    const now = Date.now();
    const mine = await seedTenant(1);
    const theirs = await seedTenant(1);
    await appendChain(mine.endpoints[0].id, mine.orgId, command({ commandId: "c_mine", text: "echo mine", at: now - 60_000, status: "failed" }));
    const foreign = await appendChain(theirs.endpoints[0].id, theirs.orgId, command({ commandId: "c_theirs", text: "echo theirs", at: now - 60_000, status: "failed" }));
    // Another tenant's event that claims one of my endpoint ids is still not mine.
    const spoofed = await appendChain(`${mine.endpoints[0].id}_spoof`, theirs.orgId, command({ commandId: "c_spoof", text: "echo spoof", at: now - 30_000, status: "failed" }));

    const rows = (await listReviewActivity(db(), mine.orgId, "user_noc", filters(), { now })).rows;
    expect(rows.map((r) => r.commandId)).toEqual(["c_mine"]);
    // Filtering by the other tenant's client or endpoint finds nothing.
    expect((await listReviewActivity(db(), mine.orgId, "user_noc", filters({ endpoint: theirs.endpoints[0].id }), { now })).rows).toEqual([]);
    expect((await listReviewActivity(db(), mine.orgId, "user_noc", filters({ client: theirs.clients[0] }), { now })).rows).toEqual([]);

    const window = resolveWindow({ from: "", to: "" }, now);
    const foreignFinished = foreign.find((e) => e.kind === "command.finished")!;
    const before = await env.DB.prepare("SELECT count(*) AS n FROM audit_reviews").first<{ n: number }>();
    const marked = await markReviewed(db(), mine.orgId, "user_noc", [
      { endpointId: foreignFinished.endpointId, seq: foreignFinished.seq },
      { endpointId: spoofed[2].endpointId, seq: spoofed[2].seq },
      { endpointId: "ep_does_not_exist", seq: 1 },
    ]);
    expect(marked).toBe(0);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM audit_reviews").first<{ n: number }>()).toEqual(before);
    expect(await countUnreviewedFailures(db(), theirs.orgId, "user_noc", window)).toBe(2);
    expect(await countUnreviewedFailures(db(), mine.orgId, "user_noc", window)).toBe(1);
  });

  it("counts unreviewed failures per user: marking drops the count for that user only", async () => {
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(2);
    const chain0 = await appendChain(endpoints[0].id, orgId, [
      ...command({ commandId: "f1", text: "exit 1", at: now - 5 * 60_000, status: "failed", exitCode: 1 }),
      ...command({ commandId: "f2", text: "exit 2", at: now - 4 * 60_000, status: "failed", exitCode: 2 }),
      ...command({ commandId: "ok", text: "true", at: now - 3 * 60_000, status: "succeeded", exitCode: 0 }),
    ]);
    const chain1 = await appendChain(endpoints[1].id, orgId, command({ commandId: "t1", text: "sleep 600", at: now - 2 * 60_000, status: "timed_out" }));
    const window = resolveWindow({ from: "", to: "" }, now);
    expect(await countUnreviewedFailures(db(), orgId, "user_noc", window)).toBe(3);
    expect(await countUnreviewedFailures(db(), orgId, "user_tech", window)).toBe(3);

    const finished = [...chain0, ...chain1].filter((e) => e.kind === "command.finished" && e.status !== "succeeded");
    const items = finished.map((e) => ({ endpointId: e.endpointId, seq: e.seq }));
    expect(await markReviewed(db(), orgId, "user_noc", items.slice(0, 2))).toBe(2);
    expect(await countUnreviewedFailures(db(), orgId, "user_noc", window)).toBe(1);
    // Marking again (a double submit) changes nothing.
    expect(await markReviewed(db(), orgId, "user_noc", [...items.slice(0, 2), ...items.slice(0, 1)])).toBe(0);
    expect(await markReviewed(db(), orgId, "user_noc", items)).toBe(1);
    expect(await countUnreviewedFailures(db(), orgId, "user_noc", window)).toBe(0);
    // Another user's count is untouched, and each user sees their own "reviewed" flags.
    expect(await countUnreviewedFailures(db(), orgId, "user_tech", window)).toBe(3);
    const nocRows = (await listReviewActivity(db(), orgId, "user_noc", filters(), { now })).rows;
    const techRows = (await listReviewActivity(db(), orgId, "user_tech", filters(), { now })).rows;
    expect(nocRows.filter((r) => r.reviewed).map((r) => r.commandId).sort()).toEqual(["f1", "f2", "t1"]);
    expect(techRows.some((r) => r.reviewed)).toBe(false);
    // Outside the window nothing is counted.
    expect(await countUnreviewedFailures(db(), orgId, "user_tech", resolveWindow({ from: toDatetimeLocal(now + HOUR), to: "" }, now))).toBe(0);
  });
});

describe("tenant audit chain verification (D1)", () => {
  it("reports intact chains, then the first edited event, then a missing one", async () => {
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(2);
    const other = await seedTenant(1);
    const chain0 = await appendChain(endpoints[0].id, orgId, [
      ...command({ commandId: "v1", text: "hostname", at: now - 5_000, status: "succeeded", exitCode: 0 }),
      ...command({ commandId: "v2", text: "uptime", at: now - 4_000, status: "failed", exitCode: 1 }),
    ]);
    await appendChain(endpoints[1].id, orgId, command({ commandId: "v3", text: "id", at: now - 3_000, status: "succeeded" }));
    // Another tenant's broken chain never shows up in this tenant's verdicts.
    await appendChain(other.endpoints[0].id, other.orgId, command({ commandId: "x", text: "x", at: now, status: "failed" }));
    await env.DB.prepare("UPDATE audit_events SET detail = '{}' WHERE endpoint_id = ? AND seq = 1").bind(other.endpoints[0].id).run();

    const intact = await verifyTenantAuditChains(db(), orgId);
    expect(intact).toEqual([
      { endpointId: endpoints[0].id, hostname: endpoints[0].hostname, ok: true, checked: 6 },
      { endpointId: endpoints[1].id, hostname: endpoints[1].hostname, ok: true, checked: 3 },
    ]);

    // Edit one row's detail with raw SQL: the first broken seq is that row.
    const target = chain0.find((e) => e.commandId === "v2" && e.kind === "command.requested")!;
    await env.DB.prepare("UPDATE audit_events SET detail = ? WHERE endpoint_id = ? AND seq = ?")
      .bind(JSON.stringify({ text: "echo harmless", shell: "default" }), target.endpointId, target.seq)
      .run();
    const edited = await verifyTenantAuditChains(db(), orgId);
    expect(edited[0]).toEqual({
      endpointId: endpoints[0].id, hostname: endpoints[0].hostname, ok: false, checked: target.seq - 1, brokenAtSeq: target.seq,
      reason: "contents do not match the event's hash (edited)",
    });
    expect(edited[1]).toMatchObject({ endpointId: endpoints[1].id, ok: true });

    // Restore it, then delete a middle row: reported as missing.
    await env.DB.prepare("UPDATE audit_events SET detail = ? WHERE endpoint_id = ? AND seq = ?").bind(target.detail, target.endpointId, target.seq).run();
    expect((await verifyTenantAuditChains(db(), orgId)).every((v) => v.ok)).toBe(true);
    await env.DB.prepare("DELETE FROM audit_events WHERE endpoint_id = ? AND seq = 3").bind(endpoints[0].id).run();
    expect((await verifyTenantAuditChains(db(), orgId))[0]).toEqual({
      endpointId: endpoints[0].id, hostname: endpoints[0].hostname, ok: false, checked: 2, brokenAtSeq: 3, reason: "event 3 is missing (found 4)",
    });
  });

  it("verifies long chains page by page, carrying the link across pages", async () => {
    const { orgId, endpoints } = await seedTenant(1);
    const now = Date.now();
    const events: Seeded[] = [];
    for (let i = 0; i < 25; i++) events.push(...command({ commandId: `p${i}`, text: `echo ${i}`, at: now - (25 - i) * 1000, status: "succeeded" }));
    const chain = await appendChain(endpoints[0].id, orgId, events); // 75 events
    expect(await verifyTenantAuditChains(db(), orgId, 10)).toEqual([{ endpointId: endpoints[0].id, hostname: endpoints[0].hostname, ok: true, checked: 75 }]);
    // Break the link exactly at a page boundary (seq 41 = first row of the 5th page).
    await env.DB.prepare("UPDATE audit_events SET prev_hash = ? WHERE endpoint_id = ? AND seq = 41").bind("a".repeat(64), endpoints[0].id).run();
    expect((await verifyTenantAuditChains(db(), orgId, 10))[0]).toMatchObject({ ok: false, brokenAtSeq: 41, checked: 40, reason: expect.stringMatching(/previous-hash/) });
    expect(chain).toHaveLength(75);
  });
});

describe("transcript export queries (D1)", () => {
  it("joins requested and finished events per command, in the window, for this tenant only", async () => {
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(1);
    const other = await seedTenant(1);
    const ep = endpoints[0].id;
    await appendChain(ep, orgId, [
      ...command({ commandId: "e_old", text: "echo old", at: now - 3 * 86_400_000, status: "succeeded", exitCode: 0 }),
      ...command({ commandId: "e1", text: 'Write-Output "a,b" — ünïcode', at: now - 60_000, status: "failed", exitCode: 3 }),
      { actorId: "user_tech", actorName: "Tess Tech", actorAddress: null, commandId: "e2", at: now - 30_000, kind: "command.requested", status: "queued", detail: JSON.stringify({ text: "line1\nline2", shell: "bash" }) },
      { actorId: null, actorName: null, actorAddress: null, commandId: "e2", at: now - 29_000, kind: "command.dispatched", status: "dispatched", detail: "{}" },
    ]);
    const window = resolveWindow({ from: "", to: "" }, now);
    const { commands, truncated } = await listEndpointCommands(db(), orgId, ep, window);
    expect(truncated).toBe(false);
    expect(commands.map((c) => c.commandId)).toEqual(["e1", "e2"]);
    expect(commands[0]).toMatchObject({ text: 'Write-Output "a,b" — ünïcode', technicianName: "Tess Tech", shell: "default", status: "failed", exitCode: 3, sentAt: now - 60_300, executedAt: now - 60_150, returnedAt: now - 60_010 });
    expect(commands[1]).toMatchObject({ text: "line1\nline2", status: "dispatched", exitCode: null, finishedAt: null });
    // Another tenant asking for this endpoint's commands gets nothing.
    expect((await listEndpointCommands(db(), other.orgId, ep, window)).commands).toEqual([]);
    // Paging through more than one internal page, and truncation at the limit.
    expect((await listEndpointCommands(db(), orgId, ep, resolveWindow({ from: toDatetimeLocal(now - 4 * 86_400_000), to: "" }, now), 2)).truncated).toBe(true);

    const csv = commandsToCsv(commands);
    const lines = csv.split("\r\n");
    expect(lines[0]).toBe("command_id,requested_at,technician,technician_id,technician_address,shell,command,status,exit_code,sent_at,dispatched_at,executed_at,returned_at,finished_at,output_truncated,endpoint_clock_offset_ms,endpoint_reported_started_at");
    expect(lines[1]).toContain(`,"Write-Output ""a,b"" — ünïcode",failed,3,${new Date(now - 60_300).toISOString()},`);
    expect(csv).toContain('"line1\nline2"');
    expect(csvField(null)).toBe("");
    expect(csvField("plain")).toBe("plain");
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
  });

  it("neutralises spreadsheet formulas in CSV, shows escape sequences in TXT, and says when output was truncated", async () => {
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(1);
    const ep = endpoints[0].id;
    await appendChain(ep, orgId, [
      ...command({ commandId: "f1", text: '=HYPERLINK("https://evil.example","click")', at: now - 50_000, status: "succeeded", exitCode: 0 }),
      ...command({ commandId: "f2", text: "printf '\u001b[31mred\u001b[0m\u0007'", at: now - 40_000, status: "succeeded", exitCode: -1, truncated: { keptBytes: 262144, reason: "runtime_cap" } }),
    ]);
    const window = resolveWindow({ from: "", to: "" }, now);
    const { commands } = await listEndpointCommands(db(), orgId, ep, window);
    expect(commands[1]!.outputTruncated).toEqual({ keptBytes: 262144, reason: "runtime_cap" });

    const csv = commandsToCsv(commands);
    expect(csv).toContain(`,"'=HYPERLINK(""https://evil.example"",""click"")",succeeded,0,`);
    expect(csv).toContain(",succeeded,-1,"); // numbers stay numbers
    // Then the endpoint-clock columns, empty here (these events carry no endpoint clock).
    expect(csv).toContain(",output truncated: 262144 bytes kept (the runtime's output limit on the endpoint),,\r\n");
    for (const [raw, safe] of [["+1", "'+1"], ["-2", "'-2"], ["@SUM(A1)", "'@SUM(A1)"], ["\tx", "'\tx"], ["\rx", "\"'\rx\""], ["a=b", "a=b"]]) {
      expect(csvField(raw!)).toBe(safe);
    }

    const text = commandsToText(commands, { hostname: "h", clientName: "c", window, generatedAt: now, truncated: false });
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
    expect(text).toContain("printf '␛[31mred␛[0m␇'");
    expect(text).toContain("output truncated: 262144 bytes kept (the runtime's output limit on the endpoint)");

    const rows = (await listReviewActivity(db(), orgId, "user_noc", filters({}), { now })).rows;
    expect(rows.find((row) => row.commandId === "f2")!.outputTruncated).toEqual({ keptBytes: 262144, reason: "runtime_cap" });
  });

  it("serves exports through the route's response: CSV cells neutralised and RFC 4180, TXT controls visible, truncation stated in every format", async () => {
    // Fails on the code before issue 11: CSV wrote =, +, -, @ cells raw, TXT carried ESC sequences
    // (the hostname line still does without the whole-file pass), and no format said output was cut.
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(1);
    const ep = endpoints[0].id;
    const hostname = "東京-pc-01\u001b]0;pwned\u0007";
    await env.DB.prepare("UPDATE endpoints SET hostname = ? WHERE id = ?").bind(hostname, ep).run();
    await appendChain(ep, orgId, [
      ...command({ commandId: "x_formula", text: "=cmd|' /C calc'!A0", at: now - 60_000, status: "succeeded", exitCode: 0 }),
      ...command({ commandId: "x_plus", text: "+SUM(1,2)", at: now - 55_000, status: "failed", exitCode: -1 }),
      ...command({ commandId: "x_at", text: "@import", at: now - 54_000, status: "failed", exitCode: 1 }),
      ...command({ commandId: "x_ansi", text: "printf '\u001b[2J\u001b[31mred\u001b[0m'\r", at: now - 50_000, status: "succeeded", exitCode: 0, truncated: { keptBytes: 1048576, reason: "output_cap" } }),
      ...command({ commandId: "x_runtime", text: "Get-Content big.log", at: now - 40_000, status: "succeeded", exitCode: 0, truncated: { keptBytes: 262144, reason: "runtime_cap" } }),
      ...command({ commandId: "x_lost", text: "dmesg", at: now - 30_000, status: "succeeded", exitCode: 0, truncated: { keptBytes: 4096, reason: "lost_in_transit" } }),
      ...command({ commandId: "x_multi", text: "echo one\n[2099-01-01T00:00:00.000Z] Ada Admin $ rm -rf /", at: now - 20_000, status: "succeeded", exitCode: 0 }),
    ]);
    const exportOf = (query: string, endpointId = ep) =>
      transcriptExportResponse(db(), orgId, endpointId, new URL(`https://console.caisey.test/endpoints/${endpointId}/export?${query}`).searchParams, now);
    const cut = {
      x_ansi: "output truncated: 1048576 bytes kept (the session's output limit)",
      x_runtime: "output truncated: 262144 bytes kept (the runtime's output limit on the endpoint)",
      x_lost: "output truncated: 4096 bytes kept (output lost in transit)",
    } as Record<string, string>;

    const csvResponse = await exportOf("format=csv");
    expect(csvResponse.status).toBe(200);
    expect(csvResponse.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
    expect(csvResponse.headers.get("content-disposition")).toMatch(/^attachment; filename="caisey-_-pc-01_0_pwned_-\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.csv"$/);
    const records = readCsv(await csvResponse.text());
    const [header, ...rows] = records;
    expect(rows).toHaveLength(7);
    const column = (name: string) => header!.indexOf(name);
    for (const row of rows) {
      expect(row).toHaveLength(header!.length);
      row.forEach((cell, i) => {
        if (header![i] !== "exit_code") expect(cell, `${header![i]} ${JSON.stringify(cell)}`).not.toMatch(/^[=+\-@\t\r]/);
      });
      const id = row[column("command_id")]!;
      expect(row[column("output_truncated")]).toBe(cut[id] ?? "");
    }
    const byId = (id: string) => rows.find((row) => row[column("command_id")] === id)!;
    expect(byId("x_formula")[column("command")]).toBe("'=cmd|' /C calc'!A0");
    expect(byId("x_plus")[column("command")]).toBe("'+SUM(1,2)");
    expect(byId("x_plus")[column("exit_code")]).toBe("-1");
    expect(byId("x_at")[column("command")]).toBe("'@import");
    expect(byId("x_multi")[column("command")]).toBe("echo one\n[2099-01-01T00:00:00.000Z] Ada Admin $ rm -rf /");

    const txtResponse = await exportOf("");
    expect(txtResponse.status).toBe(200);
    expect(txtResponse.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    const txt = await txtResponse.text();
    expect(txt).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(txt).toContain("Caisey transcript export: 東京-pc-01␛]0;pwned␇ (");
    expect(txt).toContain("$ printf '␛[2J␛[31mred␛[0m'␍\n");
    for (const line of Object.values(cut)) expect(txt).toContain(`\n  ${line}\n`);
    expect(txt.match(/output truncated/g)).toHaveLength(3);
    // The second line of a multi-line command cannot pass for an entry of its own.
    expect(txt).toContain("$ echo one\n    [2099-01-01T00:00:00.000Z] Ada Admin $ rm -rf /\n");
    expect(txt).not.toMatch(/^\[2099/m);

    const jsonResponse = await exportOf("format=json");
    expect(jsonResponse.status).toBe(200);
    const json = (await jsonResponse.json()) as { commandId: string; text: string; outputTruncated: unknown }[];
    expect(json.find((c) => c.commandId === "x_ansi")!.text).toBe("printf '\u001b[2J\u001b[31mred\u001b[0m'\r"); // JSON is data: escaped by JSON itself, unchanged
    expect(json.find((c) => c.commandId === "x_runtime")!.outputTruncated).toEqual({ keptBytes: 262144, reason: "runtime_cap" });
    expect(json.find((c) => c.commandId === "x_formula")!.text).toBe("=cmd|' /C calc'!A0");
    expect(json.find((c) => c.commandId === "x_formula")!.outputTruncated).toBeNull();

    expect((await exportOf("format=xlsx")).status).toBe(400);
    expect((await exportOf("format=csv", "ep_of_someone_else")).status).toBe(404);
  });

  it("states truncation on review rows for every reason, and never shows a truncated record as complete", async () => {
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(1);
    await appendChain(endpoints[0].id, orgId, [
      ...command({ commandId: "t_session", text: "a", at: now - 50_000, status: "succeeded", exitCode: 0, truncated: { keptBytes: 1048576, reason: "output_cap" } }),
      ...command({ commandId: "t_runtime", text: "b", at: now - 40_000, status: "failed", exitCode: 1, truncated: { keptBytes: 262144, reason: "runtime_cap" } }),
      ...command({ commandId: "t_lost", text: "c", at: now - 30_000, status: "succeeded", exitCode: 0, truncated: { keptBytes: 10, reason: "lost_in_transit" } }),
      ...command({ commandId: "t_newer", text: "d", at: now - 20_000, status: "succeeded", exitCode: 0, truncated: { keptBytes: 7, reason: "some_future_reason" } }),
      ...command({ commandId: "t_whole", text: "e", at: now - 10_000, status: "succeeded", exitCode: 0 }),
    ]);
    const rows = (await listReviewActivity(db(), orgId, "user_noc", filters({}), { now })).rows;
    const shown = Object.fromEntries(rows.map((row) => [row.commandId, row.outputTruncated ? describeTruncation(row.outputTruncated) : null]));
    expect(shown).toEqual({
      t_session: "output truncated: 1048576 bytes kept (the session's output limit)",
      t_runtime: "output truncated: 262144 bytes kept (the runtime's output limit on the endpoint)",
      t_lost: "output truncated: 10 bytes kept (output lost in transit)",
      t_newer: 'output truncated: 7 bytes kept (reason "some_future_reason")',
      t_whole: null,
    });
  });

  it("pages the review list with the shared cursor codec and refuses a malformed cursor", async () => {
    const now = Date.now();
    const { orgId, endpoints } = await seedTenant(1);
    await env.DB.prepare("UPDATE endpoints SET hostname = ? WHERE id = ?").bind("東京-pc-01", endpoints[0].id).run();
    await appendChain(endpoints[0].id, orgId, Array.from({ length: 5 }, (_, i) => command({ commandId: `p${i}`, text: `Acme — North ${i}`, at: now - (i + 1) * 1000, status: "succeeded", exitCode: 0 })).flat());
    const seen: string[] = [];
    let after = "";
    for (let pages = 0; pages < 5; pages++) {
      const page = await listReviewActivity(db(), orgId, "user_noc", parseReviewFilters(new URLSearchParams({ after })), { now, pageSize: 2 });
      seen.push(...page.rows.map((row) => row.commandId!));
      if (!page.nextCursor) break;
      after = page.nextCursor;
    }
    expect(seen).toEqual(["p0", "p1", "p2", "p3", "p4"]);
    await expect(listReviewActivity(db(), orgId, "user_noc", parseReviewFilters(new URLSearchParams({ after: "garbage!" })), { now })).rejects.toBeInstanceOf(InvalidCursorError);
  });
});

/** RFC 4180 records (CRLF-terminated, quoted fields may hold CR, LF, commas and doubled quotes). */
function readCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const char = text[i]!;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (char === '"') { quoted = false; i++; continue; }
      field += char;
      i++;
      continue;
    }
    if (char === '"' && field === "") { quoted = true; i++; continue; }
    if (char === '"') throw new Error(`bare quote at ${i}`);
    if (char === ",") { record.push(field); field = ""; i++; continue; }
    if (char === "\r" && text[i + 1] === "\n") { record.push(field); records.push(record); record = []; field = ""; i += 2; continue; }
    if (char === "\r" || char === "\n") throw new Error(`bare line break at ${i}`);
    field += char;
    i++;
  }
  if (field !== "" || record.length) throw new Error("last record not CRLF-terminated");
  return records;
}
