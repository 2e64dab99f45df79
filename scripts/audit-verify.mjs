#!/usr/bin/env node
// Verifies every endpoint's audit trail in the LOCAL state (docs/decisions/0005
// and 0008):
//   1. the chain in the D1 replica (audit_events) is intact;
//   2. the replica ends exactly at the session's checkpoint (audit_checkpoints),
//      whose HMAC is valid under AUDIT_MAC_KEY: a replica rewritten with
//      recomputed hashes, or with its tail deleted, no longer matches it;
//   3. the replica reaches the head each session Durable Object itself holds
//      (its SQLite under <state>/v3/do): a tail deleted together with the
//      checkpoint rolled back to an older, genuine one is still caught;
//   4. each tenant's directory_audit chain in D1 (admin changes to clients and
//      endpoint details, docs/decisions/0022) is intact (a chain alone: it has
//      no checkpoint, so a deleted tail is not detectable there).
// The hashing and MAC are the ones in protocol/audit.ts, reimplemented here
// with node:crypto; tests/unit/audit-verify.test.ts proves both agree.
// Prints one line per endpoint as it is checked; exits 1 if any is broken,
// 2 on usage errors or when the state cannot be read.
//
// With --remote [--env production|preview] it reads the deployed environment's D1
// through `wrangler d1 execute --remote --json` (checks 1 and 2; a Durable
// Object's storage cannot be read from outside, so 3 is skipped and says so).
//
//   npm run audit:verify -- [--state .wrangler/state] [--org ORG_ID] [--page 20000]
//                           [--key-file FILE] [--no-sessions]
// The key comes from --key-file, else $AUDIT_MAC_KEY, else workers/session/.dev.vars.
import { spawnSync } from "node:child_process";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseDotenv, SESSION_DEV_VARS_PATH } from "./dev-keys.mjs";

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
  constructor(previous = { seq: 0, hash: GENESIS_HASH }, hashOf = computeAuditHash) {
    this.hashOf = hashOf;
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
    } else if (this.hashOf(event) !== event.hash) {
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

/** Identical to `canonical` in app/models/directory-audit.server.ts: every column but `hash`, in a fixed order. */
export function canonicalDirectoryAuditPayload(row) {
  return JSON.stringify([row.orgId, row.seq, row.at, row.kind, row.actorId, row.actorName, row.actorAddress, row.subjectType, row.subjectId, row.detail, row.prevHash]);
}

export function computeDirectoryAuditHash(row) {
  return createHash("sha256").update(canonicalDirectoryAuditPayload(row), "utf8").digest("hex");
}

const DIRECTORY_COLUMNS = "org_id, seq, at, kind, actor_id, actor_name, actor_address, subject_type, subject_id, detail, prev_hash, hash";

/**
 * Verifies every tenant's directory_audit chain (ADR 0022), keyset-paged by
 * (org_id, seq) like the endpoint chains, locally or remotely through the same
 * `read`. Returns [{ orgId, ok, checked, brokenAtSeq?, reason? }] by org id.
 */
export async function verifyDirectoryChains(read, { orgId = null, pageSize = 20000 } = {}) {
  const orgFilter = orgId ? `org_id = ${sqlString(orgId)}` : "1 = 1";
  const chains = new Map();
  let after = null;
  for (;;) {
    const keyset = after ? ` AND (org_id, seq) > (${sqlString(after.orgId)}, ${Number(after.seq)})` : "";
    const rows = await read(`SELECT ${DIRECTORY_COLUMNS} FROM directory_audit WHERE ${orgFilter}${keyset} ORDER BY org_id, seq LIMIT ${pageSize}`);
    for (const row of rows) {
      if (!chains.has(row.org_id)) chains.set(row.org_id, new ChainVerifier(undefined, computeDirectoryAuditHash));
      chains.get(row.org_id).push({
        orgId: row.org_id,
        seq: Number(row.seq),
        at: Number(row.at),
        kind: row.kind,
        actorId: row.actor_id,
        actorName: row.actor_name,
        actorAddress: row.actor_address ?? null,
        subjectType: row.subject_type,
        subjectId: row.subject_id,
        detail: row.detail,
        prevHash: row.prev_hash,
        hash: row.hash,
      });
    }
    if (rows.length < pageSize) break;
    const last = rows[rows.length - 1];
    after = { orgId: last.org_id, seq: last.seq };
  }
  return [...chains].sort(([a], [b]) => (a < b ? -1 : 1)).map(([org, verifier]) => ({ orgId: org, ...verifier.verdict() }));
}

/** Identical to AUDIT_MAC_KEY_MIN_LENGTH / auditMacKeyProblem in protocol/audit.ts. */
export const AUDIT_MAC_KEY_MIN_LENGTH = 32;
export function auditMacKeyProblem(key) {
  if (!key) return "AUDIT_MAC_KEY is not set";
  if (key.length < AUDIT_MAC_KEY_MIN_LENGTH) return `AUDIT_MAC_KEY is shorter than ${AUDIT_MAC_KEY_MIN_LENGTH} characters`;
  return null;
}

/** Identical to canonicalCheckpointPayload in protocol/audit.ts. */
export function canonicalCheckpointPayload(checkpoint) {
  return JSON.stringify(["caisey.audit-checkpoint.v1", checkpoint.endpointId, checkpoint.orgId, checkpoint.seq, checkpoint.hash, checkpoint.at]);
}

/** Identical to computeCheckpointMac in protocol/audit.ts: HMAC-SHA256 with the key's UTF-8 bytes, hex. */
export function computeCheckpointMac(key, checkpoint) {
  return createHmac("sha256", Buffer.from(key, "utf8")).update(canonicalCheckpointPayload(checkpoint), "utf8").digest("hex");
}

export function checkpointMacValid(key, checkpoint, mac) {
  const expected = Buffer.from(computeCheckpointMac(key, checkpoint), "utf8");
  const given = Buffer.from(String(mac ?? ""), "utf8");
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Identical to canonicalPruneAnchorPayload in protocol/audit.ts (docs/decisions/0029-retention.md). */
export function canonicalPruneAnchorPayload(anchor) {
  return JSON.stringify(["caisey.audit-prune-anchor.v1", anchor.endpointId, anchor.orgId, anchor.seq, anchor.hash, anchor.at, anchor.archiveKey]);
}

export function pruneAnchorMacValid(key, anchor, mac) {
  const expected = Buffer.from(createHmac("sha256", Buffer.from(key, "utf8")).update(canonicalPruneAnchorPayload(anchor), "utf8").digest("hex"), "utf8");
  const given = Buffer.from(String(mac ?? ""), "utf8");
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Map endpointId -> prune anchor row (where the replica starts after archiving), for all endpoints or one org's. */
export async function readAnchors(read, { orgId = null } = {}) {
  const rows = await read(`SELECT endpoint_id, org_id, seq, hash, at, archive_key, mac FROM audit_prune_anchors${orgId ? ` WHERE org_id = ${sqlString(orgId)}` : ""}`);
  return new Map(rows.map((row) => [row.endpoint_id, row]));
}

const anchorStart = (anchor) => (anchor ? { seq: Number(anchor.seq), hash: anchor.hash } : undefined);

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

/** The `wrangler d1 execute` arguments for one query on a deployed environment's D1, as named in wrangler.toml's [env.<env>]. */
function remoteD1ExecuteArgs(query, target) {
  return ["d1", "execute", target.database, "--remote", "--env", target.env, "-c", "wrangler.toml", "--json", "--command", query];
}

/** The D1 database name of a deployed environment, read with wrangler's own parser. */
export async function remoteDatabaseName(root, env) {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: join(root, "wrangler.toml"), env }, { hideWarnings: true });
  const db = config.d1_databases.find((d) => d.binding === "DB");
  if (!db) throw new Error(`wrangler.toml [env.${env}] binds no D1 database as DB`);
  return db.database_name;
}

/** Remote D1 through `wrangler d1 execute --remote` (one process per query: paging keeps them few). */
function createRemoteD1Reader(root, target) {
  // scripts/deploy.mjs's convention: tests stand in for Cloudflare with CAISEY_DEPLOY_WRANGLER.
  const wrangler = process.env.CAISEY_DEPLOY_WRANGLER ?? join(root, "node_modules", ".bin", "wrangler");
  const read = async (query) => {
    const result = spawnSync(wrangler, remoteD1ExecuteArgs(query, target), {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 1024 * 1024 * 1024,
    });
    if (result.status !== 0) throw new Error(`wrangler d1 execute failed (exit ${result.status}):\n${result.stderr || result.stdout}`);
    // Remote runs may print a banner before the JSON.
    const parsed = JSON.parse(result.stdout.slice(Math.max(0, result.stdout.search(/[[{]/))));
    return parsed.flatMap((statement) => statement.results ?? []);
  };
  return { read, close: async () => {} };
}

/**
 * The local D1 of `npm run dev` (`<state>/v3/d1`, where wrangler persists it), opened once with Miniflare, as
 * wrangler itself does for `d1 execute --local`; one workerd for the whole run instead of one wrangler per query.
 * Also what tests/unit/fixtures/remote-d1-as-local.mjs answers a stand-in remote query from.
 */
export async function createLocalD1Reader(root, stateDir) {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: join(root, "wrangler.toml") }, { hideWarnings: true });
  const binding = config.d1_databases.find((d) => d.binding === "DB");
  if (!binding) throw new Error("wrangler.toml binds no D1 database as DB");
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null, { status: 404 }); } }",
    compatibilityDate: "2026-04-20",
    d1Databases: { DB: binding.preview_database_id ?? binding.database_id },
    d1Persist: join(stateDir, "v3", "d1"),
  });
  try {
    const db = await mf.getD1Database("DB");
    return { read: async (query) => (await db.prepare(query).all()).results, close: () => mf.dispose() };
  } catch (error) {
    await mf.dispose();
    throw error;
  }
}

