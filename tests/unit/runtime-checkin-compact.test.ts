// ADR 0027: the runtime's side of compact check-in answers. A 204 is the
// session's "nothing to do" (every field at its default), a compact body
// leaves out empty lists and the default interval; neither is a failure, and
// the request says once per process that it takes them, without a content-type.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { checkinRequestSchema, DEFAULT_CHECKIN_INTERVAL_MS, PROTOCOL_VERSION, type CheckinRequest, type CheckinResponse } from "../../protocol/messages";
import { CheckinLoop, checkinBody, checkinUrl, clampCheckinInterval, MAX_CHECKIN_INTERVAL_MS, MIN_CHECKIN_INTERVAL_MS, serverErrorText } from "../../runtime/src/checkin";
import { silentLogger, type Logger } from "../../runtime/src/log";

const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

/** An answer, optionally held until `after` settles; "never" holds the request open until the client gives up. */
type StandInAnswer = { status: number; body?: unknown; raw?: string; after?: Promise<unknown> } | "never";

async function standIn(answer: (index: number) => StandInAnswer) {
  const seen: { headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const reply = answer(seen.length);
      seen.push({ headers: req.headers, body });
      if (reply === "never") return;
      const { status, body: json, raw, after } = reply;
      await after;
      if (raw !== undefined) res.writeHead(status).end(raw);
      else if (json === undefined) res.writeHead(status).end();
      else res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
    });
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { url: checkinUrl(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), seen };
}

function loopAgainst(url: string, sendNow = false, { timeoutMs, log = silentLogger }: { timeoutMs?: number; log?: Logger } = {}) {
  const responses: CheckinResponse[] = [];
  const failures: string[] = [];
  const rejections: string[] = [];
  const failureCounts: number[] = [];
  const request: CheckinRequest = { protocol: PROTOCOL_VERSION, runtimeVersion: "1.0.0", hostname: "h", os: "linux", clock: Date.now(), started: [], results: [], updateStatus: [], compactAnswers: true };
  const loop = new CheckinLoop(url, "credential-".padEnd(48, "c"), {
    checkinRequest: () => ({ ...request, clock: Date.now() }),
    onCheckinResponse: async (_request, response) => {
      responses.push(response);
      return sendNow && responses.length === 1;
    },
    onCheckinFailed: (reason, consecutive) => {
      failures.push(reason);
      failureCounts.push(consecutive);
    },
    onRejected: (reason) => rejections.push(reason),
  }, log, 1000, timeoutMs);
  return { loop, responses, failures, rejections, failureCounts, request };
}

describe("compact check-in answers on the runtime", () => {
  it("takes a 204 as an answer with every default, and a compact body as the same full answer", async () => {
    const { url, seen } = await standIn((index) =>
      index === 0 ? { status: 200, body: { dispatch: [{ commandId: "cmd_1", text: "echo hi", shell: "sh", timeoutMs: 5000, maxOutputBytes: 1024 }], serverTime: 1_700_000_000_000 } } : { status: 204 },
    );
    const { loop, responses, failures } = loopAgainst(url);
    loop.start();
    await expect.poll(() => responses.length).toBe(1);
    expect(responses[0]).toEqual({ acks: [], cancel: [], nextCheckinMs: DEFAULT_CHECKIN_INTERVAL_MS, serverTime: 1_700_000_000_000, dispatch: [expect.objectContaining({ commandId: "cmd_1" })] });
    loop.wake();
    await expect.poll(() => responses.length).toBe(2);
    loop.stop();
    expect(responses[1]).toEqual({ acks: [], dispatch: [], cancel: [], nextCheckinMs: DEFAULT_CHECKIN_INTERVAL_MS });
    expect(failures).toEqual([]);
    expect(loop.interval).toBe(DEFAULT_CHECKIN_INTERVAL_MS);

    // The first request describes the runtime, with the flag; the next one leaves all of it out. No content-type on either.
    const bodies = seen.map((s) => JSON.parse(s.body));
    expect(bodies[0]).toMatchObject({ compactAnswers: true, runtimeVersion: "1.0.0" });
    expect(bodies[1]).not.toHaveProperty("compactAnswers");
    for (const { headers } of seen) expect(headers["content-type"]).toBeUndefined();
    for (const body of bodies) expect(checkinRequestSchema.safeParse(body).success).toBe(true);
  });

  it("still fails on answers that are neither 200 nor 204", async () => {
    const { url } = await standIn(() => ({ status: 202, body: {} }));
    const { loop, responses, failures } = loopAgainst(url);
    loop.start();
    await expect.poll(() => failures.length).toBeGreaterThan(0);
    loop.stop();
    expect(responses).toEqual([]);
    expect(failures[0]).toContain("HTTP 202");
  });
});

