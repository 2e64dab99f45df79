// The unit layer as StrykerJS drives it (npm run test:mutation, stryker.config.mjs): the unit files that exercise
// runtime/src and protocol/ in process or through the built runtime. Not part of `npm test`.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "tests/unit/protocol.test.ts",
      "tests/unit/audit-verify.test.ts",
      "tests/unit/runtime-*.test.ts",
      "tests/unit/transcript*.test.ts",
    ],
    environment: "node",
    globalSetup: ["tests/unit/global-setup.ts"],
    setupFiles: ["tests/unit/stryker-child-mutant.ts"],
  },
});
