// The runtime behind an explicit proxy, with real processes: the local stack,
// a real HTTP proxy, real runtime processes. The runtime is told the server is
// http://caisey-console.invalid:<port>, a name that never resolves, and only
// the proxy knows where that is, so direct egress is impossible: whatever
// works here went through the proxy (docs/decisions/0015-runtime-network.md).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkinResponseSchema, PROTOCOL_VERSION } from "../../protocol/messages";
import { MappingProxy, NO_PROXY_ENV, Runtime, runAndWait, signIn, Stack, Viewer, waitUntil, withEnv } from "./stack";

const stack = new Stack(Number(process.env.FAULTS_PORT ?? 8797), ".wrangler/faults-state");
const HIDDEN_HOST = "caisey-console.invalid";
const proxy = new MappingProxy({ [HIDDEN_HOST]: "127.0.0.1" });
const guarded = new MappingProxy({ [HIDDEN_HOST]: "127.0.0.1" }, { user: "plant", password: "s3cret-pw" });
const runtimes: Runtime[] = [];
let cookie = "";
let hiddenServer = "";

beforeAll(async () => {
  await stack.start(true);
  cookie = await signIn(stack.origin);
  await proxy.listen();
  await guarded.listen();
  hiddenServer = `http://${HIDDEN_HOST}:${stack.port}`;
}, 150_000);

afterAll(async () => {
  for (const runtime of runtimes) await runtime.kill();
  proxy.close();
  guarded.close();
  await stack.stop();
});

function newRuntime(): Runtime {
  const runtime = new Runtime();
  runtimes.push(runtime);
  return runtime;
}