const EVENT_COLUMNS = "endpoint_id, org_id, seq, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash";

/**
 * Reads audit_events in (endpoint_id, seq) order with keyset pages and feeds
 * each endpoint's chain to its own verifier as it streams past.
 * Returns Map endpointId -> { orgId, verifier }.
 */
export async function readAllChains(read, { orgId = null, pageSize = 20000, anchors = new Map(), onProgress = () => {} } = {}) {
  const orgFilter = orgId ? `org_id = ${sqlString(orgId)}` : "1 = 1";
  const chains = new Map();
  let after = null;
  let eventsRead = 0;
  for (;;) {
    const keyset = after ? ` AND (endpoint_id, seq) > (${sqlString(after.endpointId)}, ${Number(after.seq)})` : "";
    const rows = await read(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE ${orgFilter}${keyset} ORDER BY endpoint_id, seq LIMIT ${pageSize}`);
    for (const row of rows) {
      let chain = chains.get(row.endpoint_id);
      // A pruned replica starts after its anchor, not at the genesis.
      if (!chain) chains.set(row.endpoint_id, (chain = { orgId: row.org_id, verifier: new ChainVerifier(anchorStart(anchors.get(row.endpoint_id))) }));
      chain.verifier.push(eventFromRow(row));
    }
    eventsRead += rows.length;
    onProgress({ events: eventsRead, endpoints: chains.size });
    if (rows.length < pageSize) break;
    const last = rows[rows.length - 1];
    after = { endpointId: last.endpoint_id, seq: last.seq };
  }
  return chains;
}

/** Verifies every chain in the replica (the chain alone: no checkpoint, no session). */
export async function verifyAllChains(read, options) {
  return [...(await readAllChains(read, options))].map(([endpointId, chain]) => ({ endpointId, orgId: chain.orgId, ...chain.verifier.verdict() }));
}

/**
 * Feeds the given chains the events written after the ones they have seen (a
 * batch that landed while we read), in one keyset-paged query.
 */
async function readChainTails(read, verifiers, pageSize) {
  const live = [...verifiers].filter(([, verifier]) => !verifier.broken);
  if (live.length === 0) return;
  const since = live.map(([endpointId, verifier]) => `(endpoint_id = ${sqlString(endpointId)} AND seq > ${Number(verifier.expectedSeq - 1)})`).join(" OR ");
  let after = null;
  for (;;) {
    const keyset = after ? ` AND (endpoint_id, seq) > (${sqlString(after.endpointId)}, ${Number(after.seq)})` : "";
    const rows = await read(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE (${since})${keyset} ORDER BY endpoint_id, seq LIMIT ${pageSize}`);
    for (const row of rows) verifiers.get(row.endpoint_id)?.push(eventFromRow(row));
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1];
    after = { endpointId: last.endpoint_id, seq: last.seq };
  }
}

