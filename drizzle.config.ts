import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./app/db/schema.ts",
  out: "./migrations",
  // Wrangler applies top-level NNNN_name.sql files; keep drizzle's journal in meta/.
  migrations: { prefix: "index" },
});
