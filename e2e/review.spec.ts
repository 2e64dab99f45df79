// NOC review page, transcript export and chain verification against the real
// local stack. The audit replica is seeded straight into the e2e D1 (valid hash
// chains, timestamps in the last hour) on endpoints no other spec touches.
import { expect, test } from "@playwright/test";
import { d1ExecuteFile } from "./d1";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEvent } from "../protocol/audit";
import { linkAuditChain, type ChainLink } from "../tests/audit-chain";
import { demoEndpoints, DEMO_ORG, FOREIGN_ENDPOINT_ID, OTHER_ORG } from "../scripts/seed.mjs";
import { openEndpoint, runtimeForSpec } from "./runtime";
import { runCommand, signIn } from "./support";

const RUN = Date.now().toString(36);
const HOSTNAME = Object.fromEntries(demoEndpoints().map((e: { id: string; hostname: string }) => [e.id, e.hostname])) as Record<string, string>;
const TECH = { actorId: "user_demo_tech", actorName: "Tom Technician", actorAddress: "203.0.113.7" };

interface Spec {
  endpointId: string;
  orgId: string;
  commandId: string;
  text: string;
  status: "succeeded" | "failed" | "timed_out" | "pending_approval";
  minutesAgo: number;
  exitCode?: number | null;
}

const COMMANDS: Spec[] = [
  { endpointId: "ep_acme_03", orgId: DEMO_ORG.id, commandId: `cmd_${RUN}_f1`, text: "Get-Service spooler-e2e", status: "failed", minutesAgo: 50, exitCode: 1 },
  { endpointId: "ep_acme_03", orgId: DEMO_ORG.id, commandId: `cmd_${RUN}_ok`, text: "whoami-e2e, \"quoted\"", status: "succeeded", minutesAgo: 45, exitCode: 0 },
  { endpointId: "ep_bay_04", orgId: DEMO_ORG.id, commandId: `cmd_${RUN}_f2`, text: "chkdsk C: /scan-e2e", status: "failed", minutesAgo: 40, exitCode: 3 },
  { endpointId: "ep_bay_04", orgId: DEMO_ORG.id, commandId: `cmd_${RUN}_t1`, text: "ping -t 10.0.0.1-e2e", status: "timed_out", minutesAgo: 30 },
  { endpointId: "ep_cob_05", orgId: DEMO_ORG.id, commandId: `cmd_${RUN}_p1`, text: "Restart-Computer -Force-e2e", status: "pending_approval", minutesAgo: 20 },
  { endpointId: FOREIGN_ENDPOINT_ID, orgId: OTHER_ORG.id, commandId: `cmd_${RUN}_x1`, text: "echo contoso-only-e2e", status: "failed", minutesAgo: 10, exitCode: 9 },
];

function eventsFor(spec: Spec, now: number): ChainLink[] {
  const at = now - spec.minutesAgo * 60_000;
  const base = { endpointId: spec.endpointId, orgId: spec.orgId, commandId: spec.commandId, ...TECH };
  if (spec.status === "pending_approval") {
    return [
      { ...base, at: at - 1000, kind: "command.requested", status: "pending_approval", detail: JSON.stringify({ text: spec.text, shell: "powershell" }) },
      { ...base, at, kind: "approval.requested", status: "pending_approval", detail: JSON.stringify({ approvers: ["priya@acme.test"] }) },
    ];
  }
  return [
    { ...base, at: at - 3000, kind: "command.requested", status: "queued", detail: JSON.stringify({ text: spec.text, shell: "default" }) },
    { ...base, actorId: null, actorName: null, actorAddress: null, at: at - 2000, kind: "command.dispatched", status: "dispatched", detail: "{}" },
    {
      ...base,
      at,
      kind: "command.finished",
      status: spec.status,
      detail: JSON.stringify({ text: spec.text, exitCode: spec.exitCode ?? null, sentAt: at - 3000, dispatchedAt: at - 2000, executedAt: at - 1500, returnedAt: at - 100 }),
    },
  ];
}

const sqlValue = (v: unknown) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

async function seedAuditSql(): Promise<string> {
  const now = Date.now();
  const chains = new Map<string, AuditEvent[]>();
  for (const spec of COMMANDS) {
    const chain = chains.get(spec.endpointId) ?? [];
    const last = chain.at(-1);
    chain.push(...(await linkAuditChain(eventsFor(spec, now), last ? { seq: last.seq, hash: last.hash } : null)));
    chains.set(spec.endpointId, chain);
  }
  const columns = "endpoint_id, seq, org_id, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash";
  // These endpoints are used by this spec only; starting them over keeps the seed repeatable when Playwright
  // restarts its worker (and re-runs beforeAll) after a failed test.
  const ids = [...chains.keys()].map(sqlValue).join(", ");
  // A checkpoint another spec's session activity left (e.g. a policy refresh) would no longer match this replica.
  const reset = [
    `DELETE FROM audit_reviews WHERE endpoint_id IN (${ids});`,
    `DELETE FROM audit_events WHERE endpoint_id IN (${ids});`,
    `DELETE FROM audit_checkpoints WHERE endpoint_id IN (${ids});`,
  ];
  const inserts = [...chains.values()].flat().map((e) => {
    const values = [e.endpointId, e.seq, e.orgId, e.at, e.kind, e.actorId, e.actorName, e.actorAddress, e.commandId, e.status, e.detail, e.prevHash, e.hash];
    return `INSERT INTO audit_events (${columns}) VALUES (${values.map(sqlValue).join(", ")});`;
  });
  return [...reset, ...inserts].join("\n");
}

