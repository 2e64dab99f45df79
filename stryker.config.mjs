// Mutation testing of the runtime and the shared protocol (npm run test:mutation; ADR 0023). Driven by the unit
// layer through vitest.mutation.config.ts; the session's workerd code is covered by scripts/safety-mutations.mjs.
// MUTATE narrows the run (comma-separated globs), e.g. MUTATE=runtime/src/outbox.ts npm run test:mutation.
const everything = ["runtime/src/**/*.ts", "protocol/**/*.ts"];
const mutate = process.env.MUTATE ? process.env.MUTATE.split(",") : everything;

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  packageManager: "npm",
  testRunner: "vitest",
  // related: false: the dry run runs every file of the mutation config (Vitest's "related files" lookup found none
  // for protocol/ in the sandbox), and per-test coverage then decides which tests each mutant runs.
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.mutation.json",
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate,
  // Only what the unit layer and the runtime build need; keeps the sandbox copy small. The unit tests import app/lib
  // and workers/session/src modules too (the transcript, the session's clock), so those stay in the sandbox.
  ignorePatterns: ["/e2e", "/public", "/build", "/functions", "/docs", "/.data", "/test-results", "/playwright-report", "/.wrangler", "/.cache"],
  coverageAnalysis: "perTest",
  // Static mutants (module-level constants) would rerun the whole layer each; reported as ignored.
  ignoreStatic: true,
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 2),
  timeoutMS: 20_000,
  // STRYKER_INCREMENTAL=0 measures from scratch.
  incremental: process.env.STRYKER_INCREMENTAL !== "0",
  incrementalFile: ".cache/stryker-incremental.json",
  reporters: ["json", "progress", "clear-text"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".cache/stryker-tmp",
  cleanTempDir: "always",
};
