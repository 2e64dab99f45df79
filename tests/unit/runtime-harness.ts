// Shared by the runtime's process-level tests: the built CLI (runtime/bin →
// runtime/dist) against a stand-in server speaking the wire protocol.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import {
  enrollRequestSchema,
  parseMessage,
  runtimeMessageSchema,
  type CommandResult,
  type DispatchedCommand,
  type RuntimeBoundMessage,
  type RuntimeMessage,
} from "../../protocol/messages";

export const repo = resolve(__dirname, "../..");
export const bin = join(repo, "runtime/bin/caisey-runtime.mjs");
export const posix = process.platform !== "win32";
export const TOKEN = "enroll-token-0123456789";
export const CREDENTIAL = "credential-".padEnd(48, "x");

export const scratch = mkdtempSync(join(tmpdir(), "caisey-runtime-"));
export const children = new Set<ChildProcess>();

// ---------------------------------------------------------------------------
// Stand-ins for the server side (FakeServer here, the check-in server in
// runtime-checkin.test.ts) share the plumbing: listen on loopback, track every
// connection, read JSON bodies, and go away abruptly like a crashed server.

export type Reply = (status: number, json: unknown) => void;

export abstract class StandInServer {
  port = 0;
  /** Messages or bodies that failed the protocol's schemas: every test expects none. */
  invalid: string[] = [];
  protected wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private http: Server | undefined;
  private tcp = new Set<Socket>();

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected abstract onRequest(req: IncomingMessage, body: string, reply: Reply): void;
  protected abstract onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Back to a fresh server's state between tests (keeps listening). */
  abstract reset(): void;

  /** Listens (again on the same port after a stop). */
  async start(): Promise<void> {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    const http = createServer((req, res) => {
      let body = "";
      req.on("data", (part) => (body += part));
      req.on("end", () =>
        this.onRequest(req, body, (status, json) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(json));
        }),
      );
    });
    http.on("connection", (socket) => {
      this.tcp.add(socket);
      socket.on("close", () => this.tcp.delete(socket));
    });
    http.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head));
    await new Promise<void>((done) => http.listen(this.port, "127.0.0.1", done));
    this.port = (http.address() as AddressInfo).port;
    this.http = http;
  }

  /** Goes away abruptly, like a crashed server or a dropped network. */
  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    for (const socket of this.tcp) socket.destroy();
    await new Promise<void>((done) => (this.http ? this.http.close(() => done()) : done()));
    this.wss.close();
    this.http = undefined;
  }
}

// ---------------------------------------------------------------------------
// A stand-in for the server side: /agent/enroll and /agent/connect.

export type Received = { message: RuntimeMessage; at: number };

export class FakeServer extends StandInServer {
  received: Received[] = [];
  enrollments: unknown[] = [];
  autoAck = true;
  reject: "none" | "close4401" | "http401" = "none";
  private sockets = new Set<WebSocket>();

  reset(): void {
    this.received = [];
    this.autoAck = true;
    this.reject = "none";
  }

