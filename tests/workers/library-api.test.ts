// Script library, API tokens, the REST API and alert webhooks, against real D1 and real session Durable Objects.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createDb } from "~/db/client.server";
import { createApiToken, listApiAudit, revokeApiToken, type ApiScope } from "~/models/api-tokens.server";
import { createAlertWebhook } from "~/models/automation.server";
import { getScriptVersion, listScriptHistory, listScripts, renderScript, saveScript, ScriptError, setScriptArchived } from "~/models/script-library.server";
import { apiCall } from "./helpers";
import { freshEndpoint, registerEndpoint, sessionAudit, sessionSql } from "./socket";

const db = () => createDb(env.DB);

beforeAll(async () => {
  await env.DB.batch([
    env.DB.prepare("INSERT OR IGNORE INTO organisations (id, name, slug) VALUES ('org_test', 'Org org_test', 'org_test')"),
    env.DB.prepare("INSERT OR IGNORE INTO organisations (id, name, slug) VALUES ('org_other', 'Other', 'other')"),
  ]);
});
const ADA = { userId: "user_admin", name: "Ada Admin" };
const NORA = { userId: "user_noc", name: "Nora NOC" };

async function tenant(orgId = "org_test") {
  const endpointId = freshEndpoint("ep_lib");
  await registerEndpoint(endpointId, undefined, { orgId });
  return endpointId;
}

async function token(scopes: ApiScope[], orgId = "org_test") {
  return (await createApiToken(db(), orgId, { name: `robot ${crypto.randomUUID().slice(0, 6)}`, scopes }, ADA)).token;
}

const DISK_CHECK = {
  description: "Disk usage of a directory",
  params: [
    { name: "dir", type: "string", pattern: "[^\\u0000]+" },
    { name: "depth", type: "integer", min: 0, max: 5, default: 1 },
    { name: "unit", type: "enum", values: ["k", "m"], default: "k" },
  ],
  steps: [
    { text: "du -{{unit}} --max-depth={{depth}} {{dir}}", shell: "sh" },
    { text: "echo done", shell: "default" },
  ],
  stopOnFailure: true,
} as const;

async function diskCheck(orgId = "org_test") {
  return saveScript(db(), orgId, null, { name: `Disk check ${crypto.randomUUID().slice(0, 8)}`, body: DISK_CHECK as never }, NORA);
}

