// The executor's side of a runtime stop (ADR 0018), with real processes: the
// command ends `interrupted` with its output so far, and its result comes only
// once nothing of its process group is left, even a member that ignores SIGTERM.
import { processRunning } from "../faults/stack";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RuntimeMessage } from "../../protocol/messages";
import { execute } from "../../runtime/src/executor";

const scratch = mkdtempSync(join(tmpdir(), "caisey-interrupt-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));


async function until<T>(check: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.runIf(process.platform === "linux")("a runtime stop", () => {
  it("ends the command interrupted, with its output so far, only after its whole process group is dead", async () => {
    const pidFile = join(scratch, "survivor.pid");
    const messages: RuntimeMessage[] = [];
    const spawned: number[] = [];
    const execution = execute(
      {
        commandId: "stop-1",
        // The background member ignores SIGTERM and keeps the pipes open after the shell dies.
        text: `(trap '' TERM; exec sleep 30) & echo $! > ${pidFile}; echo so-far; wait`,
        shell: "sh",
        timeoutMs: 60_000,
        maxOutputBytes: 65536,
      },
      { send: (m) => (messages.push(m), true) },
      { killGraceMs: 1000, onSpawn: (pid) => spawned.push(pid) },
    );
    const survivor = await until(() => {
      try {
        return Number(readFileSync(pidFile, "utf8").trim()) || undefined;
      } catch {
        return undefined;
      }
    });
    await until(() => messages.some((m) => m.type === "output") || undefined);
    execution.stop("interrupted: the runtime stopped (SIGTERM) while this command was running");
    const result = await execution.result;
    // SIGKILL was sent before the result: the survivor is gone a moment later (far sooner than the grace).
    await until(() => !processRunning(survivor) || undefined, 150);
    expect(result).toMatchObject({ status: "interrupted", error: "interrupted: the runtime stopped (SIGTERM) while this command was running" });
    const output = messages.flatMap((m) => (m.type === "output" ? [m.chunk.data] : [])).join("") + result.tail.map((c) => c.data).join("");
    expect(output).toBe("so-far\n");
    expect(spawned).toHaveLength(1);
  });
});