test.beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "caisey-e2e-review-"));
  try {
    const file = join(dir, "audit.sql");
    writeFileSync(file, await seedAuditSql());
    d1ExecuteFile(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const unreviewed = async (page: import("@playwright/test").Page) => {
  const text = (await page.getByTestId("unreviewed-failures").textContent()) ?? "";
  return Number(/^(\d+) unreviewed failures?$/.exec(text.trim())?.[1] ?? NaN);
};

test("a NOC reviewer filters failures, marks them reviewed, and follows a row to its transcript", async ({ page }) => {
  await signIn(page, "noc", "/review");
  await expect(page).toHaveURL(/\/review$/);
  const rows = page.getByTestId("review-row");
  for (const spec of COMMANDS.filter((c) => c.orgId === DEMO_ORG.id)) {
    await expect(rows.filter({ hasText: spec.text })).toHaveAttribute("data-status", spec.status);
  }
  const failedRow = rows.filter({ hasText: "Get-Service spooler-e2e" });
  await expect(failedRow).toContainText(HOSTNAME.ep_acme_03);
  await expect(failedRow).toContainText("Acme Manufacturing");
  await expect(failedRow).toContainText("Tom Technician");
  // Another tenant's events are never shown.
  await expect(page.getByText("contoso-only-e2e")).toHaveCount(0);

  const initial = await unreviewed(page);
  expect(initial).toBeGreaterThanOrEqual(3); // two failed + one timed out (more if other specs failed commands)

  // Filter by status "failed" and mark every listed row reviewed.
  await page.getByLabel("Status").selectOption("failed");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=failed/);
  await expect(rows.filter({ hasText: "ping -t" })).toHaveCount(0);
  const failedCount = await rows.count();
  expect(failedCount).toBeGreaterThanOrEqual(2);
  for (const row of await rows.all()) await expect(row).toHaveAttribute("data-status", "failed");
  await page.getByLabel("Select all unreviewed rows").check();
  await expect(page.getByTestId("selected-count")).toHaveText(`${failedCount} selected`);
  await page.getByRole("button", { name: "Mark reviewed" }).click();
  await expect(page.getByTestId("mark-result")).toHaveText(`Marked ${failedCount} rows reviewed.`);
  await expect(page.getByTestId("reviewed-indicator")).toHaveCount(failedCount);
  await expect(page.getByTestId("unreviewed-failures")).toHaveText(`${initial - failedCount} unreviewed failure${initial - failedCount === 1 ? "" : "s"}`);

  // Then the timed-out ones, one checkbox at a time: the headline reaches zero.
  await page.getByLabel("Status").selectOption("timed_out");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=timed_out/);
  await expect(rows.filter({ hasText: "ping -t 10.0.0.1-e2e" })).toHaveCount(1);
  for (const row of await rows.all()) await row.getByRole("checkbox").check();
  await page.getByRole("button", { name: "Mark reviewed" }).click();
  await expect(page.getByTestId("unreviewed-failures")).toHaveText("0 unreviewed failures");

  // The marks are this user's: a fresh visit still shows them reviewed.
  await page.goto("/review?status=failed");
  await expect(rows.filter({ hasText: "Get-Service spooler-e2e" }).getByTestId("reviewed-indicator")).toBeVisible();

  // A row links to its command in the endpoint's transcript.
  const f1 = COMMANDS[0];
  await rows.filter({ hasText: f1.text }).getByTestId("transcript-link").click();
  await expect(page).toHaveURL(new RegExp(`/endpoints/${f1.endpointId}#${f1.commandId}$`));
  await expect(page.getByTestId("endpoint-hostname")).toHaveText(HOSTNAME[f1.endpointId]);
});

