// How much SQL one command costs the session (docs/decisions/0028-session-modules.md, "Facts read once"): every
// local Durable Object on a machine shares one thread, so statements per command bound the commands per second
// (docs/benchmarks.md, Scale). Counted, not timed: a module that goes back to reading its facts from the tables on
// every use fails here.
import { describe, expect, it } from "vitest";
import { connectRuntime, connectViewer, freshEndpoint, result, runInSession, sessionStub, viewerIdentity, type TestSocket } from "./socket";

/** Statements per command measured when the facts were cached (36.9); it was 68.9 before. */
const MAX_STATEMENTS_PER_COMMAND = 40;
const COMMANDS = 10;

async function runOne(viewer: TestSocket, runtime: TestSocket, text: string): Promise<void> {
  viewer.send({ type: "run", requestId: crypto.randomUUID(), text, shell: "sh" });
  const dispatch = await runtime.waitFor((m) => m.type === "dispatch" && m.command.text === text);
  const commandId: string = dispatch.command.commandId;
  runtime.send({ type: "result", result: result(commandId, "succeeded", "ok\n") });
  await runtime.waitFor((m) => m.type === "ack" && m.commandId === commandId);
  await viewer.waitFor((m) => m.type === "events" && m.events.some((e: any) => e.kind === "command.finished" && e.commandId === commandId));
}

describe("work per command", () => {
  it(`a command from run to finished costs the session at most ${MAX_STATEMENTS_PER_COMMAND} SQL statements`, async () => {
    const endpointId = freshEndpoint("ep_work_per_command");
    const viewer = await connectViewer(endpointId, viewerIdentity(endpointId));
    const runtime = await connectRuntime(endpointId);
    await runtime.waitFor((m) => m.type === "clock");
    await runOne(viewer, runtime, "echo warm"); // the first command reads what every later one finds in memory

    const statements: string[] = [];
    await runInSession(sessionStub(endpointId), (_instance, state) => {
      const sql = state.storage.sql;
      const exec = sql.exec.bind(sql);
      // Own property on this instance's SqlStorage: every module holds this same object.
      (sql as { exec: typeof exec }).exec = ((query: string, ...bindings: unknown[]) => (statements.push(query), exec(query, ...bindings))) as typeof exec;
    });
    for (let i = 0; i < COMMANDS; i++) await runOne(viewer, runtime, `echo ${i}`);

    const perCommand = statements.length / COMMANDS;
    expect(perCommand, `statements per command: ${perCommand}`).toBeLessThanOrEqual(MAX_STATEMENTS_PER_COMMAND);
    expect(statements.length).toBeGreaterThan(0); // the counter saw the session's work at all
    viewer.close();
    runtime.close();
  });
});
