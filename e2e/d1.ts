// The e2e stack's D1, read and written as a second process would: `wrangler d1
// execute --local` on the same SQLite file the running stack uses. While the
// stack writes (a session replicating its audit events, a loader's write) that
// file is locked for a moment, and SQLite answers SQLITE_BUSY at once rather
// than waiting; a statement refused that way did nothing, so it is run again.
import { spawnSync } from "node:child_process";

const BUSY = /database is locked|SQLITE_BUSY/;
const RETRY_DELAYS_MS = [200, 400, 800, 1_600, 3_200];

function execute(what: string[]): string {
  const args = ["wrangler", "d1", "execute", "caisey-db", "--local", "--persist-to", ".wrangler/e2e-state", ...what];
  for (let attempt = 0; ; attempt += 1) {
    const result = spawnSync("npx", args, { encoding: "utf8", cwd: process.cwd() });
    if (result.status === 0) return result.stdout;
    const output = `${result.stderr}\n${result.stdout}`;
    if (attempt >= RETRY_DELAYS_MS.length || !BUSY.test(output)) throw new Error(`d1 execute failed (${result.status}):\n${output}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_DELAYS_MS[attempt]!);
  }
}

/** Runs SQL (one or more statements) and returns each statement's rows. */
export function d1Query(sql: string): unknown[][] {
  return (JSON.parse(execute(["--json", "--command", sql])) as { results: unknown[] }[]).map((set) => set.results);
}

/** Runs a file of SQL statements (a seed) for its effect. */
export function d1ExecuteFile(file: string): void {
  execute(["--file", file]);
}
