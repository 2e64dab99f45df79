// scripts/audit-verify.mjs reimplements the audit chain hashing and checkpoint
// MAC with node:crypto; these tests prove it is byte-for-byte the same as
// protocol/audit.ts, then run the script against real local state.
import type { D1Database } from "@cloudflare/workers-types";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  auditEventFromRow,
  auditMacKeyProblem,
  canonicalAuditPayload,
  canonicalCheckpointPayload,
  computeAuditHash,
  computeCheckpointMac,
  computePruneAnchorMac,
  canonicalPruneAnchorPayload,
  GENESIS_HASH,
  verifyAuditChain,
  verifyCheckpointMac,
  type AuditEvent,
  type AuditRow,
  type UnhashedAuditEvent,
} from "../../protocol/audit";
import { hashOf as directoryAuditHash } from "../../app/models/directory-audit.server";
import * as script from "../../scripts/audit-verify.mjs";
import { linkAuditChain, relinkAuditChain } from "../audit-chain";

const base: UnhashedAuditEvent = {
  endpointId: "ep_unit_1",
  orgId: "org_unit",
  seq: 1,
  at: 1_763_800_000_000,
  kind: "command.requested",
  actorId: "user_tech",
  actorName: "Tess Tech",
  actorAddress: "203.0.113.7",
  commandId: "cmd_1",
  status: "queued",
  detail: JSON.stringify({ text: "ipconfig /all", shell: "default" }),
  prevHash: GENESIS_HASH,
};

const variants: UnhashedAuditEvent[] = [
  base,
  // Unicode in every free-text field: accents, CJK, emoji (astral plane), RTL, combining marks, quotes, escapes.
  {
    ...base,
    actorName: "Zoë Ñúñez 张伟 👩‍💻",
    detail: JSON.stringify({ text: "Write-Host 'héllo wörld' — 日本語 \u202Eevil 🚀 e\u0301 \"quoted\" \\back\\ \n\t line2", shell: "powershell" }),
  },
  // Nulls wherever the schema allows them.
  { ...base, seq: 2, kind: "runtime.connected", actorId: null, actorName: null, actorAddress: null, commandId: null, status: null, detail: "{}" },
  // A finished command with numbers and nulls inside detail, and a lone surrogate / control characters in text.
  {
    ...base,
    seq: 3,
    kind: "command.finished",
    status: "timed_out",
    detail: JSON.stringify({ text: "echo \u0000\u0007\u001f \ud800", exitCode: null, sentAt: 1, dispatchedAt: null, executedAt: 2, returnedAt: 3 }),
  },
  { ...base, seq: 9_007_199_254_740_991, at: 0, detail: "", actorName: "" },
];

