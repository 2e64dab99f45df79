// scripts/deploy.mjs: the dry run CI runs (no Cloudflare), its refusals, and a
// whole deploy twice against a stand-in for Cloudflare behind the wrangler CLI
// (tests/unit/fixtures/fake-cloudflare-wrangler.mjs): resources are found or
// created once, the D1 id lands in both wrangler files, missing secrets stop
// the deploy before anything is deployed, and the order is migrations, runtime,
// session worker, Pages.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(process.cwd());
const fakeWrangler = join(root, "tests/unit/fixtures/fake-cloudflare-wrangler.mjs");

interface FakeAccount {
  loggedIn: boolean;
  projects: string[];
  databases: { uuid: string; name: string }[];
  buckets: string[];
  pagesSecrets: Record<string, string[]>;
  workerSecrets: Record<string, string[]>;
  objects: string[];
  calls: string[][];
}

function deploy(args: string[], extraEnv: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(root, "scripts/deploy.mjs"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, ...extraEnv },
    timeout: 90_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Copies of both wrangler files (same relative layout) that a test may edit. */
function configCopies(edit: (pages: string, session: string) => [string, string] = (p, s) => [p, s]) {
  const dir = mkdtempSync(join(tmpdir(), "caisey-deploy-config-"));
  mkdirSync(join(dir, "workers/session"), { recursive: true });
  const [pages, session] = edit(readFileSync(join(root, "wrangler.toml"), "utf8"), readFileSync(join(root, "workers/session/wrangler.toml"), "utf8"));
  writeFileSync(join(dir, "wrangler.toml"), pages);
  writeFileSync(join(dir, "workers/session/wrangler.toml"), session);
  return { dir, pages: join(dir, "wrangler.toml"), session: join(dir, "workers/session/wrangler.toml") };
}

const ownDomain = (text: string) =>
  text.replaceAll("https://console.msp.example", "https://console.acme-msp.com").replaceAll("approvals@msp.example", "approvals@acme-msp.com");

function fakeAccount(initial: Partial<FakeAccount> = {}) {
  const path = join(mkdtempSync(join(tmpdir(), "caisey-fake-cf-")), "account.json");
  const account: FakeAccount = { loggedIn: true, projects: [], databases: [], buckets: [], pagesSecrets: {}, workerSecrets: {}, objects: [], calls: [], ...initial };
  writeFileSync(path, JSON.stringify(account));
  return { path, read: () => JSON.parse(readFileSync(path, "utf8")) as FakeAccount, write: (a: FakeAccount) => writeFileSync(path, JSON.stringify(a)) };
}

/** A one-platform runtime release in build-runtime.mjs's layout (manifest checked by publish-runtime.mjs). */
function tinyRelease() {
  const dir = mkdtempSync(join(tmpdir(), "caisey-deploy-release-"));
  const data = Buffer.from("#!/bin/sh\necho caisey\n");
  mkdirSync(join(dir, "9.9.9/linux-x64"), { recursive: true });
  writeFileSync(join(dir, "9.9.9/linux-x64/caisey-runtime"), data);
  const artifact = { platform: "linux-x64", file: "caisey-runtime", size: data.length, sha256: createHash("sha256").update(data).digest("hex") };
  writeFileSync(join(dir, "9.9.9/manifest.json"), JSON.stringify({ version: "9.9.9", artifacts: [artifact] }));
  writeFileSync(join(dir, "latest.json"), JSON.stringify({ version: "9.9.9" }));
  return dir;
}

describe("npm run deploy -- --dry-run", { timeout: 120_000 }, () => {
  it("prints the production plan in order and calls nothing", () => {
    const account = fakeAccount();
    const { status, output } = deploy(["--env", "production", "--dry-run"], { CAISEY_DEPLOY_WRANGLER: fakeWrangler, FAKE_CLOUDFLARE_STATE: account.path });
    expect(status, output).toBe(0);
    expect(output).toContain("DRY RUN: nothing is sent to Cloudflare");
    const order = [
      "wrangler whoami --json",
      "wrangler pages project list --json",
      "wrangler d1 create caisey-db (only if missing)",
      "wrangler r2 bucket create caisey-runtime-releases (only if missing)",
      "wrangler r2 bucket create caisey-audit-archive (only if missing)",
      "wrangler pages secret list --project-name caisey --env production",
      "npm run build",
      "wrangler d1 migrations apply caisey-db --remote --env production -c wrangler.toml",
      "node scripts/publish-runtime.mjs --remote --bucket caisey-runtime-releases",
      "wrangler deploy -c workers/session/wrangler.toml --env production",
      "wrangler pages deploy public --project-name caisey --branch main --commit-dirty=true",
    ].map((command) => output.indexOf(`would run: ${command}`));
    expect(order.every((at) => at > 0), output).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(output).toContain("CLERK_SECRET_KEY, CLERK_PUBLISHABLE_KEY, CLERK_WEBHOOK_SIGNING_SECRET");
    expect(output).toContain("AUDIT_MAC_KEY, RESEND_API_KEY");
    // The checked-in example origin is reported, not silently deployed.
    expect(output).toContain("vars.PUBLIC_ORIGIN is the example https://console.msp.example");
    expect(account.read().calls).toEqual([]);
  });

  it("plans previews on their own D1, bucket and session worker", () => {
    const { status, output } = deploy(["--env", "preview", "--dry-run", "--skip-build"]);
    expect(status, output).toBe(0);
    expect(output).toContain("D1 caisey-db-preview, R2 caisey-runtime-releases-preview and caisey-audit-archive-preview, session worker caisey-session-preview");
    expect(output).toContain("would run: wrangler r2 bucket create caisey-audit-archive-preview (only if missing)");
    expect(output).toContain("wrangler deploy -c workers/session/wrangler.toml --env preview");
    expect(output).toContain("--branch preview");
    expect(output).not.toContain("npm run build");
    expect(output).not.toMatch(/caisey-db[^-]|caisey-session[^-]|caisey-runtime-releases[^-]|caisey-audit-archive[^-]/);
  });

  it.each([
    ["PUBLIC_ORIGIN is missing", (p: string, s: string) => [p, s.replace(/(\[env\.production\.vars\][^[]*?)PUBLIC_ORIGIN = .*\n/, "$1")], "vars.PUBLIC_ORIGIN is not set"],
    ["CAISEY_ENV is wrong", (p: string, s: string) => [p.replace('CAISEY_ENV = "production"', 'CAISEY_ENV = "staging"'), s], 'vars.CAISEY_ENV must be "production"'],
    ["the Pages project binds another session worker's Durable Objects", (p: string, s: string) => [p.replace(/script_name = "caisey-session"\n/g, 'script_name = "caisey-session-preview"\n'), s], "but this environment's session worker is caisey-session"],
    ["the two files bind different databases", (p: string, s: string) => [p, s.replace(/(\[\[env\.production\.d1_databases\]\][^[]*?)database_name = "caisey-db"/, '$1database_name = "other-db"')], "binds different D1 databases"],
    ["no mail provider", (p: string, s: string) => [p, s.replace(/(\[env\.production\.vars\][^[]*?)APPROVAL_MAIL_PROVIDER = .*\n/, "$1")], "APPROVAL_MAIL_PROVIDER must be one of"],
    ["the session worker has no audit archive bucket", (p: string, s: string) => [p, s.replace(/\[\[env\.production\.r2_buckets\]\]\nbinding = "AUDIT_ARCHIVE"\nbucket_name = .*\n/, "")], "no R2 bucket bound as AUDIT_ARCHIVE"],
    ["observability is off", (p: string, s: string) => [p, s.replace("[observability]\nenabled = true", "[observability]\nenabled = false")], "[observability] enabled = true is missing"],
  ] as const)("refuses, even as a dry run, when %s", (_what, edit, message) => {
    const copies = configCopies(edit as (p: string, s: string) => [string, string]);
    const { status, output } = deploy(["--env", "production", "--dry-run", "--pages-config", copies.pages, "--session-config", copies.session]);
    expect(status, output).toBe(1);
    expect(output).toContain("refused: the configuration of production is incomplete; nothing was changed");
    expect(output).toContain(message);
  });

  it("refuses a real deploy while the example origin and sender are configured", () => {
    const account = fakeAccount();
    const { status, output } = deploy(["--env", "production", "--skip-build"], { CAISEY_DEPLOY_WRANGLER: fakeWrangler, FAKE_CLOUDFLARE_STATE: account.path });
    expect(status, output).toBe(1);
    expect(output).toContain("replace the example values above");
    expect(account.read().calls).toEqual([]);
  });
});

describe("npm run deploy against a stand-in Cloudflare account", { timeout: 120_000 }, () => {
  it("creates what is missing once, writes the D1 id in both files, stops on missing secrets, then deploys in order", () => {
    const copies = configCopies((p, s) => [ownDomain(p), ownDomain(s)]);
    const release = tinyRelease();
    const account = fakeAccount();
    const env = { CAISEY_DEPLOY_WRANGLER: fakeWrangler, FAKE_CLOUDFLARE_STATE: account.path };
    const args = ["--env", "production", "--skip-build", "--pages-config", copies.pages, "--session-config", copies.session, "--runtime-release", release];

    const first = deploy(args, env);
    expect(first.status, first.output).toBe(1);
    expect(first.output).toContain("step 5 (secrets) failed: secrets are missing");
    expect(first.output).toContain("npx wrangler pages secret put CLERK_SECRET_KEY --project-name caisey --env production");
    expect(first.output).toMatch(/npx wrangler secret put AUDIT_MAC_KEY -c \S+ --env production/);
    let state = account.read();
    expect(state.projects).toEqual(["caisey"]);
    expect(state.buckets).toEqual(["caisey-runtime-releases", "caisey-audit-archive"]);
    expect(state.databases.map((d) => d.name)).toEqual(["caisey-db"]);
    const id = state.databases[0]!.uuid;
    for (const file of [copies.pages, copies.session]) {
      const production = readFileSync(file, "utf8").split("\n[env.preview]\n")[0]!.split("\n[env.production]\n")[1]!;
      expect(production).toContain(`database_id = "${id}"`);
    }
    // Preview's id and the local (top-level) binding are untouched.
    expect(readFileSync(copies.pages, "utf8").split(id).length - 1).toBe(1);
    expect(state.calls.some((c) => c[0] === "deploy" || (c[0] === "pages" && c[1] === "deploy") || c[1] === "migrations")).toBe(false);

    state.pagesSecrets.production = ["CLERK_SECRET_KEY", "CLERK_PUBLISHABLE_KEY", "CLERK_WEBHOOK_SIGNING_SECRET"];
    state.workerSecrets["caisey-session"] = ["AUDIT_MAC_KEY", "RESEND_API_KEY"];
    state.calls = [];
    account.write(state);

    const second = deploy(args, env);
    expect(second.status, second.output).toBe(0);
    expect(second.output).toContain("found D1 database caisey-db");
    expect(second.output).toContain("database_id already up to date");
    state = account.read();
    expect(state.calls.filter((c) => c.includes("create"))).toEqual([]);
    expect(state.databases).toHaveLength(1);
    const at = (match: (c: string[]) => boolean) => state.calls.findIndex(match);
    const migrations = at((c) => c[0] === "d1" && c[1] === "migrations" && c.includes("--remote") && c.includes("caisey-db"));
    const latest = at((c) => c[0] === "r2" && c[3] === "caisey-runtime-releases/runtime/latest.json");
    const worker = at((c) => c[0] === "deploy" && c.includes("production"));
    const pages = at((c) => c[0] === "pages" && c[1] === "deploy" && c.includes("main"));
    expect([migrations, latest, worker, pages].every((i) => i >= 0), JSON.stringify(state.calls)).toBe(true);
    expect(migrations).toBeLessThan(latest);
    expect(latest).toBeLessThan(worker);
    expect(worker).toBeLessThan(pages);
    expect(state.objects).toEqual([
      "caisey-runtime-releases/runtime/9.9.9/linux-x64/caisey-runtime",
      "caisey-runtime-releases/runtime/9.9.9/manifest.json",
      "caisey-runtime-releases/runtime/latest.json",
    ]);
  });

  it("says how to log in when wrangler is not authenticated", () => {
    const copies = configCopies((p, s) => [ownDomain(p), ownDomain(s)]);
    const account = fakeAccount({ loggedIn: false });
    const { status, output } = deploy(["--env", "production", "--skip-build", "--pages-config", copies.pages, "--session-config", copies.session], {
      CAISEY_DEPLOY_WRANGLER: fakeWrangler,
      FAKE_CLOUDFLARE_STATE: account.path,
    });
    expect(status, output).toBe(1);
    expect(output).toContain("not logged in to Cloudflare: run `npx wrangler login`");
    expect(account.read().calls).toEqual([["whoami", "--json"]]);
  });
});
