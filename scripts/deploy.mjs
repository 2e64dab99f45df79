#!/usr/bin/env node
// Deploys Caisey to a Cloudflare account: one environment (production or
// preview) of the session worker and the Pages project, with its own D1, R2
// bucket and Durable Objects. docs/deploy.md is the runbook;
// docs/decisions/0021-deploy.md says why it works this way.
//
//   npm run deploy [-- --dry-run]              # --env production
//   npm run deploy:preview [-- --dry-run]      # --env preview
//   node scripts/deploy.mjs --env production|preview [--dry-run] [--skip-build]
//        [--project-name caisey] [--production-branch main]
//
// Steps, each printed with what it did: check the configuration (offline),
// wrangler login, Pages project, D1 database (found or created; its id written
// into BOTH wrangler files' [env.<env>] sections, the one place ids live),
// R2 bucket, secrets, build, remote D1 migrations, runtime release to R2,
// session worker, Pages. Every step finds before it creates, so a re-run
// after a failure continues where it stopped. --dry-run checks the
// configuration and prints the plan without calling Cloudflare.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

export const ENVIRONMENTS = ["production", "preview"];
export const PLACEHOLDER_DATABASE_ID = "00000000-0000-0000-0000-000000000000";
/** Secrets each project needs before it may serve (names only; values never leave Cloudflare). */
export const PAGES_SECRETS = ["CLERK_SECRET_KEY", "CLERK_PUBLISHABLE_KEY", "CLERK_WEBHOOK_SIGNING_SECRET"];
export const SESSION_SECRETS = ["AUDIT_MAC_KEY"];
const MAIL_PROVIDERS = ["resend", "cloudflare"];
/** The preview deploy goes to this branch, so its URL is stable: https://preview.<project>.pages.dev */
export const PREVIEW_BRANCH = "preview";
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

class DeployError extends Error {}

/** Reads one environment of a wrangler file with wrangler's own parser (inheritance and validation included). */
function readEnvironment(configPath, env) {
  const { unstable_readConfig } = require("wrangler");
  const text = readFileSync(configPath, "utf8");
  if (!new RegExp(`^\\[env\\.${env}\\]`, "m").test(text)) {
    throw new DeployError(`${relative(root, configPath)} has no [env.${env}] section.`);
  }
  return unstable_readConfig({ config: configPath, env }, { hideWarnings: true });
}

/**
 * Everything that can be checked without Cloudflare. Returns { settings, problems, pending }:
 * problems refuse even a dry run (missing or contradictory configuration);
 * pending are values a real deploy fills in or refuses on (placeholders).
 */
