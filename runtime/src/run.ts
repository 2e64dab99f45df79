import type { RuntimeUpdateStatus } from "../../protocol/messages";
import { Agent, type TransportChoice } from "./agent";
import { ensurePrivateDir } from "./fs-durable";
import { loadIdentity } from "./identity";
import { acquireLock } from "./lock";
import { errorText, type Logger } from "./log";
import type { StatePaths } from "./paths";
import { stopSignals } from "./platform";
import {
  commitUpdate,
  discardUpdate,
  EXIT_UPDATE_RESTART,
  markTrialConnected,
  runTrial,
  takeCommittedReport,
  TEST_BROKEN_START,
  trialWindowMs,
  Updater,
  type StagedUpdate,
} from "./updater";

/** Exit status when the server rejects the credential: retrying cannot fix it, a supervisor should not restart-loop. */
export const EXIT_CREDENTIAL_REJECTED = 2;

export interface RunOptions {
  paths: StatePaths;
  log: Logger;
  hostname?: string;
  transport?: TransportChoice;
  checkinIntervalMs?: number;
  /**
   * Run as an update trial (updater.ts): connect, write this marker file once the server answered,
   * then stop. Nothing is run.
   */
  updateTrial?: string;
}

type Outcome =
  | { kind: "signal"; name: NodeJS.Signals }
  | { kind: "rejected"; reason: string }
  | { kind: "update"; update: StagedUpdate }
  | { kind: "trial-connected" };

/** Runs until a signal, a credential rejection or a committed update; resolves with the process exit code. */
export async function runRuntime({ paths, log, hostname, transport, checkinIntervalMs, updateTrial }: RunOptions): Promise<number> {
  if (TEST_BROKEN_START === "crash") throw new Error("this is a test build that crashes at start");
  const identity = await loadIdentity(paths);
  await ensurePrivateDir(paths.dir);

  let signalled: (signal: NodeJS.Signals) => void = () => {};
  const signal = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  const stopTrial = new AbortController();
  let stopping = false;
  const onSignal = (name: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`second ${name}: exiting immediately`);
      process.exit(130);
    }
    stopping = true;
    stopTrial.abort();
    signalled(name);
  };
  // Service stop on Windows (Ctrl+C, Ctrl+Break, console close) and a closed terminal end like SIGTERM.
  const signals = stopSignals();
  for (const name of signals) process.on(name, onSignal);

  let updateReady: (update: StagedUpdate) => void = () => {};
  let agent: Agent | undefined;
  /** Update progress to hand to the next agent (a rollback reopens it). */
  let carried: RuntimeUpdateStatus[] = [];
  const committed = updateTrial ? undefined : await takeCommittedReport(paths);
  if (committed) carried.push(committed);
  const updater = new Updater({
    paths,
    server: identity.server,
    log,
    report: (status) => (agent ? agent.reportUpdate(status) : carried.push(status)),
    ready: (update) => updateReady(update),
  });

  try {
    for (;;) {
      const releaseLock = acquireLock(paths.lock);
      let rejected: (reason: string) => void = () => {};
      const rejection = new Promise<string>((resolve) => (rejected = resolve));
      let trialConnected: () => void = () => {};
      const connected = new Promise<void>((resolve) => (trialConnected = resolve));
      const ready = new Promise<StagedUpdate>((resolve) => (updateReady = resolve));
      try {
        agent = await Agent.open({
          identity,
          paths,
          log,
          hostname,
          transport,
          checkinIntervalMs,
          onRejected: (reason) => rejected(reason),
          ...(updateTrial ? { onTrialConnected: () => trialConnected() } : { onUpdateOffer: (offer) => updater.offered(offer) }),
        });
      } catch (error) {
        releaseLock();
        throw error;
      }
      for (const status of carried.splice(0)) agent.reportUpdate(status);
      if (TEST_BROKEN_START !== "no-connect") agent.start();
      else setInterval(() => {}, 60_000); // the test build that never connects just stays up

      const outcome: Outcome = await Promise.race([
        signal.then((name) => ({ kind: "signal" as const, name })),
        rejection.then((reason) => ({ kind: "rejected" as const, reason })),
        ready.then((update) => ({ kind: "update" as const, update })),
        connected.then(() => ({ kind: "trial-connected" as const })),
      ]);
      if (outcome.kind === "signal") {
        log.info(`received ${outcome.name}; stopping`);
        await agent.shutdown(outcome.name);
        releaseLock();
        log.info("stopped");
        return 0;
      }
      if (outcome.kind === "rejected") {
        await agent.close();
        releaseLock();
        return EXIT_CREDENTIAL_REJECTED;
      }
      if (outcome.kind === "trial-connected") {
        log.info("update trial: reached the server; handing back to the running version");
        await agent.shutdown("update trial done", 500);
        releaseLock();
        await markTrialConnected(updateTrial!);
        return 0;
      }

      // An update is verified and staged: let running commands finish, then try it.
      const update = outcome.update;
      const drained = await Promise.race([agent.drainForUpdate().then(() => true), signal.then(() => false)]);
      if (!drained) {
        await agent.shutdown("signal");
        releaseLock();
        await discardUpdate(update);
        return 0;
      }
      const trialMs = trialWindowMs();
      agent.reportUpdate({ version: update.version, phase: "trial", detail: `running ${update.version} on trial for up to ${Math.round(trialMs / 1000)} s` });
      log.info(`trying ${update.version}: stopping this runtime (${agent.outboxSize} result(s) stay in the outbox) and starting the new version on trial`);
      await agent.shutdown("update");
      carried = agent.undeliveredUpdateStatus().filter((s) => s.phase !== "trial");
      agent = undefined;
      releaseLock();
      const trial = await runTrial(update, paths, log, trialMs, transport ? ["--transport", transport] : [], stopTrial.signal);
      if (trial.ok) {
        try {
          await commitUpdate(update, paths);
          log.info(`update to ${update.version} committed; exiting with status ${EXIT_UPDATE_RESTART} so the service starts the new version`);
          return EXIT_UPDATE_RESTART;
        } catch (error) {
          carried.push({ version: update.version, phase: "rolled_back", detail: `the new executable could not be put in place: ${errorText(error)}` });
        }
      } else {
        log.error(`update to ${update.version} rolled back: ${trial.reason}`);
        carried.push({ version: update.version, phase: "rolled_back", detail: trial.reason });
      }
      await discardUpdate(update);
      updater.rolledBack();
      if (stopping) return 0;
      // Back to work on the old version; the loop reopens the agent and delivers the rollback report.
    }
  } finally {
    for (const name of signals) process.off(name, onSignal);
  }
}