/** Map endpointId -> checkpoint row, for all endpoints (of one org) or the given ones. */
export async function readCheckpoints(read, { orgId = null, endpointIds = null } = {}) {
  const filters = [
    orgId ? `org_id = ${sqlString(orgId)}` : null,
    endpointIds ? `endpoint_id IN (${endpointIds.map(sqlString).join(", ")})` : null,
  ].filter(Boolean);
  const rows = await read(`SELECT endpoint_id, org_id, seq, hash, at, mac FROM audit_checkpoints${filters.length ? ` WHERE ${filters.join(" AND ")}` : ""}`);
  return new Map(rows.map((row) => [row.endpoint_id, row]));
}

/**
 * Judges one endpoint. `replica` is its chain verdict (null when the replica
 * has no events for it), `checkpoint` its audit_checkpoints row, `session` what
 * its Durable Object holds ({ head, rows }, see readSessionHeads) or null when
 * no session state was found, and `sessionsChecked` false under --no-sessions.
 * Returns { ok, problems, notes }.
 */
export function assessEndpoint({ endpointId, orgId, replica, checkpoint, anchor = null, session, sessionsChecked, key }) {
  const problems = [];
  const notes = [];
  if (anchor) {
    const signed = { endpointId, orgId: anchor.org_id, seq: Number(anchor.seq), hash: anchor.hash, at: Number(anchor.at), archiveKey: anchor.archive_key };
    if (!pruneAnchorMacValid(key, signed, anchor.mac)) {
      problems.push(`prune anchor at seq ${signed.seq} has no valid MAC under AUDIT_MAC_KEY (forged or altered, or a different key)`);
      return { ok: false, problems, notes };
    }
    if (orgId && anchor.org_id !== orgId) {
      problems.push(`prune anchor belongs to org ${anchor.org_id}, the events to ${orgId}`);
      return { ok: false, problems, notes };
    }
    notes.push(`archived through seq ${signed.seq} (${signed.archiveKey})`);
  }
  if (replica && !replica.ok) {
    problems.push(`chain broken at seq ${replica.brokenAtSeq}: ${replica.reason} (${replica.checked} events verified before it)`);
    return { ok: false, problems, notes };
  }
  // A verified chain holds seqs anchor+1..lastSeq (the anchor is the genesis, seq 0, when nothing was archived).
  const lastSeq = (anchor ? Number(anchor.seq) : 0) + (replica ? replica.checked : 0);
  const lastHash = replica ? replica.lastHash : anchor ? anchor.hash : GENESIS_HASH;

  if (!checkpoint) {
    if (lastSeq > 0) problems.push("no session checkpoint covers these events (checkpoint row deleted, or events written by someone else)");
  } else {
    const signed = { endpointId, orgId: checkpoint.org_id, seq: Number(checkpoint.seq), hash: checkpoint.hash, at: Number(checkpoint.at) };
    if (!checkpointMacValid(key, signed, checkpoint.mac)) {
      problems.push(`checkpoint at seq ${signed.seq} has no valid MAC under AUDIT_MAC_KEY (forged or altered, or a different key)`);
    } else if (replica && checkpoint.org_id !== orgId) {
      problems.push(`checkpoint belongs to org ${checkpoint.org_id}, the events to ${orgId}`);
    } else if (lastSeq < signed.seq) {
      problems.push(`replica ends at seq ${lastSeq} but the session checkpointed seq ${signed.seq} (events deleted)`);
    } else if (lastSeq > signed.seq) {
      problems.push(`replica has events after the session's checkpoint at seq ${signed.seq} (events added)`);
    } else if (lastHash !== signed.hash) {
      problems.push(`replica does not match the session's checkpoint at seq ${signed.seq} (events rewritten)`);
    }
  }

  if (!sessionsChecked) {
    notes.push("session head not checked (--no-sessions)");
  } else if (!session) {
    notes.push("session head not checked: no session state for this endpoint here");
  } else {
    const head = session.head;
    const sessionHashes = new Map(session.rows.map((row) => [Number(row.seq), row.hash]));
    const sessionLast = session.rows.length ? Number(session.rows[session.rows.length - 1].seq) : (head?.seq ?? 0);
    if (head && lastSeq < head.seq) {
      problems.push(`replica ends at seq ${lastSeq} but the session's own replicated head is seq ${head.seq} (events deleted)`);
    } else if (lastSeq > 0 && !sessionHashes.has(lastSeq)) {
      problems.push(`replica has seq ${lastSeq} but the session's chain ends at seq ${sessionLast} (events added)`);
    } else if (lastSeq > 0 && sessionHashes.get(lastSeq) !== lastHash) {
      problems.push(`replica differs from the session's own chain at seq ${lastSeq} (events rewritten)`);
    } else {
      notes.push(`session head seq ${head?.seq ?? 0}`);
      const pending = session.rows.filter((row) => Number(row.seq) > lastSeq).length;
      if (pending) notes.push(`${pending} not yet replicated`);
    }
  }
  return { ok: problems.length === 0, problems, notes };
}