export function checkConfiguration({ env, pagesConfig, sessionConfig, projectName }) {
  const problems = [];
  const pending = [];
  let pages;
  let session;
  try {
    pages = readEnvironment(pagesConfig, env);
    session = readEnvironment(sessionConfig, env);
  } catch (error) {
    return { settings: null, problems: [error.message], pending };
  }
  const where = (config) => `${relative(root, config)} [env.${env}]`;
  for (const [config, parsed] of [[pagesConfig, pages], [sessionConfig, session]]) {
    const vars = parsed.vars ?? {};
    if (vars.CAISEY_ENV !== env) problems.push(`${where(config)}: vars.CAISEY_ENV must be "${env}" (found ${JSON.stringify(vars.CAISEY_ENV)}).`);
    const origin = vars.PUBLIC_ORIGIN;
    if (!origin) problems.push(`${where(config)}: vars.PUBLIC_ORIGIN is not set (the console's https origin).`);
    else {
      let url = null;
      try {
        url = new URL(origin);
      } catch {
        problems.push(`${where(config)}: vars.PUBLIC_ORIGIN ${JSON.stringify(origin)} is not a URL.`);
      }
      if (url && (url.protocol !== "https:" || url.origin !== origin)) {
        problems.push(`${where(config)}: vars.PUBLIC_ORIGIN must be a bare https origin such as https://console.example.com (found ${JSON.stringify(origin)}).`);
      } else if (url && /\.example$/.test(url.hostname)) {
        pending.push(`${where(config)}: vars.PUBLIC_ORIGIN is the example ${origin}; set your console's origin (a real deploy refuses).`);
      }
    }
  }
  if (pages.vars?.PUBLIC_ORIGIN !== session.vars?.PUBLIC_ORIGIN) {
    problems.push(`PUBLIC_ORIGIN differs between the two wrangler files in [env.${env}] (${pages.vars?.PUBLIC_ORIGIN} vs ${session.vars?.PUBLIC_ORIGIN}).`);
  }

  const pagesDb = pages.d1_databases.find((d) => d.binding === "DB");
  const sessionDb = session.d1_databases.find((d) => d.binding === "DB");
  if (!pagesDb || !sessionDb) problems.push(`both wrangler files need a D1 binding "DB" in [env.${env}].`);
  else {
    if (pagesDb.database_name !== sessionDb.database_name) {
      problems.push(`[env.${env}] binds different D1 databases: ${pagesDb.database_name} (Pages) vs ${sessionDb.database_name} (session worker).`);
    }
    if (pagesDb.database_id !== sessionDb.database_id) {
      problems.push(`[env.${env}] D1 database_id differs between the wrangler files (${pagesDb.database_id} vs ${sessionDb.database_id}); run the deploy to write the real one into both.`);
    }
    if (!pagesDb.migrations_dir || resolve(dirname(pagesConfig), pagesDb.migrations_dir) !== resolve(dirname(sessionConfig), sessionDb.migrations_dir ?? "")) {
      problems.push(`[env.${env}] D1 migrations_dir must name the same directory in both wrangler files.`);
    }
  }
  for (const binding of pages.durable_objects.bindings) {
    if (binding.script_name !== session.name) {
      problems.push(`${where(pagesConfig)}: Durable Object ${binding.name} points at script ${binding.script_name}, but this environment's session worker is ${session.name}.`);
    }
  }
  const bucket = pages.r2_buckets.find((b) => b.binding === "RUNTIME_RELEASES")?.bucket_name;
  if (!bucket) problems.push(`${where(pagesConfig)}: no R2 bucket bound as RUNTIME_RELEASES.`);
  // The session worker's nightly archive of the D1 audit replica (docs/decisions/0029-retention.md).
  const auditArchive = (session.r2_buckets ?? []).find((b) => b.binding === "AUDIT_ARCHIVE")?.bucket_name;
  if (!auditArchive) problems.push(`${where(sessionConfig)}: no R2 bucket bound as AUDIT_ARCHIVE.`);
  else if (auditArchive === bucket) problems.push(`${where(sessionConfig)}: AUDIT_ARCHIVE must be its own bucket, not the runtime releases bucket ${bucket}.`);
  if (!session.observability?.enabled) problems.push(`${where(sessionConfig)}: [observability] enabled = true is missing (Workers Logs).`);

  const mailProvider = String(session.vars?.APPROVAL_MAIL_PROVIDER ?? "").trim().toLowerCase();
  const sessionSecrets = [...SESSION_SECRETS];
  if (!MAIL_PROVIDERS.includes(mailProvider)) {
    problems.push(`${where(sessionConfig)}: vars.APPROVAL_MAIL_PROVIDER must be one of ${MAIL_PROVIDERS.join(", ")} (found ${JSON.stringify(session.vars?.APPROVAL_MAIL_PROVIDER)}).`);
  } else if (mailProvider === "resend") sessionSecrets.push("RESEND_API_KEY");
  else if (!session.send_email?.some((b) => b.name === "EMAIL")) {
    problems.push(`${where(sessionConfig)}: APPROVAL_MAIL_PROVIDER is cloudflare but there is no [[env.${env}.send_email]] binding named EMAIL.`);
  }
  const mailFrom = String(session.vars?.APPROVAL_MAIL_FROM ?? "");
  if (!mailFrom) problems.push(`${where(sessionConfig)}: vars.APPROVAL_MAIL_FROM is not set (e.g. "Caisey approvals <approvals@your-domain>").`);
  else if (/@[^>]*\.example>?$/.test(mailFrom)) pending.push(`${where(sessionConfig)}: vars.APPROVAL_MAIL_FROM is the example ${mailFrom}; set a sender on your verified domain (a real deploy refuses).`);

  if (pagesDb && pagesDb.database_id === PLACEHOLDER_DATABASE_ID) {
    pending.push(`D1 database_id for ${pagesDb.database_name} is the placeholder; the deploy finds or creates the database and writes its id into both wrangler files.`);
  }
  return {
    problems,
    pending,
    settings: {
      env,
      projectName,
      pagesConfig,
      sessionConfig,
      database: pagesDb ? { name: pagesDb.database_name, id: pagesDb.database_id } : null,
      bucket,
      auditArchive,
      sessionWorker: session.name,
      publicOrigin: pages.vars?.PUBLIC_ORIGIN,
      mailProvider,
      pagesSecrets: PAGES_SECRETS,
      sessionSecrets,
    },
  };
}