test("another reviewer's count is their own, and the other tenant sees only its own events", async ({ page, browser }) => {
  // The NOC reviewer marks a row reviewed here, so this test stands on its own.
  const noc = await browser.newPage();
  await signIn(noc, "noc", "/review?status=failed");
  const nocRow = noc.getByTestId("review-row").filter({ hasText: "Get-Service spooler-e2e" });
  if ((await nocRow.getAttribute("data-reviewed")) !== "true") {
    await nocRow.getByRole("checkbox").check();
    await noc.getByRole("button", { name: "Mark reviewed" }).click();
  }
  await expect(nocRow).toHaveAttribute("data-reviewed", "true");
  await noc.close();

  await signIn(page, "admin", "/review?status=failed");
  await expect(page.getByTestId("review-row").filter({ hasText: "Get-Service spooler-e2e" })).toHaveAttribute("data-reviewed", "false");
  expect(await unreviewed(page)).toBeGreaterThanOrEqual(3);
  // A foreign endpoint id as a filter lists nothing.
  await page.goto(`/review?endpoint=${FOREIGN_ENDPOINT_ID}`);
  await expect(page.getByTestId("review-row")).toHaveCount(0);

  const contoso = await browser.newPage();
  await signIn(contoso, "otherTenantAdmin", "/review");
  const rows = contoso.getByTestId("review-row");
  await expect(rows.filter({ hasText: "echo contoso-only-e2e" })).toHaveAttribute("data-status", "failed");
  await expect(rows.filter({ hasText: "spooler-e2e" })).toHaveCount(0);
  await expect(contoso.getByTestId("unreviewed-failures")).toHaveText("1 unreviewed failure");
  await contoso.close();
});

test("verifying the audit chains reports them intact", async ({ page }) => {
  await signIn(page, "noc", "/review");
  await page.getByRole("button", { name: "Verify audit chains" }).click();
  const verdict = page.getByTestId("chain-verdict");
  await expect(verdict).toHaveAttribute("data-ok", "true");
  await expect(verdict).toHaveText(/^Audit chain intact for \d+ endpoints/);
  const endpoints = Number(/for (\d+) endpoints/.exec((await verdict.textContent())!)![1]);
  expect(endpoints).toBeGreaterThanOrEqual(3);
});

test("the transcript export downloads CSV, JSON and text for the tenant's endpoint only", async ({ page }) => {
  await signIn(page, "noc", "/review");
  const csv = await page.request.get("/endpoints/ep_acme_03/export?format=csv");
  expect(csv.status()).toBe(200);
  expect(csv.headers()["content-type"]).toContain("text/csv");
  expect(csv.headers()["content-disposition"]).toMatch(new RegExp(`^attachment; filename="caisey-${HOSTNAME.ep_acme_03}-\\d{4}-\\d{2}-\\d{2}_\\d{4}-\\d{2}-\\d{2}\\.csv"$`));
  const body = await csv.text();
  const lines = body.split("\r\n");
  expect(lines[0]).toBe("command_id,requested_at,technician,technician_id,technician_address,shell,command,status,exit_code,sent_at,dispatched_at,executed_at,returned_at,finished_at,output_truncated,endpoint_clock_offset_ms,endpoint_reported_started_at");
  expect(body).toContain(`${COMMANDS[0].commandId},`);
  expect(body).toContain(",Get-Service spooler-e2e,failed,1,");
  expect(body).toContain(`,"whoami-e2e, ""quoted""",succeeded,0,`);

  const json = await page.request.get("/endpoints/ep_acme_03/export?format=json");
  expect(json.status()).toBe(200);
  const commands = await json.json();
  expect(commands.map((c: { commandId: string }) => c.commandId)).toEqual([COMMANDS[0].commandId, COMMANDS[1].commandId]);
  expect(commands[0]).toMatchObject({ text: "Get-Service spooler-e2e", status: "failed", exitCode: 1, technicianName: "Tom Technician" });

  const txt = await page.request.get("/endpoints/ep_acme_03/export");
  expect(await txt.text()).toMatch(/Command output is not part of the audit trail/);

  expect((await page.request.get(`/endpoints/${FOREIGN_ENDPOINT_ID}/export?format=csv`)).status()).toBe(404);
  expect((await page.request.get("/endpoints/ep_acme_03/export?format=exe")).status()).toBe(400);
});

const runtime = runtimeForSpec("review");

test("a failure on a real endpoint reaches the NOC review page through the session and the audit replica", async ({ page, browser }) => {
  const endpointId = runtime().endpointId;
  const text = `ls /caisey-review-e2e-${RUN}`;
  await signIn(page, "technician", `/endpoints/${endpointId}`);
  await openEndpoint(page, endpointId);
  const entry = await runCommand(page, text);
  await expect(entry).toHaveAttribute("data-status", "failed", { timeout: 20_000 });

  const noc = await browser.newPage();
  await signIn(noc, "noc", `/review?endpoint=${endpointId}`);
  const row = noc.getByTestId("review-row").filter({ hasText: text });
  // Replication to D1 runs on the session's alarm, half a second after the events; the page reads the replica.
  await expect(async () => {
    await noc.reload();
    await expect(row).toHaveAttribute("data-status", "failed", { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(row).toContainText("Tom Technician");
  await row.getByTestId("transcript-link").click();
  await expect(noc).toHaveURL(new RegExp(`/endpoints/${endpointId}#cmd_`));
  await noc.close();
});
