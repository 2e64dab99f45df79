// Process-level tests of HTTPS check-in: the built CLI against a stand-in
// server implementing POST /agent/checkin (and a WebSocket endpoint that a
// "proxy" can block). Covers in-order runs, result delivery and acks, retries
// after a failed upload, exactly-once across acks and crashes, cancel, the
// auto fallback from the WebSocket and the way back.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import {
  checkinRequestSchema,
  enrollRequestSchema,
  parseMessage,
  runtimeMessageSchema,
  type CheckinRequest,
  type CheckinResponse,
  type CommandResult,
  type DispatchedCommand,
} from "../../protocol/messages";
import { outboxFileName } from "../../runtime/src/outbox";
import {
  cli,
  CREDENTIAL,
  enrolledStateDir,
  fileLines,
  outboxFiles,
  posix,
  processGroupAlive,
  StandInServer,
  startRuntime,
  stopRuntime,
  useStandIn,
  waitFor,
  type Reply,
} from "./runtime-harness";

const NOT_RERUN = "interrupted: the runtime stopped or crashed while this command was running; it was not run again";


// ---------------------------------------------------------------------------
// A stand-in for the server: /agent/enroll, /agent/checkin and /agent/connect.

function command(commandId: string, text: string, extra: Partial<DispatchedCommand> = {}): DispatchedCommand {
  return { commandId, text, shell: "default", timeoutMs: 30_000, maxOutputBytes: 256 * 1024, ...extra };
}

class CheckinServer extends StandInServer {
  requests: { body: CheckinRequest; at: number; status: number }[] = [];
  /** Results stored (first copy wins, like the real server). */
  stored = new Map<string, CommandResult>();
  /** How often each result arrived in a check-in that the server accepted. */
  resultPosts = new Map<string, number>();
  acksSent = new Map<string, number>();
  /** A sequence: only the first step without a stored result is due. */
  sequence: DispatchedCommand[] = [];
  /** Independent commands, all due at once (in order) until their results are stored. */
  batch: DispatchedCommand[] = [];
  /** Offered once more in the next answer, whatever their state. */
  redeliver: DispatchedCommand[] = [];
  cancels: string[] = [];
  /** Answer 503 (storing nothing) to the next check-in that carries a result for one of these ids. */
  failResultOnce = new Set<string>();
  failNext = 0;
  reject = false;
  autoAck = true;
  nextCheckinMs = 1000;
  ws: "refuse400" | "destroy" | "accept" = "refuse400";
  wsHellos = 0;
  /** The runtime's socket once it connected (ws "accept"). */
  socket: WebSocket | undefined;

