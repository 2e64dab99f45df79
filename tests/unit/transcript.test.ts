import { describe, expect, it } from "vitest";
import { advanceTo, applyEvents, emptyTranscript, noticesAfter, prependHistory } from "../../app/lib/transcript";
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
    const onEndpoint = applyEvents(base, [{ seq: 6, at: 1004, kind: "command.truncated", commandId: "c1", keptBytes: 4096, reason: "runtime_cap" }]);
    expect(onEndpoint.commands.c1).toMatchObject({ truncatedAtBytes: 4096, truncatedBy: "runtime_cap" });
  });
});

describe("approval requests in the transcript", () => {
  const queued: TranscriptEvent = { seq: 1, at: 1000, kind: "command.queued", commandId: "c1", requestId: "r1", text: "net user bob /add", shell: "default", requestedBy: actor, sequence: null, notBefore: null, expiresAt: null };
  const priya = { name: "Priya Patel", address: "p•••@acme.test" };
  const paul = { name: "Paul Park", address: "p•••@acme.test" };
  const requested: TranscriptEvent = {
    seq: 2,
    at: 1001,
    kind: "command.approval_requested",
    commandId: "c1",
    reason: "Add the new line operator",
    pattern: null,
    rule: "not on the client's allow-list",
    approvers: [priya, paul],
    expiresAt: 90_000,
  };

  it("shows who was asked, each approver's delivery, and keeps same-masked approvers apart", () => {
    const state = applyEvents(emptyTranscript, [
      queued,
      requested,
      { seq: 3, at: 1002, kind: "command.approval_delivery", commandId: "c1", approver: priya, state: "sent", attempt: 1, error: null, nextAttemptAt: null },
      { seq: 4, at: 1003, kind: "command.approval_delivery", commandId: "c1", approver: paul, state: "retrying", attempt: 1, error: "provider answered 503", nextAttemptAt: 61_003 },
    ]);
    const command = state.commands.c1!;
    expect(command.status).toBe("pending_approval");
    expect(command.approval).toMatchObject({ reason: "Add the new line operator", rule: "not on the client's allow-list", requestedAt: 1001, expiresAt: 90_000, decision: null });
    expect(command.approval!.approvers).toEqual([
      { name: "Priya Patel", address: "p•••@acme.test", delivery: "sent", sentAt: 1002, attempt: 1, nextAttemptAt: null, error: null },
      { name: "Paul Park", address: "p•••@acme.test", delivery: "retrying", sentAt: null, attempt: 1, nextAttemptAt: 61_003, error: "provider answered 503" },
    ]);

    const failed = applyEvents(state, [
      { seq: 5, at: 61_004, kind: "command.approval_delivery", commandId: "c1", approver: paul, state: "failed", attempt: 5, error: "mailbox does not exist", nextAttemptAt: null },
    ]);
    expect(failed.commands.c1!.approval!.approvers[1]).toMatchObject({ delivery: "failed", attempt: 5, error: "mailbox does not exist", nextAttemptAt: null });
    expect(failed.commands.c1!.approval!.approvers[0]).toMatchObject({ delivery: "sent" });
  });

  it("re-issuing resets every approver to a new send with the new expiry; the decision names the approver and their masked address", () => {
    const admin = { userId: "u_admin", name: "Ada Admin" };
    const state = applyEvents(emptyTranscript, [
      queued,
      requested,
      { seq: 3, at: 1002, kind: "command.approval_delivery", commandId: "c1", approver: priya, state: "sent", attempt: 1, error: null, nextAttemptAt: null },
      { seq: 4, at: 5000, kind: "command.approval_reissued", commandId: "c1", by: admin, expiresAt: 200_000 },
    ]);
    const approval = state.commands.c1!.approval!;
    expect(approval).toMatchObject({ expiresAt: 200_000, reissuedBy: admin, reissuedAt: 5000 });
    expect(approval.approvers.map((a) => [a.name, a.delivery, a.sentAt])).toEqual([
      ["Priya Patel", "pending", null],
      ["Paul Park", "pending", null],
    ]);

    const decided = applyEvents(state, [
      { seq: 5, at: 5001, kind: "command.approval_delivery", commandId: "c1", approver: priya, state: "sent", attempt: 1, error: null, nextAttemptAt: null },
      { seq: 6, at: 6000, kind: "command.approval_decided", commandId: "c1", decision: "approve", by: "Priya Patel", byAddress: "p•••@acme.test" },
    ]);
    expect(decided.commands.c1).toMatchObject({ status: "queued", approval: { decision: "approve", decidedBy: "Priya Patel", decidedByAddress: "p•••@acme.test", decidedAt: 6000 } });
    expect(decided.commands.c1!.approval!.approvers[0]).toMatchObject({ delivery: "sent", sentAt: 5001 });
  });

  it("reads older events: approvers as bare names, a pattern instead of a rule", () => {
    const state = applyEvents(emptyTranscript, [
      queued,
      { seq: 2, at: 1001, kind: "command.approval_requested", commandId: "c1", reason: "", pattern: "\\bnet\\s+user\\b", rule: null, approvers: ["Priya Patel"], expiresAt: 90_000 },
      { seq: 3, at: 1002, kind: "command.approval_decided", commandId: "c1", decision: "deny", by: "Priya Patel", byAddress: null },
    ]);
    expect(state.commands.c1!.approval).toMatchObject({
      rule: "matches /\\bnet\\s+user\\b/",
      approvers: [{ name: "Priya Patel", address: "", delivery: "pending" }],
      decision: "deny",
      decidedByAddress: null,
    });
    expect(state.commands.c1!.status).toBe("pending_approval"); // the session's command.finished ends it
  });

  it("ignores delivery news for a command that never asked", () => {
    const state = applyEvents(emptyTranscript, [
      queued,
      { seq: 2, at: 1002, kind: "command.approval_delivery", commandId: "c1", approver: priya, state: "sent", attempt: 1, error: null, nextAttemptAt: null },
      { seq: 3, at: 1003, kind: "command.approval_reissued", commandId: "c1", by: actor, expiresAt: 2 },
    ]);
    expect(state.commands.c1!.approval).toBeNull();
    expect(state.lastSeq).toBe(3);
  });
});

