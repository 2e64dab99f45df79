// Builds the runtime bundle (runtime/dist/cli.js, which runtime/bin launches) once, before any test file runs:
// files run in parallel, and one file rebuilding it while another spawns it made both flaky.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

export default function setup(): void {
  const repo = resolve(__dirname, "../..");
  execFileSync(process.execPath, [resolve(repo, "scripts/build-runtime.mjs")], { cwd: repo, stdio: "pipe" });
}