describe("scripts/audit-verify.mjs hashing", () => {
  it("builds the same canonical payload and hash as protocol/audit.ts", async () => {
    for (const event of variants) {
      expect(script.canonicalAuditPayload(event)).toBe(canonicalAuditPayload(event));
      expect(script.computeAuditHash(event)).toBe(await computeAuditHash(event));
    }
    expect(script.GENESIS_HASH).toBe(GENESIS_HASH);
  });

  it("gives the same verdicts as verifyAuditChain: intact, edited, relinked, missing", async () => {
    const chain = await linkAuditChain([1, 2, 3, 4, 5, 6].map((seq) => variants[seq % variants.length]));
    const cases: AuditEvent[][] = [
      chain,
      chain.map((e) => (e.seq === 3 ? { ...e, detail: JSON.stringify({ text: "echo harmless" }) } : e)),
      chain.map((e) => (e.seq === 4 ? { ...e, prevHash: "f".repeat(64) } : e)),
      chain.filter((e) => e.seq !== 2),
      chain.slice(1),
      [],
    ];
    for (const events of cases) {
      expect(script.verifyChain(events)).toEqual(await verifyAuditChain(events));
    }
    // Verifying from a checkpoint, as the paged readers do.
    expect(script.verifyChain(chain.slice(3), { seq: 3, hash: chain[2].hash })).toEqual(await verifyAuditChain(chain.slice(3), { seq: 3, hash: chain[2].hash }));
  });

  it("streams rows from D1 pages and reports each endpoint's first broken link", async () => {
    const rows: Record<string, unknown>[] = [];
    for (const endpointId of ["ep_a", "ep_b"]) {
      for (const { seq, prevHash, hash } of await linkAuditChain(Array.from({ length: 5 }, () => ({ ...base, endpointId })))) {
        rows.push({
          endpoint_id: endpointId, org_id: base.orgId, seq, at: base.at, kind: base.kind, actor_id: base.actorId, actor_name: base.actorName,
          actor_address: base.actorAddress, command_id: base.commandId, status: base.status, detail: base.detail, prev_hash: prevHash, hash,
        });
      }
    }
    (rows[7] as { detail: string }).detail = "{}"; // ep_b seq 3 edited
    const queries: string[] = [];
    // A tiny in-memory stand-in for D1: honours the keyset and LIMIT the script sends.
    const read = (query: string) => {
      queries.push(query);
      const limit = Number(/LIMIT (\d+)/.exec(query)![1]);
      const keyset = /\(endpoint_id, seq\) > \('([^']+)', (\d+)\)/.exec(query);
      const after = keyset ? rows.findIndex((r) => r.endpoint_id === keyset[1] && r.seq === Number(keyset[2])) + 1 : 0;
      return rows.slice(after, after + limit);
    };
    const verdicts = await script.verifyAllChains(read, { pageSize: 3 });
    expect(verdicts).toEqual([
      { endpointId: "ep_a", orgId: "org_unit", ok: true, checked: 5, lastHash: rows[4].hash },
      { endpointId: "ep_b", orgId: "org_unit", ok: false, checked: 2, brokenAtSeq: 3, reason: "contents do not match the event's hash (edited)" },
    ]);
    expect(queries).toHaveLength(4); // 10 rows in pages of 3
  });
});

describe("scripts/audit-verify.mjs directory_audit hashing", () => {
  it("hashes a directory_audit row as app/models/directory-audit.server.ts does", async () => {
    for (const actorAddress of ["192.0.2.7", null]) {
      const row = { orgId: "org_1", seq: 2, at: 1_760_000_000_000, kind: "endpoint.details_updated", actorId: "user_a", actorName: "Ada \"A\" Admin", actorAddress, subjectType: "endpoint", subjectId: "ep_1", detail: '{"name":"Front desk"}', prevHash: "a".repeat(64) };
      expect(script.computeDirectoryAuditHash(row)).toBe(await directoryAuditHash(row));
    }
  });
});

describe("scripts/audit-verify.mjs checkpoints", () => {
  const key = "unit-audit-mac-key-0123456789abcdef0123456789";
  const checkpoint = { endpointId: "ep_unit_1", orgId: "org_unit", seq: 42, hash: "a".repeat(64), at: 1_763_800_000_123 };

  it("builds the same checkpoint payload and MAC as protocol/audit.ts", async () => {
    for (const cp of [checkpoint, { ...checkpoint, endpointId: "ep_ünï|cødé 👩‍💻", orgId: "org|x", seq: 9_007_199_254_740_991, at: 0 }]) {
      expect(script.canonicalCheckpointPayload(cp)).toBe(canonicalCheckpointPayload(cp));
      const mac = await computeCheckpointMac(key, cp);
      expect(script.computeCheckpointMac(key, cp)).toBe(mac);
      expect(script.checkpointMacValid(key, cp, mac)).toBe(true);
      expect(await verifyCheckpointMac(key, cp, mac)).toBe(true);
    }
    const mac = await computeCheckpointMac(key, checkpoint);
    for (const altered of [{ ...checkpoint, seq: 41 }, { ...checkpoint, hash: "b".repeat(64) }, { ...checkpoint, endpointId: "ep_other" }, { ...checkpoint, orgId: "org_other" }]) {
      expect(script.checkpointMacValid(key, altered, mac)).toBe(false);
      expect(await verifyCheckpointMac(key, altered, mac)).toBe(false);
    }
    expect(script.checkpointMacValid(`${key}x`, checkpoint, mac)).toBe(false);
    expect(script.auditMacKeyProblem(undefined)).toBe(auditMacKeyProblem(undefined));
    expect(script.auditMacKeyProblem("short")).toBe(auditMacKeyProblem("short"));
    expect(script.auditMacKeyProblem(key)).toBeNull();
    expect(auditMacKeyProblem(key)).toBeNull();
  });
});

