// The windows-x64 executable under wine against the real local stack (tests/wine).
// Needs `npm run build` first and wine64 installed; run under flock like the fault suite.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/wine/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 240_000,
  },
});