describe("script library", () => {
  it("keeps every save as a new version with who changed it, refuses a save on a stale version, and archives without losing history", async () => {
    const { id } = await diskCheck();
    const v2 = await saveScript(db(), "org_test", id, { name: "Disk check renamed " + id, body: { ...DISK_CHECK, stopOnFailure: false } as never, changeNote: "keep going", baseVersion: 1 }, ADA);
    expect(v2).toEqual({ id, version: 2 });
    await expect(saveScript(db(), "org_test", id, { name: "x " + id, body: DISK_CHECK as never, baseVersion: 1 }, NORA)).rejects.toMatchObject({ status: 409 });
    const history = await listScriptHistory(db(), "org_test", id);
    expect(history.map((h) => [h.version, h.changedByName, h.changeNote])).toEqual([
      [2, "Ada Admin", "keep going"],
      [1, "Nora NOC", ""],
    ]);
    expect((await getScriptVersion(db(), "org_test", id, 1))!.body.stopOnFailure).toBe(true);
    expect(await getScriptVersion(db(), "org_other", id)).toBeNull(); // another tenant's id is unknown

    await setScriptArchived(db(), "org_test", id, true, ADA);
    expect((await listScripts(db(), "org_test")).some((s) => s.id === id)).toBe(false);
    expect((await listScripts(db(), "org_test", { includeArchived: true })).find((s) => s.id === id)?.latestVersion).toBe(2);
  });

  it("refuses scripts whose placeholders are undeclared, malformed, or in a step with no named shell", async () => {
    const save = (body: unknown) => saveScript(db(), "org_test", null, { name: `bad ${crypto.randomUUID()}`, body: body as never }, NORA);
    await expect(save({ steps: [{ text: "ls {{nope}}", shell: "sh" }] })).rejects.toThrow(/\{\{nope\}\} is not a declared parameter/);
    await expect(save({ params: [{ name: "d", type: "string" }], steps: [{ text: "ls {{ D }}", shell: "sh" }] })).rejects.toThrow(/not a parameter placeholder/);
    await expect(save({ params: [{ name: "d", type: "string" }], steps: [{ text: "ls {{d}}", shell: "default" }] })).rejects.toThrow(/must name its shell/);
    await expect(save({ params: [{ name: "d", type: "string" }, { name: "d", type: "integer" }], steps: [{ text: "ls", shell: "sh" }] })).rejects.toThrow(/declared twice/);
  });

  it("validates values with a zod schema built from the declarations and quotes each for its step's shell", () => {
    const script = { id: "scr_x", name: "Probe", version: 3, body: { description: "", stopOnFailure: true, params: [
      { name: "target", type: "string", label: "", required: true, maxLength: 200 },
      { name: "count", type: "integer", label: "", required: true, min: 1, max: 10 },
      { name: "mode", type: "enum", label: "", required: true, values: ["fast", "slow"] },
      { name: "verbose", type: "boolean", label: "", default: false },
    ], steps: [
      { text: "ping -c {{count}} {{target}}", shell: "bash", idempotent: false },
      { text: "Test-Connection {{target}} -Count {{count}} # {{mode}} {{verbose}}", shell: "powershell", idempotent: false },
    ] } } as const;
    const rendered = renderScript(script as never, { target: "$(rm -rf /)'; `x`", count: "3", mode: "fast", verbose: true });
    expect(rendered.steps.map((s) => s.text)).toEqual([
      `ping -c '3' '$(rm -rf /)'\\''; \`x\`'`,
      `Test-Connection '$(rm -rf /)''; \`x\`' -Count '3' # 'fast' 'true'`,
    ]);
    expect(rendered.ref).toEqual({ id: "scr_x", name: "Probe", version: 3, params: { target: "$(rm -rf /)'; `x`", count: 3, mode: "fast", verbose: true } });
    const refused = (values: unknown) => {
      try {
        renderScript(script as never, values);
      } catch (error) {
        return (error as ScriptError).issues;
      }
      return null;
    };
    expect(refused({ target: "a", count: 11, mode: "fast" })).toEqual(["count: Too big: expected number to be <=10"]);
    expect(refused({ target: "a", count: "1.5", mode: "fast" })![0]).toMatch(/^count:/);
    expect(refused({ target: "a", count: 1, mode: "rm" })![0]).toMatch(/^mode:/);
    expect(refused({ target: "a\nreboot", count: 1, mode: "fast" })![0]).toMatch(/^target: must not contain control characters/);
    expect(refused({ target: "a", count: 1, mode: "fast", extra: "x" })![0]).toMatch(/extra/);
    expect(refused({ count: 1, mode: "fast" })![0]).toMatch(/^target:/);
  });
});