  protected onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const authorized = req.url === "/agent/connect" && req.headers.authorization === `Bearer ${CREDENTIAL}`;
    if (!authorized || this.reject === "http401") {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"error":"Runtime credential rejected; enroll again"}');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
  }

  /** Drops the current connections but keeps listening. */
  dropConnections(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  send(message: RuntimeBoundMessage | Record<string, unknown> | string): void {
    for (const ws of this.sockets) ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  dispatch(command: Partial<DispatchedCommand> & Pick<DispatchedCommand, "commandId" | "text">): void {
    this.send({ type: "dispatch", command: { shell: "default", timeoutMs: 30_000, maxOutputBytes: 256 * 1024, ...command } });
  }

  of<T extends RuntimeMessage["type"]>(type: T, commandId?: string): Extract<RuntimeMessage, { type: T }>[] {
    return this.received
      .map((r) => r.message)
      .filter((m): m is Extract<RuntimeMessage, { type: T }> => m.type === type)
      .filter((m) => commandId === undefined || ("commandId" in m ? m.commandId : "result" in m ? m.result.commandId : undefined) === commandId);
  }

  results(commandId: string): CommandResult[] {
    return this.of("result").map((m) => m.result).filter((r) => r.commandId === commandId);
  }

  protected onRequest(req: IncomingMessage, body: string, reply: Reply): void {
    if (req.url !== "/agent/enroll" || req.method !== "POST") return reply(404, { error: "Not found" });
    const parsed = parseMessage(enrollRequestSchema, body);
    if (!parsed.ok) return reply(400, { error: `Invalid enrollment request: ${parsed.error}` });
    this.enrollments.push(parsed.value);
    if (parsed.value.token !== TOKEN) return reply(401, { error: "Enrollment token is invalid or expired" });
    reply(201, { endpointId: "ep-test-1", credential: CREDENTIAL, clientName: "Acme Dental" });
  }

  private onSocket(ws: WebSocket): void {
    if (this.reject === "close4401") {
      ws.close(4401, "Unauthenticated");
      return;
    }
    this.sockets.add(ws);
    ws.on("close", () => this.sockets.delete(ws));
    ws.on("message", (data) => {
      const parsed = parseMessage(runtimeMessageSchema, data.toString());
      if (!parsed.ok) {
        this.invalid.push(parsed.error);
        return;
      }
      this.received.push({ message: parsed.value, at: Date.now() });
      if (parsed.value.type === "result" && this.autoAck) ws.send(JSON.stringify({ type: "ack", commandId: parsed.value.result.commandId }));
    });
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

export type RuntimeProcess = { child: ChildProcess; stderr: () => string; exited: Promise<number | null> };

export function startRuntime(stateDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): RuntimeProcess {
  return spawnCli(["run", "--state-dir", stateDir, ...args], env);
}

/** Any CLI command as a tracked process (killed by killChildren), for tests that watch it while it runs. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): RuntimeProcess {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  return { child, stderr: () => stderr, exited };
}

export async function stopRuntime(runtime: RuntimeProcess): Promise<number | null> {
  runtime.child.kill("SIGTERM");
  return runtime.exited;
}

/** Enrolls a state directory against any stand-in server that answers /agent/enroll with TOKEN. */
export async function enrolledStateDir(server: { url: string }, name: string): Promise<string> {
  const stateDir = join(scratch, name);
  const { code, stderr } = await cli(["enroll", "--server", server.url, "--token", TOKEN, "--state-dir", stateDir, "--hostname", "test-host"]);
  expect(code, stderr).toBe(0);
  return stateDir;
}

export function hellos(server: FakeServer): number {
  return server.of("hello").length;
}

export function fileLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
}

export function lines(file: string): number {
  return fileLines(file).length;
}

export function outboxFiles(stateDir: string): string[] {
  const dir = join(stateDir, "outbox");
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith(".json") && !n.startsWith(".")) : [];
}

export function fullOutput(server: FakeServer, result: CommandResult): string {
  const streamed = server.of("output", result.commandId).sort((a, b) => a.index - b.index).map((m) => m.chunk.data);
  return streamed.join("") + result.tail.map((c) => c.data).join("");
}

/** Kills every runtime a test started (call in afterEach). */
export function killChildren(): void {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
}

/**
 * The hooks every file with real runtime processes needs: children killed after
 * each test, the scratch dir removed at the end, and one stand-in server for the
 * file, reset after each test (no invalid message may have reached it).
 */
export function useStandIn<S extends StandInServer>(server: S): S {
  beforeAll(() => server.start());
  afterAll(async () => {
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  afterEach(() => {
    killChildren();
    expect(server.invalid).toEqual([]);
    server.reset();
  });
  return server;
}

export const useFakeServer = (): FakeServer => useStandIn(new FakeServer());

/** Whether any process of this group still runs (an orphaned command's shell and children). */
export function processGroupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
}
