// Runtime self-update, the session's side (docs/decisions/0016-runtime-updates.md):
// remembers what the runtime says it is, keeps a copy of the tenant's target
// version (like the policy copy: the console says "re-read it" when an admin
// saves it, a runtime connect reloads a stale copy, commands never wait on D1),
// decides when to offer the target, and accepts progress reports only for the
// version it offered. Every step is audited.
import { compareRuntimeVersions, type RuntimePlatform } from "../../../protocol/runtime-release";
import type { RuntimeUpdateOffer, RuntimeUpdateStatus } from "../../../protocol/messages";
import { runtimeTargetSchema, type RuntimeTarget } from "../../../protocol/session-contract";
import type { AuditLog } from "./audit-log";

/** A copy older than this is re-read in the background when the runtime connects. */
const REFRESH_AFTER_MS = 10 * 60_000;
/** Refused update reports audited per instance: a misbehaving runtime cannot flood the chain. */
const MAX_AUDITED_REFUSALS = 50;

type Row = {
  target: string | null;
  target_loaded_at: number;
  reported_version: string | null;
  reported_platform: string | null;
  offered_version: string | null;
  offered_target_at: number | null;
  offered_to: string | null;
  phase: string | null;
  detail: string | null;
  phase_at: number | null;
  given_up: string | null;
};

export interface RuntimeUpdatesDeps {
  sql: SqlStorage;
  audit: AuditLog;
  /** The directory, this endpoint and its tenant, read when needed (tests swap the binding for an outage). */
  directory: () => { db: D1Database; endpointId: string; orgId: string | null };
  waitUntil(promise: Promise<unknown>): void;
}

/** What the endpoint page shows: the runtime's own report and the latest update step. */
export interface RuntimeUpdateView {
  version: string | null;
  platform: string | null;
  update: { version: string; phase: string; detail: string; at: number } | null;
}

export class RuntimeUpdates {
  private refusalsAudited = 0;

  constructor(private readonly deps: RuntimeUpdatesDeps) {}

  private row(): Row {
    return this.deps.sql.exec<Row>("SELECT * FROM runtime_update WHERE id = 1").toArray()[0]!;
  }

  private set(values: Partial<Row>): void {
    const keys = Object.keys(values) as (keyof Row)[];
    if (!keys.length) return;
    this.deps.sql.exec(`UPDATE runtime_update SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE id = 1`, ...keys.map((k) => values[k] ?? null));
  }