describe("refused runtime messages", () => {
  it("attaches a refusal to its command, and shows one about no known command as a line after the command before it", () => {
    const state = applyEvents(emptyTranscript, [
      events[0]!,
      { seq: 2, at: 1001, kind: "runtime.refused", commandId: "c1", message: "result", reason: "the session never dispatched it (it is queued)" },
      { seq: 3, at: 1002, kind: "runtime.refused", commandId: null, message: "started", reason: "the session has no such command" },
    ]);
    expect(state.commands.c1!.refusals).toEqual([{ seq: 2, at: 1001, commandId: "c1", message: "result", reason: "the session never dispatched it (it is queued)" }]);
    expect(state.commands.c1!.status).toBe("queued"); // nothing changed
    expect(noticesAfter(state, "c1")).toEqual([{ seq: 3, at: 1002, commandId: null, message: "started", reason: "the session has no such command", afterCommandId: "c1" }]);
    expect(noticesAfter(state, null)).toEqual([]);

    const before = applyEvents(emptyTranscript, [{ seq: 1, at: 999, kind: "runtime.refused", commandId: "ghost", message: "output", reason: "the session has no such command" }]);
    expect(noticesAfter(before, null)).toMatchObject([{ commandId: "ghost", afterCommandId: null }]);
    expect(before.order).toEqual([]);
    // Replayed: applied once.
    expect(applyEvents(before, [{ seq: 1, at: 999, kind: "runtime.refused", commandId: "ghost", message: "output", reason: "x" }])).toBe(before);
  });
});

describe("windowed history", () => {
  const queued = (seq: number, id: string): TranscriptEvent => ({
    seq, at: 1000 + seq, kind: "command.queued", commandId: id, requestId: `r_${id}`, text: `echo ${id}`, shell: "default", requestedBy: actor, sequence: null, notBefore: null, expiresAt: null,
  });

  it("puts an older page before the commands shown, keeps the newest seq, and ignores what it already has", () => {
    const window = advanceTo(applyEvents(emptyTranscript, [queued(10, "c3"), queued(12, "c4")]), 15);
    expect(window.lastSeq).toBe(15);
    const merged = prependHistory(window, [queued(2, "c1"), { seq: 3, at: 1003, kind: "command.dispatched", commandId: "c1" }, queued(5, "c2"), queued(10, "c3")]);
    expect(merged.order).toEqual(["c1", "c2", "c3", "c4"]);
    expect(merged.commands.c1!.status).toBe("dispatched");
    expect(merged.lastSeq).toBe(15);
    // Live events continue after the newest seq; history never moves it back.
    expect(applyEvents(merged, [{ seq: 16, at: 2000, kind: "command.dispatched", commandId: "c4" }]).commands.c4!.status).toBe("dispatched");
  });
});
