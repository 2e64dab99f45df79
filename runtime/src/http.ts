// The one place where the runtime decides how to reach the server: directly or
// through an HTTP proxy (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, or a configured
// proxy), for fetch (enroll, check-in) and for the WebSocket alike, so both
// transports always take the same route. See docs/decisions/0015-runtime-network.md.
import type { Agent as HttpAgent } from "node:http";
import { HttpsProxyAgent } from "https-proxy-agent";
import { Agent, ProxyAgent, fetch as undiciFetch, request as undiciRequest, type Dispatcher } from "undici";
import { UserError } from "./identity";
import { errorText } from "./log";

/**
 * How long an idle keep-alive connection is kept. Above the longest check-in
 * interval we expect on metered links (a few minutes), so a check-in reuses
 * the connection instead of paying a new TCP + TLS handshake. A server that
 * announces a shorter `Keep-Alive: timeout=` wins (undici honours the hint).
 */
export const KEEP_ALIVE_IDLE_MS = 5 * 60_000;

export interface NetworkSettings {
  /** http(s)://[user:password@]host:port; overrides HTTPS_PROXY/HTTP_PROXY. */
  proxy?: string;
  /** Comma-separated hosts (optionally :port, leading "." or "*." for subdomains) that bypass the proxy; "*" bypasses it always. */
  noProxy?: string;
}

let settings: NetworkSettings = {};
let directDispatcher: Agent | undefined;
const proxyDispatchers = new Map<string, ProxyAgent>();
const socketAgents = new Map<string, HttpAgent>();

/**
 * Called once by the CLI (flags, config file) before any network call; later
 * calls replace the settings. Refuses an unusable proxy, configured or from the
 * environment, here, at start, rather than on the first connection.
 */
export function configureNetwork(next: NetworkSettings): void {
  if (next.proxy !== undefined && next.proxy.trim() !== "") parseProxyUrl(next.proxy, "the configured proxy");
  else {
    for (const name of ["https_proxy", "http_proxy"]) {
      const value = env(name);
      if (value) parseProxyUrl(value, name.toUpperCase());
    }
  }
  settings = { proxy: next.proxy?.trim() || undefined, noProxy: next.noProxy };
  for (const dispatcher of proxyDispatchers.values()) void dispatcher.close();
  proxyDispatchers.clear();
  for (const agent of socketAgents.values()) agent.destroy();
  socketAgents.clear();
}

function env(name: string): string | undefined {
  // Lower case first, like curl: it is the spelling every tool agrees on. Empty counts as unset.
  for (const value of [process.env[name.toLowerCase()], process.env[name.toUpperCase()]]) {
    if (value?.trim()) return value.trim();
  }
  return undefined;
}

function parseProxyUrl(value: string, source: string): URL {
  let url: URL;
  try {
    // "proxy.example.com:3128" without a scheme is common in the wild; it means http.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    throw new UserError(`${source} is not a URL like http://proxy.example.com:3128 (got "${redactProxy(value)}")`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UserError(`${source} must be an http:// or https:// proxy (got "${redactProxy(value)}")`);
  }
  return url;
}

/** The proxy URL with any user name and password replaced: proxy credentials never reach a log. */
export function redactProxy(proxy: string): string {
  return proxy.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1***@");
}

function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const hostname = target.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = Number(target.port) || (target.protocol === "https:" || target.protocol === "wss:" ? 443 : 80);
  for (const raw of noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return true;
    const match = /^(.+):(\d+)$/.exec(entry);
    const entryHost = (match ? match[1]! : entry).replace(/^\*?\./, "").replace(/^\[|\]$/g, "");
    if (match && Number(match[2]) !== port) continue;
    if (hostname === entryHost || hostname.endsWith(`.${entryHost}`)) return true;
  }
  return false;
}

/**
 * The proxy for a URL (http, https, ws or wss), or undefined for a direct
 * connection. A configured proxy wins over the environment; NO_PROXY (or the
 * configured list) exempts hosts. Hand-written instead of two libraries' rules
 * (undici's EnvHttpProxyAgent and proxy-from-env differ on subdomains and ws:)
 * so that fetch and the WebSocket can never disagree about the route.
 */
export function proxyFor(url: string | URL): string | undefined {
  const target = typeof url === "string" ? new URL(url) : url;
  const secure = target.protocol === "https:" || target.protocol === "wss:";
  const proxy = settings.proxy ?? (secure ? (env("https_proxy") ?? env("http_proxy")) : env("http_proxy"));
  if (!proxy) return undefined;
  if (bypassesProxy(target, settings.noProxy ?? env("no_proxy"))) return undefined;
  return parseProxyUrl(proxy, settings.proxy ? "the configured proxy" : secure ? "HTTPS_PROXY" : "HTTP_PROXY").toString();
}

