// scripts/audit-verify.mjs reimplements the audit chain hashing with node:crypto;
// these tests prove it is byte-for-byte the same as protocol/audit.ts.
import { describe, expect, it } from "vitest";
import { canonicalAuditPayload, computeAuditHash, GENESIS_HASH, verifyAuditChain, type AuditEvent, type UnhashedAuditEvent } from "../../protocol/audit";
import * as script from "../../scripts/audit-verify.mjs";

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
    const chain: AuditEvent[] = [];
    let prevHash = GENESIS_HASH;
    for (let seq = 1; seq <= 6; seq++) {
      const unhashed = { ...variants[seq % variants.length], seq, prevHash };
      const hash = await computeAuditHash(unhashed);
      chain.push({ ...unhashed, hash });
      prevHash = hash;
    }
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
      let prevHash = GENESIS_HASH;
      for (let seq = 1; seq <= 5; seq++) {
        const unhashed = { ...base, endpointId, seq, prevHash };
        const hash = await computeAuditHash(unhashed);
        rows.push({
          endpoint_id: endpointId, org_id: base.orgId, seq, at: base.at, kind: base.kind, actor_id: base.actorId, actor_name: base.actorName,
          actor_address: base.actorAddress, command_id: base.commandId, status: base.status, detail: base.detail, prev_hash: prevHash, hash,
        });
        prevHash = hash;
      }
    }
    (rows[7] as { detail: string }).detail = "{}"; // ep_b seq 3 edited
    const queries: string[] = [];
    // A tiny in-memory stand-in for `wrangler d1 execute`: honours the keyset and LIMIT the script sends.
    const read = (query: string) => {
      queries.push(query);
      const limit = Number(/LIMIT (\d+)/.exec(query)![1]);
      const keyset = /\(endpoint_id, seq\) > \('([^']+)', (\d+)\)/.exec(query);
      const after = keyset ? rows.findIndex((r) => r.endpoint_id === keyset[1] && r.seq === Number(keyset[2])) + 1 : 0;
      return rows.slice(after, after + limit);
    };
    const verdicts = script.verifyAllChains(read, { pageSize: 3 });
    expect(verdicts).toEqual([
      { endpointId: "ep_a", orgId: "org_unit", ok: true, checked: 5, lastHash: rows[4].hash },
      { endpointId: "ep_b", orgId: "org_unit", ok: false, checked: 2, brokenAtSeq: 3, reason: "contents do not match the event's hash (edited)" },
    ]);
    expect(queries).toHaveLength(4); // 10 rows in pages of 3
  });
});
