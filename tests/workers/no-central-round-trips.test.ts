// "Nothing on the interactive loop waits on a central database": counted. The
// session's D1 binding is wrapped with a counter for the duration of one
// command (accept → dispatch → started → result → finished, both transports);
// the only D1 work allowed is the alarm's audit replication, which runs in its
// own invocation after the command is done.
import { describe, expect, it } from "vitest";
import { checkin, connectRuntime, outputArrived, connectViewer, freshEndpoint, result, runInSession, sessionStub, viewerIdentity } from "./socket";

type Counter = { outsideAlarm: string[]; inAlarm: number; alarmDepth: number };

/** Counts every D1 statement the session issues from now on, and whether it came from its alarm. */
async function countSessionD1(endpointId: string): Promise<Counter> {
  const counter: Counter = { outsideAlarm: [], inAlarm: 0, alarmDepth: 0 };
  await runInSession(sessionStub(endpointId), (instance: any) => {
    const db: D1Database = instance.env.DB;
    const note = (what: string) => (counter.alarmDepth > 0 ? (counter.inAlarm += 1) : counter.outsideAlarm.push(what));
    const counted = new Proxy(db, {
      get(target, key) {
        const value = Reflect.get(target, key);
        if (key === "prepare") return (query: string) => (note(`prepare: ${query.slice(0, 60)}`), target.prepare(query));
        if (key === "batch" || key === "exec" || key === "withSession") return (...args: unknown[]) => (note(String(key)), (value as Function).apply(target, args));
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    // The instance's env is shared with the test's: replace it, never mutate it.
    instance.env = { ...instance.env, DB: counted };
    const onAlarm = instance.onAlarm.bind(instance);
    instance.onAlarm = async () => {
      counter.alarmDepth += 1;
      try {
        await onAlarm();
      } finally {
        counter.alarmDepth -= 1;
      }
    };
  });
  return counter;
}

/** Connecting refreshes the session's policy copy in the background; the command below must find it there. */
async function policyCopied(endpointId: string): Promise<void> {
  for (let tries = 0; tries < 100; tries += 1) {
    const copied = await runInSession(sessionStub(endpointId), (_i, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM session_policy").one().n);
    if (copied === 1) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("the policy copy never arrived");
}

async function finishedEvent(viewer: Awaited<ReturnType<typeof connectViewer>>, commandId: string) {
  return viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.commandId === commandId));
}

describe("zero central round trips on the command path", () => {
  it("a command over the socket makes no D1 call from accept to finished", async () => {
    const endpointId = freshEndpoint("ep_no_d1_socket");
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");
    // Connecting (presence, the policy copy) may use D1; the command that follows may not.
    await policyCopied(endpointId);
    const counter = await countSessionD1(endpointId);

    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "echo counted", shell: "sh" });
    const dispatch = await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === "echo counted");
    const commandId: string = dispatch.command.commandId;
    runtime.send({ type: "started", commandId, startedAt: Date.now() });
    runtime.send({ type: "output", commandId, index: 0, chunk: { stream: "stdout", data: "count" } });
    await outputArrived(viewer, commandId);
    runtime.send({ type: "result", result: { ...result(commandId, "succeeded", "ed\n"), tailStartIndex: 1 } });
    await runtime.waitFor((m) => m.type === "ack" && m.commandId === commandId);
    await finishedEvent(viewer, commandId);

    expect(counter.outsideAlarm).toEqual([]);
    viewer.close();
    runtime.close();
  });

  it("a command over HTTPS check-in makes no D1 call from accept to finished", async () => {
    const endpointId = freshEndpoint("ep_no_d1_checkin");
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    expect((await checkin(endpointId, {})).status).toBe(200);
    await policyCopied(endpointId);
    const counter = await countSessionD1(endpointId);

    viewer.send({ type: "run", requestId: crypto.randomUUID(), text: "echo counted", shell: "sh" });
    await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.queued"));
    const offered = await checkin(endpointId, {});
    const commandId: string = offered.body.dispatch[0].commandId;
    const answered = await checkin(endpointId, { results: [result(commandId, "succeeded", "counted\n")] });
    expect(answered.body.acks).toEqual([commandId]);
    await finishedEvent(viewer, commandId);

    expect(counter.outsideAlarm).toEqual([]);
    viewer.close();
  });
});