function dispatcherFor(url: string): Dispatcher {
  const proxy = proxyFor(url);
  if (!proxy) {
    directDispatcher ??= new Agent({ keepAliveTimeout: KEEP_ALIVE_IDLE_MS, keepAliveMaxTimeout: KEEP_ALIVE_IDLE_MS });
    return directDispatcher;
  }
  let dispatcher = proxyDispatchers.get(proxy);
  if (!dispatcher) {
    // Always a CONNECT tunnel, also for http:// servers: many plant proxies forward nothing else end to end.
    dispatcher = new ProxyAgent({ uri: proxy, proxyTunnel: true, keepAliveTimeout: KEEP_ALIVE_IDLE_MS, keepAliveMaxTimeout: KEEP_ALIVE_IDLE_MS });
    proxyDispatchers.set(proxy, dispatcher);
  }
  return dispatcher;
}

/** fetch for every runtime HTTP call: the proxy decision above and one kept-alive connection per origin. */
export async function runtimeFetch(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    // undici's own fetch: Node's global fetch ignores a dispatcher from a different undici copy.
    return (await undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: dispatcherFor(url) })) as unknown as Response;
  } catch (error) {
    throw new NetworkError(describeNetworkError(error, url), { cause: error });
  }
}

/**
 * A POST of a small body on the same connections as runtimeFetch, for the
 * check-in that repeats all day on metered links: undici's request() sends
 * only the headers given (fetch adds accept, accept-language, sec-fetch-mode,
 * user-agent and accept-encoding: ~110 bytes on every check-in).
 */
export async function runtimePost(
  url: string,
  options: { headers: Record<string, string>; body: string; signal?: AbortSignal },
): Promise<{ status: number; text: string }> {
  try {
    const response = await undiciRequest(url, { method: "POST", headers: options.headers, body: options.body, signal: options.signal, dispatcher: dispatcherFor(url) });
    return { status: response.statusCode, text: await response.body.text() };
  } catch (error) {
    throw new NetworkError(describeNetworkError(error, url), { cause: error });
  }
}

/** A failed runtime HTTP call, with a message that names the proxy (redacted) when one was used. */
export class NetworkError extends Error {}

/** The http.Agent for `ws` to reach `url` through the proxy, or undefined to connect directly. */
export function webSocketAgent(url: string): HttpAgent | undefined {
  const proxy = proxyFor(url);
  if (!proxy) return undefined;
  let agent = socketAgents.get(proxy);
  if (!agent) {
    // https-proxy-agent always opens a CONNECT tunnel, which ws:// needs too: a plain-HTTP proxy does not forward an Upgrade.
    agent = new HttpsProxyAgent(proxy) as unknown as HttpAgent;
    socketAgents.set(proxy, agent);
  }
  return agent;
}

/** One line for a failed connection: the root cause, and which proxy was in the way. */
export function describeNetworkError(error: unknown, url: string): string {
  let proxy: string | undefined;
  try {
    proxy = proxyFor(url);
  } catch {
    proxy = undefined; // an unusable proxy setting is the error being described
  }
  // undici nests the useful part ("fetch failed" → "Request was cancelled." → the proxy's answer or the socket error).
  const chain: unknown[] = [];
  for (let cause: unknown = error; cause !== undefined && chain.length < 8; cause = (cause as { cause?: unknown }).cause) {
    chain.push(cause);
    if (!(cause instanceof Error)) break;
  }
  for (const cause of chain) {
    const proxyStatus = /Proxy response \((\d+)\)|Proxy Authentication Required \((\d+)\)/.exec(errorText(cause));
    if (proxyStatus) return proxyRefusal(Number(proxyStatus[1] ?? proxyStatus[2]), proxy);
  }
  const root = chain.at(-1);
  const text = errorText(root);
  const code = (root as NodeJS.ErrnoException | undefined)?.code;
  const detail = typeof code === "string" && !text.includes(code) ? `${code}: ${text}` : text;
  return `${detail}${proxy ? ` (via proxy ${redactProxy(proxy)})` : ""}`;
}

/** A proxy answered the CONNECT (or the request) with a refusal. */
export function proxyRefusal(status: number, proxy: string | undefined): string {
  const name = proxy ? `the proxy ${redactProxy(proxy)}` : "the proxy";
  if (status === 407) return `${name} refused the connection: HTTP 407 Proxy Authentication Required (put the proxy user and password in the proxy URL: http://user:password@host:port)`;
  return `${name} refused the connection: HTTP ${status}${status === 403 ? " (the proxy does not allow this server; ask for it to be allowed)" : ""}`;
}
