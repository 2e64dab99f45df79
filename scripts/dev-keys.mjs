#!/usr/bin/env node
// Offline auth configuration for local development and CI
// (docs/decisions/0002-auth.md): a locally generated RSA-2048 key pair whose
// public half is CLERK_JWT_KEY (networkless Clerk verification) and whose
// private half mints offline session tokens.
//
//   node scripts/dev-keys.mjs [path/to/.dev.vars]
//   (without a path it also writes workers/session/.dev.vars for port 8788)
//
// The session worker (workers/session/wrangler.toml, the second config of
// `wrangler pages dev`) reads its own workers/session/.dev.vars, next to its
// config, not the root one: ensureSessionDevVars writes that file.
//
// .dev.vars is read by wrangler with dotenv.parse: PEMs are written on one line
// inside double quotes with "\n" escapes, which dotenv turns back into newlines.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** pk_live_ + base64("clerk.offline.invalid$"): a Frontend API host that can never resolve. */
export const OFFLINE_PUBLISHABLE_KEY = `pk_live_${Buffer.from("clerk.offline.invalid$").toString("base64")}`;
/** Unused with CLERK_JWT_KEY set, but @clerk/remix insists on a non-empty secret key. */
export const OFFLINE_SECRET_KEY = "sk_offline_unused";
/** Same-origin handshake stand-in (app/routes/offline.clerk.v1.client.handshake.tsx); @clerk/remix resolves it against the request. */
export const OFFLINE_PROXY_URL = "/offline/clerk";

const OFFLINE_COMMENT_PREFIX = "# Offline auth (local development only;";

const OFFLINE_KEYS = [
  "CLERK_PUBLISHABLE_KEY",
  "CLERK_SECRET_KEY",
  "CLERK_JWT_KEY",
  "CLERK_PROXY_URL",
  "CAISEY_OFFLINE_AUTH",
  "CAISEY_OFFLINE_SIGNING_KEY",
];