/**
 * Verifies the replica, its checkpoints and (unless `sessions` is null) the
 * session heads. `sessions` should be read BEFORE this runs, so the replica is
 * at least as new as them; checkpoints are read after the events, and an
 * endpoint that disagrees is read once more, in case a batch landed meanwhile
 * (events and checkpoint are committed together).
 */
export async function verifyAudit({ read, key, sessions = null, orgId = null, pageSize = 20000, onEndpoint = () => {}, onProgress = () => {} }) {
  const anchors = await readAnchors(read, { orgId });
  const chains = await readAllChains(read, { orgId, pageSize, anchors, onProgress: ({ events, endpoints }) => onProgress(events, endpoints) });
  const checkpoints = await readCheckpoints(read, { orgId });
  const sessionsById = new Map();
  const results = [];
  for (const session of sessions ?? []) {
    if (!session.endpointId) {
      if (session.events > 0) {
        const result = { endpointId: null, sessionId: session.id, ok: true, problems: [], notes: [`session ${session.id} has ${session.events} audit events but no recorded endpoint id (written before checkpoints): not compared`] };
        results.push(result);
        onEndpoint(result);
      }
      continue;
    }
    if (orgId && session.orgId !== orgId) continue;
    sessionsById.set(session.endpointId, session);
  }
  const endpointIds = [...new Set([...chains.keys(), ...checkpoints.keys(), ...anchors.keys(), ...[...sessionsById].filter(([, s]) => s.events > 0).map(([id]) => id)])].sort();
  const orgOf = (endpointId) => chains.get(endpointId)?.orgId ?? checkpoints.get(endpointId)?.org_id ?? anchors.get(endpointId)?.org_id ?? sessionsById.get(endpointId)?.orgId ?? null;
  const judge = (endpointId) =>
    assessEndpoint({
      endpointId,
      orgId: orgOf(endpointId),
      replica: chains.get(endpointId)?.verifier.verdict() ?? null,
      checkpoint: checkpoints.get(endpointId) ?? null,
      anchor: anchors.get(endpointId) ?? null,
      session: sessionsById.get(endpointId) ?? null,
      sessionsChecked: sessions !== null,
      key,
    });
  const disagreeing = endpointIds.filter((endpointId) => !chains.get(endpointId)?.verifier.broken && !judge(endpointId).ok);
  if (disagreeing.length > 0) {
    const verifiers = new Map();
    for (const endpointId of disagreeing) {
      if (!chains.has(endpointId)) chains.set(endpointId, { orgId: orgOf(endpointId), verifier: new ChainVerifier(anchorStart(anchors.get(endpointId))) });
      verifiers.set(endpointId, chains.get(endpointId).verifier);
    }
    await readChainTails(read, verifiers, pageSize);
    for (const endpointId of disagreeing) {
      if (chains.get(endpointId).verifier.checked === 0 && !chains.get(endpointId).verifier.broken) chains.delete(endpointId);
    }
    const fresh = await readCheckpoints(read, { endpointIds: disagreeing });
    for (const endpointId of disagreeing) {
      if (fresh.has(endpointId)) checkpoints.set(endpointId, fresh.get(endpointId));
      else checkpoints.delete(endpointId);
    }
  }
  for (const endpointId of endpointIds) {
    const chain = chains.get(endpointId);
    const result = { endpointId, orgId: orgOf(endpointId), events: chain ? chain.verifier.checked : 0, ...judge(endpointId) };
    results.push(result);
    onEndpoint(result);
  }
  return results;
}

