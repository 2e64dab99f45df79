// ADR 0018 with real processes: a runtime stopped (SIGTERM) in the middle of
// a sequence step reports the step interrupted and the sequence pauses; a
// technician's "retry" runs it again as a new command and the sequence goes
// on, no step running more often than asked. A runtime killed outright
// (SIGKILL) leaves its command running as an orphan; the next start kills it
// and says so. Marker files on the "endpoint" prove what ran.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { processRunning, useFaultStack, Viewer, waitUntil } from "./stack";

const faults = useFaultStack();
const { stack, newRuntime } = faults;
let cookie = "";
beforeAll(() => {
  cookie = faults.cookie();
});

const readPid = (file: string) => (existsSync(file) ? Number(readFileSync(file, "utf8").trim()) || 0 : 0);

describe("interrupted commands and sequences", () => {
  for (const transport of ["websocket", "checkin"] as const) {
    it(`a sequence whose step 1 is cut short by SIGTERM (${transport}) pauses, and resumes on retry with no step run twice`, async () => {
      const runtime = newRuntime(`pause-${transport}`);
      const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
      await viewer.connect();
      const args = ["--transport", transport, "--checkin-interval", "1"];
      runtime.start(args);
      const { ledger } = runtime;
      const marker = join(runtime.dir, "step1.marker");
      const pidFile = join(runtime.dir, "step1.pid");
      // Step 1 hangs the first time only, so the retry can finish.
      const step1 = `if [ -e ${marker} ]; then echo step1-again >> ${ledger}; else touch ${marker}; echo $$ > ${pidFile}; echo step1-first >> ${ledger}; echo partial; sleep 30; echo step1-end >> ${ledger}; fi`;
      viewer.send({
        type: "run_sequence",
        requestId: crypto.randomUUID(),
        name: "Interrupted",
        steps: [step1, `echo step2 >> ${ledger}`, `echo step3 >> ${ledger}`].map((text) => ({ text, shell: "sh" })),
        stopOnFailure: true,
      });
      await waitUntil("step 1 to start", () => runtime.ledgerLines().includes("step1-first"), 30_000);
      const step1Pid = await waitUntil("step 1's pid", () => readPid(pidFile));
      await runtime.kill("SIGTERM");

      const pause = await waitUntil("the sequence to pause", () => viewer.events.find((e) => e.kind === "sequence.paused"), 30_000);
      const interrupted = viewer.finished().find((e) => e.commandId === pause.commandId);
      expect(interrupted).toMatchObject({ status: "interrupted", error: expect.stringMatching(/runtime stopped \(SIGTERM\)/) });
      expect(viewer.events.find((e) => e.kind === "command.started" && e.commandId === pause.commandId)).toBeTruthy();
      expect(viewer.events.filter((e) => e.kind === "command.output" && e.commandId === pause.commandId).map((e) => e.data).join("")).toBe("partial\n");
      expect(processRunning(step1Pid)).toBe(false); // nothing of step 1 outlived the runtime
      expect(viewer.finished()).toHaveLength(1); // steps 2 and 3 wait for a decision

      runtime.start(args);
      viewer.send({ type: "sequence_action", sequenceId: pause.sequenceId, action: "retry" });
      await waitUntil("the rest of the sequence to finish", () => viewer.finished().length === 4, 40_000);
      expect(viewer.finished().map((e) => e.status)).toEqual(["interrupted", "succeeded", "succeeded", "succeeded"]);
      // The interrupted attempt never resumed; the retry ran once; steps 2 and 3 ran once each, after it.
      expect(runtime.ledgerLines()).toEqual(["step1-first", "step1-again", "step2", "step3"]);
      const retry = viewer.events.find((e) => e.kind === "command.queued" && e.retryOf === pause.commandId);
      expect(retry).toBeTruthy();
      expect(new Set(viewer.finished().map((e) => e.commandId)).size).toBe(4);
      viewer.close();
      await runtime.kill();
    }, 120_000);
  }

  it("a runtime killed with SIGKILL leaves its command running; the next start kills the orphan and reports it interrupted", async () => {
    const runtime = newRuntime("orphan");
    const viewer = new Viewer(stack.origin, cookie, runtime.endpointId);
    await viewer.connect();
    runtime.start();
    const { ledger } = runtime;
    const pidFile = join(runtime.dir, "orphan.pid");
    const requestId = crypto.randomUUID();
    viewer.send({ type: "run", requestId, shell: "sh", text: `echo $$ > ${pidFile}; echo started >> ${ledger}; sleep 30; echo orphan-finished >> ${ledger}` });
    const pid = await waitUntil("the command to start", () => (runtime.ledgerLines().includes("started") ? readPid(pidFile) : 0), 30_000);
    await runtime.kill("SIGKILL");
    expect(processRunning(pid)).toBe(true); // the orphan: nobody times it out any more

    runtime.start();
    const finished = await waitUntil("the interrupted result", () => viewer.finished()[0], 30_000);
    expect(finished).toMatchObject({ status: "interrupted", exitCode: null });
    expect(finished.error).toMatch(/not run again; its processes left over from the previous run \(process group \d+\) were killed/);
    expect(processRunning(pid)).toBe(false);
    expect(runtime.log).toMatch(/was running when the runtime last stopped: its processes left over from the previous run/);
    expect(runtime.ledgerLines()).toEqual(["started"]);
    viewer.close();
    await runtime.kill();
  }, 90_000);
});
