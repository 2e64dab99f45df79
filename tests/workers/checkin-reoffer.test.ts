// ADR 0007's core guarantee on the check-in path: work handed to a check-in
// runtime whose answer never came back (the response was lost, the runtime
// crashed before journaling it) is offered again, under the same command id,
// so the runtime's journal can answer with its stored result or run it once.
import { describe, expect, it } from "vitest";
import { DEFAULT_CHECKIN_INTERVAL_MS } from "../../protocol/messages";
import { checkin, connectViewer, freshEndpoint, result, sessionSql, viewerIdentity } from "./socket";

async function queueOne(endpointId: string, text: string): Promise<void> {
  const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "sh", timeoutMs: 5_000 });
  await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued" && e.text === text));
  viewer.close();
}

describe("check-in re-offer of dispatched, unreported work", () => {
  it("offers the same command again once a check-in interval has passed without its result, and stops once it is reported", async () => {
    const endpointId = freshEndpoint("ep_reoffer");
    await queueOne(endpointId, "echo reoffer");

    const first = await checkin(endpointId, {});
    expect(first.status).toBe(200);
    expect(first.body.dispatch.map((d: any) => d.text)).toEqual(["echo reoffer"]);
    const commandId: string = first.body.dispatch[0].commandId;

    // Within the interval the runtime may still be working on it: no duplicate offer.
    const soon = await checkin(endpointId, {});
    expect(soon.body.dispatch).toEqual([]);

    // The answer was lost: an interval later the session offers it again, under the same id.
    await sessionSql(endpointId, "UPDATE commands SET dispatched_at = ? WHERE id = ?", Date.now() - DEFAULT_CHECKIN_INTERVAL_MS - 1_000, commandId);
    const again = await checkin(endpointId, {});
    expect(again.body.dispatch.map((d: any) => d.commandId)).toEqual([commandId]);
    expect((await sessionSql(endpointId, "SELECT COUNT(*) AS n FROM commands"))[0].n).toBe(1);

    // Reported: acknowledged, and never offered again.
    const reported = await checkin(endpointId, { results: [result(commandId, "succeeded", "reoffer\n")] });
    expect(reported.body.acks).toEqual([commandId]);
    await sessionSql(endpointId, "UPDATE commands SET dispatched_at = ? WHERE id = ?", Date.now() - 10 * DEFAULT_CHECKIN_INTERVAL_MS, commandId);
    expect((await checkin(endpointId, {})).body.dispatch).toEqual([]);
  });

  it("re-offers a running command whose result has not arrived (the runtime restarted mid-command)", async () => {
    const endpointId = freshEndpoint("ep_reoffer_running");
    await queueOne(endpointId, "sleep 1");
    const first = await checkin(endpointId, {});
    const commandId: string = first.body.dispatch[0].commandId;
    await checkin(endpointId, { started: [{ commandId, startedAt: Date.now() }] });
    expect((await sessionSql(endpointId, "SELECT status FROM commands WHERE id = ?", commandId))[0].status).toBe("running");

    await sessionSql(endpointId, "UPDATE commands SET dispatched_at = ? WHERE id = ?", Date.now() - DEFAULT_CHECKIN_INTERVAL_MS - 1_000, commandId);
    const again = await checkin(endpointId, {});
    expect(again.body.dispatch.map((d: any) => d.commandId)).toEqual([commandId]);
  });
});
