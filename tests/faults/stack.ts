// Real processes for fault-injection tests: the local stack (wrangler pages dev
// via scripts/dev.mjs), endpoint runtimes (the single-file executable we ship,
// built by `npm run build`), a viewer socket, and a TCP relay the test can cut.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { WebSocket } from "ws";
import { DEMO_RUNTIME_TOKEN } from "../../scripts/seed.mjs";

// Tests and benches run from the repository root.
const root = resolve(process.cwd());
const packageVersion: string = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;

/** Where scripts/build-runtime.mjs puts the executable for a platform (its default --out and --version). */
export function runtimeExecutablePath(platform: string): string {
  return join(root, ".cache/runtime-release", packageVersion, platform, platform.startsWith("windows-") ? "caisey-runtime.exe" : "caisey-runtime");
}

/**
 * The shipped artifact for this machine, so the fault suite tests what endpoints run rather than the
 * Node script. CAISEY_TEST_RUNTIME=script runs runtime/bin with this Node instead (for debugging only);
 * CAISEY_TEST_RUNTIME=/path/to/executable runs another build (e.g. a Bun one: build-runtime.mjs --engine bun).
 */
function runtimeCommand(executable?: string): { file: string; prefix: string[] } {
  if (executable) return { file: executable, prefix: [] };
  const override = process.env.CAISEY_TEST_RUNTIME;
  if (override === "script") return { file: process.execPath, prefix: [join(root, "runtime/bin/caisey-runtime.mjs")] };
  if (override) return { file: resolve(override), prefix: [] };
  const platform = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
  const file = runtimeExecutablePath(platform);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build (or node scripts/build-runtime.mjs --platforms host)`);
  return { file, prefix: [] };
}

export async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", () => r()));
}

export class Stack {
  private child: ChildProcess | null = null;
  output = "";
  readonly origin: string;

  constructor(readonly port: number, readonly stateDir: string) {
    this.origin = `http://127.0.0.1:${port}`;
  }

  async start(fresh: boolean) {
    const args = ["scripts/dev.mjs", "--port", String(this.port), "--state", this.stateDir, "--no-build", "--no-demo-runtime", "--no-rate-limits"];
    if (fresh) args.push("--fresh");
    this.output = "";
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child = child;
    child.stdout!.on("data", (d) => (this.output += d));
    child.stderr!.on("data", (d) => (this.output += d));
    await waitUntil("the stack to be ready", () => this.output.includes(`Console ready: ${this.origin}`) || child.exitCode !== null, STACK_START_TIMEOUT_MS);
    if (child.exitCode !== null) throw new Error(`stack exited:\n${this.output.slice(-3000)}`);
  }

  /** Stops wrangler and workerd (the whole process group), like a crash of the host. */
  async stop() {
    const child = this.child;
    this.child = null;
    await killStack(child, this.port);
  }
}

/** Kills a stack's wrangler with its whole process group (workerd too) and waits until its port is free. */
async function killStack(child: ChildProcess | null, port: number): Promise<void> {
  if (!child || child.exitCode !== null) return;
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
  await exited(child);
  await waitUntil("the port to close", () => portClosed(port), 10_000);
}

function portClosed(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolvePromise(false);
    });
    socket.once("error", () => resolvePromise(true));
  });
}

/** A loopback TCP relay between runtime and stack whose connections the test can cut. */
export class CuttableRelay {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => {
      if (this.blocked) {
        client.destroy(); // the network is down: nothing gets through
        return;
      }
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        a.on("data", (d) => b.write(d));
        a.on("close", () => b.destroy());
        a.on("error", () => b.destroy());
        this.sockets.add(a);
        a.on("close", () => this.sockets.delete(a));
      }
    });
  }

  async listen() {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  private blocked = false;

  /** A network outage: open connections are cut and new ones refused until unblock(). */
  block(): void {
    this.blocked = true;
    this.cut();
  }

  unblock(): void {
    this.blocked = false;
  }

  /** Destroys every open connection through the relay; returns how many there were (0: nothing was cut). */
  cut(): number {
    const open = [...this.sockets].filter((socket) => !socket.destroyed);
    for (const socket of this.sockets) socket.destroy();
    return open.length;
  }

  close() {
    this.cut();
    this.server.close();
  }
}

