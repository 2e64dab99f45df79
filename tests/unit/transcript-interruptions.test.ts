// The console's side of ADR 0018: queue position, who cancelled, no round trip
// for what never ran, and the paused-sequence state.
import { describe, expect, it } from "vitest";
import { applyEvents, emptyTranscript, queuePositions, ranOnEndpoint } from "../../app/lib/transcript";
import type { TranscriptEvent } from "../../protocol/messages";

const actor = { userId: "u1", name: "Tom" };
const sequence = { id: "s1", name: "Patch", step: 0, steps: 2, stopOnFailure: true };
let seq = 0;
const queued = (commandId: string, extra: Partial<Extract<TranscriptEvent, { kind: "command.queued" }>> = {}): TranscriptEvent => ({
  seq: ++seq,
  at: 1000 + seq,
  kind: "command.queued",
  commandId,
  requestId: `r-${commandId}`,
  text: `echo ${commandId}`,
  shell: "sh",
  requestedBy: actor,
  sequence: null,
  notBefore: null,
  expiresAt: null,
  ...extra,
});

describe("queue position, cancels and interruptions in the transcript", () => {
  it("counts the commands ahead of each waiting one, leaving out alongside commands and paused sequences", () => {
    seq = 0;
    const state = applyEvents(emptyTranscript, [
      queued("a"),
      queued("b"),
      queued("tail", { alongside: true }),
      queued("c"),
      { seq: ++seq, at: 2000, kind: "command.dispatched", commandId: "a" },
    ]);
    expect(Object.fromEntries(queuePositions(state))).toEqual({ b: 1, c: 2 });
    const later = applyEvents(state, [
      { seq: ++seq, at: 2001, kind: "command.finished", commandId: "a", status: "succeeded", exitCode: 0, error: null, timings: null },
      { seq: ++seq, at: 2002, kind: "command.dispatched", commandId: "b" },
    ]);
    expect(Object.fromEntries(queuePositions(later))).toEqual({ c: 1 });

    const paused = applyEvents(later, [
      queued("s0", { sequence }),
      queued("s1", { sequence: { ...sequence, step: 1 } }),
      queued("d"),
      { seq: ++seq, at: 2003, kind: "sequence.paused", sequenceId: "s1", name: "Patch", commandId: "s0", step: 0 },
    ]);
    expect(queuePositions(paused).has("s1")).toBe(false);
    expect(queuePositions(paused).get("d")).toBe(2);
  });

  it("says who cancelled and when, and gives no returned time or round trip to what never ran", () => {
    seq = 0;
    const state = applyEvents(emptyTranscript, [
      queued("x"),
      { seq: ++seq, at: 3000, kind: "command.finished", commandId: "x", status: "cancelled", exitCode: null, error: "Cancelled by Tom before it was sent", timings: null, by: actor },
      queued("y"),
      { seq: ++seq, at: 3001, kind: "command.finished", commandId: "y", status: "skipped", exitCode: null, error: "Skipped: step 1 (false) ended failed", timings: null },
    ]);
    expect(state.commands.x).toMatchObject({ finishedBy: actor, finishedAt: 3000, returnedAt: null });
    expect(ranOnEndpoint(state.commands.x!)).toBe(false);
    expect(state.commands.y).toMatchObject({ returnedAt: null });
    expect(ranOnEndpoint(state.commands.y!)).toBe(false);
  });

  it("keeps an interrupted step's start and output, and records the pause and how it was answered", () => {
    seq = 0;
    const timings = { queuedMs: 1, toEndpointMs: 1, onEndpointMs: 5, backMs: 1, serverRoundTripMs: 8 };
    const state = applyEvents(emptyTranscript, [
      queued("s0", { sequence }),
      { seq: ++seq, at: 4000, kind: "command.dispatched", commandId: "s0" },
      { seq: ++seq, at: 4001, kind: "command.started", commandId: "s0", startedAt: 4001 },
      { seq: ++seq, at: 4002, kind: "command.output", commandId: "s0", stream: "stdout", data: "partial\n" },
      { seq: ++seq, at: 4003, kind: "command.finished", commandId: "s0", status: "interrupted", exitCode: null, error: "interrupted: the runtime stopped", timings },
      { seq: ++seq, at: 4003, kind: "sequence.paused", sequenceId: "s1", name: "Patch", commandId: "s0", step: 0 },
    ]);
    expect(state.commands.s0).toMatchObject({ status: "interrupted", startedAt: 4001, paused: true, output: [{ stream: "stdout", data: "partial\n" }] });
    const resumed = applyEvents(state, [
      { seq: ++seq, at: 4100, kind: "sequence.resumed", sequenceId: "s1", commandId: "s0", step: 0, action: "retry", by: actor, retryCommandId: "s0b" },
    ]);
    expect(resumed.commands.s0).toMatchObject({ paused: false, resumed: { action: "retry", by: actor, at: 4100, retryCommandId: "s0b" } });
  });
});
