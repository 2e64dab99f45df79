import { env, runInDurableObject as runInDurableObjectTyped } from "cloudflare:test";
import type { PeerIdentity } from "../../workers/session/src/identity";
import { IDENTITY_HEADERS } from "../../workers/session/src/identity";

/** A WebSocket client inside workerd that records every frame it receives. */
export class TestSocket {
  readonly messages: any[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      this.messages.push(JSON.parse(event.data as string));
      this.wake();
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.wake();
    });
  }

  private wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  send(message: unknown) {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Resolves with the first recorded message (from `from` on) matching `predicate`. */
  async waitFor(predicate: (message: any) => boolean, timeoutMs = 5_000, from = 0): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`Timed out waiting; got ${JSON.stringify(this.messages).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async waitForClose(timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("socket did not close");
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closed;
  }

  /** Every transcript event received so far, in arrival order. */
  events(): any[] {
    return this.messages.filter((m) => m.type === "events").flatMap((m) => m.events);
  }

  close() {
    try {
      this.ws.close(1000, "done");
    } catch {
      // already closed
    }
  }
}

/** Untyped on purpose: tests reach into the DO (runInDurableObject) by field name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function sessionStub(endpointId: string): any {
  const namespace: DurableObjectNamespace = env.ENDPOINT_SESSION;
  return namespace.get(namespace.idFromName(endpointId));
}

export async function connectDirect(endpointId: string, identity: PeerIdentity | null): Promise<TestSocket> {
  const headers: Record<string, string> = { Upgrade: "websocket", "x-partykit-room": endpointId };
  if (identity) headers[IDENTITY_HEADERS.identity] = JSON.stringify(identity);
  const response = await sessionStub(endpointId).fetch(`https://session.internal/${identity?.peer ?? "viewer"}`, { headers });
  if (!response.webSocket) throw new Error(`no websocket: ${response.status} ${await response.text()}`);
  return new TestSocket(response.webSocket);
}

export function viewerIdentity(endpointId: string, overrides: Partial<PeerIdentity> = {}): PeerIdentity {
  return {
    peer: "viewer",
    endpointId,
    orgId: "org_test",
    userId: "user_tech",
    userName: "Tess Tech",
    canRun: true,
    address: "203.0.113.7",
    ...overrides,
  };
}

export function runtimeIdentity(endpointId: string): PeerIdentity {
  return { peer: "runtime", endpointId, orgId: "org_test", userId: null, userName: null, canRun: false, address: "198.51.100.9" };
}

export const runtimeHello = {
  type: "hello",
  protocol: 1,
  runtimeVersion: "test",
  hostname: "test-host",
  os: "linux",
  clock: Date.now(),
};

/** A runtime as the real one starts: connect, then say hello (only then is work dispatched to it). */
export async function connectRuntime(endpointId: string): Promise<TestSocket> {
  const socket = await connectDirect(endpointId, runtimeIdentity(endpointId));
  socket.send(runtimeHello);
  return socket;
}

/** A viewer as the console opens one: connect, then sync from `afterSeq`. */
export async function connectViewer(endpointId: string, identity: PeerIdentity, afterSeq = 0): Promise<TestSocket> {
  const socket = await connectDirect(endpointId, identity);
  socket.send({ type: "sync", afterSeq });
  await socket.waitFor((m) => m.type === "events" && m.replay);
  return socket;
}

/** Untyped: tests reach into a session DO's private state by field name. */
export const runInSession = runInDurableObjectTyped as unknown as (
  stub: unknown,
  fn: (instance: any, state: DurableObjectState) => unknown,
) => Promise<any>;

/** A final result as a runtime reports it. */
export function result(commandId: string, status: "succeeded" | "failed" = "succeeded", output = "") {
  const now = Date.now();
  return { commandId, status, exitCode: status === "succeeded" ? 0 : 1, startedAt: now, finishedAt: now, durationMs: 1, tail: output ? [{ stream: "stdout", data: output }] : [], truncated: false, error: null };
}

/** One HTTPS check-in, as the edge forwards it after authenticating the runtime. */
export async function checkin(endpointId: string, body: Record<string, unknown>, identity: PeerIdentity = runtimeIdentity(endpointId)): Promise<{ status: number; body: any }> {
  const response: Response = await sessionStub(endpointId).fetch("https://session.internal/checkin", {
    method: "POST",
    headers: { "content-type": "application/json", "x-partykit-room": endpointId, [IDENTITY_HEADERS.identity]: JSON.stringify(identity) },
    body: JSON.stringify({ protocol: 1, runtimeVersion: "test", hostname: "h", os: "linux", clock: Date.now(), ...body }),
  });
  return { status: response.status, body: await response.json() };
}