  protected onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.ws === "destroy") return void socket.destroy();
    if (this.ws === "refuse400") {
      socket.end("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\nWebSockets are blocked by policy");
      return;
    }
    if (req.headers.authorization !== `Bearer ${CREDENTIAL}`) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"error":"Runtime credential rejected"}');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
  }

  reset(): void {
    Object.assign(this, {
      requests: [],
      stored: new Map(),
      resultPosts: new Map(),
      acksSent: new Map(),
      sequence: [],
      batch: [],
      redeliver: [],
      cancels: [],
      failResultOnce: new Set(),
      failNext: 0,
      reject: false,
      autoAck: true,
      nextCheckinMs: 1000,
      ws: "refuse400",
      wsHellos: 0,
      socket: undefined,
    });
    for (const ws of this.wss.clients) ws.terminate();
  }

  /** Successful check-ins only. */
  get checkins(): CheckinRequest[] {
    return this.requests.filter((r) => r.status === 200).map((r) => r.body);
  }

  startedSeen(commandId: string): boolean {
    return this.checkins.some((c) => c.started.some((s) => s.commandId === commandId));
  }

  private store(result: CommandResult): void {
    this.resultPosts.set(result.commandId, (this.resultPosts.get(result.commandId) ?? 0) + 1);
    if (!this.stored.has(result.commandId)) this.stored.set(result.commandId, result);
  }

  protected onRequest(req: IncomingMessage, body: string, reply: Reply): void {
    if (req.url === "/agent/enroll" && req.method === "POST") {
      const parsed = parseMessage(enrollRequestSchema, body);
      if (!parsed.ok) return reply(400, { error: parsed.error });
      return reply(201, { endpointId: "ep-checkin-1", credential: CREDENTIAL, clientName: "Acme Dental" });
    }
    if (req.url !== "/agent/checkin" || req.method !== "POST") return reply(404, { error: "Not found" });
    if (this.reject || req.headers.authorization !== `Bearer ${CREDENTIAL}`) return reply(401, { error: "Runtime credential rejected" });
    const parsed = parseMessage(checkinRequestSchema, body);
    if (!parsed.ok) {
      this.invalid.push(parsed.error);
      return reply(400, { error: parsed.error });
    }
    const request = parsed.value;
    const failing = request.results.find((r) => this.failResultOnce.has(r.commandId));
    if (this.failNext > 0 || failing) {
      if (failing) this.failResultOnce.delete(failing.commandId);
      else this.failNext -= 1;
      this.requests.push({ body: request, at: Date.now(), status: 503 });
      return reply(503, { error: "Service unavailable" });
    }
    this.requests.push({ body: request, at: Date.now(), status: 200 });
    for (const result of request.results) this.store(result);
    const acks = this.autoAck ? request.results.map((r) => r.commandId) : [];
    for (const id of acks) this.acksSent.set(id, (this.acksSent.get(id) ?? 0) + 1);
    const dispatch: DispatchedCommand[] = [];
    const nextStep = this.sequence.find((c) => !this.stored.has(c.commandId));
    if (nextStep) dispatch.push(nextStep);
    dispatch.push(...this.batch.filter((c) => !this.stored.has(c.commandId)));
    dispatch.push(...this.redeliver.splice(0));
    const response: CheckinResponse = {
      acks,
      dispatch,
      cancel: this.cancels.splice(0),
      nextCheckinMs: this.nextCheckinMs,
      serverTime: Date.now(),
    };
    reply(200, response);
  }

  private onSocket(ws: WebSocket): void {
    this.socket = ws;
    ws.on("message", (data) => {
      const parsed = parseMessage(runtimeMessageSchema, data.toString());
      if (!parsed.ok) return void this.invalid.push(parsed.error);
      if (parsed.value.type === "hello") this.wsHellos += 1;
      if (parsed.value.type === "result") {
        this.store(parsed.value.result);
        ws.send(JSON.stringify({ type: "ack", commandId: parsed.value.result.commandId }));
      }
    });
  }
}

/** Resolves once the runtime has checked in `count` more times: later check-ins show what it did not send. */
async function moreCheckins(server: { checkins: unknown[] }, count: number): Promise<void> {
  const from = server.checkins.length;
  await waitFor(`${count} more check-in(s)`, () => server.checkins.length >= from + count);
}

function tailText(result: CommandResult | undefined): string {
  return (result?.tail ?? []).map((c) => c.data).join("");
}

const CHECKIN = ["--transport", "checkin", "--checkin-interval", "1"];

// ---------------------------------------------------------------------------

