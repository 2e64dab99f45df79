// The runtime's network layer (runtime/src/http.ts, connection.ts): the proxy
// decision, and, with the built CLI against a stand-in server, the bandwidth
// choices of docs/decisions/0015-runtime-network.md: one kept-alive
// connection for all check-ins, lean check-in requests, and a dead WebSocket
// detected by the missing pong.
import { execFileSync as exec } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { createProxy } from "proxy";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { checkinRequestSchema, type CheckinResponse } from "../../protocol/messages";
import { configureNetwork, proxyFor, redactProxy } from "../../runtime/src/http";
import { killChildren, scratch, spawnCli, waitFor } from "./runtime-harness";

const CREDENTIAL = "credential-".padEnd(48, "n");
const PROXY_VARS = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"];
const savedEnv = Object.fromEntries(PROXY_VARS.map((name) => [name, process.env[name]]));

function setEnv(vars: Record<string, string>) {
  for (const name of PROXY_VARS) delete process.env[name];
  Object.assign(process.env, vars);
  configureNetwork({});
}

afterEach(() => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  configureNetwork({});
  killChildren();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the proxy decision (one for fetch and the WebSocket)", () => {
  it("takes HTTPS_PROXY for https/wss and HTTP_PROXY for http/ws, falling back to HTTP_PROXY for TLS", () => {
    setEnv({ HTTPS_PROXY: "http://secure-proxy:3128", HTTP_PROXY: "http://plain-proxy:8080" });
    expect(proxyFor("https://caisey.example.com/agent/enroll")).toBe("http://secure-proxy:3128/");
    expect(proxyFor("wss://caisey.example.com/agent/connect")).toBe("http://secure-proxy:3128/");
    expect(proxyFor("http://caisey.example.com/agent/enroll")).toBe("http://plain-proxy:8080/");
    expect(proxyFor("ws://caisey.example.com/agent/connect")).toBe("http://plain-proxy:8080/");
    setEnv({ http_proxy: "proxy.plant.local:3128" });
    expect(proxyFor("wss://caisey.example.com/agent/connect")).toBe("http://proxy.plant.local:3128/");
    setEnv({ https_proxy: "", HTTPS_PROXY: "http://upper:3128" });
    expect(proxyFor("wss://caisey.example.com/agent/connect")).toBe("http://upper:3128/");
    setEnv({});
    expect(proxyFor("wss://caisey.example.com/agent/connect")).toBeUndefined();
  });

  it("honours NO_PROXY: exact hosts, subdomains, ports and *", () => {
    setEnv({ HTTPS_PROXY: "http://proxy:3128", NO_PROXY: "localhost, .internal.example, example.org, caisey.example.com:8443" });
    expect(proxyFor("https://localhost/x")).toBeUndefined();
    expect(proxyFor("wss://console.internal.example/agent/connect")).toBeUndefined();
    expect(proxyFor("https://internal.example/x")).toBeUndefined();
    expect(proxyFor("https://sub.example.org/x")).toBeUndefined();
    expect(proxyFor("https://notexample.org/x")).toBe("http://proxy:3128/");
    expect(proxyFor("https://caisey.example.com:8443/x")).toBeUndefined();
    expect(proxyFor("https://caisey.example.com/x")).toBe("http://proxy:3128/");
    setEnv({ HTTPS_PROXY: "http://proxy:3128", no_proxy: "*" });
    expect(proxyFor("https://caisey.example.com/x")).toBeUndefined();
  });

  it("lets a configured proxy and no-proxy list override the environment, and refuses a non-HTTP proxy", () => {
    setEnv({ HTTPS_PROXY: "http://env-proxy:3128", NO_PROXY: "caisey.example.com" });
    configureNetwork({ proxy: "http://user:pa%40ss@configured:3128" });
    expect(proxyFor("https://caisey.example.com/x")).toBeUndefined();
    expect(proxyFor("https://other.example.com/x")).toBe("http://user:pa%40ss@configured:3128/");
    configureNetwork({ proxy: "http://configured:3128", noProxy: "other.example.com" });
    expect(proxyFor("https://caisey.example.com/x")).toBe("http://configured:3128/");
    expect(proxyFor("https://other.example.com/x")).toBeUndefined();
    expect(() => configureNetwork({ proxy: "socks5://proxy:1080" })).toThrow(/must be an http:\/\/ or https:\/\/ proxy/);
    setEnv({});
    process.env.HTTPS_PROXY = "socks5://proxy:1080";
    expect(() => configureNetwork({})).toThrow(/HTTPS_PROXY must be an http:\/\/ or https:\/\/ proxy/);
    expect(() => configureNetwork({ proxy: "http://configured:3128" })).not.toThrow();
  });

  it("never shows proxy credentials", () => {
    expect(redactProxy("http://user:secret@proxy:3128/")).toBe("http://***@proxy:3128/");
    expect(redactProxy("http://proxy:3128/")).toBe("http://proxy:3128/");
    expect(() => configureNetwork({ proxy: "ftp://user:secret@proxy" })).toThrow(/^(?!.*secret)/);
  });
});

