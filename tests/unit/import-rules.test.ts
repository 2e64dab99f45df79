// Two import rules the bundles depend on, checked over every source file:
// - zod is imported as a namespace. `import { z } from "zod"` binds one object
//   holding all of zod 4 (its 40-odd locales and JSON-schema converters
//   included), so nothing can be tree-shaken: the console's zod chunk was
//   464 KB that way and is 107 KB as a namespace; the runtime bundle 2.15 MB
//   against 1.58 MB. (`import type { z }` costs nothing and stays allowed.)
// - The console never imports the session worker's code: their contract lives in protocol/.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const repo = resolve(__dirname, "../..");

function sources(dir: string): string[] {
  return readdirSync(join(repo, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" || entry.name === "dist" ? [] : sources(path);
    return /\.(ts|tsx|mts)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

const importLines = (file: string) =>
  readFileSync(join(repo, file), "utf8")
    .split("\n")
    .map((line, index) => ({ line: line.trim(), at: `${relative(repo, join(repo, file))}:${index + 1}` }))
    .filter(({ line }) => line.startsWith("import ") || line.startsWith("export "));

describe("import rules", () => {
  it("imports zod as a namespace, so bundles keep only the parts they use", () => {
    const offenders = ["app", "protocol", "workers", "runtime/src", "tests", "e2e", "scripts"]
      .flatMap(sources)
      .flatMap(importLines)
      .filter(({ line }) => /from ["']zod(\/[^"']*)?["']/.test(line) && !line.startsWith("import type ") && !/^import \* as \w+ from/.test(line))
      .map(({ at, line }) => `${at}: ${line}`);
    expect(offenders).toEqual([]);
  });

  it("keeps the console off the session worker's code", () => {
    const offenders = sources("app")
      .flatMap(importLines)
      .filter(({ line }) => /from ["'](\.\.\/)+workers\/|from ["']~\/\.\.\/workers\//.test(line))
      .map(({ at, line }) => `${at}: ${line}`);
    expect(offenders).toEqual([]);
  });
});