/**
 * A fresh stack publishes the runtime release to local R2 and applies every migration with wrangler's CLI: on a
 * shared 2-core machine under load that has taken over two minutes.
 */
export const STACK_START_TIMEOUT_MS = 300_000;

export class Runtime {
  /** `executable`: another build of the runtime to run (default: this machine's executable from npm run build). */
  constructor(readonly executable?: string) {}

  readonly dir = mkdtempSync(join(tmpdir(), "caisey-fault-runtime-"));
  /** Commands append here, so the test counts runs on the endpoint itself. */
  readonly ledger = join(this.dir, "ledger.txt");
  endpointId = "";
  private child: ChildProcess | null = null;
  log = "";

  enroll(server: string, hostname: string) {
    const { file, prefix } = runtimeCommand(this.executable);
    const result = spawnSync(file, [...prefix, "enroll", "--server", server, "--token", DEMO_RUNTIME_TOKEN, "--state-dir", this.dir, "--hostname", hostname], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`enroll failed: ${result.stderr}${result.stdout}`);
    this.endpointId = JSON.parse(readFileSync(join(this.dir, "identity.json"), "utf8")).endpointId;
  }

  /** Points the enrolled identity at another address (e.g. a relay in front of the server). */
  useServer(server: string) {
    const path = join(this.dir, "identity.json");
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), server }), { mode: 0o600 });
  }

  /** `env`: added to the runtime's environment (e.g. libfaketime's, to give the endpoint a wrong clock). */
  start(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}) {
    const { file, prefix } = runtimeCommand(this.executable);
    this.child = spawn(file, [...prefix, "run", "--state-dir", this.dir, ...extraArgs], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    this.child.stdout!.on("data", (d) => (this.log += d));
    this.child.stderr!.on("data", (d) => (this.log += d));
  }

  async kill(signal: NodeJS.Signals = "SIGKILL") {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    child.kill(signal);
    await exited(child);
  }

  /** The process was started and has ended (e.g. killed itself by fault injection). */
  exited(): boolean {
    return this.child !== null && this.child.exitCode !== null || this.child?.signalCode != null;
  }

  ledgerLines(): string[] {
    return existsSync(this.ledger) ? readFileSync(this.ledger, "utf8").split("\n").filter(Boolean) : [];
  }
}

export async function signIn(origin: string, userId = "user_demo_tech", orgId = "org_demo_northwind"): Promise<string> {
  const response = await fetch(`${origin}/offline/sign-in?index`, {
    method: "POST",
    redirect: "manual",
    body: new URLSearchParams({ userId, orgId, redirect_url: "/" }),
  });
  const cookie = response.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  if (!cookie.includes("__session=")) throw new Error(`sign-in failed (${response.status})`);
  return cookie;
}

/** A technician's transcript socket: replays from seq 0 and records every event. */
export class Viewer {
  events: any[] = [];
  /** The session's latest word on the runtime (undefined until it said anything). */
  runtimeOnline: boolean | undefined;
  runtimeTransport: "websocket" | "checkin" | null | undefined;
  private ws: WebSocket | null = null;

  constructor(readonly origin: string, readonly cookie: string, readonly endpointId: string) {}

