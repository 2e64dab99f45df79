import { env, runInDurableObject as runInDurableObjectTyped } from "cloudflare:test";
import { DEFAULT_APPROVAL_PATTERNS, type ApprovalPolicy } from "../../protocol/approvals";
import type { PeerIdentity } from "../../protocol/session-contract";
import { IDENTITY_HEADERS, SESSION_PATHS } from "../../protocol/session-contract";

/** A WebSocket client inside workerd that records every frame it receives. */
export class TestSocket {
  readonly messages: any[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly endpointId: string,
  ) {
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
  const namespace = env.ENDPOINT_SESSION;
  return namespace.get(namespace.idFromName(endpointId));
}

export async function connectDirect(endpointId: string, identity: PeerIdentity | null): Promise<TestSocket> {
  const headers: Record<string, string> = { Upgrade: "websocket", "x-partykit-room": endpointId };
  if (identity) headers[IDENTITY_HEADERS.identity] = JSON.stringify(identity);
  const response = await sessionStub(endpointId).fetch(`https://session.internal/${identity?.peer ?? "viewer"}`, { headers });
  if (!response.webSocket) throw new Error(`no websocket: ${response.status} ${await response.text()}`);
  return new TestSocket(response.webSocket, endpointId);
}

export function viewerIdentity(endpointId: string, overrides: Partial<PeerIdentity> = {}): PeerIdentity {
  return {
    peer: "viewer",
    endpointId,
    orgId: "org_test",
    userId: "user_tech",
    userName: "Tess Tech",
    userEmail: "tess@msp.test",
    role: "technician",
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

export const TEST_APPROVER = { name: "Priya Patel", email: "priya@client.test" } as const;

/** The policy test endpoints get unless a test says otherwise: advisory deny-list, one client approver. */
export const ADVISORY_TEST_POLICY: ApprovalPolicy = {
  mode: "denylist",
  allowedCommands: [],
  patterns: [...DEFAULT_APPROVAL_PATTERNS],
  approvers: [TEST_APPROVER],
  linkTtlHours: 24,
};

/**
 * Puts the endpoint in the tenant directory (D1), as enrollment does, with its
 * own client and that client's policy ("defaults": no policy row at all). The
 * session reads its policy copy from here. Idempotent: the first call wins,
 * including its choice of policy.
 */
export async function registerEndpoint(
  endpointId: string,
  policy: ApprovalPolicy | "defaults" = ADVISORY_TEST_POLICY,
  options: { orgId?: string; timeZone?: string } = {},
): Promise<void> {
  const orgId = options.orgId ?? "org_test";
  const clientId = `cl_${endpointId}`;
  if (await env.DB.prepare("SELECT 1 AS known FROM endpoints WHERE id = ?").bind(endpointId).first()) return;
  const statements = [
    env.DB.prepare("INSERT OR IGNORE INTO organisations (id, name, slug) VALUES (?, ?, ?)").bind(orgId, `Org ${orgId}`, orgId),
    env.DB.prepare("INSERT OR IGNORE INTO clients (id, org_id, name, contact_name, contact_email, time_zone) VALUES (?, ?, ?, ?, ?, ?)").bind(
      clientId,
      orgId,
      `Client of ${endpointId}`,
      TEST_APPROVER.name,
      TEST_APPROVER.email,
      options.timeZone ?? "UTC",
    ),
    // Placed: these tests stand for endpoints whose runtime's first contact created the session.
    env.DB.prepare("INSERT OR IGNORE INTO endpoints (id, org_id, client_id, hostname, os, placed_at) VALUES (?, ?, ?, ?, 'linux', ?)").bind(endpointId, orgId, clientId, `host-${endpointId}`, Date.now()),
  ];
  if (policy !== "defaults") {
    statements.push(
      env.DB.prepare(
        `INSERT OR IGNORE INTO approval_policies (client_id, org_id, mode, allowed_commands, patterns, approvers, link_ttl_hours, updated_by, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'test', ?)`,
      ).bind(clientId, orgId, policy.mode, JSON.stringify(policy.allowedCommands), JSON.stringify(policy.patterns), JSON.stringify(policy.approvers), policy.linkTtlHours, Date.now()),
    );
  }
  await env.DB.batch(statements);
}

/** A call the console makes to a session as the tenant directory (an admin's action), as the edge forwards it. */
export async function directoryCall(endpointId: string, path: string, body: unknown, orgId = "org_test"): Promise<{ status: number; body: any }> {
  const identity: PeerIdentity = { peer: "directory", endpointId, orgId, userId: "user_admin", userName: "Ada Admin", role: "admin", canRun: false };
  const response: Response = await sessionStub(endpointId).fetch(`https://session.internal${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-partykit-room": endpointId, [IDENTITY_HEADERS.identity]: JSON.stringify(identity) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** The console's "re-read your policy" call, as an admin's save makes it. */
export function refreshSessionPolicy(endpointId: string, orgId = "org_test"): Promise<{ status: number; body: any }> {
  return directoryCall(endpointId, SESSION_PATHS.policy, {}, orgId);
}

/** Every event of the session's own audit chain, oldest first. */
export function sessionAudit(endpointId: string): Promise<any[]> {
  return runInSession(sessionStub(endpointId), (instance: any) => instance.audit.all());
}

export async function sessionAuditKinds(endpointId: string): Promise<string[]> {
  return (await sessionAudit(endpointId)).map((event) => event.kind);
}

/** Approval emails the capture mailer stored for `email` about `endpointId`'s commands, oldest first, with their links. */
export async function mailTo(email: string, endpointId?: string): Promise<{ subject: string; text: string; html: string; token: string | null }[]> {
  const rows = await env.DB.prepare(`SELECT subject, text, html FROM capture_mailbox WHERE "to" LIKE ? ORDER BY created_at, rowid`)
    .bind(`%${email}%`)
    .all<{ subject: string; text: string; html: string }>();
  return rows.results
    .map((row) => {
      const match = row.text.match(/\/approve\/([A-Za-z0-9_~-]+)/);
      return { ...row, token: match ? match[1]! : null };
    })
    .filter((mail) => !endpointId || mail.token?.startsWith(`${endpointId}~`));
}

/** Waits until `email` has received `count` messages about `endpointId`; returns the newest one, with its link token. */
export async function waitForMail(email: string, endpointId: string, count = 1, timeoutMs = 5_000): Promise<{ token: string; text: string; subject: string; html: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mail = await mailTo(email, endpointId);
    const newest = mail[count - 1];
    if (newest?.token) return { ...newest, token: newest.token };
    if (Date.now() > deadline) throw new Error(`no mail #${count} for ${email} about ${endpointId}; have ${mail.length}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A viewer as the console opens one: the endpoint is in the directory, connect, then sync from `afterSeq`. */
export async function connectViewer(endpointId: string, identity: PeerIdentity, afterSeq = 0): Promise<TestSocket> {
  await registerEndpoint(endpointId);
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
  // 204: the compact "nothing to do" for a runtime that takes compact answers (ADR 0027).
  return { status: response.status, body: response.status === 204 ? await response.text() : await response.json() };
}

/**
 * Asks for a replay after `afterSeq` and returns all of it: frames are bounded
 * in size, so a replay may take several; it is whole once a frame reaches the
 * log's newest seq.
 */
export async function replayAll(viewer: TestSocket, afterSeq = 0): Promise<{ events: any[]; lastSeq: number; frames: any[] }> {
  const before = viewer.messages.length;
  const newest: number = await runInSession(sessionStub(viewer.endpointId), (_instance, state) =>
    state.storage.sql.exec("SELECT COALESCE(MAX(seq), 0) AS seq FROM events").one().seq,
  );
  viewer.send({ type: "sync", afterSeq });
  await viewer.waitFor((m) => m.type === "events" && m.replay && m.lastSeq >= newest, 5_000, before);
  const frames = viewer.messages.slice(before).filter((m) => m.type === "events" && m.replay);
  return { events: frames.flatMap((m) => m.events), lastSeq: frames.at(-1).lastSeq, frames };
}

let freshEndpointCounter = 0;
/** A new endpoint id per test, so tests never share a session. */
export function freshEndpoint(prefix = "ep_test"): string {
  freshEndpointCounter += 1;
  return `${prefix}_${Date.now()}_${freshEndpointCounter}`;
}

/** Runs SQL inside an endpoint's session (setting up a past the test cannot wait for, or reading state). */
export function sessionSql(endpointId: string, query: string, ...bindings: unknown[]): Promise<any[]> {
  return runInSession(sessionStub(endpointId), (_instance, state) => state.storage.sql.exec(query, ...bindings).toArray());
}

/** Replicates the session's audit chain to D1 now (what its alarm does shortly after the events), until nothing is left. */
export async function replicateAudit(endpointId: string): Promise<void> {
  for (;;) {
    const outcome = await runInSession(sessionStub(endpointId), async (instance: any) => instance.audit.replicate(env.DB, env.AUDIT_MAC_KEY));
    if ("failed" in outcome) throw new Error(`audit replication failed: ${outcome.failed}`);
    if (outcome.remaining === 0) return;
  }
}

/** A file's own freshEndpoint with its prefix (ids of different files never meet, whatever Date.now() says). */
export function endpointIdsFor(prefix: string): () => string {
  return () => freshEndpoint(prefix);
}

/**
 * Resolves once the session has handled everything this viewer sent before, and everything it sent this viewer
 * before is in `viewer.messages`: it answers a sync in arrival order (ADR 0028), on the same socket. The positive
 * signal to wait for before asserting that something did NOT happen, instead of a sleep.
 */
export async function settled(viewer: TestSocket): Promise<void> {
  const newest: number = await runInSession(sessionStub(viewer.endpointId), (_instance, state) =>
    state.storage.sql.exec("SELECT COALESCE(MAX(seq), 0) AS seq FROM events").one().seq,
  );
  await replayAll(viewer, newest);
}

/**
 * Resolves once `viewer` has received `count` output events of `commandId`. The in-process test socket can reorder
 * back-to-back frames under load (a runtime's TCP stream cannot): a test sends the result after this, not right
 * after the output frame.
 */
export async function outputArrived(viewer: TestSocket, commandId: string, count = 1): Promise<void> {
  await eventually(`${count} output event(s) of ${commandId}`, async () => viewer.events().filter((e: any) => e.kind === "command.output" && e.commandId === commandId).length >= count);
}

/** Polls `probe` until it holds (a positive signal to wait for, instead of a sleep). */
export async function eventually(what: string, probe: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * For a runtime socket what `settled` is for a viewer: the session answers a malformed message with an error, in
 * arrival order, so once that answer is here so is everything it sent this socket before. The positive signal to
 * wait for before asserting that a runtime was NOT sent something.
 */
export async function roundTrip(socket: TestSocket): Promise<void> {
  const from = socket.messages.length;
  socket.send({ type: "round_trip" });
  await socket.waitFor((m) => m.type === "error" && m.code === "invalid_message", 5_000, from);
}

/** Runs one command through the session over sockets (viewer asks, runtime reports its end) and returns its id. */
export async function runCommandToEnd(
  endpointId: string,
  text: string,
  { orgId = "org_test", status = "succeeded" }: { orgId?: string; status?: "succeeded" | "failed" } = {},
): Promise<string> {
  const viewer = await connectViewer(endpointId, viewerIdentity(endpointId, { orgId }));
  const runtime = await connectDirect(endpointId, { ...runtimeIdentity(endpointId), orgId });
  runtime.send(runtimeHello);
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "default" });
  const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
  const commandId: string = dispatch.command.commandId;
  runtime.send({ type: "result", result: result(commandId, status, `output of ${text}`) });
  await runtime.waitFor((m) => m.type === "ack");
  const disconnects = async () => (await sessionAuditKinds(endpointId)).filter((kind) => kind === "runtime.disconnected").length;
  const before = await disconnects();
  viewer.close();
  runtime.close();
  // The close is handled after we return otherwise: callers that count the session's audit events would race it.
  await eventually("the runtime's disconnect recorded", async () => (await disconnects()) > before);
  return commandId;
}
