// Integration tests that run inside workerd (real D1, real SQLite-backed
// Durable Objects) through @cloudflare/vitest-pool-workers.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { offlineAuthVars } from "./scripts/dev-keys.mjs";

const fromRoot = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      main: "./workers/session/src/index.ts",
      wrangler: { configPath: "./workers/session/wrangler.toml" },
      miniflare: {
        // The Pages project's runtime release bucket (wrangler.toml), for the download routes.
        // AUDIT_ARCHIVE: the session worker's audit archive (workers/session/wrangler.toml).
        r2Buckets: ["RUNTIME_RELEASES", "AUDIT_ARCHIVE"],
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations(fromRoot("./migrations")),
          ...offlineAuthVars(),
          PUBLIC_ORIGIN: "https://console.caisey.test",
          AUDIT_MAC_KEY: "test-audit-mac-key-0123456789abcdef0123456789abcdef",
          APPROVAL_MAIL_PROVIDER: "capture",
          APPROVAL_MAIL_FROM: "Caisey approvals <approvals@caisey.test>",
        },
      },
    })),
  ],
  resolve: {
    alias: [
      { find: /^~\//, replacement: `${fromRoot("./app")}/` },
      // The app imports the shared contract as @protocol/… (tsconfig paths); the session and runtime keep relative imports.
      { find: /^@protocol\//, replacement: `${fromRoot("./protocol")}/` },
      // @clerk/remix (CommonJS) require()s this; its "module" build is ESM, which require() cannot load here.
      { find: /^@remix-run\/server-runtime$/, replacement: fromRoot("./node_modules/@remix-run/server-runtime/dist/index.js") },
    ],
  },
  test: {
    include: ["tests/workers/**/*.test.ts"],
    setupFiles: ["./tests/workers/apply-migrations.ts"],
    testTimeout: 30_000,
    // Each file waits seconds for its own isolate and module graph: two at a time on 2 cores (ADR 0030).
    maxWorkers: 2,
  },
});
