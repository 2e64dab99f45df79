// One WebSocket to the server, re-established forever with backoff. It knows
// nothing about commands: it reports opens, messages and a fatal rejection.
import WebSocket from "ws";
import type { IncomingMessage } from "node:http";
import { parseMessage, runtimeBoundMessageSchema, type RuntimeBoundMessage, type RuntimeMessage } from "../../protocol/messages";
import { backoffDelay } from "./backoff";
import { describeNetworkError, proxyFor, proxyRefusal, redactProxy, webSocketAgent } from "./http";
import { formatDelay, type Logger } from "./log";

/** Close codes (and HTTP statuses on the upgrade) that mean "your credential is no good": retrying cannot help. */
const CREDENTIAL_REJECTED_CLOSE_CODES = new Set([4401, 4403]);
const CREDENTIAL_REJECTED_HTTP_STATUSES = new Set([401, 403]);
const REPLACED_CLOSE_CODE = 4409;
/** A connection that lived this long was healthy; the next outage starts backing off from scratch. */
const HEALTHY_CONNECTION_MS = 10_000;
/**
 * A protocol-level ping keeps the socket alive through Cloudflare (which closes
 * WebSockets idle for 100 s) and NATs, and detects half-open connections (lid
 * closed, NAT dropped the mapping) that never deliver a close. Cloudflare
 * answers pings itself without waking a hibernated Durable Object. Every 90 s
 * is the floor under Cloudflare's 100 s: each ping costs ~200 bytes on the wire
 * (docs/decisions/0015-runtime-network.md). CAISEY_PING_INTERVAL_MS exists for
 * tests of dead-connection detection only.
 */
export const PING_INTERVAL_MS = envMs("CAISEY_PING_INTERVAL_MS", 90_000);
/** No pong this long after a ping: the connection is dead (worst-case detection: interval + this). */
export const PONG_TIMEOUT_MS = envMs("CAISEY_PONG_TIMEOUT_MS", 20_000);
const HANDSHAKE_TIMEOUT_MS = 15_000;

export interface ConnectionHandlers {
  onOpen(): void;
  onMessage(message: RuntimeBoundMessage): void;
  /** The server refused our credential; the caller should stop. */
  onRejected(reason: string): void;
  /**
   * A connection attempt failed before the socket opened (network error, or the
   * upgrade refused with a status other than 401/403). Return false to stop
   * reconnecting until `probe()` or `start()` is called.
   */
  onConnectFailed?(reason: string, consecutiveFailures: number): boolean;
}

export class ReconnectingConnection {
  private socket: WebSocket | undefined;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Connection attempts that failed in a row, before the socket opened. */
  private failures = 0;
  private closedPromise: Promise<void> = Promise.resolve();
  private opened = 0;

  constructor(
    private readonly url: string,
    private readonly credential: string,
    private readonly handlers: ConnectionHandlers,
    private readonly log: Logger,
  ) {}

  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /**
   * Which connection a message sent now goes out on (0: none). What was sent on
   * a connection that has closed since may never have arrived.
   */
  get link(): number {
    return this.isOpen ? this.opened : 0;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** True while a socket exists (connecting or open) or a reconnect is scheduled. */
  get isActive(): boolean {
    return this.socket !== undefined || this.reconnectTimer !== undefined;
  }

  /** One connection attempt now, unless one is already under way; it keeps reconnecting only if the handler says so. */
  probe(): void {
    if (this.isActive) return;
    this.stopped = false;
    this.connect();
  }

  send(message: RuntimeMessage): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  /** Bytes handed to the socket but not yet written to the network. */
  get bufferedAmount(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  /** Closes for good (no reconnect) and resolves once the socket is closed. */
  stop(code = 1000, reason = "runtime stopping"): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) socket.close(code, reason);
    else if (socket && socket.readyState === WebSocket.CONNECTING) socket.terminate();
    return this.closedPromise;
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.stopped) return;
    const proxy = proxyFor(this.url);
    this.log.info(`connecting to ${this.url}${proxy ? ` via proxy ${redactProxy(proxy)}` : ""}`);
    const socket = new WebSocket(this.url, {
      headers: { Authorization: `Bearer ${this.credential}` },
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      agent: webSocketAgent(this.url),
    });
    this.socket = socket;
    let openedAt: number | undefined;
    let rejected: string | undefined;
    let failure: string | undefined;
    let resolveClosed!: () => void;
    this.closedPromise = new Promise((resolve) => (resolveClosed = resolve));