describe("scripts/audit-verify.mjs prune anchors (ADR 0029)", () => {
  const key = "unit-audit-mac-key-0123456789abcdef0123456789";

  const chain = (length: number): Promise<AuditEvent[]> => linkAuditChain(Array.from({ length }, (_, i) => ({ ...base, detail: JSON.stringify({ n: i + 1 }) })));

  /** What audit:verify concludes about a replica pruned through seq 4 of 8, given its anchor and checkpoint rows. */
  async function judge(kept: AuditEvent[], anchorRow: Record<string, unknown>, all: AuditEvent[]) {
    const start = { seq: Number(anchorRow.seq), hash: String(anchorRow.hash) };
    const head = all.at(-1)!;
    const checkpoint = { endpoint_id: base.endpointId, org_id: base.orgId, seq: head.seq, hash: head.hash, at: 5, mac: await computeCheckpointMac(key, { endpointId: base.endpointId, orgId: base.orgId, seq: head.seq, hash: head.hash, at: 5 }) };
    return script.assessEndpoint({ endpointId: base.endpointId, orgId: base.orgId, replica: script.verifyChain(kept, start), checkpoint, anchor: anchorRow as never, session: null, sessionsChecked: false, key });
  }

  it("accepts a replica that starts at a MACed anchor, and still reports a deleted or edited event and a forged or mismatched anchor", async () => {
    const all = await chain(8);
    const anchor = { endpointId: base.endpointId, orgId: base.orgId, seq: 4, hash: all[3]!.hash, at: 7, archiveKey: "audit/org_unit/2026-12-04.jsonl" };
    expect(script.canonicalPruneAnchorPayload(anchor)).toBe(canonicalPruneAnchorPayload(anchor));
    const row = { endpoint_id: anchor.endpointId, org_id: anchor.orgId, seq: 4, hash: anchor.hash, at: 7, archive_key: anchor.archiveKey, mac: await computePruneAnchorMac(key, anchor) };
    const kept = all.slice(4);
    expect(await judge(kept, row, all)).toMatchObject({ ok: true });
    // From the genesis, the same kept events are a broken chain: the anchor is what makes them verifiable.
    expect(script.verifyChain(kept)).toMatchObject({ ok: false, brokenAtSeq: 1 });

    expect((await judge([kept[0]!, ...kept.slice(2)], row, all)).problems.join()).toMatch(/seq 6: event 6 is missing/);
    expect((await judge([kept[0]!, { ...kept[1]!, detail: "{}" }, ...kept.slice(2)], row, all)).problems.join()).toMatch(/edited/);
    expect((await judge(kept, { ...row, seq: 3, hash: all[2]!.hash }, all)).problems.join()).toMatch(/prune anchor at seq 3 has no valid MAC/);
    const genuineButWrong = { ...anchor, hash: all[2]!.hash };
    const wrongRow = { ...row, hash: genuineButWrong.hash, mac: await computePruneAnchorMac(key, genuineButWrong) };
    expect((await judge(kept, wrongRow, all)).problems.join()).toMatch(/previous-hash link does not match/);
  });
});

