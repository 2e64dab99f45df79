// The one audit hash-chain seeder for every layer's tests (unit, workers, e2e): links events into a valid chain as
// the session would, or re-links one from an edited event on, as anyone with D1 write access could.
import { computeAuditHash, GENESIS_HASH, type AuditEvent, type UnhashedAuditEvent } from "../protocol/audit";

export type ChainLink = Omit<UnhashedAuditEvent, "seq" | "prevHash">;

/** Numbers and hashes `events` after `after` (the genesis when null): each names the hash of the one before it. */
export async function linkAuditChain(events: ChainLink[], after: { seq: number; hash: string } | null = null): Promise<AuditEvent[]> {
  const chain: AuditEvent[] = [];
  let seq = after?.seq ?? 0;
  let prevHash = after?.hash ?? GENESIS_HASH;
  for (const event of events) {
    seq += 1;
    const unhashed = { ...event, seq, prevHash };
    prevHash = await computeAuditHash(unhashed);
    chain.push({ ...unhashed, hash: prevHash });
  }
  return chain;
}

/** The chain with `edit` applied to the event at `seq` and every hash from there on recomputed (a forgery the chain alone cannot see). */
export async function relinkAuditChain(events: AuditEvent[], seq: number, edit: (event: AuditEvent) => AuditEvent): Promise<AuditEvent[]> {
  const kept = events.filter((e) => e.seq < seq);
  const rest = events.filter((e) => e.seq >= seq).map((e, i) => (i === 0 ? edit(e) : e));
  const after = kept.length ? { seq: kept.at(-1)!.seq, hash: kept.at(-1)!.hash } : null;
  const relinked = await linkAuditChain(rest.map(({ seq: _seq, prevHash: _prev, hash: _hash, ...link }) => link), after);
  return [...kept, ...relinked];
}