    socket.on("upgrade", (response: IncomingMessage) => {
      // ws sets this too; being explicit because small result frames must never wait for an ACK.
      // Under Bun (the darwin-arm64 executable, ADR 0012) the upgrade response has no socket.
      response.socket?.setNoDelay(true);
    });
    socket.on("unexpected-response", (_request, response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (part: string) => {
        if (body.length < 2000) body += part;
      });
      response.on("end", () => {
        const detail = serverErrorText(body) ?? response.statusMessage ?? "";
        if (status === 407) failure = proxyRefusal(status, proxy);
        else if (CREDENTIAL_REJECTED_HTTP_STATUSES.has(status)) rejected = `HTTP ${status}${detail ? `: ${detail}` : ""}`;
        else failure = `server answered HTTP ${status}${detail ? `: ${detail}` : ""}`;
        socket.terminate();
      });
      response.on("error", () => socket.terminate());
    });
    socket.on("open", () => {
      this.opened += 1;
      openedAt = Date.now();
      this.failures = 0;
      this.log.info("connected");
      socket.on("pong", () => {
        clearTimeout(this.pongTimer);
        this.pongTimer = undefined;
      });
      this.pingTimer = setInterval(() => {
        // The deadline runs from the oldest unanswered ping; a later ping does not extend it.
        this.pongTimer ??= setTimeout(() => {
          this.log.warn(`no answer to ping within ${formatDelay(PONG_TIMEOUT_MS)}; dropping the connection`);
          socket.terminate();
        }, PONG_TIMEOUT_MS);
        socket.ping();
      }, PING_INTERVAL_MS);
      this.handlers.onOpen();
    });
    socket.on("message", (data, isBinary) => {
      const parsed = parseMessage(runtimeBoundMessageSchema, isBinary ? (data as Buffer) : data.toString());
      if (!parsed.ok) {
        this.log.warn(`ignoring invalid message from server: ${parsed.error}`);
        return;
      }
      this.handlers.onMessage(parsed.value);
    });
    socket.on("error", (error) => {
      failure ??= describeNetworkError(error, this.url);
    });
    socket.on("close", (code, reasonBuffer) => {
      clearInterval(this.pingTimer);
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
      resolveClosed();
      if (this.socket === socket) this.socket = undefined;
      const reason = reasonBuffer.toString();
      if (CREDENTIAL_REJECTED_CLOSE_CODES.has(code)) rejected ??= `close code ${code}${reason ? `: ${reason}` : ""}`;
      if (rejected) {
        this.stopped = true;
        this.handlers.onRejected(rejected);
        return;
      }
      if (this.stopped) return;
      if (openedAt === undefined) {
        this.failures += 1;
        const keepTrying = this.handlers.onConnectFailed?.(failure ?? `close code ${code}`, this.failures) ?? true;
        if (!keepTrying) {
          this.stopped = true;
          return;
        }
      }
      if (openedAt !== undefined && Date.now() - openedAt >= HEALTHY_CONNECTION_MS) this.attempt = 0;
      const delay = backoffDelay(this.attempt);
      this.attempt += 1;
      let why: string;
      if (openedAt === undefined) why = `could not connect (${failure ?? `close code ${code}`})`;
      else if (code === REPLACED_CLOSE_CODE) why = "disconnected: another runtime connected with this endpoint's credential";
      else why = `disconnected (code ${code}${reason ? `: ${reason}` : ""})`;
      this.log.info(`${why}; reconnecting in ${formatDelay(delay)}`);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }
}

function serverErrorText(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200) || undefined;
}

function envMs(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
