// A fresh local stack's state (runtime release in local R2, D1 migrated) built
// once and copied for every fresh start. Each `wrangler r2 object put` and
// `wrangler d1 migrations apply` starts its own Miniflare; a fresh start made
// eight of them, which cost one to four minutes per test stack on a 2-core CI
// machine. The seed is not in the template: it is dated from the moment of
// the start (scripts/seed.mjs), so every start still seeds.
import { createHash, randomUUID } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { publishRuntime } from "./publish-runtime.mjs";

/** What the template's content depends on: change any of it and a new template is built. */
function fingerprint(root, release) {
  const hash = createHash("sha256");
  hash.update("stack-template 1\n");
  hash.update(readFileSync(join(root, "node_modules", "wrangler", "package.json")));
  const migrations = join(root, "migrations");
  for (const file of readdirSync(migrations).filter((f) => f.endsWith(".sql")).sort()) {
    hash.update(`${file}\n`).update(readFileSync(join(migrations, file)));
  }
  const latest = join(release, "latest.json");
  if (existsSync(latest)) {
    const { version } = JSON.parse(readFileSync(latest, "utf8"));
    hash.update(readFileSync(join(release, version, "manifest.json")));
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * Copies the template into `stateDir` (which must not exist yet), building the template first if this
 * combination of migrations, release and wrangler has none. Concurrent starts may both build it; the
 * first rename wins and the other copy is dropped.
 */
export function seedStateFromTemplate({ root, release, stateDir, run, log }) {
  const templates = join(root, ".cache", "stack-state");
  const ready = join(templates, fingerprint(root, release));
  if (!existsSync(join(ready, "template.json"))) {
    log("Preparing the local state template (runtime release in R2, D1 migrated; once per change)");
    const building = join(templates, `building-${randomUUID()}`);
    mkdirSync(building, { recursive: true });
    try {
      if (existsSync(join(release, "latest.json"))) publishRuntime({ release, target: { local: true, persistTo: building } });
      run(join(root, "node_modules", ".bin", "wrangler"), ["d1", "migrations", "apply", "caisey-db", "--local", "--persist-to", building], "Applying D1 migrations");
      writeFileSync(join(building, "template.json"), `${JSON.stringify({ builtAt: new Date().toISOString() })}\n`);
      try {
        renameSync(building, ready);
      } catch {
        if (!existsSync(join(ready, "template.json"))) throw new Error(`could not store the state template in ${ready}`);
      }
      // Templates of earlier migrations or releases are never used again.
      for (const name of readdirSync(templates)) {
        if (join(templates, name) !== ready && !name.startsWith("building-")) rmSync(join(templates, name), { recursive: true, force: true });
      }
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
  }
  cpSync(ready, stateDir, { recursive: true });
  rmSync(join(stateDir, "template.json"), { force: true });
}
