// The unit layer as StrykerJS drives it (npm run test:mutation, stryker.config.mjs): every unit file that exercises
// runtime/src and protocol/ inside the vitest process, so Stryker's per-test coverage can credit it. Not part of
// `npm test`.
// Left out: the files whose runtime runs as a child process (runtime-checkin, runtime-outbox, runtime-network,
// runtime-windows-stop). A mutant active in a child (tests/unit/stryker-child-mutant.ts) is never reported as
// covered, so per-test coverage would never run them, and running every test for every mutant (coverage "off")
// costs minutes per mutant on this machine. What they guard in-process is in runtime-journal, runtime-outbox-store
// and runtime-checkin-compact; the rest is claimed by the fault layer and the safety register (docs/quality.md).
// audit-verify is left out too: it applies wrangler migrations per test.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { alias: [{ find: /^@protocol\//, replacement: fileURLToPath(new URL("./protocol/", import.meta.url)) }] },
  test: {
    include: [
      "tests/unit/console-time.test.ts",
      "tests/unit/maintenance-windows.test.ts",
      "tests/unit/protocol.test.ts",
      "tests/unit/protocol-time.test.ts",
      "tests/unit/protocol-rules.test.ts",
      "tests/unit/shell-quote.test.ts",
      "tests/unit/transcript*.test.ts",
      "tests/unit/runtime-build.test.ts",
      "tests/unit/runtime-checkin-compact.test.ts",
      "tests/unit/runtime-clock.test.ts",
      "tests/unit/runtime-config.test.ts",
      "tests/unit/runtime-executor.test.ts",
      "tests/unit/runtime-interruptions.test.ts",
      "tests/unit/runtime-journal.test.ts",
      "tests/unit/runtime-orphans.test.ts",
      "tests/unit/runtime-output-buffer.test.ts",
      "tests/unit/runtime-shell-cmd.test.ts",
      "tests/unit/runtime-updater.test.ts",
      "tests/unit/runtime-windows.test.ts",
    ],
    environment: "node",
    // Instrumented code on a loaded 2-core machine: tests that spawn shells (shell-quote) need more than 5 s.
    testTimeout: 30_000,
    globalSetup: ["tests/unit/global-setup.ts"],
    setupFiles: ["tests/unit/stryker-child-mutant.ts"],
  },
});