describe("the check-in loop's answers and timing", () => {
  it("stops for good on a refused credential (401/403) and says why", async () => {
    for (const status of [401, 403]) {
      const { url, seen } = await standIn(() => ({ status, body: { error: "credential revoked" } }));
      const { loop, failures, rejections } = loopAgainst(url);
      loop.start();
      await expect.poll(() => rejections.length).toBe(1);
      await loop.idle();
      expect(rejections[0]).toBe(`HTTP ${status}: credential revoked`);
      expect(loop.isRunning).toBe(false);
      loop.wake(); // a stopped loop does not check in again
      expect(seen.length).toBe(1);
      expect(failures).toEqual([]);
    }
  });

  it("counts failures (refused body, server error, no JSON, invalid answer) and retries each with backoff", async () => {
    const answers = [{ status: 400, body: { error: "bad body" } }, { status: 503 }, { status: 200, body: "{" }, { status: 200, body: { nextCheckinMs: -1 } }];
    const { url } = await standIn((index) => answers[index] ?? { status: 204 });
    const { loop, responses, failures, rejections, failureCounts } = loopAgainst(url);
    loop.start();
    await expect.poll(() => responses.length, { timeout: 15_000 }).toBe(1);
    loop.stop();
    expect(failureCounts).toEqual([1, 2, 3, 4]);
    expect(failures[0]).toBe("HTTP 400: bad body");
    expect(failures[1]).toBe("server answered HTTP 503");
    expect(failures[2]).toMatch(/^invalid check-in answer: |not JSON/);
    expect(failures[3]).toMatch(/^invalid check-in answer: /);
    expect(rejections).toEqual([]);
  });

  it("takes the server's interval (clamped), and checks in again at once when the runtime has news", async () => {
    const { url, seen } = await standIn((index) => (index === 0 ? { status: 200, body: { nextCheckinMs: 600_000 } } : { status: 204 }));
    const { loop, responses } = loopAgainst(url, true);
    loop.start();
    await expect.poll(() => responses.length).toBe(2); // the second without waiting ten minutes: sendNow
    loop.stop();
    expect(responses[0].nextCheckinMs).toBe(600_000);
    expect(seen.length).toBe(2);
    for (const { headers } of seen) expect(headers.authorization).toBe(`Bearer ${"credential-".padEnd(48, "c")}`);
    expect(clampCheckinInterval(5)).toBe(MIN_CHECKIN_INTERVAL_MS);
    expect(clampCheckinInterval(Number.NaN)).toBe(MIN_CHECKIN_INTERVAL_MS);
    expect(clampCheckinInterval(MAX_CHECKIN_INTERVAL_MS * 2)).toBe(MAX_CHECKIN_INTERVAL_MS);
    expect(clampCheckinInterval(1500.4)).toBe(1500);
  });

  it("builds lean bodies and readable URLs and error texts", () => {
    const request: CheckinRequest = { protocol: PROTOCOL_VERSION, runtimeVersion: "1.0.0", hostname: "h", os: "linux", platform: "linux-x64", clock: 5, started: [], results: [], updateStatus: [], compactAnswers: true };
    expect(JSON.parse(checkinBody(request, false))).toEqual({ protocol: PROTOCOL_VERSION, clock: 5 });
    expect(JSON.parse(checkinBody({ ...request, started: [{ commandId: "c", startedAt: 6 }] }, true))).toEqual({
      protocol: PROTOCOL_VERSION,
      clock: 5,
      runtimeVersion: "1.0.0",
      hostname: "h",
      os: "linux",
      platform: "linux-x64",
      compactAnswers: true,
      started: [{ commandId: "c", startedAt: 6 }],
    });
    expect(checkinUrl("https://caisey.test/base//?x=1#y")).toBe("https://caisey.test/base/agent/checkin");
    expect(serverErrorText(JSON.stringify({ error: "nope" }))).toBe("nope");
    expect(serverErrorText("  plain text  ")).toBe("plain text");
    expect(serverErrorText("")).toBeUndefined();
  });
});

