// The unit layer as StrykerJS drives it (npm run test:mutation, stryker.config.mjs): the unit files that exercise
// runtime/src and protocol/ in process. Not part of `npm test`.
// Left out: the process-level files (runtime-checkin, runtime-outbox, runtime-network, runtime-windows-stop) and
// audit-verify (wrangler migrations per test). Each takes minutes and, on a loaded 2-core machine, timed out in
// Stryker's initial run; what only they exercise (the journal, agent, checkin loop) shows as "no coverage" here
// and is guarded by the safety mutations and the claims register instead (docs/quality.md, ADR 0023).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "tests/unit/protocol.test.ts",
      "tests/unit/transcript*.test.ts",
      "tests/unit/runtime-build.test.ts",
      "tests/unit/runtime-clock.test.ts",
      "tests/unit/runtime-config.test.ts",
      "tests/unit/runtime-executor.test.ts",
      "tests/unit/runtime-interruptions.test.ts",
      "tests/unit/runtime-orphans.test.ts",
      "tests/unit/runtime-shell-cmd.test.ts",
      "tests/unit/runtime-updater.test.ts",
      "tests/unit/runtime-windows.test.ts",
    ],
    environment: "node",
    globalSetup: ["tests/unit/global-setup.ts"],
    setupFiles: ["tests/unit/stryker-child-mutant.ts"],
  },
});
