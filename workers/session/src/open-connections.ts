// The session's open sockets by peer kind, remembered by this instance.
// partyserver finds them by deserializing every hibernatable socket's
// attachment on each lookup, and the session looks them up several times per
// command (the runtime to dispatch to, the viewers to broadcast to): measured
// under load that was a tenth of the session's time. The list is read again
// after any connect or close, and after hibernation (a new instance starts
// empty); a socket that closed without either is skipped by its ready state.
import type { Connection } from "partyserver";
import type { VerifiedPeerIdentity } from "../../../protocol/session-contract";
import type { ConnectionState } from "./runtime-presence";

/** WebSocket.OPEN (workerd names it READY_STATE_OPEN too; the number is the standard's). */
const SOCKET_OPEN = 1;

/** The peers that hold sockets (approvers and the directory call over HTTP). */
export type SocketPeer = Extract<VerifiedPeerIdentity["peer"], "viewer" | "runtime">;

export class OpenConnections {
  private readonly byKind = new Map<SocketPeer, Connection<ConnectionState>[]>();

  constructor(private readonly read: (kind: SocketPeer) => Iterable<Connection<ConnectionState>>) {}

  of(kind: SocketPeer): Connection<ConnectionState>[] {
    let known = this.byKind.get(kind);
    if (!known) {
      known = [...this.read(kind)];
      this.byKind.set(kind, known);
    }
    return known.filter((connection) => connection.readyState === SOCKET_OPEN);
  }

  /** A socket connected or closed: the next lookup reads partyserver's list again. */
  changed(): void {
    this.byKind.clear();
  }
}