describe("waking the check-in loop", () => {
  it("checks in again right after the one in flight when woken meanwhile, not after the interval", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The first answer waits until the loop has been woken.
    const { url, seen } = await standIn((index) => ({ status: 200, body: { nextCheckinMs: 600_000 }, ...(index === 0 ? { after: gate } : {}) }));
    const { loop, responses } = loopAgainst(url);
    loop.start();
    await expect.poll(() => seen.length).toBe(1);
    loop.wake(); // in flight: remembered, not a second request now
    expect(seen.length).toBe(1);
    release();
    await expect.poll(() => responses.length).toBe(2); // at once, not ten minutes later
    await loop.idle();
    loop.stop();
    loop.wake(); // stopped: nothing more
    expect(seen.length).toBe(2);
  });
});

/** Keeps what the loop logs, so a test can read what an operator would see. */
function capturingLogger() {
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  return { log, lines };
}

describe("what a failed check-in says", () => {
  it("names each kind of failure, with the server's own words when it gave any, and logs a refused body as an error", async () => {
    const answers: StandInAnswer[] = [
      { status: 400 },
      { status: 400, body: { error: "bad body" } },
      { status: 500, raw: "down for maintenance" },
      { status: 200, raw: "<html>captive portal</html>" },
    ];
    const { url } = await standIn((index) => answers[index] ?? { status: 204 });
    const { log, lines } = capturingLogger();
    const { loop, responses, failures } = loopAgainst(url, false, { log });
    loop.start();
    await expect.poll(() => responses.length, { timeout: 15_000 }).toBe(1);
    loop.stop();
    expect(failures).toEqual(["HTTP 400", "HTTP 400: bad body", "server answered HTTP 500: down for maintenance", "the check-in answer is not JSON"]);
    expect(lines.filter((line) => line.startsWith("error "))).toEqual([
      "error the server refused the check-in body (HTTP 400)",
      "error the server refused the check-in body (bad body)",
    ]);
  });

  it("retries the first failure after half a second or less (backoff, never more than the interval)", async () => {
    const { url } = await standIn((index) => (index === 0 ? { status: 503 } : { status: 204 }));
    const { log, lines } = capturingLogger();
    const { loop, responses } = loopAgainst(url, false, { log });
    loop.start();
    await expect.poll(() => responses.length).toBe(1);
    loop.stop();
    const [warning] = lines.filter((line) => line.startsWith("warn "));
    const delay = Number(/retrying in (\d+) ms$/.exec(warning ?? "")?.[1]);
    expect(warning).toMatch(/^warn check-in failed \(server answered HTTP 503\); retrying in \d+ ms$/);
    expect(delay).toBeGreaterThanOrEqual(250);
    expect(delay).toBeLessThan(500);
  });

  it("gives up on a check-in that gets no answer within its timeout, and tries again", async () => {
    const { url } = await standIn((index) => (index === 0 ? "never" : { status: 204 }));
    const { loop, responses, failures } = loopAgainst(url, false, { timeoutMs: 300 });
    loop.start();
    await expect.poll(() => responses.length, { timeout: 10_000 }).toBe(1);
    loop.stop();
    expect(failures).toEqual(["no answer within 300 ms"]);
  });

  it("says so when the check-in could not even be built, and keeps trying", async () => {
    const { url, seen } = await standIn(() => ({ status: 204 }));
    let calls = 0;
    const failures: string[] = [];
    const loop = new CheckinLoop(url, "credential-".padEnd(48, "c"), {
      checkinRequest: () => {
        calls += 1;
        if (calls === 1) throw new Error("journal unreadable");
        return { protocol: PROTOCOL_VERSION, runtimeVersion: "1.0.0", hostname: "h", os: "linux", clock: Date.now(), started: [], results: [], updateStatus: [], compactAnswers: true };
      },
      onCheckinResponse: async () => false,
      onCheckinFailed: (reason) => failures.push(reason),
      onRejected: () => {},
    }, silentLogger, 1000);
    loop.start();
    await expect.poll(() => seen.length).toBe(1);
    await loop.idle();
    loop.stop();
    expect(failures).toEqual(["could not build the check-in: journal unreadable"]);
  });

  it("counts a check-in whose answer could not be applied locally as a contact, and logs why", async () => {
    const { url } = await standIn(() => ({ status: 204 }));
    const { log, lines } = capturingLogger();
    const failures: string[] = [];
    let answers = 0;
    const loop = new CheckinLoop(url, "credential-".padEnd(48, "c"), {
      checkinRequest: () => ({ protocol: PROTOCOL_VERSION, runtimeVersion: "1.0.0", hostname: "h", os: "linux", clock: Date.now(), started: [], results: [], updateStatus: [], compactAnswers: true }),
      onCheckinResponse: async () => {
        answers += 1;
        throw new Error("disk full");
      },
      onCheckinFailed: (reason) => failures.push(reason),
      onRejected: () => {},
    }, log, 1000);
    loop.start();
    await expect.poll(() => answers).toBe(1);
    await loop.idle();
    loop.stop();
    expect(failures).toEqual([]);
    expect(lines).toContain("error could not apply the check-in answer: disk full");
  });

  it("a hard stop aborts the check-in in flight, and the last check-in says it was stopped", async () => {
    const { url, seen } = await standIn(() => "never");
    const { loop } = loopAgainst(url);
    const last = loop.final(60_000);
    await expect.poll(() => seen.length).toBe(1);
    loop.abortInFlight();
    expect(await last).toEqual({ kind: "failed", reason: "runtime stopping" });
  });

  it("idle() resolves only once the check-in in flight has been answered and applied", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { url, seen } = await standIn(() => ({ status: 200, body: { nextCheckinMs: 600_000 }, after: gate }));
    const { loop, responses } = loopAgainst(url);
    loop.start();
    await expect.poll(() => seen.length).toBe(1);
    const idle = loop.idle();
    release();
    await idle;
    expect(responses).toHaveLength(1);
    loop.stop();
  });

  it("after a stop, the check-in still in flight is neither counted as a failure nor retried", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { url, seen } = await standIn(() => ({ status: 503, after: gate }));
    const { loop, failures } = loopAgainst(url);
    loop.start();
    await expect.poll(() => seen.length).toBe(1);
    loop.stop();
    release();
    await loop.idle();
    await new Promise((resolve) => setImmediate(resolve)); // the loop's own continuation after the answer
    expect(failures).toEqual([]);
    expect(seen).toHaveLength(1);
  });
});

describe("check-in bodies and error texts", () => {
  it("carries results and update progress when there are any", () => {
    const result: CheckinRequest["results"][number] = { commandId: "c1", status: "succeeded", exitCode: 0, startedAt: 1, finishedAt: 2, durationMs: 1, tail: [], truncated: false, error: null };
    const updateStatus: CheckinRequest["updateStatus"] = [{ version: "1.2.3", phase: "downloading", detail: "" }];
    const request: CheckinRequest = { protocol: PROTOCOL_VERSION, runtimeVersion: "1.0.0", hostname: "h", os: "linux", clock: 5, started: [], results: [result], updateStatus, compactAnswers: true };
    expect(JSON.parse(checkinBody(request, false))).toEqual({ protocol: PROTOCOL_VERSION, clock: 5, results: [result], updateStatus });
  });

  it("keeps at most 200 characters of a server's plain-text error", () => {
    expect(serverErrorText(` ${"x".repeat(300)} `)).toBe("x".repeat(200));
  });
});