  async connect() {
    this.events = [];
    const ws = new WebSocket(`${this.origin.replace("http", "ws")}/parties/endpoint/${this.endpointId}`, { headers: { cookie: this.cookie } });
    ws.on("message", (data) => {
      const message = JSON.parse(String(data));
      if (message.type === "events") for (const event of message.events) if (!this.events.some((e) => e.seq === event.seq)) this.events.push(event);
      if (message.type === "runtime") {
        this.runtimeOnline = message.runtime.online;
        this.runtimeTransport = message.runtime.transport;
      }
    });
    await new Promise((r, j) => {
      ws.once("open", r);
      ws.once("error", j);
    });
    ws.on("error", () => {});
    ws.send(JSON.stringify({ type: "sync", afterSeq: 0 }));
    this.ws = ws;
  }

  send(message: unknown) {
    this.ws!.send(JSON.stringify(message));
  }

  close() {
    this.ws?.close();
  }

  finished(): any[] {
    return this.events.filter((e) => e.kind === "command.finished");
  }

  /** Every command's events, by command id, in log order. */
  byCommand(): Map<string, string[]> {
    const map = new Map<string, string[]>();
    for (const event of [...this.events].sort((a, b) => a.seq - b.seq)) {
      const list = map.get(event.commandId) ?? [];
      list.push(event.kind);
      map.set(event.commandId, list);
    }
    return map;
  }
}

/**
 * A WAN hop on loopback: every chunk is held for the hop's one-way delay in
 * its direction, in order (tc netem is not available in this kernel). Both
 * sides run with Nagle off, as the real endpoints do.
 */
export class DelayingRelay {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly oneWayDelayMs: number,
  ) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        from.setNoDelay(true);
        let releaseAt = 0;
        from.on("data", (chunk) => {
          // Never earlier than the chunk before it: a hop delays, it does not reorder.
          releaseAt = Math.max(performance.now() + this.oneWayDelayMs, releaseAt);
          const wait = releaseAt - performance.now();
          if (wait <= 0) to.write(chunk);
          else setTimeout(() => to.destroyed || to.write(chunk), wait);
        });
        from.on("close", () => setTimeout(() => to.destroy(), this.oneWayDelayMs));
        from.on("error", () => to.destroy());
        this.sockets.add(from);
        from.on("close", () => this.sockets.delete(from));
      }
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  close() {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }
}

/** Alive and not a zombie: a killed orphan may wait a while for whoever adopted it to reap it. */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false; // gone between the two checks
  }
}

/** Resolves when the console's session reports the endpoint's runtime online (or offline, when asked). */
export async function waitForRuntimeOnline(origin: string, cookie: string, endpointId: string, online = true, timeoutMs = 30_000): Promise<void> {
  const ws = new WebSocket(`${origin.replace("http", "ws")}/parties/endpoint/${endpointId}`, { headers: { cookie } });
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`runtime of ${endpointId} not ${online ? "online" : "offline"} within ${timeoutMs} ms`)), timeoutMs);
      ws.on("message", (data) => {
        const message = JSON.parse(String(data));
        if (message.type === "runtime" && message.runtime.online === online) {
          clearTimeout(timer);
          resolvePromise();
        }
      });
      ws.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  } finally {
    ws.close();
  }
}

/**
 * A real HTTP proxy (tests/faults/mapping-proxy.mjs, the `proxy` package) in
 * its own process, that resolves some host names itself, like a plant proxy
 * with its own DNS view: a runtime told to reach `caisey-console.invalid` can
 * get there only through it (".invalid" never resolves). Records every CONNECT target.
 */
export class MappingProxy {
  readonly connects: string[] = [];
  port = 0;
  private child: ChildProcess | null = null;
  private syncs = new Map<number, () => void>();
  private nextSync = 0;

  constructor(
    private readonly hosts: Record<string, string>,
    private readonly credentials?: { user: string; password: string },
  ) {}