function enrollError(runtime: Runtime, server: string, name: string, env: Record<string, string | undefined>): string {
  try {
    withEnv({ ...NO_PROXY_ENV, ...env }, () => runtime.enroll(server, name));
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("enrollment unexpectedly succeeded");
}

/**
 * Queues `echo <word>` from the console, then starts the runtime (so a
 * check-in runtime gets it on its first check-in, not 30 s later), and
 * resolves with the finished event once the runtime reports it.
 */
async function runEcho(runtime: Runtime, word: string, start: () => void) {
  const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
  await viewer.connect();
  const finished = await runAndWait(viewer, `echo ${word}`, 30_000, start);
  viewer.close();
  return finished;
}

describe("the runtime behind an explicit proxy", () => {
  it("enroll, WebSocket and check-in all go through HTTPS_PROXY/HTTP_PROXY; without the proxy each fails with a clear error", async () => {
    const runtime = newRuntime();
    const name = `proxy-env-${Date.now()}`;
    // Without the proxy: the name does not resolve, and the error says so.
    expect(enrollError(runtime, hiddenServer, name, {})).toMatch(/could not reach http:\/\/caisey-console\.invalid:\d+\/agent\/enroll: .*(ENOTFOUND|EAI_AGAIN)/);
    expect(await proxy.seen()).toEqual([]);

    const viaProxy = { HTTPS_PROXY: proxy.url(), HTTP_PROXY: proxy.url() };
    withEnv({ ...NO_PROXY_ENV, ...viaProxy }, () => runtime.enroll(hiddenServer, name));
    expect(await proxy.seen()).toContain(`${HIDDEN_HOST}:${stack.port}`);

    const overSocket = await runEcho(runtime, "through-the-proxy", () => withEnv({ ...NO_PROXY_ENV, ...viaProxy }, () => runtime.start(["--transport", "websocket"])));
    expect(overSocket).toMatchObject({ status: "succeeded" });
    expect(runtime.log).toContain(`connecting to ws://${HIDDEN_HOST}:${stack.port}/agent/connect via proxy http://127.0.0.1:${proxy.port}/`);
    await runtime.kill("SIGTERM");

    const before = (await proxy.seen()).length;
    runtime.log = "";
    const overCheckin = await runEcho(runtime, "checked-in", () => withEnv({ ...NO_PROXY_ENV, ...viaProxy }, () => runtime.start(["--transport", "checkin", "--checkin-interval", "1"])));
    expect(overCheckin).toMatchObject({ status: "succeeded" });
    expect((await proxy.seen()).length).toBeGreaterThan(before);
    await runtime.kill("SIGTERM");

    // The same enrolled runtime without the proxy: both transports fail and say why.
    runtime.log = "";
    withEnv(NO_PROXY_ENV, () => runtime.start(["--transport", "websocket"]));
    await waitUntil("the WebSocket failure to be logged", () => /could not connect \(.*(ENOTFOUND|EAI_AGAIN).*caisey-console\.invalid/.test(runtime.log));
    await runtime.kill();
    runtime.log = "";
    withEnv(NO_PROXY_ENV, () => runtime.start(["--transport", "checkin", "--checkin-interval", "1"]));
    await waitUntil("the check-in failure to be logged", () => /check-in failed \(.*(ENOTFOUND|EAI_AGAIN)/.test(runtime.log));
    await runtime.kill();
  }, 90_000);

  it("NO_PROXY sends the server direct even with a proxy set", async () => {
    const runtime = newRuntime();
    const before = (await proxy.seen()).length;
    // The server is exempt, so the runtime goes direct, where the name does not resolve.
    const message = enrollError(runtime, hiddenServer, `proxy-noproxy-${Date.now()}`, { HTTP_PROXY: proxy.url(), NO_PROXY: "localhost,.invalid" });
    expect(message).toMatch(/ENOTFOUND|EAI_AGAIN/);
    expect(message).not.toContain("via proxy");
    expect((await proxy.seen()).length).toBe(before);
    // A server that is reachable directly works while exempt, and the proxy sees none of it.
    withEnv({ ...NO_PROXY_ENV, HTTP_PROXY: proxy.url(), NO_PROXY: "127.0.0.1" }, () => runtime.enroll(stack.origin, `proxy-noproxy-direct-${Date.now()}`));
    expect(await runEcho(runtime, "direct", () => withEnv({ ...NO_PROXY_ENV, HTTP_PROXY: proxy.url(), NO_PROXY: "127.0.0.1" }, () => runtime.start(["--transport", "websocket"])))).toMatchObject({ status: "succeeded" });
    expect((await proxy.seen()).length).toBe(before);
    await runtime.kill();
  }, 60_000);

  it("--proxy overrides the environment, proxy credentials work and never reach a log, and a 407 is explained", async () => {
    const runtime = newRuntime();
    const wrong = guarded.url("plant", "wrong-pw");
    const message = enrollError(runtime, hiddenServer, `proxy-auth-${Date.now()}`, { HTTP_PROXY: wrong });
    expect(message).toMatch(/the proxy http:\/\/\*\*\*@127\.0\.0\.1:\d+\/? refused the connection: HTTP 407 Proxy Authentication Required/);
    expect(message).not.toContain("wrong-pw");

    const right = guarded.url("plant", "s3cret-pw");
    withEnv({ ...NO_PROXY_ENV, HTTP_PROXY: right }, () => runtime.enroll(hiddenServer, `proxy-auth-${Date.now()}`));
    // The environment points at a dead proxy; the flag wins.
    const deadProxy = { ...NO_PROXY_ENV, HTTP_PROXY: "http://127.0.0.1:9", HTTPS_PROXY: "http://127.0.0.1:9" };
    expect(await runEcho(runtime, "authenticated", () => withEnv(deadProxy, () => runtime.start(["--transport", "websocket", "--proxy", right])))).toMatchObject({ status: "succeeded" });
    await runtime.kill("SIGTERM");

    expect(await runEcho(runtime, "authenticated-checkin", () => withEnv(deadProxy, () => runtime.start(["--transport", "checkin", "--checkin-interval", "1", "--proxy", right])))).toMatchObject({ status: "succeeded" });
    await runtime.kill("SIGTERM");

    // Wrong credentials on each transport: the log names the 407, not "server answered".
    runtime.log = "";
    withEnv(NO_PROXY_ENV, () => runtime.start(["--transport", "websocket", "--proxy", wrong]));
    await waitUntil("the WebSocket's 407 to be logged", () => runtime.log.includes("refused the connection: HTTP 407 Proxy Authentication Required"));
    await runtime.kill();
    withEnv(NO_PROXY_ENV, () => runtime.start(["--transport", "checkin", "--checkin-interval", "1", "--proxy", wrong]));
    await waitUntil("the check-in's 407 to be logged", () => /check-in failed \(the proxy .* refused the connection: HTTP 407/.test(runtime.log));
    await runtime.kill();
    expect(runtime.log).not.toMatch(/s3cret-pw|wrong-pw/);
  }, 90_000);

  it("the runtime's check-in answer carries no browser security headers (bytes on every check-in); pages keep them", async () => {
    const runtime = newRuntime();
    withEnv(NO_PROXY_ENV, () => runtime.enroll(stack.origin, `proxy-headers-${Date.now()}`));
    const { credential } = JSON.parse(readFileSync(join(runtime.dir, "identity.json"), "utf8"));
    const body = JSON.stringify({ protocol: PROTOCOL_VERSION, runtimeVersion: "0.1.0", hostname: "h", os: "linux", clock: Date.now() });
    const checkin = await fetch(`${stack.origin}/agent/checkin`, { method: "POST", headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" }, body });
    expect(checkin.status).toBe(200);
    expect(checkinResponseSchema.safeParse(await checkin.json()).success).toBe(true);
    for (const name of ["content-security-policy", "x-frame-options", "referrer-policy", "x-content-type-options"]) expect(checkin.headers.get(name)).toBeNull();
    const page = await fetch(`${stack.origin}/offline/sign-in`);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
  });
});