/**
 * Writes the D1 id into the [env.<env>] section of a wrangler file (the entry
 * whose database_name matches), keeping every other byte. Returns true if it changed.
 */
export function writeDatabaseId(configPath, env, databaseName, databaseId) {
  const text = readFileSync(configPath, "utf8");
  const lines = text.split("\n");
  let section = null;
  let inEntry = false;
  let changed = false;
  let found = false;
  for (let i = 0; i < lines.length; i++) {
    const header = /^\s*\[\[?([^\]]+)\]\]?\s*$/.exec(lines[i]);
    if (header) {
      section = header[1].trim();
      inEntry = false;
      continue;
    }
    if (section !== `env.${env}.d1_databases`) continue;
    if (new RegExp(`^\\s*database_name\\s*=\\s*"${databaseName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`).test(lines[i])) inEntry = true;
    const idLine = /^(\s*database_id\s*=\s*)"([^"]*)"(.*)$/.exec(lines[i]);
    if (idLine && (inEntry || lines.slice(Math.max(0, i - 4), i + 4).some((l) => l.includes(`"${databaseName}"`)))) {
      found = true;
      if (idLine[2] !== databaseId) {
        lines[i] = `${idLine[1]}"${databaseId}"${idLine[3]}`;
        changed = true;
      }
    }
  }
  if (!found) throw new DeployError(`${relative(root, configPath)}: no database_id for ${databaseName} in [[env.${env}.d1_databases]].`);
  if (changed) writeFileSync(configPath, lines.join("\n"));
  return changed;
}

