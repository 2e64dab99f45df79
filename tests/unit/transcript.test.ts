import { describe, expect, it } from "vitest";
import { applyEvents, emptyTranscript } from "../../app/lib/transcript";
import type { TranscriptEvent } from "../../protocol/messages";

const actor = { userId: "u1", name: "Tom" };
const events: TranscriptEvent[] = [
  { seq: 1, at: 1000, kind: "command.queued", commandId: "c1", requestId: "r1", text: "echo hi", shell: "default", requestedBy: actor, sequence: null, notBefore: null, expiresAt: null },
  { seq: 2, at: 1001, kind: "command.dispatched", commandId: "c1" },
  { seq: 3, at: 1002, kind: "command.started", commandId: "c1", startedAt: 1002 },
  { seq: 4, at: 1003, kind: "command.output", commandId: "c1", stream: "stdout", data: "h" },
  { seq: 5, at: 1003, kind: "command.output", commandId: "c1", stream: "stdout", data: "i\n" },
  { seq: 6, at: 1004, kind: "command.output", commandId: "c1", stream: "stderr", data: "warn\n" },
  {
    seq: 7,
    at: 1005,
    kind: "command.finished",
    commandId: "c1",
    status: "succeeded",
    exitCode: 0,
    error: null,
    timings: { queuedMs: 1, toEndpointMs: 0.5, onEndpointMs: 1, backMs: 0.5, serverRoundTripMs: 2 },
  },
];

describe("transcript folding", () => {
  it("folds the event log into commands with merged output and sent/executed/returned times", () => {
    const state = applyEvents(emptyTranscript, events);
    expect(state.lastSeq).toBe(7);
    const command = state.commands.c1!;
    expect(command).toMatchObject({ status: "succeeded", exitCode: 0, queuedAt: 1000, dispatchedAt: 1001, startedAt: 1002, returnedAt: 1005 });
    expect(command.output).toEqual([
      { stream: "stdout", data: "hi\n" },
      { stream: "stderr", data: "warn\n" },
    ]);
  });

  it("ignores events it has already applied, so overlapping replays are harmless", () => {
    const once = applyEvents(emptyTranscript, events);
    const overlapped = applyEvents(applyEvents(emptyTranscript, events.slice(0, 5)), events.slice(2));
    expect(overlapped).toEqual(once);
    expect(applyEvents(once, events)).toBe(once);
  });

  it("tells an output cap apart from output lost in transit", () => {
    const base = applyEvents(emptyTranscript, events.slice(0, 5));
    const capped = applyEvents(base, [{ seq: 6, at: 1004, kind: "command.truncated", commandId: "c1", keptBytes: 2048, reason: "output_cap" }]);
    expect(capped.commands.c1).toMatchObject({ truncatedAtBytes: 2048, outputLost: false });
    const lost = applyEvents(base, [{ seq: 6, at: 1004, kind: "command.truncated", commandId: "c1", keptBytes: 3, reason: "lost_in_transit" }]);
    expect(lost.commands.c1).toMatchObject({ truncatedAtBytes: null, outputLost: true });
  });
});
