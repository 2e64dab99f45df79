// Whether the endpoint's runtime is there (a socket, or check-ins arriving on
// time), its lifecycle (revoked, decommissioned), the tenant the session is
// bound to, and the directory's copy of presence (written off the command path).
import type { Connection } from "partyserver";
import { DEFAULT_CHECKIN_INTERVAL_MS, type RuntimeState, type ViewerBoundMessage } from "../../../protocol/messages";
import { SESSION_CLOSE_CODES, type VerifiedPeerIdentity as PeerIdentity } from "../../../protocol/session-contract";
import type { AuditLog } from "./audit-log";
import type { SessionStore } from "./session-store";

const LAST_SEEN_PRECISION_MS = 10_000;

export type ConnectionState = PeerIdentity & {
  /** Runtime: when it said hello (only then is work dispatched to it). */
  helloAt?: number;
  /** Viewer: has had its replay, so live events continue it without a gap or overlap. */
  synced?: boolean;
};

export interface PresenceHost {
  store: SessionStore;
  audit: AuditLog;
  runtimeConnections(): Iterable<Connection<ConnectionState>>;
  broadcast(message: ViewerBoundMessage): void;
  /** The directory (D1) and this endpoint, read when needed (tests swap the binding for an outage). */
  directory(): { db: D1Database; endpointId: string };
  waitUntil(promise: Promise<unknown>): void;
}

export class RuntimePresence {
  constructor(private readonly host: PresenceHost) {}

  current(): Connection<ConnectionState> | undefined {
    for (const connection of this.host.runtimeConnections()) return connection;
    return undefined;
  }

  state(): RuntimeState {
    const { store } = this.host;
    const lastSeenAt = store.numberValue("last_seen_at") || null;
    const lifecycle = { revoked: Boolean(store.value("revoked_at")), decommissioned: this.decommissioned() };
    const none = { checkinIntervalMs: null, nextCheckinAt: null };
    if (this.current()) return { online: true, lastSeenAt, transport: "websocket", ...lifecycle, ...none };
    if (store.numberValue("checkin_offline_at") <= Date.now()) return { online: false, lastSeenAt, transport: null, ...lifecycle, ...none };
    const lastCheckin = store.numberValue("checkin_at");
    return {
      online: true,
      lastSeenAt,
      transport: "checkin",
      ...lifecycle,
      checkinIntervalMs: DEFAULT_CHECKIN_INTERVAL_MS,
      nextCheckinAt: lastCheckin ? lastCheckin + DEFAULT_CHECKIN_INTERVAL_MS : null,
    };
  }

  /** When the runtime last came online (0 while offline): a runtime just back gets the full grace to report. */
  onlineSince(): number {
    return this.host.store.numberValue("online_since");
  }

  decommissioned(): boolean {
    return Boolean(this.host.store.value("decommissioned_at"));
  }

  setOnline(online: boolean, transport: RuntimeState["transport"]): void {
    const now = Date.now();
    this.host.store.setValue("last_seen_at", String(now));
    this.host.store.setValue("online_since", online ? String(now) : "");
    this.host.broadcast({ type: "runtime", runtime: { ...this.state(), online, transport } });
    this.writeDirectory(online, now);
  }

  /** Presence changes only (connect, disconnect, missed check-ins): never while a command is handled. */
  private writeDirectory(online: boolean, at: number): void {
    const { db, endpointId } = this.host.directory();
    const write = db
      .prepare("UPDATE endpoints SET online = ?, last_seen_at = ? WHERE id = ?")
      .bind(online ? 1 : 0, at, endpointId)
      .run()
      .catch((error: unknown) => console.error("endpoint directory update failed", error));
    this.host.waitUntil(write);
  }

  /**
   * The session's own record only: the directory learns "last seen" when the
   * runtime goes offline, so no message a command sends waits on, or shares
   * its invocation with, a D1 call (tests/workers/no-central-round-trips.test.ts).
   */
  /**
   * To within LAST_SEEN_PRECISION_MS: a socket runtime reports after every
   * command, and rewriting the row each time was a storage write per command
   * for a time that viewers only read once the runtime is gone (which writes it exactly).
   */
  touchLastSeen(now = Date.now()): void {
    if (now - this.host.store.numberValue("last_seen_at") < LAST_SEEN_PRECISION_MS) return;
    this.host.store.setValue("last_seen_at", String(now));
  }

  /** A check-in arrived: the runtime counts as online until it misses a few. */
  checkedIn(now: number, intervalMs: number): void {
    this.host.store.setValue("checkin_offline_at", String(now + intervalMs * 2.5));
    this.host.store.setValue("checkin_at", String(now));
  }

  /** A socket now says whether the runtime is online. */
  socketConnected(): void {
    this.host.store.setValue("checkin_offline_at", "");
    this.setOnline(true, "websocket");
  }

  nextWakeAt(now: number): number | null {
    const offlineAt = this.host.store.numberValue("checkin_offline_at");
    return offlineAt > now ? offlineAt : null;
  }

  /** A check-in runtime that missed its check-ins goes offline, unless its socket is keeping it online. */
  wake(now: number): void {
    const offlineAt = this.host.store.numberValue("checkin_offline_at");
    if (offlineAt === 0 || now < offlineAt) return;
    this.host.store.setValue("checkin_offline_at", "");
    if (this.current()) return;
    this.setOnline(false, null);
    this.host.audit.append({ kind: "runtime.disconnected", detail: { transport: "checkin", reason: "missed its check-ins" } });
  }

  /** The first authenticated peer binds this session to its tenant; every later one must match. */
  bindTenant(identity: PeerIdentity): boolean {
    const boundOrg = this.host.store.value("org_id");
    if (!boundOrg) this.host.store.setValue("org_id", identity.orgId);
    return !boundOrg || boundOrg === identity.orgId;
  }

  /**
   * Whether a runtime identity falls under a revoke. One the edge authenticated
   * after the revoke holds a new credential (the old one no longer exists in the
   * directory): the session takes it back even if the console's "reinstate"
   * never arrived.
   */
  refusesRevoked(identity: PeerIdentity): boolean {
    const revokedAt = this.host.store.numberValue("revoked_at");
    if (!revokedAt) return false;
    if (this.decommissioned() || !identity.authenticatedAt || identity.authenticatedAt <= revokedAt) return true;
    this.host.store.setValue("revoked_at", "");
    this.host.audit.append({ kind: "runtime.reinstated", actorAddress: identity.address, detail: { reason: "a re-enrolled runtime connected with a new credential" } });
    return false;
  }

  disconnect(reason: string): void {
    this.host.store.setValue("checkin_offline_at", "");
    for (const runtime of this.host.runtimeConnections()) runtime.close(SESSION_CLOSE_CODES.revoked, reason);
    if (this.state().online || this.onlineSince()) this.setOnline(false, null);
  }
}
