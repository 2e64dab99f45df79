// ADR 0027: the runtime's side of compact check-in answers. A 204 is the
// session's "nothing to do" (every field at its default), a compact body
// leaves out empty lists and the default interval; neither is a failure, and
// the request says once per process that it takes them, without a content-type.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { checkinRequestSchema, DEFAULT_CHECKIN_INTERVAL_MS, PROTOCOL_VERSION, type CheckinRequest, type CheckinResponse } from "../../protocol/messages";
import { CheckinLoop, checkinUrl } from "../../runtime/src/checkin";
import { silentLogger } from "../../runtime/src/log";

const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

async function standIn(answer: (index: number) => { status: number; body?: unknown }) {
  const seen: { headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const { status, body: json } = answer(seen.length);
      seen.push({ headers: req.headers, body });
      if (json === undefined) res.writeHead(status).end();
      else res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
    });
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { url: checkinUrl(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), seen };
}

function loopAgainst(url: string) {
  const responses: CheckinResponse[] = [];
  const failures: string[] = [];
  const request: CheckinRequest = { protocol: PROTOCOL_VERSION, runtimeVersion: "1.0.0", hostname: "h", os: "linux", clock: Date.now(), started: [], results: [], updateStatus: [], compactAnswers: true };
  const loop = new CheckinLoop(url, "credential-".padEnd(48, "c"), {
    checkinRequest: () => ({ ...request, clock: Date.now() }),
    onCheckinResponse: async (_request, response) => {
      responses.push(response);
      return false;
    },
    onCheckinFailed: (reason) => failures.push(reason),
    onRejected: (reason) => failures.push(reason),
  }, silentLogger, 1000);
  return { loop, responses, failures };
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
