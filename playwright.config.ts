import { defineConfig } from "@playwright/test";
import { E2E_ORIGIN, E2E_PORT } from "./e2e/origin";

// Debian's chromium; browsers are never downloaded (see docs/decisions/0001-toolchain.md).
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "./e2e",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: process.env.CI ? [["list"]] : [["list"]],
  use: {
    baseURL: E2E_ORIGIN,
    trace: { mode: "retain-on-failure", screenshots: false, snapshots: true, sources: false },
    launchOptions: {
      executablePath: chromiumPath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: {
    command: `node scripts/dev.mjs --port ${E2E_PORT} --state .wrangler/e2e-state --fresh --no-build --no-demo-runtime --no-rate-limits`,
    url: `${E2E_ORIGIN}/offline/sign-in`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
  },
});