/** Parses wrangler output that should be JSON (it may be preceded by a banner). */
export function parseJsonOutput(stdout, what) {
  const start = stdout.search(/[[{]/);
  if (start === -1) throw new DeployError(`${what}: wrangler printed no JSON:\n${stdout.slice(0, 2000)}`);
  try {
    return JSON.parse(stdout.slice(start));
  } catch (error) {
    throw new DeployError(`${what}: could not parse wrangler's JSON (${error.message}):\n${stdout.slice(0, 2000)}`);
  }
}

/** `wrangler r2 bucket list` has no --json: it prints "name:  <bucket>" lines. */
export function parseBucketList(stdout) {
  return [...stdout.matchAll(/^name:\s+(\S+)\s*$/gm)].map((m) => m[1]);
}

/** `wrangler pages secret list` has no --json: it prints "  - NAME: Value Encrypted" lines. */
export function parsePagesSecretList(stdout) {
  return [...stdout.matchAll(/^\s+- ([A-Za-z_][A-Za-z0-9_]*): /gm)].map((m) => m[1]);
}

/** The steps of a deploy, in order: { title, commands (as printed), run (real deploy only) }. */
export function planDeploy(settings, { skipBuild, productionBranch }) {
  const { env, projectName, database, bucket, auditArchive, sessionWorker, pagesConfig, sessionConfig } = settings;
  const branch = env === "production" ? productionBranch : PREVIEW_BRANCH;
  const rel = (p) => relative(root, p) || ".";
  const pagesC = ["-c", rel(pagesConfig)];
  const sessionC = ["-c", rel(sessionConfig), "--env", env];
  return [
    {
      id: "auth",
      title: "Check the Cloudflare login",
      commands: [["wrangler", "whoami", "--json"]],
    },
    {
      id: "pages-project",
      title: `Find or create the Pages project ${projectName} (production branch ${productionBranch})`,
      commands: [["wrangler", "pages", "project", "list", "--json"], ["wrangler", "pages", "project", "create", projectName, "--production-branch", productionBranch, "(only if missing)"]],
    },
    {
      id: "d1",
      title: `Find or create the D1 database ${database.name}; write its id into [env.${env}] of ${rel(pagesConfig)} and ${rel(sessionConfig)}`,
      commands: [["wrangler", "d1", "list", "--json"], ["wrangler", "d1", "create", database.name, "(only if missing)"]],
    },
    {
      id: "r2",
      title: `Find or create the R2 buckets ${bucket} (runtime releases) and ${auditArchive} (audit archive)`,
      commands: [
        ["wrangler", "r2", "bucket", "list"],
        ["wrangler", "r2", "bucket", "create", bucket, "(only if missing)"],
        ["wrangler", "r2", "bucket", "create", auditArchive, "(only if missing)"],
      ],
    },
    {
      id: "secrets",
      title: `Check secrets: Pages ${env} (${settings.pagesSecrets.join(", ")}), worker ${sessionWorker} (${settings.sessionSecrets.join(", ")})`,
      commands: [["wrangler", "pages", "secret", "list", "--project-name", projectName, "--env", env], ["wrangler", "secret", "list", ...sessionC, "--format", "json"]],
    },
    ...(skipBuild
      ? []
      : [{ id: "build", title: "Build the console and the runtime executables", commands: [["npm", "run", "build"]] }]),
    {
      id: "migrations",
      title: `Apply D1 migrations to ${database.name} (remote; forward-only)`,
      commands: [["wrangler", "d1", "migrations", "apply", database.name, "--remote", "--env", env, ...pagesC]],
    },
    {
      id: "runtime",
      title: `Publish the runtime release to R2 bucket ${bucket}`,
      commands: [["node", "scripts/publish-runtime.mjs", "--remote", "--bucket", bucket]],
    },
    {
      id: "session-worker",
      title: `Deploy the session worker ${sessionWorker}`,
      commands: [["wrangler", "deploy", ...sessionC]],
    },
    {
      id: "pages",
      title: `Deploy the console to Pages ${projectName}, branch ${branch} (${env})`,
      commands: [["wrangler", "pages", "deploy", "public", "--project-name", projectName, "--branch", branch, "--commit-dirty=true"]],
    },
  ];
}

/** Runs wrangler (or `CAISEY_DEPLOY_WRANGLER`, a stand-in for Cloudflare in tests) and returns its output. */
function createRunner({ log, env = process.env }) {
  const wrangler = env.CAISEY_DEPLOY_WRANGLER ?? join(root, "node_modules", ".bin", "wrangler");
  const childEnv = { ...env, WRANGLER_SEND_METRICS: "false" };
  return {
    wrangler(args, { inherit = false, allowFailure = false } = {}) {
      log(`  $ wrangler ${args.join(" ")}`);
      const result = spawnSync(wrangler, args, {
        cwd: root,
        encoding: "utf8",
        env: childEnv,
        stdio: inherit ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"],
        maxBuffer: 256 * 1024 * 1024,
      });
      if (result.error) throw new DeployError(`could not run wrangler: ${result.error.message}`);
      if (result.status !== 0 && !allowFailure) {
        throw new DeployError(`wrangler ${args.join(" ")} failed (exit ${result.status})${inherit ? "" : `:\n${(result.stderr || "") + (result.stdout || "")}`}`);
      }
      return { status: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
    },
    command(file, args) {
      log(`  $ ${[file, ...args].join(" ")}`);
      const result = spawnSync(file, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"], env: childEnv });
      if (result.status !== 0) throw new DeployError(`${file} ${args.join(" ")} failed (exit ${result.status}).`);
    },
  };
}

async function runStep(step, settings, options, runner, log) {
  const { env, projectName, database, bucket, sessionWorker, pagesConfig, sessionConfig } = settings;
  switch (step.id) {
    case "auth": {
      const result = runner.wrangler(["whoami", "--json"], { allowFailure: true });
      if (result.status !== 0) throw new DeployError("not logged in to Cloudflare: run `npx wrangler login` (or set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID).");
      const who = parseJsonOutput(result.stdout, "wrangler whoami");
      const accounts = who.accounts ?? [];
      log(`  logged in${who.email ? ` as ${who.email}` : ""}; account${accounts.length === 1 ? "" : "s"}: ${accounts.map((a) => `${a.name} (${a.id})`).join(", ") || "?"}`);
      if (accounts.length > 1 && !process.env.CLOUDFLARE_ACCOUNT_ID) {
        throw new DeployError("this login reaches several accounts: set CLOUDFLARE_ACCOUNT_ID to the one to deploy to.");
      }
      return;
    }
    case "pages-project": {
      const projects = parseJsonOutput(runner.wrangler(["pages", "project", "list", "--json"]).stdout, "wrangler pages project list");
      const names = projects.map((p) => p["Project Name"] ?? p.name);
      if (names.includes(projectName)) log(`  found Pages project ${projectName}`);
      else {
        runner.wrangler(["pages", "project", "create", projectName, "--production-branch", options.productionBranch]);
        log(`  created Pages project ${projectName}`);
      }
      return;
    }
    case "d1": {
      const list = parseJsonOutput(runner.wrangler(["d1", "list", "--json"]).stdout, "wrangler d1 list");
      let id = list.find((db) => db.name === database.name)?.uuid;
      if (id) log(`  found D1 database ${database.name} (${id})`);
      else {
        const created = runner.wrangler(["d1", "create", database.name]);
        id = UUID.exec(created.stdout)?.[0];
        if (!id) throw new DeployError(`wrangler d1 create ${database.name} printed no database id:\n${created.stdout}`);
        log(`  created D1 database ${database.name} (${id})`);
      }
      for (const config of [pagesConfig, sessionConfig]) {
        const changed = writeDatabaseId(config, env, database.name, id);
        log(`  ${relative(root, config)} [env.${env}] database_id ${changed ? `written (${id}): commit this change` : "already up to date"}`);
      }
      database.id = id;
      return;
    }
    case "r2": {
      const buckets = parseBucketList(runner.wrangler(["r2", "bucket", "list"]).stdout);
      for (const name of [settings.bucket, settings.auditArchive]) {
        if (buckets.includes(name)) log(`  found R2 bucket ${name}`);
        else {
          runner.wrangler(["r2", "bucket", "create", name]);
          log(`  created R2 bucket ${name}`);
        }
      }
      return;
    }
    case "secrets": {
      const missing = [];
      const pagesSecrets = parsePagesSecretList(runner.wrangler(["pages", "secret", "list", "--project-name", projectName, "--env", env]).stdout);
      for (const name of settings.pagesSecrets) {
        if (!pagesSecrets.includes(name)) missing.push(`npx wrangler pages secret put ${name} --project-name ${projectName} --env ${env}`);
      }
      const listed = runner.wrangler(["secret", "list", "-c", relative(root, sessionConfig), "--env", env, "--format", "json"], { allowFailure: true });
      // Before the first deploy the worker does not exist yet: `wrangler secret put` creates it.
      const sessionSecrets = listed.status === 0 ? parseJsonOutput(listed.stdout, "wrangler secret list").map((s) => s.name) : [];
      for (const name of settings.sessionSecrets) {
        if (!sessionSecrets.includes(name)) missing.push(`npx wrangler secret put ${name} -c ${relative(root, sessionConfig)} --env ${env}`);
      }
      if (missing.length) throw new DeployError(`secrets are missing; set them (docs/deploy.md, "Secrets"), then run the deploy again:\n    ${missing.join("\n    ")}`);
      log(`  all ${settings.pagesSecrets.length + settings.sessionSecrets.length} secrets are set`);
      return;
    }
    case "build":
      runner.command("npm", ["run", "build"]);
      return;
    case "migrations":
      runner.wrangler(["d1", "migrations", "apply", database.name, "--remote", "--env", env, "-c", relative(root, pagesConfig)], { inherit: true });
      return;
    case "runtime":
      runner.command(process.execPath, [join(root, "scripts/publish-runtime.mjs"), "--remote", "--bucket", bucket, "--release", options.runtimeRelease]);
      return;
    case "session-worker":
      runner.wrangler(["deploy", "-c", relative(root, sessionConfig), "--env", env], { inherit: true });
      log(`  deployed ${sessionWorker}`);
      return;
    case "pages": {
      const branch = env === "production" ? options.productionBranch : PREVIEW_BRANCH;
      runner.wrangler(["pages", "deploy", "public", "--project-name", projectName, "--branch", branch, "--commit-dirty=true"], { inherit: true });
      return;
    }
    default:
      throw new DeployError(`unknown step ${step.id}`);
  }
}

const USAGE = "Usage: node scripts/deploy.mjs --env production|preview [--dry-run] [--skip-build] [--project-name caisey] [--production-branch main]";

export async function main(argv = process.argv.slice(2), { env = process.env, log = (m) => console.log(m), error = (m) => console.error(m) } = {}) {
  let options;
  try {
    ({ values: options } = parseArgs({
      args: argv,
      options: {
        env: { type: "string", default: "production" },
        "dry-run": { type: "boolean", default: false },
        "skip-build": { type: "boolean", default: false },
        "project-name": { type: "string", default: "caisey" },
        "production-branch": { type: "string", default: "main" },
        "runtime-release": { type: "string", default: join(root, ".cache", "runtime-release") },
        // Tests point these at edited copies; operators use the repository's files.
        "pages-config": { type: "string", default: join(root, "wrangler.toml") },
        "session-config": { type: "string", default: join(root, "workers/session/wrangler.toml") },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    error(`${e.message}\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    log(USAGE);
    return 0;
  }
  if (!ENVIRONMENTS.includes(options.env)) {
    error(`--env must be one of ${ENVIRONMENTS.join(", ")}.\n${USAGE}`);
    return 2;
  }
  const dryRun = options["dry-run"];
  const say = (m) => log(`[deploy] ${m}`);
  say(`${dryRun ? "DRY RUN: nothing is sent to Cloudflare. " : ""}Environment ${options.env}`);

  const { settings, problems, pending } = checkConfiguration({
    env: options.env,
    pagesConfig: resolve(options["pages-config"]),
    sessionConfig: resolve(options["session-config"]),
    projectName: options["project-name"],
  });
  if (problems.length) {
    error(`[deploy] refused: the configuration of ${options.env} is incomplete; nothing was changed.\n  - ${problems.join("\n  - ")}`);
    return 1;
  }
  say(`configuration ok: D1 ${settings.database.name}, R2 ${settings.bucket} and ${settings.auditArchive}, session worker ${settings.sessionWorker}, console ${settings.publicOrigin}, mail ${settings.mailProvider}`);
  const placeholders = pending.filter((p) => !p.startsWith("D1 database_id"));
  if (pending.length) {
    for (const p of pending) say(`${dryRun ? "to do" : "note"}: ${p}`);
  }
  if (!dryRun && placeholders.length) {
    error("[deploy] refused: replace the example values above with your own; nothing was changed.");
    return 1;
  }

  const steps = planDeploy(settings, { skipBuild: options["skip-build"], productionBranch: options["production-branch"] });
  if (dryRun) {
    steps.forEach((step, i) => {
      say(`step ${i + 1}/${steps.length}: ${step.title}`);
      for (const command of step.commands) say(`    would run: ${command.join(" ")}`);
    });
    say(`dry run complete: ${steps.length} steps planned; a real run stops at the first failing step, and a re-run continues safely.`);
    return 0;
  }
  const runner = createRunner({ log: say, env });
  for (const [i, step] of steps.entries()) {
    say(`step ${i + 1}/${steps.length}: ${step.title}`);
    try {
      await runStep(step, settings, { productionBranch: options["production-branch"], runtimeRelease: resolve(options["runtime-release"]) }, runner, say);
    } catch (e) {
      if (!(e instanceof DeployError)) throw e;
      error(`[deploy] step ${i + 1} (${step.id}) failed: ${e.message}\n[deploy] earlier steps are done and stay done; fix this and run the deploy again.`);
      return 1;
    }
  }
  say(`deployed ${options.env}: ${settings.publicOrigin}`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