  async listen(): Promise<string> {
    const { fork } = await import("node:child_process");
    const child = fork(join(root, "tests/faults/mapping-proxy.mjs"), [JSON.stringify({ hosts: this.hosts, credentials: this.credentials })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    child.on("message", (message: { port?: number; connect?: string; synced?: number }) => {
      if (message.port) this.port = message.port;
      if (message.connect !== undefined) this.connects.push(message.connect);
      if (message.synced !== undefined) this.syncs.get(message.synced)?.();
    });
    await waitUntil("the proxy to listen", () => this.port > 0 || child.exitCode !== null, 10_000);
    if (!this.port) throw new Error("the proxy exited before listening");
    return this.url();
  }

  /** The CONNECT targets seen so far, including any still in flight over IPC. */
  async seen(): Promise<string[]> {
    const id = this.nextSync++;
    await new Promise<void>((resolvePromise) => {
      this.syncs.set(id, resolvePromise);
      this.child!.send({ sync: id });
    });
    this.syncs.delete(id);
    return [...this.connects];
  }

  /** Its URL, with credentials if given, for HTTP(S)_PROXY or --proxy. */
  url(user?: string, password?: string): string {
    return user ? `http://${encodeURIComponent(user)}:${encodeURIComponent(password ?? "")}@127.0.0.1:${this.port}` : `http://127.0.0.1:${this.port}`;
  }

  close() {
    this.child?.kill();
  }
}

/** Runs `fn` (which spawns processes) with these environment variables set (undefined removes one), then restores them. */
export function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return fn();
  } finally {
    apply(saved);
  }
}

/** Every proxy variable cleared, so a test decides the route itself whatever the CI machine has set. */
export const NO_PROXY_ENV = { HTTP_PROXY: undefined, http_proxy: undefined, HTTPS_PROXY: undefined, https_proxy: undefined, NO_PROXY: undefined, no_proxy: undefined };

/** Queues `text` as a single command and resolves with its own command.finished event (not an earlier one replayed). */
export async function runAndWait(viewer: Viewer, text: string, timeoutMs = 30_000, afterQueued?: () => void): Promise<any> {
  const requestId = crypto.randomUUID();
  viewer.send({ type: "run", requestId, text, shell: "sh" });
  const queued = await waitUntil(`"${text}" to be queued`, () => viewer.events.find((e) => e.kind === "command.queued" && e.requestId === requestId));
  afterQueued?.();
  return waitUntil(`"${text}" to finish`, () => viewer.finished().find((e) => e.commandId === queued.commandId), timeoutMs);
}

/** libfaketime (apt package faketime): the runtime's wall clock an hour behind, its monotonic clock untouched. */
export const CLOCK_ONE_HOUR_SLOW: NodeJS.ProcessEnv = {
  LD_PRELOAD: "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
  FAKETIME: "-1h",
  FAKETIME_DONT_FAKE_MONOTONIC: "1",
};

/**
 * `wrangler pages dev` with a deployed environment's configuration ([env.<env>] of both wrangler
 * files, flattened into a scratch directory by wrangler's own parser) instead of the local top level:
 * production vars, no .dev.vars, no offline keys unless `bindings` adds them. Serves this checkout's
 * build (public/ and functions/ from `npm run build`). `secrets` are added as .dev.vars.
 */
export class EnvironmentStack {
  private child: ChildProcess | null = null;
  output = "";
  readonly origin: string;
  readonly dir = mkdtempSync(join(tmpdir(), "caisey-env-stack-"));

  constructor(readonly env: "production" | "preview", readonly port: number, readonly secrets: Record<string, string> = {}) {
    this.origin = `http://127.0.0.1:${port}`;
  }