// ---------------------------------------------------------------------------
// Process level: the built CLI against a stand-in server.

interface SeenRequest {
  rawHeaders: string[];
  body: string;
  connection: number;
}

class StandIn {
  port = 0;
  checkins: SeenRequest[] = [];
  connections = 0;
  socketsOpened = 0;
  pings = 0;
  private http: Server | undefined;
  private wss: WebSocketServer;
  private sockets = new Set<WebSocket>();

  constructor(answerPings: boolean, private readonly tls?: { key: string; cert: string }) {
    // autoPong off stands for a half-open connection: the socket stays up, nothing comes back.
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, autoPong: answerPings });
  }

  get url() {
    return this.tls ? `https://localhost:${this.port}` : `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const http = this.tls ? createTlsServer(this.tls, (req, res) => this.onHttp(req, res)) : createServer((req, res) => this.onHttp(req, res));
    let connectionNumber = 0;
    http.on("connection", (socket) => {
      this.connections += 1;
      (socket as unknown as { number: number }).number = ++connectionNumber;
    });
    http.on("upgrade", (req, socket, head) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.socketsOpened += 1;
        this.sockets.add(ws);
        ws.on("ping", () => (this.pings += 1));
        ws.on("close", () => this.sockets.delete(ws));
      });
    });
    await new Promise<void>((done) => http.listen(0, "127.0.0.1", done));
    this.port = (http.address() as AddressInfo).port;
    this.http = http;
  }

  private onHttp(req: IncomingMessage, res: import("node:http").ServerResponse) {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url === "/agent/enroll") {
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ endpointId: "ep_network_test", credential: CREDENTIAL, clientName: "Test client" }));
        return;
      }
      if (req.url === "/agent/checkin") {
        this.checkins.push({ rawHeaders: req.rawHeaders, body, connection: (req.socket as unknown as { number: number }).number });
        const answer: CheckinResponse = { acks: [], dispatch: [], cancel: [], nextCheckinMs: 1000, serverTime: Date.now() };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(answer));
        return;
      }
      res.writeHead(404).end();
    });
  }

  async stop() {
    for (const ws of this.sockets) ws.terminate();
    this.http?.closeAllConnections();
    await new Promise<void>((done) => (this.http ? this.http.close(() => done()) : done()));
    this.wss.close();
  }
}

/** The CLI with no proxy from this machine's environment: these tests choose the proxy themselves. */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnCli(args, { HTTP_PROXY: "", HTTPS_PROXY: "", http_proxy: "", https_proxy: "", ...env });
}

async function enrolled(server: StandIn, name: string): Promise<string> {
  const stateDir = join(scratch, name);
  const enroll = runCli(["enroll", "--server", server.url, "--token", "enroll-token-0123456789", "--state-dir", stateDir, "--hostname", "net-host"]);
  expect(await enroll.exited, enroll.stderr()).toBe(0);
  return stateDir;
}

// runtime/dist/cli.js is built once for the layer by tests/unit/global-setup.ts.
describe.runIf(process.platform !== "win32")("caisey-runtime on a metered link", () => {
  it("checks in over one kept-alive connection with only the headers it needs and no empty lists", async () => {
    const server = new StandIn(true);
    await server.start();
    try {
      const stateDir = await enrolled(server, "keepalive");
      const connectionsBefore = server.connections;
      runCli(["run", "--state-dir", stateDir, "--transport", "checkin", "--checkin-interval", "1"]);
      await waitFor("four check-ins", () => server.checkins.length >= 4);
      // One TCP (and, on https, one TLS) handshake for all of them.
      expect(new Set(server.checkins.map((c) => c.connection)).size).toBe(1);
      expect(server.connections - connectionsBefore).toBe(1);
      for (const [index, checkin] of server.checkins.entries()) {
        const names = checkin.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        // No content-type either (ADR 0027): the session reads the body as JSON regardless.
        expect(names.sort()).toEqual(["authorization", "connection", "content-length", "host"]);
        const body = JSON.parse(checkin.body);
        expect(body).not.toHaveProperty("started");
        expect(body).not.toHaveProperty("results");
        // Who we are goes with the first check-in of the process only.
        // It also says it takes compact answers, and asks for the server time it has no sample of yet.
        if (index === 0) expect(body).toMatchObject({ hostname: expect.any(String), os: expect.any(String), runtimeVersion: expect.any(String), compactAnswers: true, wantTime: true });
        // The first exchange's timestamps go with the second (the session measures the endpoint's clock), then not for ten minutes.
        else if (index === 1) expect(Object.keys(body).sort()).toEqual(["clock", "clockSample", "protocol"]);
        else expect(Object.keys(body).sort()).toEqual(["clock", "protocol"]);
        expect(checkinRequestSchema.safeParse(body).success).toBe(true);
      }
    } finally {
      await server.stop();
    }
  }, 30_000);

  it("reaches an https server through a CONNECT proxy: enroll, wss and check-ins on one TLS connection", async () => {
    // A self-signed certificate for localhost, trusted by the runtime through NODE_EXTRA_CA_CERTS.
    const dir = mkdtempSync(join(scratch, "tls-"));
    exec("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"], { stdio: "pipe" });
    const tls = { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
    const server = new StandIn(true, tls);
    await server.start();
    const proxy = createProxy(createServer());
    const tunnels: string[] = [];
    proxy.on("connect", (req: IncomingMessage) => tunnels.push(req.url ?? ""));
    await new Promise<void>((done) => proxy.listen(0, "127.0.0.1", done));
    const env = { HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") };
    try {
      const stateDir = join(scratch, "tls-runtime");
      const enroll = runCli(["enroll", "--server", server.url, "--token", "enroll-token-0123456789", "--state-dir", stateDir, "--hostname", "net-host"], env);
      expect(await enroll.exited, enroll.stderr()).toBe(0);
      expect(tunnels).toEqual([`localhost:${server.port}`]);
      const socketRuntime = runCli(["run", "--state-dir", stateDir, "--transport", "websocket"], env);
      await waitFor("the wss connection", () => server.socketsOpened >= 1);
      expect(socketRuntime.stderr()).toContain(`connecting to wss://localhost:${server.port}/agent/connect via proxy http://127.0.0.1:`);
      socketRuntime.child.kill("SIGKILL");
      await socketRuntime.exited;
      const before = server.connections;
      runCli(["run", "--state-dir", stateDir, "--transport", "checkin", "--checkin-interval", "1"], env);
      await waitFor("three check-ins", () => server.checkins.length >= 3);
      expect(server.connections - before).toBe(1);
      expect(tunnels.every((t) => t === `localhost:${server.port}`)).toBe(true);
      expect(tunnels).toHaveLength(3);
    } finally {
      proxy.close();
      await server.stop();
    }
  }, 30_000);

  it("keeps a WebSocket whose pings are answered, and drops one whose pong never comes within the pong timeout", async () => {
    const knobs = { CAISEY_PING_INTERVAL_MS: "200", CAISEY_PONG_TIMEOUT_MS: "300" };
    const healthy = new StandIn(true);
    await healthy.start();
    try {
      const stateDir = await enrolled(healthy, "ping-ok");
      const runtime = runCli(["run", "--state-dir", stateDir, "--transport", "websocket"], knobs);
      await waitFor("five answered pings", () => healthy.pings >= 5);
      expect(healthy.socketsOpened).toBe(1);
      expect(runtime.stderr()).not.toContain("no answer to ping");
    } finally {
      await healthy.stop();
    }

    const halfOpen = new StandIn(false);
    await halfOpen.start();
    try {
      const stateDir = await enrolled(halfOpen, "ping-lost");
      const runtime = runCli(["run", "--state-dir", stateDir, "--transport", "websocket"], knobs);
      await waitFor("the dead socket to be dropped", () => runtime.stderr().includes("no answer to ping within 300 ms; dropping the connection"));
      await waitFor("a new connection", () => halfOpen.socketsOpened >= 2);
    } finally {
      await halfOpen.stop();
    }
  }, 40_000);
});

describe("WebSocket retries while on check-in (auto mode)", () => {
  it("retries 5-10 s after the fallback, at most 15 s apart for about two minutes, then backs off to at most a minute", async () => {
    const { websocketRetryDelay } = await import("../../runtime/src/backoff");
    const max = (attempt: number) => websocketRetryDelay(attempt, () => 1);
    const min = (attempt: number) => websocketRetryDelay(attempt, () => 0);
    expect([min(0), max(0)]).toEqual([5_000, 10_000]);
    for (let attempt = 1; attempt < 8; attempt++) expect(max(attempt)).toBe(15_000);
    expect(max(8)).toBe(30_000);
    expect(max(9)).toBe(60_000);
    expect(max(50)).toBe(60_000);
    // Within the first two minutes a 20 s cut is never followed by a gap longer than 15 s.
    let elapsed = 0;
    for (let attempt = 0; elapsed < 120_000; attempt++) elapsed += max(attempt);
    expect(elapsed).toBeGreaterThanOrEqual(120_000);
  });
});