// The session worker's Durable Objects as `wrangler dev --persist-to <state>`
// keeps them: <state>/v3/do/<worker name>-<class name>/<object id>.sqlite.
export const SESSION_DO_DIR = join("v3", "do", "caisey-session-EndpointSession");

/**
 * A stand-in class under the session's own worker and class name, so workerd
 * opens each persisted object's SQLite exactly as the real session does, and
 * reads only: whose chain it is, the head D1 acknowledged, and the events
 * from that head on.
 */
const SESSION_READER = `
export class EndpointSession {
  constructor(ctx) { this.ctx = ctx; }
  async fetch() {
    const sql = this.ctx.storage.sql;
    const tables = new Set(sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((r) => r.name));
    if (!tables.has("audit_log") || !tables.has("runtime_state")) return Response.json({ endpointId: null, orgId: null, head: null, rows: [], events: 0 });
    const meta = (key) => sql.exec("SELECT value FROM runtime_state WHERE key = ?", key).toArray()[0]?.value || null;
    const anchor = meta("audit_prune_anchor");
    const head = sql.exec("SELECT seq, hash FROM audit_log WHERE replicated = 1 ORDER BY seq DESC LIMIT 1").toArray()[0] ?? (anchor ? JSON.parse(anchor) : null);
    const rows = sql.exec("SELECT seq, hash FROM audit_log WHERE seq >= ? ORDER BY seq", head ? head.seq : 0).toArray();
    const events = sql.exec("SELECT COUNT(*) AS n FROM audit_log").one().n;
    return Response.json({ endpointId: meta("endpoint_id"), orgId: meta("org_id"), head, rows, events });
  }
  async alarm() {}
}
export default {
  async fetch(request, env) {
    const out = [];
    for (const id of await request.json()) {
      const stub = env.SESSIONS.get(env.SESSIONS.idFromString(id));
      out.push({ id, ...(await (await stub.fetch("http://session/")).json()) });
    }
    return Response.json(out);
  }
};`;

