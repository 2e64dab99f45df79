import * as os from "node:os";
import * as path from "node:path";

export function defaultStateDir(): string {
  return process.env.CAISEY_RUNTIME_STATE_DIR || path.join(os.homedir(), ".caisey-runtime");
}

/** Everything the runtime keeps on disk lives under one directory. */
export function statePaths(stateDir: string) {
  const dir = path.resolve(stateDir);
  return {
    dir,
    identity: path.join(dir, "identity.json"),
    journal: path.join(dir, "journal"),
    acked: path.join(dir, "acked"),
    outbox: path.join(dir, "outbox"),
    lock: path.join(dir, "runtime.lock"),
    /** Last transport and last successful contact with the server, for `status`. */
    transport: path.join(dir, "transport.json"),
  };
}
export type StatePaths = ReturnType<typeof statePaths>;
