import { Agent, type TransportChoice } from "./agent";
import { ensurePrivateDir } from "./fs-durable";
import { loadIdentity } from "./identity";
import { acquireLock } from "./lock";
import type { Logger } from "./log";
import type { StatePaths } from "./paths";
import { stopSignals } from "./platform";

/** Exit status when the server rejects the credential: retrying cannot fix it, a supervisor should not restart-loop. */
export const EXIT_CREDENTIAL_REJECTED = 2;

export interface RunOptions {
  paths: StatePaths;
  log: Logger;
  hostname?: string;
  transport?: TransportChoice;
  checkinIntervalMs?: number;
}

/** Runs until a signal or a credential rejection; resolves with the process exit code. */
export async function runRuntime({ paths, log, hostname, transport, checkinIntervalMs }: RunOptions): Promise<number> {
  const identity = await loadIdentity(paths);
  await ensurePrivateDir(paths.dir);
  const releaseLock = acquireLock(paths.lock);
  let agent: Agent;
  let rejected: (reason: string) => void = () => {};
  const rejection = new Promise<string>((resolve) => (rejected = resolve));
  try {
    agent = await Agent.open({ identity, paths, log, hostname, transport, checkinIntervalMs, onRejected: (reason) => rejected(reason) });
  } catch (error) {
    releaseLock();
    throw error;
  }

  let signalled: (signal: NodeJS.Signals) => void = () => {};
  const signal = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  let stopping = false;
  const onSignal = (name: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`second ${name}: exiting immediately`);
      process.exit(130);
    }
    stopping = true;
    signalled(name);
  };
  // Service stop on Windows (Ctrl+C, Ctrl+Break, console close) and a closed terminal end like SIGTERM.
  const signals = stopSignals();
  for (const name of signals) process.on(name, onSignal);

  agent.start();
  const outcome = await Promise.race([
    signal.then((name) => ({ kind: "signal" as const, name })),
    rejection.then((reason) => ({ kind: "rejected" as const, reason })),
  ]);
  try {
    if (outcome.kind === "signal") {
      log.info(`received ${outcome.name}; stopping`);
      await agent.shutdown(outcome.name);
      log.info("stopped");
      return 0;
    }
    await agent.close();
    return EXIT_CREDENTIAL_REJECTED;
  } finally {
    releaseLock();
    for (const name of signals) process.off(name, onSignal);
  }
}