/**
 * What each session Durable Object under `stateDir` holds, read from a copy of
 * its SQLite (so a running dev server is neither disturbed nor locked out).
 * Returns [] when there are none.
 */
export async function readSessionHeads(stateDir) {
  const source = join(stateDir, SESSION_DO_DIR);
  if (!existsSync(source)) return [];
  const ids = readdirSync(source).filter((name) => /^[0-9a-f]{64}\.sqlite$/.test(name)).map((name) => basename(name, ".sqlite"));
  if (ids.length === 0) return [];
  const copy = mkdtempSync(join(tmpdir(), "caisey-audit-verify-"));
  cpSync(source, join(copy, basename(SESSION_DO_DIR)), { recursive: true });
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    name: "caisey-session",
    modules: true,
    script: SESSION_READER,
    compatibilityDate: "2026-04-20",
    durableObjects: { SESSIONS: { className: "EndpointSession", useSQLite: true } },
    durableObjectsPersist: copy,
  });
  try {
    const response = await mf.dispatchFetch("http://reader/", { method: "POST", body: JSON.stringify(ids) });
    if (!response.ok) throw new Error(`reading session state failed: ${response.status} ${await response.text()}`);
    return await response.json();
  } finally {
    await mf.dispose();
    rmSync(copy, { recursive: true, force: true });
  }
}

