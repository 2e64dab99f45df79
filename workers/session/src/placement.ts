// Where this session lives. The edge creates the session at the runtime's first
// contact (enrollment) with a location hint derived from that request and the
// tenant's required jurisdiction, then tells it here; the session keeps the
// record (for its own reports) and loads the client's policy while it is at it,
// so its first command needs nothing from the central database.
import { describeZodError } from "../../../protocol/messages";
import type { SessionPlacement } from "../../../protocol/placement";
import { placementRequestSchema, type PeerIdentity } from "../../../protocol/session-contract";
import type { AuditEntry } from "./audit-log";

export interface PlacementHost {
  getRuntimeValue(key: string): string | undefined;
  setRuntimeValue(key: string, value: string): void;
  audit(entry: AuditEntry): void;
  /** The jurisdiction the platform created this object in (ctx.id.jurisdiction), if it says. */
  platformJurisdiction(): string | undefined;
  preloadPolicy(): Promise<unknown>;
}

export function currentPlacement(host: Pick<PlacementHost, "getRuntimeValue">): SessionPlacement | null {
  const raw = host.getRuntimeValue("placement");
  return raw ? (JSON.parse(raw) as SessionPlacement) : null;
}

export async function onPlacement(host: PlacementHost, body: unknown, identity: PeerIdentity): Promise<Response> {
  const parsed = placementRequestSchema.safeParse(body);
  if (!parsed.success) return Response.json({ error: `Invalid placement: ${describeZodError(parsed.error)}` }, { status: 400 });
  const { placement } = parsed.data;
  const known = currentPlacement(host);
  // The first record stands: where an object was created is not something a later call can change.
  if (!known) {
    host.setRuntimeValue("placement", JSON.stringify(placement));
    host.audit({
      kind: "session.placed",
      actorId: identity.userId,
      actorName: identity.userName,
      actorAddress: identity.address,
      detail: { locationHint: placement.locationHint, jurisdiction: placement.jurisdiction, colo: placement.colo, platformJurisdiction: host.platformJurisdiction() ?? null },
    });
  }
  await host.preloadPolicy();
  return Response.json({ placement: known ?? placement });
}
