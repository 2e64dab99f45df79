// Tenant-wide verification of the audit chains in the D1 replica, for the NOC
// review page (npm run audit:verify checks MACs and the sessions' own heads too).
import { sql } from "drizzle-orm";
import type { Database } from "~/db/client.server";
import { auditEventFromRow, compareReplicaToCheckpoint, GENESIS_HASH, verifyAuditChain, type AuditRow } from "@protocol/audit";

/** Events read per query while walking one chain. */
export const VERIFY_PAGE_SIZE = 1000;

export type EndpointChainVerdict =
  | { endpointId: string; hostname: string; ok: true; checked: number }
  | { endpointId: string; hostname: string; ok: false; checked: number; brokenAtSeq: number; reason: string };

/**
 * Verifies every endpoint chain of the tenant in the D1 replica with
 * verifyAuditChain, reading each chain in seq order VERIFY_PAGE_SIZE events at
 * a time, then compares each with the checkpoint its session wrote in the same
 * batch (compareReplicaToCheckpoint), which catches a rewritten chain with
 * recomputed hashes or a deleted tail. This page does not hold AUDIT_MAC_KEY,
 * so it cannot tell a forged checkpoint, and it accepts chains without one
 * (replicated before checkpoints existed): `npm run audit:verify` checks MACs
 * and the sessions' own heads. Broken chains come first, then by hostname.
 */
export async function verifyTenantAuditChains(
  db: Database,
  orgId: string,
  pageSize = VERIFY_PAGE_SIZE,
): Promise<EndpointChainVerdict[]> {
  const chains = await db.all<{ endpoint_id: string; hostname: string }>(sql`
    select c.endpoint_id, coalesce(en.hostname, c.endpoint_id) as hostname
    from (select endpoint_id from audit_events where org_id = ${orgId}
          union select endpoint_id from audit_checkpoints where org_id = ${orgId}
          union select endpoint_id from audit_prune_anchors where org_id = ${orgId}) c
    left join endpoints en on en.id = c.endpoint_id and en.org_id = ${orgId}`);

  type Progress = { endpointId: string; hostname: string; previous: { seq: number; hash: string }; checked: number; broken: { brokenAtSeq: number; reason: string } | null };

  /** Reads and verifies the chain past `progress.previous`, page by page. */
  const readOn = async (progress: Progress) => {
    while (!progress.broken) {
      const rows = await db.all<AuditRow>(sql`
        select endpoint_id, org_id, seq, at, kind, actor_id, actor_name, actor_address, command_id, status, detail, prev_hash, hash
        from audit_events
        where endpoint_id = ${progress.endpointId} and org_id = ${orgId} and seq > ${progress.previous.seq}
        order by seq limit ${pageSize}`);
      if (rows.length === 0) return;
      const result = await verifyAuditChain(rows.map((row) => auditEventFromRow(row)), progress.previous);
      progress.checked += result.checked;
      if (!result.ok) progress.broken = { brokenAtSeq: result.brokenAtSeq, reason: result.reason };
      else progress.previous = { seq: rows[rows.length - 1].seq, hash: result.lastHash };
      if (rows.length < pageSize) return;
    }
  };

  const checkpointOf = async (endpointId: string) =>
    (await db.all<{ seq: number; hash: string }>(sql`
      select seq, hash from audit_checkpoints where endpoint_id = ${endpointId} and org_id = ${orgId}`))[0] ?? null;

  /** A chain without a checkpoint passes here (see above); one with a checkpoint must end exactly at it. */
  const checkpointProblem = (progress: Progress, checkpoint: { seq: number; hash: string } | null) => {
    if (!checkpoint) return null;
    const verdict = compareReplicaToCheckpoint({ lastSeq: progress.previous.seq, lastHash: progress.previous.hash }, checkpoint);
    if (verdict.ok) return null;
    const brokenAtSeq = progress.previous.seq < checkpoint.seq ? progress.previous.seq + 1 : progress.previous.seq > checkpoint.seq ? checkpoint.seq + 1 : checkpoint.seq;
    return { brokenAtSeq, reason: verdict.reason };
  };

  /** Where an archived and pruned replica starts (ADR 0029); its MAC is checked by `npm run audit:verify`, like checkpoints'. */
  const anchorOf = async (endpointId: string) =>
    (await db.all<{ seq: number; hash: string }>(sql`
      select seq, hash from audit_prune_anchors where endpoint_id = ${endpointId} and org_id = ${orgId}`))[0] ?? { seq: 0, hash: GENESIS_HASH };

  const verdicts: EndpointChainVerdict[] = [];
  for (const chain of chains) {
    const progress: Progress = { endpointId: chain.endpoint_id, hostname: chain.hostname, previous: await anchorOf(chain.endpoint_id), checked: 0, broken: null };
    await readOn(progress);
    if (!progress.broken) {
      let problem = checkpointProblem(progress, await checkpointOf(chain.endpoint_id));
      if (problem) {
        // A batch (events and checkpoint, committed together) may have landed since the chain was read.
        await readOn(progress);
        problem = progress.broken ? null : checkpointProblem(progress, await checkpointOf(chain.endpoint_id));
      }
      progress.broken ??= problem;
    }
    verdicts.push(
      progress.broken
        ? { endpointId: chain.endpoint_id, hostname: chain.hostname, ok: false, checked: progress.checked, ...progress.broken }
        : { endpointId: chain.endpoint_id, hostname: chain.hostname, ok: true, checked: progress.checked },
    );
  }
  return verdicts.sort((a, b) => Number(a.ok) - Number(b.ok) || a.hostname.localeCompare(b.hostname) || a.endpointId.localeCompare(b.endpointId));
}