  target(): RuntimeTarget | null {
    const raw = this.row().target;
    if (!raw) return null;
    const parsed = runtimeTargetSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  view(): RuntimeUpdateView {
    const row = this.row();
    return {
      version: row.reported_version,
      platform: row.reported_platform,
      update: row.offered_version && row.phase ? { version: row.offered_version, phase: row.phase, detail: row.detail ?? "", at: row.phase_at ?? 0 } : null,
    };
  }

  /** The runtime said what it is (hello or check-in); the directory learns it when it changes. */
  report(version: string, platform: RuntimePlatform | undefined): void {
    const row = this.row();
    const reportedPlatform = platform ?? null;
    if (row.reported_version === version && row.reported_platform === reportedPlatform) return;
    this.set({ reported_version: version, reported_platform: reportedPlatform });
    const { db, endpointId } = this.deps.directory();
    this.deps.waitUntil(
      db
        .prepare("UPDATE endpoints SET runtime_version = ?, runtime_platform = ? WHERE id = ?")
        .bind(version, reportedPlatform, endpointId)
        .run()
        .catch((error: unknown) => console.error("runtime version directory update failed", error)),
    );
  }

  /**
   * Reads the tenant's target from the directory into the copy. `changed` is
   * true when it differs from the copy (an admin saved a new one). Null when the
   * directory cannot say: the copy is kept.
   */
  async reload(): Promise<{ target: RuntimeTarget | null; changed: boolean } | null> {
    const { db, orgId } = this.deps.directory();
    if (!orgId) return null;
    try {
      const row = await db.prepare("SELECT runtime_target FROM organisations WHERE id = ?").bind(orgId).first<{ runtime_target: string | null }>();
      if (!row) return null;
      let target: RuntimeTarget | null = null;
      if (row.runtime_target) {
        const parsed = runtimeTargetSchema.safeParse(JSON.parse(row.runtime_target));
        if (!parsed.success) {
          console.error("the tenant's runtime target is malformed; keeping the session's copy");
          return null;
        }
        target = parsed.data;
      }
      const before = this.row().target;
      const body = target ? JSON.stringify(target) : null;
      this.set({ target: body, target_loaded_at: Date.now() });
      return { target, changed: before !== body };
    } catch (error) {
      console.error("runtime target could not be read from the directory", error);
      return null;
    }
  }

  reloadIfStale(now = Date.now()): Promise<unknown> | null {
    return now - this.row().target_loaded_at < REFRESH_AFTER_MS ? null : this.reload();
  }

  /**
   * The update to offer the runtime now, or null. Offered when the runtime's
   * version differs from the target, the target has an artifact for its platform,
   * no command is running (`busy`), the target is not older than the runtime
   * unless the admin allowed the downgrade, and this target has not already
   * failed or rolled back on this endpoint. `to` names the transport instance
   * (a socket connection or "checkin"): the offer is audited once per target and
   * instance, and repeated freely (the runtime ignores repeats while it works).
   */
  offer(busy: boolean, to: string, address: string | null): RuntimeUpdateOffer | null {
    const row = this.row();
    const target = this.target();
    if (!target || !row.reported_version || !row.reported_platform || busy) return null;
    if (row.reported_version === target.version) return null;
    if (compareRuntimeVersions(target.version, row.reported_version) < 0 && !target.allowDowngrade) return null;
    if (row.given_up === givenUpKey(target)) return null;
    const artifact = target.artifacts.find((a) => a.platform === row.reported_platform);
    if (!artifact) return null;
    const offer: RuntimeUpdateOffer = { version: target.version, ...artifact };
    if (row.offered_version !== target.version || row.offered_target_at !== target.setAt || row.offered_to !== to) {
      this.set({ offered_version: target.version, offered_target_at: target.setAt, offered_to: to });
      this.deps.audit.append({
        kind: "runtime.update_offered",
        actorAddress: address,
        detail: { from: row.reported_version, version: target.version, platform: artifact.platform, sha256: artifact.sha256, setBy: target.setBy, downgrade: compareRuntimeVersions(target.version, row.reported_version) < 0 },
      });
    }
    return offer;
  }

  /**
   * A progress report from the runtime. Only the version this session offered
   * is accepted; anything else is refused (audited, nothing changes). A failed
   * or rolled-back version is not offered again until the target changes.
   */
  onStatus(status: RuntimeUpdateStatus, address: string | null): string | null {
    const row = this.row();
    if (!row.offered_version || row.offered_version !== status.version) {
      const reason = row.offered_version ? `the session offered ${row.offered_version}, not ${status.version}` : "the session offered no update";
      if (this.refusalsAudited < MAX_AUDITED_REFUSALS) {
        this.refusalsAudited += 1;
        this.deps.audit.append({ kind: "runtime.update_refused", actorAddress: address, detail: { version: status.version, phase: status.phase, reason } });
      }
      return reason;
    }
    const now = Date.now();
    const target = this.target();
    const givingUp = status.phase === "rolled_back" || status.phase === "failed";
    this.set({
      phase: status.phase,
      detail: status.detail,
      phase_at: now,
      ...(givingUp && target && target.version === status.version ? { given_up: givenUpKey(target) } : {}),
    });
    this.deps.audit.append({ kind: "runtime.update_status", actorAddress: address, status: status.phase, detail: { version: status.version, phase: status.phase, detail: status.detail } });
    const { db, endpointId } = this.deps.directory();
    this.deps.waitUntil(
      db
        .prepare("UPDATE endpoints SET runtime_update = ? WHERE id = ?")
        .bind(JSON.stringify({ version: status.version, phase: status.phase, detail: status.detail, at: now }), endpointId)
        .run()
        .catch((error: unknown) => console.error("runtime update directory update failed", error)),
    );
    return null;
  }
}

/** One target revision and version: an admin saving the target again (even the same version) allows a retry. */
function givenUpKey(target: RuntimeTarget): string {
  return `${target.setAt}:${target.version}`;
}