/**
 * The key from --key-file, else $AUDIT_MAC_KEY, else the session worker's .dev.vars (as wrangler parses it).
 *
 * @param {string} root
 * @param {{ keyFile?: string | null, env?: Record<string, string | undefined> }} [options]
 * @returns {{ key: string | null, source: string | null }}
 */
export function loadMacKey(root, { keyFile = null, env = process.env } = {}) {
  if (keyFile) return { key: readFileSync(keyFile, "utf8").trim(), source: keyFile };
  if (env.AUDIT_MAC_KEY) return { key: env.AUDIT_MAC_KEY, source: "$AUDIT_MAC_KEY" };
  const devVars = join(root, SESSION_DEV_VARS_PATH);
  if (existsSync(devVars)) {
    const key = parseDotenv(readFileSync(devVars, "utf8")).AUDIT_MAC_KEY;
    if (key !== undefined) return { key, source: devVars };
  }
  return { key: null, source: null };
}

const USAGE =
  "Usage: npm run audit:verify -- [--state .wrangler/state] [--org ORG_ID] [--page 20000] [--key-file FILE] [--no-sessions]\n" +
  "       npm run audit:verify -- --remote [--env production|preview] [--org ORG_ID] [--page 20000] [--key-file FILE]";

export async function main(argv = process.argv.slice(2), { root = resolve(dirname(fileURLToPath(import.meta.url)), ".."), env = process.env } = {}) {
  let options;
  try {
    ({ values: options } = parseArgs({
      args: argv,
      options: {
        state: { type: "string", default: ".wrangler/state" },
        org: { type: "string" },
        page: { type: "string", default: "20000" },
        "key-file": { type: "string" },
        "no-sessions": { type: "boolean", default: false },
        remote: { type: "boolean", default: false },
        env: { type: "string", default: "production" },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const pageSize = Number(options.page);
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    console.error(`--page must be a positive integer.\n${USAGE}`);
    return 2;
  }
  const remote = options.remote;
  if (remote && !["production", "preview"].includes(options.env)) {
    console.error(`--env must be production or preview.\n${USAGE}`);
    return 2;
  }
  let key;
  let keySource;
  try {
    ({ key, source: keySource } = loadMacKey(root, { keyFile: options["key-file"] ? resolve(options["key-file"]) : null, env }));
  } catch (error) {
    console.error(`audit:verify could not read the key file: ${error.message}`);
    return 2;
  }
  if (remote && keySource === join(root, SESSION_DEV_VARS_PATH)) {
    // The local development key can only ever match local checkpoints.
    key = null;
    keySource = null;
  }
  const keyProblem = auditMacKeyProblem(key);
  if (keyProblem) {
    console.error(
      `audit:verify needs the session's AUDIT_MAC_KEY to check checkpoints: ${keyProblem}${keySource ? ` (from ${keySource})` : ""}.\n` +
        (remote
          ? `Pass --key-file FILE or set AUDIT_MAC_KEY to the ${options.env} session worker's secret (from your secret store: Cloudflare never shows it again).`
          : "Pass --key-file FILE, set AUDIT_MAC_KEY, or run `npm run dev` once to write workers/session/.dev.vars."),
    );
    return 2;
  }
  const stateDir = resolve(root, options.state);
  let target = { stateDir };
  let place = stateDir;
  if (remote) {
    try {
      target = { remote: true, env: options.env, database: await remoteDatabaseName(root, options.env) };
    } catch (error) {
      console.error(`audit:verify could not read wrangler.toml [env.${options.env}]: ${error.message}`);
      return 2;
    }
    place = `remote D1 ${target.database} (${options.env})`;
    // A Durable Object's storage is reachable only from its own class: remotely, the replica is checked
    // against the MAC-signed checkpoints alone (a rolled-back checkpoint with its tail deleted is not caught).
    options["no-sessions"] = true;
    console.log(`Reading ${place} through wrangler; session heads are not readable remotely and are not checked.`);
  }
  const started = Date.now();
  const scope = options.org ? ` of ${options.org}` : "";

  let sessions = null;
  if (!options["no-sessions"]) {
    try {
      sessions = await readSessionHeads(stateDir);
    } catch (error) {
      console.error(`audit:verify could not read the session state in ${join(stateDir, SESSION_DO_DIR)}:\n${error.message}\n(--no-sessions skips the session head check)`);
      return 2;
    }
    console.log(`Read ${sessions.length} session${sessions.length === 1 ? "" : "s"} from ${join(stateDir, SESSION_DO_DIR)}.`);
  }

  let results;
  let directory;
  let reader;
  try {
    reader = remote ? createRemoteD1Reader(root, target) : await createLocalD1Reader(root, stateDir);
    const { read } = reader;
    results = await verifyAudit({
      read,
      key,
      sessions,
      orgId: options.org ?? null,
      pageSize,
      // Progress on stderr, so stdout stays the verdicts alone; a page of events at a time.
      onProgress(events, endpoints) {
        process.stderr.write(`read ${events} audit events of ${endpoints} endpoint${endpoints === 1 ? "" : "s"}…\n`);
      },
      onEndpoint(r) {
        const who = r.endpointId ? `${r.endpointId} (${r.orgId})` : `session ${r.sessionId}`;
        if (r.ok) console.log(`${r.endpointId ? "ok    " : "warn  "}  ${who}${r.endpointId ? `: ${r.events} events` : ""}${r.notes.length ? `; ${r.notes.join("; ")}` : ""}`);
        else console.log(`BROKEN  ${who}: ${r.problems.join("; ")}`);
      },
    });
    directory = await verifyDirectoryChains(read, { orgId: options.org ?? null, pageSize });
    for (const d of directory) {
      if (d.ok) console.log(`ok      directory audit of ${d.orgId}: ${d.checked} events`);
      else console.log(`BROKEN  directory audit of ${d.orgId}: at seq ${d.brokenAtSeq}: ${d.reason} (${d.checked} events intact before it)`);
    }
  } catch (error) {
    console.error(`audit:verify could not read the ${remote ? place : `local D1 in ${stateDir}`}:\n${error.message}`);
    return 2;
  } finally {
    await reader?.close();
  }
  const endpoints = results.filter((r) => r.endpointId);
  const broken = endpoints.filter((r) => !r.ok);
  const events = endpoints.reduce((n, r) => n + r.events, 0);
  const headNote = sessions === null ? ` Session heads NOT checked (${remote ? "remote" : "--no-sessions"}): a deleted tail with a rolled-back checkpoint would go unnoticed.` : "";
  if (endpoints.length === 0) console.log(`No audit events${scope} in ${place}.${headNote}`);
  else if (broken.length === 0) console.log(`Audit trails intact: ${endpoints.length} endpoint${endpoints.length === 1 ? "" : "s"}${scope}, ${events} events (${Date.now() - started} ms).${headNote}`);
  else console.log(`${broken.length} of ${endpoints.length} audit trails${scope} broken.${headNote}`);
  const brokenDirectory = directory.filter((d) => !d.ok);
  if (directory.length === 0) console.log(`No directory audit events${scope}.`);
  else if (brokenDirectory.length === 0) console.log(`Directory audit chains intact: ${directory.length} tenant${directory.length === 1 ? "" : "s"}, ${directory.reduce((n, d) => n + d.checked, 0)} events.`);
  else console.log(`${brokenDirectory.length} of ${directory.length} directory audit chains broken: ${brokenDirectory.map((d) => d.orgId).join(", ")}.`);
  return broken.length || brokenDirectory.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