describe("API tokens and the REST API", () => {
  it("stores only the token's hash, refuses missing scopes, unknown and revoked tokens, and audits it all", async () => {
    const created = await createApiToken(db(), "org_test", { name: "hash check", scopes: ["transcripts:read"] }, ADA);
    expect(created.token).toMatch(/^cat_[A-Za-z0-9_-]{43}$/);
    const row = await env.DB.prepare("SELECT * FROM api_tokens WHERE id = ?").bind(created.id).first<Record<string, unknown>>();
    for (const value of Object.values(row!)) expect(String(value)).not.toContain(created.token.slice(4));
    expect(row!.token_hash).toMatch(/^[0-9a-f]{64}$/);

    const endpointId = await tenant();
    expect((await apiCall(`/endpoints/${endpointId}/transcript`)).status).toBe(401);
    expect((await apiCall(`/endpoints/${endpointId}/transcript`, { token: "cat_guessed" })).status).toBe(401);
    expect((await apiCall(`/endpoints/${endpointId}/transcript`, { token: created.token })).status).toBe(200);
    const noScope = await apiCall("/review", { token: created.token });
    expect(noScope).toMatchObject({ status: 403, body: { error: "This token lacks the review:read scope" } });

    expect(await revokeApiToken(db(), "org_other", created.id, ADA)).toBe(false); // another tenant cannot revoke it
    expect(await revokeApiToken(db(), "org_test", created.id, ADA)).toBe(true);
    expect((await apiCall(`/endpoints/${endpointId}/transcript`, { token: created.token })).status).toBe(401);
    const kinds = (await listApiAudit(db(), "org_test", 500)).filter((e) => e.tokenId === created.id).map((e) => e.kind);
    expect(kinds.sort()).toEqual(["token.created", "token.refused", "token.revoked"]);
  });

  it("queues a library script through the session as the token (NOC row: sequences only) and records the exact version and values", async () => {
    const endpointId = await tenant();
    const { id } = await diskCheck();
    await saveScript(db(), "org_test", id, { name: `Disk v2 ${id}`, body: { ...DISK_CHECK, steps: [{ text: "du -s {{dir}}", shell: "sh" }] } as never }, ADA);
    const secret = await token(["sequences:queue"]);
    const hostile = "/var/log $(touch /tmp/pwned) `id` '; x";
    const queued = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, version: 1, params: { dir: hostile, depth: 2 }, requestId: "run-1" } });
    expect(queued.status).toBe(201);
    expect(queued.body.script).toMatchObject({ id, version: 1 });
    expect(queued.body.steps.map((s: any) => s.text)).toEqual([`du -'k' --max-depth='2' '/var/log $(touch /tmp/pwned) \`id\` '\\''; x'`, "echo done"]);

    const again = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, version: 1, params: { dir: hostile, depth: 2 }, requestId: "run-1" } });
    expect(again).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(await sessionSql(endpointId, "SELECT COUNT(*) AS n FROM commands")).toEqual([{ n: 2 }]);

    const audit = (await sessionAudit(endpointId)).filter((e) => e.kind === "command.requested");
    expect(audit.map((e) => JSON.parse(e.detail).script)).toEqual([
      { id, name: expect.any(String), version: 1, params: { dir: hostile, depth: 2, unit: "k" } },
      { id, name: expect.any(String), version: 1, params: { dir: hostile, depth: 2, unit: "k" } },
    ]);
    expect(audit[0].actorName).toMatch(/^API token "robot/);
    // The transcript event carries it too (what viewers and the transcript show).
    const events = await sessionSql(endpointId, "SELECT body FROM events WHERE kind = 'command.queued' ORDER BY seq");
    expect(events.map((e) => JSON.parse(e.body).script)).toEqual(audit.map((e) => JSON.parse(e.detail).script));

    const latest = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, params: { dir: "/tmp" } } });
    expect(latest.status).toBe(201);
    expect(latest.body.script.version).toBe(2);
    expect(latest.body.steps.map((s: any) => s.text)).toEqual(["du -s '/tmp'"]);
  });

  it("answers invalid requests with a clear 400 and changes nothing", async () => {
    const endpointId = await tenant();
    const { id } = await diskCheck();
    const secret = await token(["sequences:queue"]);
    const cases: [unknown, RegExp][] = [
      ["not json", /not valid JSON/],
      [{ params: {} }, /scriptId/],
      [{ scriptId: id, params: { dir: "/tmp", depth: 9 } }, /depth: Too big/],
      [{ scriptId: id, params: { dir: "/tmp", surprise: 1 } }, /surprise/],
      [{ scriptId: id, params: { dir: "/tmp" }, sneaky: true }, /sneaky/],
      [{ scriptId: id, params: { dir: "/tmp" }, requestId: "a b" }, /requestId/],
    ];
    for (const [body, message] of cases) {
      const answer = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error).toMatch(message);
    }
    expect((await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id }, headers: { "content-type": "text/plain" } })).status).toBe(415);
    // A valid request afterwards: its two steps are all the session holds.
    expect((await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, params: { dir: "/tmp" } } })).status).toBe(201);
    expect(await sessionSql(endpointId, "SELECT COUNT(*) AS n FROM commands")).toEqual([{ n: 2 }]);
  });

  it("applies the client's approval policy to each rendered line", async () => {
    const endpointId = await tenant();
    const { id } = await saveScript(db(), "org_test", null, { name: `Say ${crypto.randomUUID()}`, body: { params: [{ name: "msg", type: "string" }], steps: [{ text: "echo {{msg}}", shell: "sh" }] } }, NORA);
    const secret = await token(["sequences:queue"]);
    const needsReason = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, params: { msg: "planned reboot tonight" } } });
    expect(needsReason.status).toBe(400);
    expect(needsReason.body.error).toMatch(/needs the client's approval/);
    const withReason = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, params: { msg: "planned reboot tonight" }, reason: "Alert 42" } });
    expect(withReason.status).toBe(201);
    expect(withReason.body.steps[0]).toMatchObject({ text: "echo 'planned reboot tonight'", status: "pending_approval" });
    const plain = await apiCall(`/endpoints/${endpointId}/sequences`, { token: secret, body: { scriptId: id, params: { msg: "hello" } } });
    expect(plain.body.steps[0].status).toBe("queued");
  });

  it("keeps tenants apart: another tenant's token sees neither this endpoint nor this script", async () => {
    const endpointId = await tenant();
    const { id } = await diskCheck();
    await env.DB.prepare("INSERT OR IGNORE INTO organisations (id, name, slug) VALUES ('org_other', 'Other', 'other')").run();
    const foreign = await token(["sequences:queue", "transcripts:read"], "org_other");
    expect((await apiCall(`/endpoints/${endpointId}/sequences`, { token: foreign, body: { scriptId: id, params: { dir: "/" } } })).status).toBe(404);
    expect((await apiCall(`/endpoints/${endpointId}/transcript`, { token: foreign })).status).toBe(404);
    const otherEndpoint = await tenant("org_other");
    const answer = await apiCall(`/endpoints/${otherEndpoint}/sequences`, { token: foreign, body: { scriptId: id, params: { dir: "/" } } });
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatch(/No script/);
  });

  it("is exempt from the browser origin guard but never honours cookies", async () => {
    const endpointId = await tenant();
    const crossSite = await apiCall(`/endpoints/${endpointId}/sequences`, { body: { scriptId: "x" }, headers: { origin: "https://evil.test", "sec-fetch-site": "cross-site", cookie: "__session=whatever" } });
    expect(crossSite.status).toBe(401); // reached the API, which wants a token and ignores the cookie
    const doc = await apiCall("/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(Object.keys(doc.body.paths)).toEqual(["/endpoints/{endpointId}/sequences", "/endpoints/{endpointId}/transcript", "/review", "/alerts/{webhookId}"]);
    expect(doc.body.components.schemas.QueueScriptRequest.required).toEqual(["scriptId"]);
  });

  it("reads the review list with review:read and refuses a bad query", async () => {
    const secret = await token(["review:read"]);
    const page = await apiCall("/review", { token: secret });
    expect(page.status).toBe(200);
    expect(Array.isArray(page.body.rows)).toBe(true);
    expect((await apiCall("/review?status=exploded", { token: secret })).status).toBe(400);
    expect((await apiCall("/review?after=!!", { token: secret })).status).toBe(400);
  });
});