/** @returns {{ publicKeyPem: string, privateKeyPem: string }} */
export function generateOfflineKeyPair() {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicExponent: 65537,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

/** @type {{ publicKeyPem: string, privateKeyPem: string } | undefined} */
let processKeyPair;

/**
 * The offline auth variables as plain strings (e.g. for miniflare bindings).
 * Without a private key, one key pair is generated per process and reused.
 *
 * @param {{ privateKeyPem?: string }} [options]
 * @returns {{ CLERK_PUBLISHABLE_KEY: string, CLERK_SECRET_KEY: string, CLERK_JWT_KEY: string, CLERK_PROXY_URL: string, CAISEY_OFFLINE_AUTH: string, CAISEY_OFFLINE_SIGNING_KEY: string }}
 */
export function offlineAuthVars(options = {}) {
  let pair;
  if (options.privateKeyPem) {
    const publicKeyPem = createPublicKey(createPrivateKey(options.privateKeyPem)).export({ type: "spki", format: "pem" }).toString();
    pair = { publicKeyPem, privateKeyPem: options.privateKeyPem };
  } else {
    processKeyPair ??= generateOfflineKeyPair();
    pair = processKeyPair;
  }
  return varsFromPair(pair);
}

/**
 * Makes sure `path` (default .dev.vars) carries a consistent offline auth
 * configuration, generating a key pair if needed. Unrelated lines are kept.
 * A file that sets CAISEY_OFFLINE_AUTH to anything but "1" (someone using real
 * Clerk keys locally) is left alone: set PUBLIC_ORIGIN there by hand.
 *
 * With `origin`, PUBLIC_ORIGIN follows it (the console accepts state-changing
 * requests from it and builds links from it; app/lib/public-origin.server.ts).
 *
 * @param {string} [path]
 * @param {{ origin?: string }} [options]
 * @returns {{ path: string, changed: boolean, reason: string }}
 */
export function ensureDevVars(path = ".dev.vars", options = {}) {
  const file = resolve(path);
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const current = parseDotenv(text);

  if (current.CAISEY_OFFLINE_AUTH !== undefined && current.CAISEY_OFFLINE_AUTH !== "1") {
    return { path: file, changed: false, reason: "CAISEY_OFFLINE_AUTH is set to something other than 1; left unchanged" };
  }
  const privateKeyPem = current.CAISEY_OFFLINE_SIGNING_KEY;
  if (privateKeyPem && isConsistent(current)) {
    const originChanged = options.origin && current.PUBLIC_ORIGIN !== new URL(options.origin).origin;
    if (originChanged || !current.CLERK_WEBHOOK_SIGNING_SECRET) {
      writeFileSync(file, withWebhookSecret(originChanged ? withPublicOrigin(text, options.origin) : text), { mode: 0o600 });
      return { path: file, changed: true, reason: originChanged ? "PUBLIC_ORIGIN updated" : "webhook signing secret added" };
    }
    return { path: file, changed: false, reason: "offline auth variables already present" };
  }

  let reuse;
  try {
    reuse = privateKeyPem ? offlineAuthVars({ privateKeyPem }) : undefined;
  } catch {
    reuse = undefined; // unreadable private key: start over
  }
  const vars = reuse ?? varsFromPair(generateOfflineKeyPair());
  const reason = !text ? "created" : reuse ? "offline auth variables repaired" : "offline auth variables generated";
  const kept = stripKeys(text, OFFLINE_KEYS).replace(/\s*$/, "");
  const block = [
    `${OFFLINE_COMMENT_PREFIX} docs/decisions/0002-auth.md). Generated by scripts/dev-keys.mjs.`,
    ...OFFLINE_KEYS.map((key) => `${key}=${quote(vars[key])}`),
  ].join("\n");
  const next = `${kept ? `${kept}\n\n` : ""}${block}\n`;
  writeFileSync(file, withWebhookSecret(options.origin ? withPublicOrigin(next, options.origin) : next), { mode: 0o600 });
  return { path: file, changed: true, reason };
}

const WEBHOOK_COMMENT_PREFIX = "# Clerk webhook signing secret (local development only;";

/**
 * `text` with a CLERK_WEBHOOK_SIGNING_SECRET (kept when present): local webhooks are verified exactly as in
 * production, so a developer (or an e2e test) signs Clerk-shaped events with it (standardwebhooks).
 *
 * @param {string} text
 */
function withWebhookSecret(text) {
  if (parseDotenv(text).CLERK_WEBHOOK_SIGNING_SECRET) return text;
  const block = [`${WEBHOOK_COMMENT_PREFIX} sign test events with it). Written by scripts/dev-keys.mjs.`, `CLERK_WEBHOOK_SIGNING_SECRET=${quote(`whsec_${randomBytes(32).toString("base64")}`)}`].join("\n");
  return `${text.replace(/\s*$/, "")}\n\n${block}\n`;
}

const PUBLIC_ORIGIN_COMMENT_PREFIX = "# Public origin (local development only;";

/**
 * `text` with exactly one PUBLIC_ORIGIN line, set to `origin`.
 *
 * @param {string} text
 * @param {string} origin
 */
function withPublicOrigin(text, origin) {
  const kept = stripKeys(text, ["PUBLIC_ORIGIN"], PUBLIC_ORIGIN_COMMENT_PREFIX).replace(/\s*$/, "");
  const block = [
    `${PUBLIC_ORIGIN_COMMENT_PREFIX} follows the dev server's port). Written by scripts/dev-keys.mjs.`,
    `PUBLIC_ORIGIN=${quote(new URL(origin).origin)}`,
  ].join("\n");
  return `${kept ? `${kept}\n\n` : ""}${block}\n`;
}

/** @param {{ publicKeyPem: string, privateKeyPem: string }} pair */
function varsFromPair(pair) {
  return {
    CLERK_PUBLISHABLE_KEY: OFFLINE_PUBLISHABLE_KEY,
    CLERK_SECRET_KEY: OFFLINE_SECRET_KEY,
    CLERK_JWT_KEY: pair.publicKeyPem,
    CLERK_PROXY_URL: OFFLINE_PROXY_URL,
    CAISEY_OFFLINE_AUTH: "1",
    CAISEY_OFFLINE_SIGNING_KEY: pair.privateKeyPem,
  };
}

/** @param {Record<string, string>} vars */
function isConsistent(vars) {
  try {
    const expected = offlineAuthVars({ privateKeyPem: vars.CAISEY_OFFLINE_SIGNING_KEY });
    return (
      vars.CAISEY_OFFLINE_AUTH === "1" &&
      vars.CLERK_PUBLISHABLE_KEY === expected.CLERK_PUBLISHABLE_KEY &&
      !!vars.CLERK_SECRET_KEY &&
      !!vars.CLERK_PROXY_URL &&
      normalisePem(vars.CLERK_JWT_KEY) === normalisePem(expected.CLERK_JWT_KEY)
    );
  } catch {
    return false;
  }
}

/** @param {string | undefined} pem */
function normalisePem(pem) {
  return (pem ?? "").replace(/\s+/g, "");
}

/** A dotenv double-quoted value: newlines become \n escapes (dotenv.parse expands them back). */
function quote(value) {
  if (/["\\]/.test(value)) throw new Error("dev-keys: refusing to write a value containing quotes or backslashes");
  return `"${value.replace(/\r?\n/g, "\\n")}"`;
}

/**
 * Removes KEY=... entries (including multi-line quoted values) for the given
 * keys, plus this script's own comment line, keeping everything else verbatim.
 *
 * @param {string} text
 * @param {string[]} keys
 * @param {string} [commentPrefix]
 */
function stripKeys(text, keys, commentPrefix = OFFLINE_COMMENT_PREFIX) {
  const lines = text.split(/\r?\n/);
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith(commentPrefix)) continue;
    const match = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*)$/.exec(line);
    if (!match || !keys.includes(match[1])) {
      out.push(line);
      continue;
    }
    const value = match[2];
    const q = value[0];
    if ((q === '"' || q === "'" || q === "`") && !closesOnSameLine(value, q)) {
      // Skip a multi-line quoted value up to its closing quote.
      while (i + 1 < lines.length) {
        i++;
        if (new RegExp(`${q}\\s*(#.*)?$`).test(lines[i])) break;
      }
    }
  }
  return out.join("\n");
}