describe.runIf(posix)("caisey-runtime HTTPS check-in", () => {
  const server = useStandIn(new CheckinServer());

  it("checks in, runs a sequence's steps in order (checking in right after each), uploads results and drops them after acks", async () => {
    const stateDir = await enrolledStateDir(server, "sequence");
    const out = join(stateDir, "out.txt");
    // A minute between scheduled check-ins: the three steps can only all arrive before the next scheduled one if the
    // runtime checks in right after each batch, so every check-in after the first must carry a result.
    server.nextCheckinMs = 60_000;
    server.sequence = [1, 2, 3].map((n) => command(`seq-${n}`, `echo step-${n} >> ${out}; echo out-${n}`));
    const runtime = startRuntime(stateDir, ["--transport", "checkin", "--checkin-interval", "5"]);
    const first = await waitFor("first check-in", () => server.checkins[0]);
    expect(first).toMatchObject({ protocol: 1, hostname: expect.any(String), os: "linux", started: [], results: [] });
    expect(Math.abs(first.clock - Date.now())).toBeLessThan(10_000);
    expect(runtime.stderr()).toMatch(/using HTTPS check-in every 5 s/);

    await waitFor("all steps stored", () => server.stored.size === 3, 30_000);
    // Each result came in its own check-in, in order, and none of them was the scheduled one a minute later.
    expect(server.checkins.flatMap((c) => c.results.map((r) => r.commandId))).toEqual(["seq-1", "seq-2", "seq-3"]);
    expect(fileLines(out)).toEqual(["step-1", "step-2", "step-3"]);
    for (const n of [1, 2, 3]) {
      const result = server.stored.get(`seq-${n}`);
      expect(result).toMatchObject({ status: "succeeded", exitCode: 0, error: null, truncated: false });
      expect(tailText(result)).toBe(`out-${n}\n`); // nothing is streamed on check-in: all output is in the tail
    }
    await waitFor("outbox emptied by the acks", () => outboxFiles(stateDir).length === 0);
    for (const n of [1, 2, 3]) expect(server.acksSent.get(`seq-${n}`)).toBe(1);

    const status = await cli(["status", "--state-dir", stateDir]);
    expect(status.stdout).toMatch(/transport:\s+HTTPS check-in/);
    expect(status.stdout).toMatch(/last contact: \d{4}-/);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 40_000);

  it("runs a batch dispatched together one after another, never concurrently", async () => {
    const stateDir = await enrolledStateDir(server, "batch");
    const out = join(stateDir, "out.txt");
    const runtime = startRuntime(stateDir, CHECKIN);
    await waitFor("first check-in", () => server.checkins.length >= 1);
    server.batch = ["a", "b", "c"].map((x, i) =>
      command(`batch-${x}`, `echo start-${x} >> ${out}; sleep ${0.4 - i * 0.15}; echo end-${x} >> ${out}`),
    );
    await waitFor("all stored", () => server.stored.size === 3);
    expect(fileLines(out)).toEqual(["start-a", "end-a", "start-b", "end-b", "start-c", "end-c"]);
    await waitFor("started notices delivered", () => server.startedSeen("batch-a"));
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("re-sends a result whose upload failed (503) and drops it after the single ack", async () => {
    const stateDir = await enrolledStateDir(server, "retry");
    const runtime = startRuntime(stateDir, CHECKIN);
    await waitFor("first check-in", () => server.checkins.length >= 1);
    server.failResultOnce.add("retry-1");
    server.batch = [command("retry-1", "echo retried")];
    await waitFor("result stored", () => server.stored.has("retry-1"));
    const failed = server.requests.filter((r) => r.status === 503);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.body.results.map((r) => r.commandId)).toEqual(["retry-1"]);
    await waitFor("outbox emptied", () => outboxFiles(stateDir).length === 0);
    await moreCheckins(server, 2); // the acked result is not sent again in later check-ins
    expect(server.resultPosts.get("retry-1")).toBe(1);
    expect(server.acksSent.get("retry-1")).toBe(1);
    expect(tailText(server.stored.get("retry-1"))).toBe("retried\n");
    expect(runtime.stderr()).toMatch(/check-in failed \(server answered HTTP 503: Service unavailable\)/);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("never runs a command id twice: a repeat before the ack resends the stored result, after the ack it is ignored", async () => {
    const stateDir = await enrolledStateDir(server, "once");
    const counter = join(stateDir, "runs.txt");
    const runtime = startRuntime(stateDir, CHECKIN);
    await waitFor("first check-in", () => server.checkins.length >= 1);
    const once = command("once-1", `echo run >> ${counter}; echo ran`);
    server.autoAck = false;
    server.batch = [once];
    await waitFor("result stored", () => server.stored.has("once-1"));
    server.redeliver = [once];
    await waitFor("result sent again", () => (server.resultPosts.get("once-1") ?? 0) >= 2);
    server.autoAck = true;
    await waitFor("acked", () => server.acksSent.get("once-1") === 1 && outboxFiles(stateDir).length === 0);
    const posts = server.resultPosts.get("once-1");
    server.redeliver = [once];
    await waitFor("redelivery answered", () => server.redeliver.length === 0);
    await moreCheckins(server, 2); // the repeat was handled (ignored) before these
    expect(fileLines(counter)).toEqual(["run"]);
    expect(server.resultPosts.get("once-1")).toBe(posts);
    expect(runtime.stderr()).toMatch(/already ran and its result was acknowledged/);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("reports a command cut short by SIGKILL of the runtime as interrupted after a restart, killing its orphan, never rerunning it", async () => {
    const stateDir = await enrolledStateDir(server, "crash");
    const counter = join(stateDir, "runs.txt");
    const crashed = startRuntime(stateDir, CHECKIN);
    await waitFor("first check-in", () => server.checkins.length >= 1);
    server.batch = [command("crash-1", `echo run >> ${counter}; sleep 30; echo orphan-finished >> ${counter}`)];
    await waitFor("command running", () => fileLines(counter).length === 1);
    // The spawn record follows the spawn by a moment; a kill -9 inside that moment leaves nothing to sweep (ADR 0018).
    await waitFor("its spawn recorded", () => fileLines(join(stateDir, "journal.spawns")).some((line) => line.includes("crash-1")));
    crashed.child.kill("SIGKILL");
    await crashed.exited;

    const runtime = startRuntime(stateDir, CHECKIN); // the server offers crash-1 again: it has no result
    const result = await waitFor("result", () => server.stored.get("crash-1"));
    expect(result).toMatchObject({ status: "interrupted", exitCode: null });
    expect(result.error).toContain(NOT_RERUN);
    expect(result.error).toMatch(/left over from the previous run \(process group \d+\) were killed/);
    expect(runtime.stderr()).toMatch(/crash-1 was running when the runtime last stopped/);
    // The orphan was killed: once its process group is gone it can never finish, and no second run appears.
    const group = Number(/process group (\d+)/.exec(result.error ?? "")![1]);
    await waitFor("the orphan's process group gone", () => !processGroupAlive(group));
    await moreCheckins(server, 1);
    expect(fileLines(counter)).toEqual(["run"]);
    expect(outboxFiles(stateDir)).toHaveLength(0);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("on SIGTERM kills the running command and delivers its result in a final check-in", async () => {
    const stateDir = await enrolledStateDir(server, "sigterm");
    const pidFile = join(stateDir, "child.pid");
    server.nextCheckinMs = 60_000;
    server.batch = [command("term-1", `echo $$ > ${pidFile}; sleep 30`)];
    const runtime = startRuntime(stateDir, ["--transport", "checkin", "--checkin-interval", "60"]);
    await waitFor("command running", () => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim());
    expect(await stopRuntime(runtime)).toBe(0);
    expect(server.stored.get("term-1")).toMatchObject({ status: "interrupted", error: expect.stringMatching(/runtime stopped/) });
    expect(server.stored.get("term-1")!.durationMs).toBeLessThan(30_000); // killed, not waited for
    expect(server.checkins).toHaveLength(2); // the one that dispatched it and the final one
    expect(outboxFiles(stateDir)).toHaveLength(0);
  }, 30_000);

  it("sends at most 20 results per check-in and the rest right after", async () => {
    const stateDir = await enrolledStateDir(server, "many");
    mkdirSync(join(stateDir, "outbox"), { recursive: true, mode: 0o700 });
    const now = Date.now();
    for (let i = 0; i < 25; i += 1) {
      const result: CommandResult = {
        commandId: `old-${i}`,
        status: "succeeded",
        exitCode: 0,
        startedAt: now - 1000 + i,
        finishedAt: now - 1000 + i,
        durationMs: 1,
        tail: [],
        truncated: false,
        error: null,
      };
      writeFileSync(join(stateDir, "outbox", outboxFileName(result.commandId)), JSON.stringify(result));
    }
    server.nextCheckinMs = 60_000;
    const runtime = startRuntime(stateDir, ["--transport", "checkin", "--checkin-interval", "60"]);
    await waitFor("all delivered", () => server.stored.size === 25, 10_000);
    const [first, second] = server.checkins;
    expect(first!.results.map((r) => r.commandId)).toEqual(Array.from({ length: 20 }, (_, i) => `old-${i}`)); // oldest first
    expect(second!.results.map((r) => r.commandId)).toEqual(["old-20", "old-21", "old-22", "old-23", "old-24"]);
    await waitFor("outbox emptied", () => outboxFiles(stateDir).length === 0);
    // Then it waits for the interval: stopped now (an empty outbox needs no final check-in), it made no third one.
    expect(await stopRuntime(runtime)).toBe(0);
    expect(server.checkins).toHaveLength(2);
  }, 30_000);

  it("auto mode falls back to check-in when WebSocket upgrades are refused, cancels via check-in, and returns to the WebSocket", async () => {
    const stateDir = await enrolledStateDir(server, "auto");
    const pidFile = join(stateDir, "child.pid");
    server.ws = "refuse400";
    const runtime = startRuntime(stateDir, [], { CAISEY_CHECKIN_INTERVAL: "1" });
    await waitFor("check-in after the fallback", () => server.checkins.length >= 1, 10_000);
    expect(runtime.stderr()).toMatch(/WebSocket unavailable \(server answered HTTP 400: WebSockets are blocked by policy\); using HTTPS check-in every 1 s/);

    server.batch = [command("cancel-1", `echo $$ > ${pidFile}; sleep 30`)];
    await waitFor("started reported by check-in", () => server.startedSeen("cancel-1") && existsSync(pidFile) && readFileSync(pidFile, "utf8").trim());
    const pid = Number(readFileSync(pidFile, "utf8"));
    server.cancels = ["cancel-1"];
    const result = await waitFor("cancelled result", () => server.stored.get("cancel-1"), 8000);
    expect(result.status).toBe("cancelled");
    await waitFor("sleep killed", () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 3000);

    // A failed check-in makes the runtime try the WebSocket again; now it connects.
    server.ws = "accept";
    server.failNext = 1;
    await waitFor("WebSocket hello", () => server.wsHellos === 1, 10_000);
    expect(runtime.stderr()).toMatch(/WebSocket connected; leaving HTTPS check-in/);
    const checkinsAfterSwitch = server.requests.length;
    // A command over the socket that outlasts two check-in intervals: meanwhile the runtime does not poll.
    server.socket!.send(JSON.stringify({ type: "dispatch", command: command("ws-1", "sleep 2.5; echo over-ws") }));
    await waitFor("the socket command's result", () => server.stored.get("ws-1"), 15_000);
    expect(server.requests.length).toBeLessThanOrEqual(checkinsAfterSwitch + 1); // at most one was in flight
    expect(await stopRuntime(runtime)).toBe(0);
  }, 40_000);

  it("auto mode also falls back when the upgrade connection is dropped", async () => {
    const stateDir = await enrolledStateDir(server, "auto-drop");
    server.ws = "destroy";
    const runtime = startRuntime(stateDir, ["--checkin-interval", "1"]);
    await waitFor("check-in after the fallback", () => server.checkins.length >= 1, 10_000);
    expect(runtime.stderr()).toMatch(/WebSocket unavailable \(.+\); using HTTPS check-in every 1 s/);
    server.batch = [command("drop-1", "echo via-checkin")];
    const result = await waitFor("result", () => server.stored.get("drop-1"));
    expect(tailText(result)).toBe("via-checkin\n");
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("exits with code 2 when a check-in is answered 401, and rejects bad flags", async () => {
    const stateDir = await enrolledStateDir(server, "rejected");
    server.reject = true;
    const runtime = startRuntime(stateDir, CHECKIN);
    expect(await runtime.exited).toBe(2);
    expect(runtime.stderr()).toMatch(/rejected this runtime's credential \(HTTP 401: Runtime credential rejected\)/);

    const badTransport = await cli(["run", "--state-dir", stateDir, "--transport", "carrier-pigeon"]);
    expect(badTransport.code).toBe(1);
    expect(badTransport.stderr).toMatch(/--transport must be auto, websocket or checkin/);
    const badInterval = await cli(["run", "--state-dir", stateDir, "--checkin-interval", "0"]);
    expect(badInterval.code).toBe(1);
    expect(badInterval.stderr).toMatch(/--checkin-interval/);
  }, 30_000);
});