describe("inbound alert webhook", () => {
  it("queues the chosen script on the endpoint the alert names, once per alert id", async () => {
    const endpointId = await tenant();
    const { id } = await diskCheck();
    const webhookId = await createAlertWebhook(db(), "org_test", { name: "Disk alerts", scriptId: id, params: { depth: 1 } }, ADA);
    const secret = await token(["sequences:queue"]);
    const alert = { alertId: `A-${crypto.randomUUID()}`, hostname: `HOST-${endpointId}`.replace("HOST-", "host-").toUpperCase().replace(/^HOST-/, "host-"), params: { dir: "/data", depth: 4 } };
    const first = await apiCall(`/alerts/${webhookId}`, { token: secret, body: alert });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ alertId: alert.alertId, endpointId, duplicate: false, script: { id, version: 1 } });
    // The webhook's fixed values win over the alert's.
    expect(first.body.steps[0].text).toBe("du -'k' --max-depth='1' '/data'");
    const second = await apiCall(`/alerts/${webhookId}`, { token: secret, body: alert });
    expect(second).toMatchObject({ status: 200, body: { duplicate: true, sequenceId: first.body.sequenceId } });
    expect(await sessionSql(endpointId, "SELECT COUNT(*) AS n FROM commands")).toEqual([{ n: 2 }]);

    expect((await apiCall(`/alerts/${webhookId}`, { token: secret, body: { alertId: "B", hostname: "no-such-host" } })).status).toBe(404);
    expect((await apiCall(`/alerts/${webhookId}`, { token: secret, body: { alertId: "C" } })).body.error).toMatch(/endpointId or by hostname/);
    const reader = await token(["transcripts:read"]);
    expect((await apiCall(`/alerts/${webhookId}`, { token: reader, body: alert })).status).toBe(403);
    const kinds = (await listApiAudit(db(), "org_test", 500)).filter((e) => JSON.parse(e.detail).webhookId === webhookId).map((e) => e.kind);
    expect(kinds).toContain("alert.queued");
    expect(kinds).toContain("webhook.created");
  });
});