function closesOnSameLine(value, q) {
  return new RegExp(`^${q}.*${q}\\s*(#.*)?$`).test(value);
}

// ---------------------------------------------------------------------------
// Session worker variables (workers/session/.dev.vars)

const SESSION_COMMENT_PREFIX = "# Session worker, local development only;";
const SESSION_KEYS = ["CAISEY_OFFLINE_AUTH", "APPROVAL_MAIL_PROVIDER", "APPROVAL_MAIL_FROM", "PUBLIC_ORIGIN", "AUDIT_MAC_KEY"];
export const DEV_APPROVAL_MAIL_FROM = "Caisey approvals <approvals@caisey.test>";
export const SESSION_DEV_VARS_PATH = "workers/session/.dev.vars";

/**
 * Makes sure the session worker's .dev.vars has what local dev needs: offline
 * mode, the capture mailbox (read at /dev/mailbox), the dev origin approval
 * links are built from, and an audit MAC key generated once and then kept, so
 * checkpoints written in earlier runs still verify. A provider or sender set
 * by hand (say, to try Resend locally) is kept; PUBLIC_ORIGIN always follows
 * the port. A file with CAISEY_OFFLINE_AUTH set to anything but 1 is left alone.
 * Rewrites the file only when something changed.
 *
 * @param {string} path
 * @param {{ origin: string }} options
 * @returns {{ path: string, changed: boolean, reason: string }}
 */
export function ensureSessionDevVars(path, options) {
  const file = resolve(path);
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const current = parseDotenv(text);
  if (current.CAISEY_OFFLINE_AUTH !== undefined && current.CAISEY_OFFLINE_AUTH !== "1") {
    return { path: file, changed: false, reason: "CAISEY_OFFLINE_AUTH is set to something other than 1; left unchanged" };
  }
  const origin = new URL(options.origin).origin;
  const vars = {
    CAISEY_OFFLINE_AUTH: "1",
    APPROVAL_MAIL_PROVIDER: current.APPROVAL_MAIL_PROVIDER || "capture",
    APPROVAL_MAIL_FROM: current.APPROVAL_MAIL_FROM || DEV_APPROVAL_MAIL_FROM,
    PUBLIC_ORIGIN: origin,
    AUDIT_MAC_KEY: /^[0-9a-f]{64,}$/i.test(current.AUDIT_MAC_KEY ?? "") ? current.AUDIT_MAC_KEY : randomBytes(32).toString("hex"),
  };
  const kept = stripKeys(text, SESSION_KEYS, SESSION_COMMENT_PREFIX).replace(/\s*$/, "");
  const lines = [
    `${SESSION_COMMENT_PREFIX} written by scripts/dev-keys.mjs (npm run dev). Never use these values in production.`,
    ...SESSION_KEYS.map((key) => `${key}=${quote(vars[key])}`),
  ];
  const next = `${kept ? `${kept}\n\n` : ""}${lines.join("\n")}\n`;
  if (next === text) return { path: file, changed: false, reason: "session worker variables already present" };
  writeFileSync(file, next, { mode: 0o600 });
  return { path: file, changed: true, reason: text ? "session worker variables updated" : "created" };
}

/**
 * Parses dotenv text the way wrangler reads .dev.vars (dotenv.parse), without
 * depending on the dotenv package being resolvable from here.
 *
 * @param {string} text
 * @returns {Record<string, string>}
 */
export function parseDotenv(text) {
  // Same expression as dotenv 16 (lib/main.js).
  const LINE = /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/gm;
  /** @type {Record<string, string>} */
  const result = {};
  const lines = text.replace(/\r\n?/gm, "\n");
  let match;
  while ((match = LINE.exec(lines)) != null) {
    const key = match[1];
    let value = (match[2] || "").trim();
    const maybeQuote = value[0];
    value = value.replace(/^(['"`])([\s\S]*)\1$/gm, "$2");
    if (maybeQuote === '"') value = value.replace(/\\n/g, "\n").replace(/\\r/g, "\r");
    result[key] = value;
  }
  return result;
}

const invokedDirectly = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const result = ensureDevVars(process.argv[2] ?? ".dev.vars", process.argv[2] ? {} : { origin: "http://127.0.0.1:8788" });
  console.log(`[dev-keys] ${result.path}: ${result.reason}`);
  if (!process.argv[2]) {
    const session = ensureSessionDevVars(SESSION_DEV_VARS_PATH, { origin: "http://127.0.0.1:8788" });
    console.log(`[dev-keys] ${session.path}: ${session.reason}`);
  }
}
