#!/usr/bin/env node
// Verifies every endpoint's audit chain in the LOCAL D1 replica (audit_events),
// with the same canonical payload and rules as protocol/audit.ts (reimplemented
// here with node:crypto; tests/unit/audit-verify.test.ts proves both agree).
// Prints one line per endpoint and the first broken link; exits 1 if any chain
// is broken, 2 if D1 could not be read.
//
//   npm run audit:verify -- [--state .wrangler/state] [--org ORG_ID] [--page 20000]
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const GENESIS_HASH = "0".repeat(64);

/** Identical to canonicalAuditPayload in protocol/audit.ts: every field but `hash`, in a fixed order. */
export function canonicalAuditPayload(event) {
  return JSON.stringify([
    event.endpointId,
    event.orgId,
    event.seq,
    event.at,
    event.kind,
    event.actorId,
    event.actorName,
    event.actorAddress,
    event.commandId,
    event.status,
    event.detail,
    event.prevHash,
  ]);
}

export function computeAuditHash(event) {
  return createHash("sha256").update(canonicalAuditPayload(event), "utf8").digest("hex");
}

/**
 * Incremental verifier for one chain, fed events in seq order (possibly across
 * pages); the same rules and messages as verifyAuditChain in protocol/audit.ts.
 */
export class ChainVerifier {
  constructor(previous = { seq: 0, hash: GENESIS_HASH }) {
    this.expectedSeq = previous.seq + 1;
    this.prevHash = previous.hash;
    this.checked = 0;
    this.broken = null;
  }

  /** Returns false once the chain is broken (further events are ignored). */
  push(event) {
    if (this.broken) return false;
    if (event.seq !== this.expectedSeq) {
      this.broken = { brokenAtSeq: this.expectedSeq, reason: `event ${this.expectedSeq} is missing (found ${event.seq})` };
    } else if (event.prevHash !== this.prevHash) {
      this.broken = { brokenAtSeq: event.seq, reason: "previous-hash link does not match the event before it" };
    } else if (computeAuditHash(event) !== event.hash) {
      this.broken = { brokenAtSeq: event.seq, reason: "contents do not match the event's hash (edited)" };
    }
    if (this.broken) return false;
    this.prevHash = event.hash;
    this.expectedSeq += 1;
    this.checked += 1;
    return true;
  }

  verdict() {
    return this.broken ? { ok: false, checked: this.checked, ...this.broken } : { ok: true, checked: this.checked, lastHash: this.prevHash };
  }
}

/** Verifies an array of events in seq order, like verifyAuditChain (synchronously). */
export function verifyChain(events, previous) {
  const verifier = new ChainVerifier(previous);
  for (const event of events) if (!verifier.push(event)) break;
  return verifier.verdict();
}

export function eventFromRow(row) {
  return {
    endpointId: row.endpoint_id,
    orgId: row.org_id,
    seq: row.seq,
    at: row.at,
    kind: row.kind,
    actorId: row.actor_id,
    actorName: row.actor_name,
    actorAddress: row.actor_address,
    commandId: row.command_id,
    status: row.status,
    detail: row.detail,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

const sqlString = (value) => `'${String(value).replace(/'/g, "''")}'`;

function createD1Reader(root, stateDir) {
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  return (query) => {
    const result = spawnSync(wrangler, ["d1", "execute", "caisey-db", "--local", "--persist-to", stateDir, "--json", "--command", query], {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 1024 * 1024 * 1024,
    });
    if (result.status !== 0) throw new Error(`wrangler d1 execute failed (exit ${result.status}):\n${result.stderr || result.stdout}`);
    const parsed = JSON.parse(result.stdout);
    return parsed.flatMap((statement) => statement.results ?? []);
  };
}

/**
 * Reads audit_events in (endpoint_id, seq) order with keyset pages and verifies
 * each endpoint's chain as it streams past. `read(sql)` returns result rows.
 */
export function verifyAllChains(read, { orgId = null, pageSize = 20000 } = {}) {
  const columns = "endpoint_id, org_id, seq, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash";
  const orgFilter = orgId ? `org_id = ${sqlString(orgId)}` : "1 = 1";
  const chains = new Map();
  let after = null;
  for (;;) {
    const keyset = after ? ` AND (endpoint_id, seq) > (${sqlString(after.endpointId)}, ${Number(after.seq)})` : "";
    const rows = read(`SELECT ${columns} FROM audit_events WHERE ${orgFilter}${keyset} ORDER BY endpoint_id, seq LIMIT ${pageSize}`);
    for (const row of rows) {
      let chain = chains.get(row.endpoint_id);
      if (!chain) chains.set(row.endpoint_id, (chain = { orgId: row.org_id, verifier: new ChainVerifier() }));
      chain.verifier.push(eventFromRow(row));
    }
    if (rows.length < pageSize) break;
    const last = rows[rows.length - 1];
    after = { endpointId: last.endpoint_id, seq: last.seq };
  }
  return [...chains].map(([endpointId, chain]) => ({ endpointId, orgId: chain.orgId, ...chain.verifier.verdict() }));
}

async function main() {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const { values: options } = parseArgs({
    options: {
      state: { type: "string", default: ".wrangler/state" },
      org: { type: "string" },
      page: { type: "string", default: "20000" },
      help: { type: "boolean", default: false },
    },
  });
  if (options.help) {
    console.log("Usage: npm run audit:verify -- [--state .wrangler/state] [--org ORG_ID] [--page 20000]");
    return 0;
  }
  const stateDir = resolve(root, options.state);
  const started = Date.now();
  let verdicts;
  try {
    verdicts = verifyAllChains(createD1Reader(root, stateDir), { orgId: options.org ?? null, pageSize: Math.max(1, Number(options.page) || 20000) });
  } catch (error) {
    console.error(`audit:verify could not read audit_events from the local D1 in ${stateDir}:\n${error.message}`);
    return 2;
  }
  const events = verdicts.reduce((n, v) => n + v.checked, 0);
  for (const v of verdicts) {
    console.log(v.ok ? `ok      ${v.endpointId} (${v.orgId}): ${v.checked} events` : `BROKEN  ${v.endpointId} (${v.orgId}): at seq ${v.brokenAtSeq}: ${v.reason} (${v.checked} events verified before it)`);
  }
  const broken = verdicts.filter((v) => !v.ok);
  const scope = options.org ? ` of ${options.org}` : "";
  if (verdicts.length === 0) console.log(`No audit events${scope} in ${stateDir}.`);
  else if (broken.length === 0) console.log(`Audit chains intact: ${verdicts.length} endpoint${verdicts.length === 1 ? "" : "s"}${scope}, ${events} events (${Date.now() - started} ms).`);
  else {
    const first = broken[0];
    console.log(`First broken link: ${first.endpointId} seq ${first.brokenAtSeq}: ${first.reason}`);
    console.log(`${broken.length} of ${verdicts.length} chains${scope} broken.`);
  }
  return broken.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
