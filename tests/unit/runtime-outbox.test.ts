// Process-level tests: the built CLI (runtime/bin → runtime/dist) against a
// real local HTTP + WebSocket server speaking the wire protocol. Covers
// enrollment, exactly-once execution across reconnects and restarts, results
// surviving a server outage and a runtime crash, and credential rejection.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  cli,
  CREDENTIAL,
  enrolledStateDir,
  fileLines,
  fullOutput,
  hellos,
  useFakeServer,
  lines,
  outboxFiles,
  posix,
  processGroupAlive,
  scratch,
  startRuntime,
  stopRuntime,
  TOKEN,
  waitFor,
} from "./runtime-harness";

// ---------------------------------------------------------------------------

describe.runIf(posix)("caisey-runtime CLI", () => {
  const server = useFakeServer();

  it("enroll stores identity.json (0600, dir 0700), refuses to overwrite without --force, reports HTTP errors", async () => {
    const stateDir = await enrolledStateDir(server, "enroll");
    const identityFile = join(stateDir, "identity.json");
    expect(statSync(identityFile).mode & 0o777).toBe(0o600);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    const identity = JSON.parse(readFileSync(identityFile, "utf8"));
    expect(identity).toMatchObject({ server: server.url, endpointId: "ep-test-1", credential: CREDENTIAL });
    expect(new Date(identity.enrolledAt).getTime()).toBeGreaterThan(0);
    expect(server.enrollments.at(-1)).toMatchObject({ token: TOKEN, hostname: "test-host", os: "linux" });

    const again = await cli(["enroll", "--server", server.url, "--token", TOKEN, "--state-dir", stateDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--force/);

    const badToken = await cli(["enroll", "--server", server.url, "--token", "wrong-token-0123456789", "--state-dir", stateDir, "--force"]);
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain("enrollment failed (HTTP 401): Enrollment token is invalid or expired");

    const forced = await cli(["enroll", "--server", server.url, "--token", TOKEN, "--state-dir", stateDir, "--force"]);
    expect(forced.code).toBe(0);

    const status = await cli(["status"], { CAISEY_RUNTIME_STATE_DIR: stateDir });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain("ep-test-1");
    expect(status.stdout).toMatch(/outbox:\s+0 result/);
    expect(status.stdout).not.toContain(CREDENTIAL);
  }, 30_000);

  it("connects with hello, answers clock, runs `echo hello` and ignores invalid messages", async () => {
    const stateDir = await enrolledStateDir(server, "basic");
    const runtime = startRuntime(stateDir);
    const hello = await waitFor("hello", () => server.of("hello")[0]);
    expect(hello).toMatchObject({ protocol: 1, hostname: expect.any(String), os: "linux" });
    expect(Math.abs(hello.clock - Date.now())).toBeLessThan(10_000);

    server.send({ type: "clock", serverTime: 12345 });
    const clock = await waitFor("clock reply", () => server.of("clock")[0]);
    expect(clock.serverTime).toBe(12345);

    server.send("{not json");
    server.send({ type: "dispatch", command: { commandId: "x" } });

    server.dispatch({ commandId: "echo-1", text: "echo hello" });
    const [result] = await waitFor("result", () => server.results("echo-1").length > 0 && server.results("echo-1"));
    expect(result).toMatchObject({ status: "succeeded", exitCode: 0, error: null, truncated: false });
    expect(fullOutput(server, result!)).toContain("hello");
    expect(server.of("started", "echo-1")).toHaveLength(0); // a short command sends its result alone

    // The last output travels inside the result, together with the status.
    server.dispatch({ commandId: "tail-1", text: "echo first; sleep 0.3; echo last; exit 4" });
    const [tailResult] = await waitFor("result", () => server.results("tail-1").length > 0 && server.results("tail-1"));
    expect(tailResult).toMatchObject({ status: "failed", exitCode: 4 });
    expect(tailResult!.tail.map((c) => c.data).join("")).toContain("last");
    expect(server.of("output", "tail-1").map((m) => m.chunk.data).join("")).not.toContain("last");

    server.dispatch({ commandId: "cancel-1", text: "sleep 30" });
    await waitFor("started", () => server.of("started", "cancel-1").length === 1);
    server.send({ type: "cancel", commandId: "cancel-1" });
    const [cancelled] = await waitFor("cancelled result", () => server.results("cancel-1").length > 0 && server.results("cancel-1"), 5000);
    expect(cancelled!.status).toBe("cancelled");

    expect(runtime.child.exitCode).toBeNull(); // still running despite the invalid messages
    expect(runtime.stderr()).toMatch(/ignoring invalid message/);
    await waitFor("outbox emptied by acks", () => outboxFiles(stateDir).length === 0);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("runs a commandId once: dispatched twice, after a reconnect, and after a restart", async () => {
    server.autoAck = false;
    const stateDir = await enrolledStateDir(server, "once");
    const counter = join(stateDir, "runs.txt");
    let runtime = startRuntime(stateDir);
    await waitFor("hello", () => hellos(server) === 1);

    const command = { commandId: "once-1", text: `echo run >> ${counter}; echo ran` };
    server.dispatch(command);
    server.dispatch(command);
    await waitFor("first result", () => server.results("once-1").length >= 1);
    server.dispatch(command); // already finished, not acked: the stored result is resent
    await waitFor("resent result", () => server.results("once-1").length >= 2);

    server.dropConnections();
    await waitFor("reconnect", () => hellos(server) === 2);
    server.dispatch(command);
    await waitFor("stored result resent after the reconnect", () => server.results("once-1").length >= 3);

    expect(await stopRuntime(runtime)).toBe(0);
    runtime = startRuntime(stateDir);
    await waitFor("hello after restart", () => hellos(server) === 3);
    server.dispatch(command);
    await waitFor("stored result resent after the restart", () => server.results("once-1").length >= 4);

    expect(lines(counter)).toBe(1);
    const results = server.results("once-1");
    expect(results.length).toBeGreaterThanOrEqual(4);
    for (const result of results) expect(result).toEqual(results[0]);
    expect(results[0]!.status).toBe("succeeded");

    // After the ack the result leaves the outbox, and a late redelivery is ignored.
    expect(outboxFiles(stateDir)).toHaveLength(1);
    server.send({ type: "ack", commandId: "once-1" });
    await waitFor("outbox emptied", () => outboxFiles(stateDir).length === 0);
    const before = server.results("once-1").length;
    server.dispatch(command);
    await waitFor("the late redelivery answered (ignored)", () => /already ran and its result was acknowledged/.test(runtime.stderr()));
    expect(server.results("once-1")).toHaveLength(before);
    expect(lines(counter)).toBe(1);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 40_000);

  it("delivers a result produced while the server is down once it is back, and drops it only after the ack", async () => {
    server.autoAck = false;
    const stateDir = await enrolledStateDir(server, "outage");
    const runtime = startRuntime(stateDir);
    await waitFor("hello", () => hellos(server) === 1);

    server.dispatch({ commandId: "outage-1", text: "echo early; sleep 1; echo late" });
    await waitFor("started", () => server.of("started", "outage-1").length === 1);
    await server.stop();
    await waitFor("result saved to the outbox", () => outboxFiles(stateDir).length === 1, 10_000);
    expect(JSON.parse(readFileSync(join(stateDir, "outbox", outboxFiles(stateDir)[0]!), "utf8"))).toMatchObject({
      commandId: "outage-1",
      status: "succeeded",
    });
    const status = await cli(["status", "--state-dir", stateDir]);
    expect(status.stdout).toMatch(/outbox:\s+1 result/);

    await server.start(); // same port
    const [result] = await waitFor("result after the outage", () => server.results("outage-1").length > 0 && server.results("outage-1"), 20_000);
    expect(result!.status).toBe("succeeded");
    expect(result!.tail.map((c) => c.data).join("")).toContain("late");

    // A round trip after the result (the runtime answers a clock message in order), and still no ack: still on disk.
    server.send({ type: "clock", serverTime: 1_234_567 });
    await waitFor("the clock answer", () => server.of("clock").some((m) => m.serverTime === 1_234_567));
    expect(outboxFiles(stateDir)).toHaveLength(1);
    server.send({ type: "ack", commandId: "outage-1" });
    await waitFor("outbox emptied after the ack", () => outboxFiles(stateDir).length === 0);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 45_000);

  it("reports a command cut short by a runtime crash (SIGKILL) as interrupted, kills its orphan, never runs it again", async () => {
    const stateDir = await enrolledStateDir(server, "crash");
    const counter = join(stateDir, "runs.txt");
    const crashed = startRuntime(stateDir);
    await waitFor("hello", () => hellos(server) === 1);
    const command = { commandId: "crash-1", text: `echo run >> ${counter}; sleep 30; echo orphan-finished >> ${counter}` };
    server.dispatch(command);
    await waitFor("command running", () => lines(counter) === 1);
    // The spawn record follows the spawn by a moment; a kill -9 inside that moment leaves nothing to sweep (ADR 0018).
    await waitFor("its spawn recorded", () => fileLines(join(stateDir, "journal.spawns")).some((line) => line.includes("crash-1")));
    crashed.child.kill("SIGKILL");
    await crashed.exited;

    const runtime = startRuntime(stateDir);
    await waitFor("hello after restart", () => hellos(server) === 2);
    server.dispatch(command);
    const [result] = await waitFor("result", () => server.results("crash-1").length > 0 && server.results("crash-1"));
    expect(result).toMatchObject({ status: "interrupted", exitCode: null });
    expect(result.error).toMatch(/^interrupted: the runtime stopped or crashed while this command was running; it was not run again; its processes left over from the previous run \(process group \d+\) were killed$/);
    // The orphan was killed: once its process group is gone it can never finish, and no second run appears.
    const group = Number(/process group (\d+)/.exec(result.error ?? "")![1]);
    await waitFor("the orphan's process group gone", () => !processGroupAlive(group));
    expect(lines(counter)).toBe(1);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);

  it("on SIGTERM kills running commands, reports them and exits 0", async () => {
    const stateDir = await enrolledStateDir(server, "sigterm");
    const pidFile = join(stateDir, "child.pid");
    const runtime = startRuntime(stateDir);
    await waitFor("hello", () => hellos(server) === 1);
    server.dispatch({ commandId: "long-1", text: `echo $$ > ${pidFile}; sleep 30` });
    await waitFor("started", () => server.of("started", "long-1").length === 1 && existsSync(pidFile) && readFileSync(pidFile, "utf8").trim());
    expect(await stopRuntime(runtime)).toBe(0);
    const [result] = server.results("long-1");
    expect(result).toMatchObject({ status: "interrupted", error: expect.stringMatching(/runtime stopped/) });
    expect(result!.durationMs).toBeLessThan(30_000); // killed, not waited for
    expect(outboxFiles(stateDir)).toHaveLength(0); // acked before exiting
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(() => process.kill(pid, 0)).toThrow();
    expect(runtime.stderr()).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] /m);
  }, 30_000);

  it("exits with code 2 when the server rejects the credential (close 4401 or HTTP 401)", async () => {
    const stateDir = await enrolledStateDir(server, "rejected");
    server.reject = "close4401";
    const first = startRuntime(stateDir);
    expect(await first.exited).toBe(2);
    expect(first.stderr()).toMatch(/rejected this runtime's credential/);

    server.reject = "http401";
    const second = startRuntime(stateDir);
    expect(await second.exited).toBe(2);
    expect(second.stderr()).toMatch(/Runtime credential rejected; enroll again/);
  }, 30_000);

  it("refuses to run without an identity or with a second runtime on the same state dir", async () => {
    const empty = await cli(["run", "--state-dir", join(scratch, "nothing-here")]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/not enrolled/);

    const stateDir = await enrolledStateDir(server, "locked");
    const runtime = startRuntime(stateDir);
    await waitFor("hello", () => hellos(server) === 1);
    const second = await cli(["run", "--state-dir", stateDir]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/already running/);
    expect(await stopRuntime(runtime)).toBe(0);
  }, 30_000);
});
