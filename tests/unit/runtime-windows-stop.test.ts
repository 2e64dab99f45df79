// A Windows service wrapper stops the runtime with Ctrl+C / Ctrl+Break or by
// closing its console, which Node delivers as SIGINT / SIGBREAK / SIGHUP. Here,
// on Linux, a real runtime process gets SIGINT and SIGHUP in the middle of a
// command: it must stop as on SIGTERM (exit 0, journal and outbox written),
// and after a restart deliver the result without running the command again.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  enrolledStateDir,
  hellos,
  useFakeServer,
  lines,
  outboxFiles,
  posix,
  scratch,
  startRuntime,
  waitFor,
} from "./runtime-harness";

describe.runIf(posix)("caisey-runtime stopped like a Windows service", () => {
  const server = useFakeServer();

  it.each(["SIGINT", "SIGHUP"] as const)(
    "on %s mid-command: exits 0 with journal and outbox intact, delivers the result after a restart, never reruns",
    async (signal) => {
      server.autoAck = false; // the result must survive the stop in the outbox, not leave with an ack
      const stateDir = await enrolledStateDir(server, `stop-${signal}`);
      const counter = join(stateDir, "runs.txt");
      const commandId = `service-stop-${signal}`;
      const command = { commandId, text: `echo run >> ${counter}; echo before-stop; sleep 30` };

      const first = startRuntime(stateDir);
      await waitFor("hello", () => hellos(server) === 1);
      server.dispatch(command);
      await waitFor("command running", () => lines(counter) === 1 && server.of("started", commandId).length === 1);

      first.child.kill(signal);
      expect(await first.exited).toBe(0);
      expect(first.stderr()).toContain(`received ${signal}; stopping`);

      // The journal holds the id (so it can never run again) and the outbox the unacked result.
      const journal = readFileSync(join(stateDir, "journal"), "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line));
      expect(journal.map((entry: { id: string }) => entry.id)).toEqual([commandId]);
      const files = outboxFiles(stateDir);
      expect(files).toHaveLength(1);
      const saved = JSON.parse(readFileSync(join(stateDir, "outbox", files[0]!), "utf8"));
      expect(saved).toMatchObject({ commandId, status: "interrupted", error: expect.stringContaining(`runtime stopped (${signal})`) });
      expect(existsSync(join(stateDir, "runtime.lock"))).toBe(false);

      server.received = [];
      const second = startRuntime(stateDir);
      const [delivered] = await waitFor("result resent after the restart", () => server.results(commandId).length > 0 && server.results(commandId));
      expect(delivered).toEqual(saved);

      // A redelivered dispatch gets the stored result again; the command does not run a second time.
      server.dispatch(command);
      await waitFor("result resent for the repeated dispatch", () => server.results(commandId).length >= 2);
      expect(lines(counter)).toBe(1);

      server.send({ type: "ack", commandId });
      await waitFor("outbox emptied by the ack", () => outboxFiles(stateDir).length === 0);
      second.child.kill("SIGTERM");
      expect(await second.exited).toBe(0);
    },
    30_000,
  );
});