describe("scripts/audit-verify.mjs key lookup", () => {
  it("takes --key-file, else $AUDIT_MAC_KEY, else workers/session/.dev.vars as wrangler parses it", () => {
    const root = mkdtempSync(join(tmpdir(), "caisey-audit-keys-"));
    try {
      expect(script.loadMacKey(root, { env: {} })).toEqual({ key: null, source: null });
      mkdirSync(join(root, "workers/session"), { recursive: true });
      writeFileSync(join(root, "workers/session/.dev.vars"), '# Session worker\nPUBLIC_ORIGIN="http://127.0.0.1:8788"\nAUDIT_MAC_KEY="from-dev-vars" # generated\n');
      expect(script.loadMacKey(root, { env: {} })).toMatchObject({ key: "from-dev-vars" });
      expect(script.loadMacKey(root, { env: { AUDIT_MAC_KEY: "from-env" } })).toMatchObject({ key: "from-env" });
      writeFileSync(join(root, "key"), "from-file\n");
      expect(script.loadMacKey(root, { env: { AUDIT_MAC_KEY: "from-env" }, keyFile: join(root, "key") })).toMatchObject({ key: "from-file" });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// End to end against real local state: the real AuditLog in a real SQLite
// Durable Object (workerd, persisted where `wrangler dev --persist-to` keeps
// the session worker's objects), replicating to a real local D1 migrated by
// wrangler; then the script itself, as `npm run audit:verify` runs it.
describe("npm run audit:verify against local state", () => {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const key = "unit-e2e-audit-mac-key-0123456789abcdef01234567";
  const DATABASE_ID = "00000000-0000-0000-0000-000000000000"; // wrangler.toml's local D1
  let state: string;

  const WRITER = `
    import { AuditLog } from "./workers/session/src/audit-log";
    import { migrate } from "./workers/session/src/schema";
    export class EndpointSession {
      constructor(ctx, env) { this.ctx = ctx; this.env = env; migrate(ctx.storage.sql); }
      async fetch(request) {
        const { endpointId, orgId, append, replicate, key } = await request.json();
        const sql = this.ctx.storage.sql;
        sql.exec("INSERT OR IGNORE INTO runtime_state (key, value) VALUES ('org_id', ?)", orgId);
        const log = new AuditLog(sql, () => ({ endpointId, orgId }), () => {});
        for (let i = 0; i < append; i++) log.append({ kind: "command.requested", actorId: "user_tech", actorName: "Tess Tech", commandId: "cmd_" + i, status: "queued", detail: { text: "echo " + i } });
        const outcome = replicate ? await log.replicate(this.env.DB, key) : null;
        return Response.json({ outcome, head: log.replicatedHead(), pending: log.pendingCount() });
      }
    }
    export default {
      async fetch(request, env) {
        const { endpointId } = await request.clone().json();
        return env.SESSIONS.get(env.SESSIONS.idFromName(endpointId)).fetch(request);
      },
    };`;

  async function startWriter() {
    const built = await esbuild.build({
      stdin: { contents: WRITER, resolveDir: root, loader: "ts" },
      bundle: true,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      external: ["node:*", "cloudflare:*"],
      write: false,
      logLevel: "silent",
    });
    return new Miniflare({
      name: "caisey-session",
      modules: true,
      script: built.outputFiles[0]!.text,
      compatibilityDate: "2026-04-20",
      compatibilityFlags: ["nodejs_compat"],
      durableObjects: { SESSIONS: { className: "EndpointSession", useSQLite: true } },
      durableObjectsPersist: join(state, "v3", "do"),
      d1Databases: { DB: DATABASE_ID },
      d1Persist: join(state, "v3", "d1"),
    });
  }

  async function session(mf: Miniflare, endpointId: string, body: { append?: number; replicate?: boolean; key?: string | null }) {
    const response = await mf.dispatchFetch("http://writer/", {
      method: "POST",
      body: JSON.stringify({ endpointId, orgId: "org_e2e", append: 0, replicate: true, key, ...body }),
    });
    return (await response.json()) as { outcome: { replicated?: number; failed?: string } | null; head: { seq: number; hash: string } | null; pending: number };
  }

  function verify(args: string[], env: Record<string, string> = { AUDIT_MAC_KEY: key }) {
    const { AUDIT_MAC_KEY: _ignored, ...base } = process.env;
    const result = spawnSync(process.execPath, [join(root, "scripts/audit-verify.mjs"), "--state", state, ...args], {
      cwd: root,
      encoding: "utf8",
      env: { ...base, ...env },
    });
    const line = (endpointId: string) => result.stdout.split("\n").find((l) => l.includes(` ${endpointId} (`)) ?? "";
    return { code: result.status, stdout: result.stdout, stderr: result.stderr, line };
  }

  /** Replaces seq `from`.. of a chain with edited events whose hashes are all recomputed, as a D1 writer could. */
  async function rewriteWithRecomputedHashes(db: D1Database, endpointId: string, from: number) {
    const { results } = await db.prepare("SELECT * FROM audit_events WHERE endpoint_id = ? ORDER BY seq").bind(endpointId).all<AuditRow>();
    const forged = await relinkAuditChain(results.map((row) => auditEventFromRow(row)), from, (e) => ({ ...e, detail: JSON.stringify({ text: "echo harmless" }) }));
    for (const event of forged.filter((e) => e.seq >= from)) {
      await db.prepare("UPDATE audit_events SET detail = ?, prev_hash = ?, hash = ? WHERE endpoint_id = ? AND seq = ?").bind(event.detail, event.prevHash, event.hash, endpointId, event.seq).run();
    }
    const prevHash = forged.at(-1)!.hash;
    expect(await verifyAuditChain((await db.prepare("SELECT * FROM audit_events WHERE endpoint_id = ? ORDER BY seq").bind(endpointId).all<AuditRow>()).results.map((r) => auditEventFromRow(r)))).toMatchObject({ ok: true });
    return prevHash;
  }

  beforeAll(async () => {
    state = mkdtempSync(join(tmpdir(), "caisey-audit-e2e-"));
    const migrated = spawnSync(join(root, "node_modules/.bin/wrangler"), ["d1", "migrations", "apply", "caisey-db", "--local", "--persist-to", state], { cwd: root, encoding: "utf8", env: { ...process.env, CI: "1" } });
    expect(migrated.status, migrated.stderr || migrated.stdout).toBe(0);
    const mf = await startWriter();
    try {
      for (const endpointId of ["ep_ok", "ep_tail", "ep_rollback"]) {
        expect((await session(mf, endpointId, { append: 3 })).outcome).toMatchObject({ replicated: 3 });
        expect((await session(mf, endpointId, { append: 2 })).outcome).toMatchObject({ replicated: 2 });
      }
      for (const endpointId of ["ep_rewritten", "ep_forged"]) {
        expect((await session(mf, endpointId, { append: 4 })).outcome).toMatchObject({ replicated: 4 });
      }
      expect((await session(mf, "ep_pending", { append: 2 })).outcome).toMatchObject({ replicated: 2 });
      expect((await session(mf, "ep_pending", { append: 1, replicate: false })).pending).toBe(1);
      const refused = await session(mf, "ep_nokey", { append: 2, key: null });
      expect(refused.outcome?.failed).toMatch(/AUDIT_MAC_KEY is not set/);
      expect(refused.pending).toBe(2);
    } finally {
      await mf.dispose();
    }
  }, 120_000);

  afterAll(() => {
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("passes an untouched replica, reading each session's own head", () => {
    const run = verify([]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    for (const endpointId of ["ep_ok", "ep_tail", "ep_rollback", "ep_rewritten", "ep_forged", "ep_pending"]) expect(run.line(endpointId)).toMatch(/^ok /);
    expect(run.line("ep_ok")).toMatch(/5 events; session head seq 5$/);
    expect(run.line("ep_pending")).toMatch(/2 events; session head seq 2; 1 not yet replicated/);
    // Refused replication wrote nothing unsigned; the events wait in the session.
    expect(run.line("ep_nokey")).toMatch(/^ok .*0 events; session head seq 0; 2 not yet replicated/);
    expect(run.stdout).toMatch(/Read 7 sessions from .*caisey-session-EndpointSession/);
  }, 60_000);

  it("reports rewritten, forged, truncated and rolled-back replicas as broken", async () => {
    const mf = await startWriter();
    try {
      const db = await mf.getD1Database("DB");
      // Rewritten with recomputed hashes: the chain alone still verifies.
      await rewriteWithRecomputedHashes(db, "ep_rewritten", 2);
      // The same, and the checkpoint's hash moved to the forged head (its MAC cannot be).
      const forgedHead = await rewriteWithRecomputedHashes(db, "ep_forged", 2);
      await db.prepare("UPDATE audit_checkpoints SET hash = ? WHERE endpoint_id = 'ep_forged'").bind(forgedHead).run();
      // Tail deleted.
      await db.prepare("DELETE FROM audit_events WHERE endpoint_id = 'ep_tail' AND seq > 3").run();
      // Tail deleted and the checkpoint rolled back to the older, genuine one for seq 3.
      const { results: rollbackEvents } = await db.prepare("SELECT * FROM audit_events WHERE endpoint_id = 'ep_rollback' AND seq = 3").all<AuditRow>();
      // Stands in for the checkpoint row an attacker saved when seq 3 was the head: genuinely signed with the key.
      const genuine = { endpointId: "ep_rollback", orgId: "org_e2e", seq: 3, hash: rollbackEvents[0]!.hash, at: 1_763_800_000_000 };
      await db.prepare("DELETE FROM audit_events WHERE endpoint_id = 'ep_rollback' AND seq > 3").run();
      await db.prepare("UPDATE audit_checkpoints SET seq = 3, hash = ?, at = ?, mac = ? WHERE endpoint_id = 'ep_rollback'")
        .bind(genuine.hash, genuine.at, await computeCheckpointMac(key, genuine))
        .run();
    } finally {
      await mf.dispose();
    }

    const run = verify([]);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.line("ep_ok")).toMatch(/^ok /);
    expect(run.line("ep_pending")).toMatch(/^ok /);
    expect(run.line("ep_rewritten")).toMatch(/^BROKEN .*does not match the session's checkpoint at seq 4 \(events rewritten\).*differs from the session's own chain at seq 4/);
    expect(run.line("ep_forged")).toMatch(/^BROKEN .*checkpoint at seq 4 has no valid MAC/);
    expect(run.line("ep_tail")).toMatch(/^BROKEN .*replica ends at seq 3 but the session checkpointed seq 5 \(events deleted\).*session's own replicated head is seq 5/);
    expect(run.line("ep_rollback")).toMatch(/^BROKEN .*replica ends at seq 3 but the session's own replicated head is seq 5 \(events deleted\)/);
    expect(run.line("ep_rollback")).not.toMatch(/checkpoint/);
    expect(run.stdout).toMatch(/4 of 7 audit trails broken/);

    // Without the sessions' heads the rolled-back replica passes: that check is what catches it.
    const blind = verify(["--no-sessions"]);
    expect(blind.code).toBe(1);
    expect(blind.line("ep_rollback")).toMatch(/^ok .*session head not checked \(--no-sessions\)/);
    expect(blind.line("ep_tail")).toMatch(/^BROKEN .*session checkpointed seq 5/);
    expect(blind.stdout).toMatch(/Session heads NOT checked/);
  }, 120_000);

  it("rejects checkpoints under another key, and refuses to run without a usable key", () => {
    const wrongKey = verify(["--no-sessions"], { AUDIT_MAC_KEY: `${key}-other` });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.line("ep_ok")).toMatch(/^BROKEN .*no valid MAC under AUDIT_MAC_KEY/);

    const weak = verify([], { AUDIT_MAC_KEY: "short" });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/AUDIT_MAC_KEY is shorter than 32 characters/);

    const dir = mkdtempSync(join(tmpdir(), "caisey-audit-key-"));
    try {
      writeFileSync(join(dir, "key"), `${key}\n`);
      const fromFile = verify(["--no-sessions", "--key-file", join(dir, "key")], { AUDIT_MAC_KEY: "ignored-because-the-file-wins-0123456789" });
      expect(fromFile.line("ep_ok")).toMatch(/^ok /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(verify(["--bogus"]).code).toBe(2);
  }, 60_000);

  // --remote builds `wrangler d1 execute caisey-db --remote --env production -c wrangler.toml --json`;
  // the stand-in checks exactly that call and answers from this local D1 (no Cloudflare account here).
  /** Appends a tenant's directory_audit rows hashed by the app's own code (app/models/directory-audit.server.ts). */
  async function writeDirectoryChain(db: D1Database, orgId: string, count: number) {
    let prevHash = GENESIS_HASH;
    for (let seq = 1; seq <= count; seq++) {
      const row = { orgId, seq, at: 1_760_000_000_000 + seq, kind: "client.updated", actorId: "user_admin", actorName: "Ada Admin", actorAddress: seq === 2 ? null : "192.0.2.7", subjectType: "client", subjectId: "cl_1", detail: JSON.stringify({ name: `Client ${seq}` }), prevHash };
      const hash = await directoryAuditHash(row);
      await db
        .prepare("INSERT INTO directory_audit (org_id, seq, at, kind, actor_id, actor_name, actor_address, subject_type, subject_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(row.orgId, row.seq, row.at, row.kind, row.actorId, row.actorName, row.actorAddress, row.subjectType, row.subjectId, row.detail, row.prevHash, hash)
        .run();
      prevHash = hash;
    }
  }

  it("verifies each tenant's directory_audit chain (ADR 0022) and reports a tampered row", async () => {
    const mf = await startWriter();
    try {
      const db = await mf.getD1Database("DB");
      await writeDirectoryChain(db, "org_dir_ok", 3);
      await writeDirectoryChain(db, "org_dir_tampered", 4);
      const intact = verify(["--org", "org_dir_ok", "--no-sessions"]);
      expect(intact.code, intact.stdout + intact.stderr).toBe(0);
      expect(intact.stdout).toContain("ok      directory audit of org_dir_ok: 3 events");
      expect(intact.stdout).toContain("Directory audit chains intact: 1 tenant, 3 events.");

      // An admin's rename rewritten in place: the row no longer matches its hash.
      await db.prepare("UPDATE directory_audit SET detail = ? WHERE org_id = ? AND seq = 3").bind(JSON.stringify({ name: "Someone else" }), "org_dir_tampered").run();
      const all = verify(["--no-sessions"]);
      expect(all.code, all.stdout + all.stderr).toBe(1);
      expect(all.stdout).toContain("ok      directory audit of org_dir_ok: 3 events");
      expect(all.stdout).toContain("BROKEN  directory audit of org_dir_tampered: at seq 3: contents do not match the event's hash (edited) (2 events intact before it)");
      expect(all.stdout).toContain("1 of 2 directory audit chains broken: org_dir_tampered.");
      // A deleted row breaks the link of the one after it.
      await db.prepare("DELETE FROM directory_audit WHERE org_id = ? AND seq = 2").bind("org_dir_ok").run();
      expect(verify(["--org", "org_dir_ok", "--no-sessions"]).stdout).toContain("BROKEN  directory audit of org_dir_ok: at seq 2: event 2 is missing (found 3)");
    } finally {
      await mf.dispose();
    }
  }, 120_000);

  it("--remote reads the environment's D1 through wrangler, checks chains and signed checkpoints, and says heads were not checked", () => {
    const remote = (args: string[], env: Record<string, string>) =>
      verify(args, { CAISEY_DEPLOY_WRANGLER: join(root, "tests/unit/fixtures/remote-d1-as-local.mjs"), FAKE_D1_STATE: state, FAKE_D1_EXPECT_ENV: "production", FAKE_D1_EXPECT_DATABASE: "caisey-db", ...env });
    const run = remote(["--remote", "--env", "production"], { AUDIT_MAC_KEY: key });
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toContain("Reading remote D1 caisey-db (production) through wrangler; session heads are not readable remotely");
    expect(run.line("ep_ok")).toMatch(/^ok .*5 events/);
    expect(run.line("ep_forged")).toMatch(/^BROKEN .*checkpoint at seq 4 has no valid MAC/);
    expect(run.line("ep_tail")).toMatch(/^BROKEN .*session checkpointed seq 5/);
    expect(run.stdout).toMatch(/Session heads NOT checked \(remote\)/);
    // The directory chains are read through the same wrangler path (written and tampered with above).
    expect(run.stdout).toContain("BROKEN  directory audit of org_dir_tampered: at seq 3:");
    // Preview reads its own database; the call shape is checked again by the stand-in.
    const preview = remote(["--remote", "--env", "preview"], { AUDIT_MAC_KEY: key, FAKE_D1_EXPECT_ENV: "preview", FAKE_D1_EXPECT_DATABASE: "caisey-db-preview" });
    expect(preview.line("ep_ok"), preview.stdout + preview.stderr).toMatch(/^ok /);
    // The local development key never counts for a deployed environment.
    const devKeyOnly = remote(["--remote"], {});
    expect(devKeyOnly.code).toBe(2);
    expect(devKeyOnly.stderr).toMatch(/AUDIT_MAC_KEY is not set.*production session worker's secret/s);
    expect(remote(["--remote", "--env", "staging"], { AUDIT_MAC_KEY: key }).code).toBe(2);
  }, 120_000);
});
