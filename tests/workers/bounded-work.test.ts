// Bounded work per request in the session DO: a fresh viewer gets a window of
// the newest commands (older pages on request), a page cannot make the session
// replay its history in a loop, and an endpoint runs one command at a time.
import { describe, expect, it } from "vitest";
import {
  checkin,
  connectRuntime,
  connectViewer,
  registerEndpoint,
  replayAll,
  result,
  type TestSocket,
  viewerIdentity,
  eventually,
  roundTrip,
  endpointIdsFor,
} from "./socket";

const freshEndpoint = endpointIdsFor("ep_bounded_test");

/** Queues `count` commands (as 20-step sequences, so the page's message budget is not the limit here). */
async function queueCommands(viewer: TestSocket, count: number): Promise<void> {
  for (let queued = 0; queued < count; queued += 20) {
    const steps = Array.from({ length: Math.min(20, count - queued) }, (_, i) => ({ text: `echo step-${queued + i}`, shell: "sh" }));
    const requestId = crypto.randomUUID();
    viewer.send({ type: "run_sequence", requestId, name: `batch ${queued}`, steps, stopOnFailure: false });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.requestId === `${requestId}#${steps.length - 1}`));
  }
}

describe("windowed replay", () => {
  it("sends a fresh viewer only the newest 50 commands, and older ones a page at a time on request", async () => {
    const endpointId = freshEndpoint();
    const author = await connectViewer(endpointId, viewerIdentity(endpointId));
    await queueCommands(author, 60);

    const fresh = await connectViewer(endpointId, viewerIdentity(endpointId, { userId: "user_fresh" }));
    const replay = fresh.messages.filter((m) => m.type === "events" && m.replay);
    const queued = replay.flatMap((m) => m.events).filter((e: any) => e.kind === "command.queued");
    expect(queued).toHaveLength(50);
    expect(queued.map((e: any) => e.text)).toEqual(Array.from({ length: 50 }, (_, i) => `echo step-${i + 10}`));
    expect(replay[0].window).toEqual({ oldestSeq: queued[0].seq, hasOlder: true });

    fresh.send({ type: "history", beforeSeq: replay[0].window.oldestSeq });
    const page = await fresh.waitFor((m) => m.type === "history" && m.final);
    const older = fresh.messages.filter((m) => m.type === "history").flatMap((m) => m.events);
    expect(older.filter((e: any) => e.kind === "command.queued").map((e: any) => e.text)).toEqual(Array.from({ length: 10 }, (_, i) => `echo step-${i}`));
    expect(older.every((e: any) => e.seq < replay[0].window.oldestSeq)).toBe(true);
    expect(page).toMatchObject({ hasOlder: false });
  });

  it("still replays exactly what a reconnecting viewer missed when it is not far behind", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    await queueCommands(viewer, 60);
    const { events, frames } = await replayAll(viewer, 5);
    expect(frames[0].window).toBeUndefined();
    expect(events[0].seq).toBe(6);
    expect(events.filter((e: any) => e.kind === "command.queued")).toHaveLength(55);
  });
});

describe("per-connection message budget", () => {
  it("refuses a page that asks for replays in a loop, without replaying", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId, { canRun: false, role: "noc" }));
    const before = viewer.messages.length;
    const startedAt = Date.now();
    for (let i = 0; i < 100; i++) viewer.send({ type: "sync", afterSeq: 0 });
    // The page's bucket holds 40 and refills 10 a second; a sync costs 10. However slowly this machine handles the
    // loop, no more syncs are served than the bucket allowed over the time it took: wait for the other refusals.
    const servedAtMost = () => Math.floor((40 + (10 * (Date.now() - startedAt)) / 1000) / 10);
    const refused = () => viewer.messages.slice(before).filter((m) => m.type === "error" && m.code === "rate_limited").length;
    await eventually("every sync beyond the budget refused", async () => refused() >= 100 - servedAtMost());
    await roundTrip(viewer);
    const replays = viewer.messages.slice(before).filter((m) => m.type === "events" && m.replay).length;
    expect(servedAtMost()).toBeLessThan(50); // the bound means something only while the loop was far faster than the refill
    expect(100 - refused()).toBeLessThanOrEqual(servedAtMost());
    expect(replays).toBeLessThanOrEqual(100 - refused());
  });
});

describe("one command at a time per endpoint", () => {
  it("holds the next command until the one before it finished, unless it runs alongside", async () => {
    const endpointId = freshEndpoint();
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");
    // One at a time, so the order the session accepted them in is the order sent.
    for (const [requestId, text, alongside] of [
      ["first", "sleep 3; echo FIRST", false],
      ["second", "echo SECOND", false],
      ["tail", "tail -f /var/log/syslog", true],
    ] as const) {
      viewer.send({ type: "run", requestId, text, shell: "sh", alongside });
      await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.requestId === requestId));
    }
    const first = await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === "sleep 3; echo FIRST");
    await runtime.waitFor((m) => m.type === "dispatch" && m.command.text.startsWith("tail -f"));
    expect(runtime.messages.filter((m) => m.type === "dispatch").map((m) => m.command.text)).toEqual(["sleep 3; echo FIRST", "tail -f /var/log/syslog"]);

    runtime.send({ type: "result", result: result(first.command.commandId, "succeeded", "FIRST\n") });
    await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === "echo SECOND");
  });

  it("hands a check-in runtime every due command in order (it runs them one after another itself)", async () => {
    const endpointId = freshEndpoint();
    await registerEndpoint(endpointId);
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    for (const [requestId, text] of [["a", "sleep 3; echo FIRST"], ["b", "echo SECOND"]] as const) {
      viewer.send({ type: "run", requestId, text, shell: "sh" });
      await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.requestId === requestId));
    }
    const answer = await checkin(endpointId, {});
    expect(answer.body.dispatch.map((d: any) => d.text)).toEqual(["sleep 3; echo FIRST", "echo SECOND"]);
  });
});
