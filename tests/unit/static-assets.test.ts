// public/_routes.json and public/_headers: every static file Pages serves
// bypasses the function, and fingerprinted build output is cached for good.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const publicDir = resolve(process.cwd(), "public");
const routes = JSON.parse(readFileSync(join(publicDir, "_routes.json"), "utf8")) as { version: number; include: string[]; exclude: string[] };

/** Pages' _routes.json matching: exact paths, and a trailing "/*" for everything below. */
const matches = (rule: string, path: string) => (rule.endsWith("/*") ? path.startsWith(rule.slice(0, -1)) || path === rule.slice(0, -2) : path === rule);
const runsFunction = (path: string) => routes.include.some((r) => matches(r, path)) && !routes.exclude.some((r) => matches(r, path));

/** _headers as Pages reads it: a URL pattern line, then indented "Name: value" lines. */
function parseHeaders(text: string): Map<string, Map<string, string>> {
  const rules = new Map<string, Map<string, string>>();
  let current: Map<string, string> | null = null;
  for (const line of text.split("\n")) {
    if (!line.trim() || line.trim().startsWith("#")) continue;
    if (!/^\s/.test(line)) rules.set(line.trim(), (current = new Map()));
    else {
      const [name, ...value] = line.trim().split(":");
      current!.set(name!.toLowerCase(), value.join(":").trim());
    }
  }
  return rules;
}

describe("public/_routes.json", () => {
  it("is a valid version 1 file within Pages' limit of 100 rules", () => {
    expect(routes.version).toBe(1);
    expect(routes.include).toEqual(["/*"]);
    expect(routes.include.length + routes.exclude.length).toBeLessThanOrEqual(100);
    for (const rule of [...routes.include, ...routes.exclude]) expect(rule).toMatch(/^\//);
  });

  it("sends every static file past the function, and everything else to it", () => {
    const files = readdirSync(publicDir).filter((name) => !name.startsWith("_") && name !== "build");
    for (const file of files) expect(runsFunction(`/${file}`), `/${file} would run the function`).toBe(false);
    if (existsSync(join(publicDir, "build"))) {
      for (const file of readdirSync(join(publicDir, "build"))) expect(runsFunction(`/build/${file}`)).toBe(false);
    }
    expect(runsFunction("/build/entry.client-ABC123.js")).toBe(false);
    for (const path of ["/", "/clients", "/endpoints/ep_1", "/agent/connect", "/parties/endpoint/ep_1", "/install.sh", "/webhooks/clerk", "/buildings"]) {
      expect(runsFunction(path), path).toBe(true);
    }
  });
});

describe("public/_headers", () => {
  const rules = parseHeaders(readFileSync(join(publicDir, "_headers"), "utf8"));

  it("caches fingerprinted build output as immutable for a year", () => {
    expect(rules.get("/build/*")?.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });

  it("keeps the security headers on every static file and caches nothing else for good", () => {
    expect(rules.get("/*")?.get("x-content-type-options")).toBe("nosniff");
    expect(rules.get("/*")?.get("content-security-policy")).toContain("default-src 'none'");
    for (const [pattern, headers] of rules) if (pattern !== "/build/*") expect(headers.get("cache-control") ?? "", pattern).not.toContain("immutable");
  });
});