  async start() {
    const { unstable_readConfig: readConfig } = await import("wrangler");
    const pages = readConfig({ config: join(root, "wrangler.toml"), env: this.env }, { hideWarnings: true });
    const session = readConfig({ config: join(root, "workers/session/wrangler.toml"), env: this.env }, { hideWarnings: true });
    const common = { compatibility_date: pages.compatibility_date, compatibility_flags: pages.compatibility_flags };
    type Parsed = { d1_databases: { binding: string; database_name?: string; database_id?: string }[] };
    const d1 = (config: Parsed) => config.d1_databases.map(({ binding, database_name, database_id }) => ({ binding, database_name, database_id }));
    writeFileSync(
      join(this.dir, "wrangler.json"),
      JSON.stringify({
        name: pages.name,
        pages_build_output_dir: join(root, "public"),
        ...common,
        vars: pages.vars,
        d1_databases: d1(pages),
        durable_objects: { bindings: pages.durable_objects.bindings },
        r2_buckets: pages.r2_buckets.map(({ binding, bucket_name }: { binding: string; bucket_name?: string }) => ({ binding, bucket_name })),
      }),
    );
    writeFileSync(
      join(this.dir, "session.json"),
      JSON.stringify({
        name: session.name,
        main: join(root, "workers/session/src/index.ts"),
        ...common,
        vars: session.vars,
        d1_databases: d1(session),
        durable_objects: { bindings: session.durable_objects.bindings },
        migrations: session.migrations,
      }),
    );
    // Pages dev compiles the functions directory next to where it runs.
    symlinkSync(join(root, "functions"), join(this.dir, "functions"));
    const env = { ...process.env };
    for (const key of Object.keys(env)) if (key.startsWith("CLERK_") || key.startsWith("CAISEY_")) delete env[key];
    const args = [
      "pages", "dev", "-c", "wrangler.json", "-c", "session.json", "--ip", "127.0.0.1", "--port", String(this.port),
      "--persist-to", join(this.dir, "state"), "--show-interactive-dev-session=false",
    ];
    // Secrets as an operator's `wrangler pages secret put` would add them (none unless the test says so).
    if (Object.keys(this.secrets).length) {
      writeFileSync(join(this.dir, ".dev.vars"), Object.entries(this.secrets).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join("\n"));
    }
    const child = spawn(join(root, "node_modules/.bin/wrangler"), args, { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"], detached: true, env });
    this.child = child;
    child.stdout!.on("data", (d) => (this.output += d));
    child.stderr!.on("data", (d) => (this.output += d));
    await waitUntil("wrangler pages dev to listen", async () => child.exitCode !== null || !(await portClosed(this.port)), 120_000);
    if (child.exitCode !== null) throw new Error(`wrangler pages dev exited:\n${this.output.slice(-3000)}`);
  }

  async stop() {
    const child = this.child;
    this.child = null;
    await killStack(child, this.port);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A GET with a Host header of the caller's choosing (fetch does not let a caller set Host). */
export function getWithHost(origin: string, path: string, host: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(path, origin);
  return new Promise((resolvePromise, reject) => {
    const request = http.request({ hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: { host } }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolvePromise({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

/**
 * The set-up every file driving the shared fault stack needs: the stack started once for the file (fresh state)
 * with a signed-in technician, every runtime the file enrolled killed at the end, and the stack stopped.
 */
export function useFaultStack(port = Number(process.env.FAULTS_PORT ?? 8797), stateDir = ".wrangler/faults-state") {
  const stack = new Stack(port, stateDir);
  const runtimes: Runtime[] = [];
  let cookie = "";
  beforeAll(async () => {
    await stack.start(true);
    cookie = await signIn(stack.origin);
  }, STACK_START_TIMEOUT_MS + 30_000);
  afterAll(async () => {
    for (const runtime of runtimes) await runtime.kill();
    await stack.stop();
  });
  return {
    stack,
    /** The signed-in technician's session cookie (set once beforeAll has run). */
    cookie: () => cookie,
    /** A runtime enrolled against `server` (the stack itself unless a relay or proxy stands between). */
    newRuntime(name: string, server = stack.origin): Runtime {
      const runtime = new Runtime();
      runtime.enroll(server, `fault-${name}-${Date.now()}`);
      runtimes.push(runtime);
      return runtime;
    },
  };
}
