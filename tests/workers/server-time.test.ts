// Claim #25 (docs/guarantees.md): server time is the truth (ADR 0017). A runtime whose clock is an hour slow
// reports its start times in its own clock; the transcript must show them in server time, converted with the
// offset the session measured, and keep the raw time and the offset next to it.
import { describe, expect, it } from "vitest";
import { checkin, connectRuntime, connectViewer, endpointIdsFor, eventually, result, sessionSql, viewerIdentity } from "./socket";

const freshEndpoint = endpointIdsFor("ep_server_time");
const HOUR = 3_600_000;
/** Generous for a loaded machine, and still far from the hour the endpoint's clock is off. */
const SLACK = 60_000;

describe("server time is the truth (claim #25)", () => {
  it("shows a socket runtime's start time in server time, measured from the clock echo, with the raw time kept", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    const ping = await runtime.waitFor((m) => m.type === "clock");
    // The runtime answers the session's clock message with its own clock, an hour behind.
    runtime.send({ type: "clock", serverTime: ping.serverTime, runtimeTime: Date.now() - HOUR });
    // Under load the in-process test socket can hold a frame back past later traffic (a runtime's TCP stream cannot).
    await eventually("the clock echo recorded", async () => (await sessionSql(endpointId, "SELECT 1 FROM runtime_state WHERE key = 'runtime_clock'")).length === 1);

    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "hostname", shell: "default" });
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch");
    const commandId: string = dispatch.command.commandId;
    const runtimeStartedAt = Date.now() - HOUR;
    const before = Date.now();
    runtime.send({ type: "started", commandId, startedAt: runtimeStartedAt });
    const started = await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.started"));
    const event = started.events.find((e: any) => e.kind === "command.started");

    expect(Math.abs(event.startedAt - before)).toBeLessThan(SLACK);
    const [row] = await sessionSql(endpointId, "SELECT started_at, runtime_started_at, clock_offset_ms FROM commands WHERE id = ?", commandId);
    expect(row.runtime_started_at).toBe(runtimeStartedAt);
    expect(row.started_at).toBe(event.startedAt);
    expect(Math.abs(row.clock_offset_ms + HOUR)).toBeLessThan(SLACK);
    viewer.close();
    runtime.close();
  });

  it("converts a check-in runtime's result start time with the offset from its clock sample", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "hostname", shell: "default" });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued"));

    // The previous exchange as the runtime recorded it in its own (slow) clock, and the server time it was told.
    const serverTime = Date.now() - 5_000;
    const first = await checkin(endpointId, { clock: Date.now() - HOUR, clockSample: { sentAt: serverTime - HOUR - 10, serverTime, receivedAt: serverTime - HOUR + 10 }, started: [], results: [] });
    expect(first.status).toBe(200);
    const commandId: string = first.body.dispatch[0].commandId;

    const before = Date.now();
    const answered = await checkin(endpointId, { clock: Date.now() - HOUR, started: [], results: [{ ...result(commandId), startedAt: Date.now() - HOUR, finishedAt: Date.now() - HOUR }] });
    expect(answered.status).toBe(200);
    const [row] = await sessionSql(endpointId, "SELECT started_at, runtime_started_at, clock_offset_ms FROM commands WHERE id = ?", commandId);
    expect(Math.abs(row.started_at - before)).toBeLessThan(SLACK);
    expect(before - row.runtime_started_at).toBeGreaterThan(HOUR - SLACK);
    expect(row.clock_offset_ms).toBe(-HOUR);
    viewer.close();
  });
});
