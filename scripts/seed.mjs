// Demo data for local development and tests: one MSP with four clients and
// ~50 endpoints, three members (one per role), approval policies for two of
// the clients, and a second MSP whose data must never be visible to the first.
// Idempotent (INSERT OR IGNORE).
import { createHash } from "node:crypto";

export const DEMO_ORG = { id: "org_demo_northwind", name: "Northwind MSP", slug: "northwind" };
export const OTHER_ORG = { id: "org_demo_contoso", name: "Contoso IT", slug: "contoso" };

export const DEMO_MEMBERS = [
  { orgId: DEMO_ORG.id, userId: "user_demo_admin", name: "Ada Admin", email: "ada@northwind.test", role: "admin" },
  { orgId: DEMO_ORG.id, userId: "user_demo_tech", name: "Tom Technician", email: "tom@northwind.test", role: "technician" },
  { orgId: DEMO_ORG.id, userId: "user_demo_noc", name: "Nora NOC", email: "nora@northwind.test", role: "noc" },
  { orgId: OTHER_ORG.id, userId: "user_other_admin", name: "Carl Contoso", email: "carl@contoso.test", role: "admin" },
];

export const DEMO_CLIENTS = [
  { id: "cl_acme", orgId: DEMO_ORG.id, name: "Acme Manufacturing", contactName: "Priya Patel", contactEmail: "priya@acme.test", timeZone: "America/Chicago" },
  { id: "cl_bayside", orgId: DEMO_ORG.id, name: "Bayside Dental", contactName: "Leo Grant", contactEmail: "leo@bayside.test", timeZone: "Australia/Sydney" },
  { id: "cl_cobalt", orgId: DEMO_ORG.id, name: "Cobalt Logistics", contactName: "Mia Chen", contactEmail: "mia@cobalt.test", timeZone: "Europe/Berlin" },
  { id: "cl_delta", orgId: DEMO_ORG.id, name: "Delta Legal", contactName: "Sam Ortiz", contactEmail: "sam@delta.test", timeZone: "America/New_York" },
  { id: "cl_other_fabrikam", orgId: OTHER_ORG.id, name: "Fabrikam Foods", contactName: "Eve Stone", contactEmail: "eve@fabrikam.test", timeZone: "UTC" },
];

/**
 * Explicit policies; the other clients have no row and get the defaults
 * (allow-list, nothing listed: every command asks). Kept in step with
 * DEFAULT_APPROVAL_PATTERNS in protocol/approvals.ts (plain JS here: the seed
 * runs under node without a TypeScript loader).
 */
const DEFAULT_PATTERNS = [
  "\\bRestart-Computer\\b",
  "\\bStop-Computer\\b",
  "\\bnet\\s+user\\b",
  "\\bnet\\s+localgroup\\b",
  "\\breg\\s+(add|delete)\\b",
  "\\bshutdown\\b",
  "\\breboot\\b",
  "\\bsudo\\b",
];
export const DEMO_POLICIES = [
  // The demo runtime's and the e2e specs' client: the advisory deny-list, so
  // ordinary commands (echo …) run at once and only the listed patterns ask.
  {
    clientId: "cl_acme",
    orgId: DEMO_ORG.id,
    mode: "denylist",
    allowedCommands: [],
    patterns: DEFAULT_PATTERNS,
    approvers: [{ name: "Priya Patel", email: "priya@acme.test" }],
    linkTtlHours: 24,
  },
  // What we recommend: a few read-only diagnostics run at once; everything else asks.
  {
    clientId: "cl_bayside",
    orgId: DEMO_ORG.id,
    mode: "allowlist",
    allowedCommands: ["hostname", "whoami", "ipconfig /all", "Get-Service", "uptime", "df -h"],
    patterns: DEFAULT_PATTERNS,
    approvers: [{ name: "Leo Grant", email: "leo@bayside.test" }],
    linkTtlHours: 24,
  },
];

/** The endpoint another tenant owns; tests request it as the demo tenant and expect 404. */
export const FOREIGN_ENDPOINT_ID = "ep_other_fab_01";

/** A known enrollment token for the demo runtime that `npm run dev` starts. */
export const DEMO_RUNTIME_TOKEN = "cae_local-demo-runtime-token-not-secret";

const TAGS = ["line-1", "line-2", "front-desk", "warehouse", "servers", "laptops", "kiosk"];
const REGIONS = ["eu-west", "us-east", "ap-south"];
/** Where each demo endpoint's session was placed, as if its runtime's first contact came through that colo. */
const PLACEMENTS = [
  { location_hint: "weur", runtime_colo: "AMS" },
  { location_hint: "enam", runtime_colo: "DFW" },
  { location_hint: "oc", runtime_colo: "SYD" },
];
const OS = [
  ["windows", "11 23H2"],
  ["windows", "Server 2022"],
  ["linux", "Ubuntu 24.04"],
  ["linux", "Debian 12"],
  ["macos", "14.5"],
];

function q(value) {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "1" : "0";
  return `'${String(value).replace(/'/g, "''")}'`;
}

function insert(table, row) {
  const columns = Object.keys(row);
  return `INSERT OR IGNORE INTO ${table} (${columns.join(", ")}) VALUES (${columns.map((c) => q(row[c])).join(", ")});`;
}

export function sha256Hex(value) {
  return createHash("sha256").update(value).digest("hex");
}

/** Deterministic endpoint rows: the same seed gives the same fleet every time. */
export function demoEndpoints(now = Date.now()) {
  const prefixes = { cl_acme: "acme", cl_bayside: "bay", cl_cobalt: "cob", cl_delta: "dlt" };
  const rows = [];
  let n = 0;
  for (const client of DEMO_CLIENTS.filter((c) => c.orgId === DEMO_ORG.id)) {
    for (let i = 1; i <= 12; i++, n++) {
      const [os, osVersion] = OS[n % OS.length];
      const kind = os === "windows" ? (osVersion.startsWith("Server") ? "srv" : "pc") : os === "linux" ? "lnx" : "mac";
      rows.push({
        id: `ep_${prefixes[client.id]}_${String(i).padStart(2, "0")}`,
        org_id: DEMO_ORG.id,
        client_id: client.id,
        hostname: `${prefixes[client.id]}-${kind}-${String(i).padStart(2, "0")}`,
        os,
        os_version: osVersion,
        region: REGIONS[n % REGIONS.length],
        ...PLACEMENTS[n % PLACEMENTS.length],
        placed_at: now - 90 * 86_400_000,
        online: 0,
        last_seen_at: now - ((n * 7919) % (36 * 3600)) * 1000,
        enrolled_at: now - 90 * 86_400_000,
        tags: [TAGS[n % TAGS.length], TAGS[(n * 3 + 1) % TAGS.length]].filter((t, idx, all) => all.indexOf(t) === idx),
      });
    }
  }
  rows.push({
    id: FOREIGN_ENDPOINT_ID,
    org_id: OTHER_ORG.id,
    client_id: "cl_other_fabrikam",
    hostname: "fab-pc-01",
    os: "windows",
    os_version: "11 23H2",
    region: "eu-west",
    location_hint: "weur",
    runtime_colo: "FRA",
    placed_at: now - 30 * 86_400_000,
    online: 0,
    last_seen_at: now - 3600_000,
    enrolled_at: now - 30 * 86_400_000,
    tags: ["kiosk"],
  });
  return rows;
}

export function seedSql(now = Date.now()) {
  const lines = [];
  for (const org of [DEMO_ORG, OTHER_ORG]) lines.push(insert("organisations", { id: org.id, name: org.name, slug: org.slug, created_at: now }));
  for (const m of DEMO_MEMBERS) {
    lines.push(insert("members", { org_id: m.orgId, user_id: m.userId, name: m.name, email: m.email, role: m.role, created_at: now }));
  }
  for (const c of DEMO_CLIENTS) {
    lines.push(
      insert("clients", { id: c.id, org_id: c.orgId, name: c.name, contact_name: c.contactName, contact_email: c.contactEmail, time_zone: c.timeZone, created_at: now }),
    );
  }
  for (const p of DEMO_POLICIES) {
    lines.push(
      insert("approval_policies", {
        client_id: p.clientId,
        org_id: p.orgId,
        mode: p.mode,
        allowed_commands: JSON.stringify(p.allowedCommands),
        patterns: JSON.stringify(p.patterns),
        approvers: JSON.stringify(p.approvers),
        link_ttl_hours: p.linkTtlHours,
        updated_by: "seed",
        updated_at: now,
      }),
    );
  }
  for (const org of [DEMO_ORG, OTHER_ORG]) {
    for (const tag of TAGS) lines.push(insert("tags", { id: `tag_${org.slug}_${tag}`, org_id: org.id, name: tag }));
  }
  for (const { tags, ...endpoint } of demoEndpoints(now)) {
    lines.push(insert("endpoints", endpoint));
    const slug = endpoint.org_id === DEMO_ORG.id ? DEMO_ORG.slug : OTHER_ORG.slug;
    for (const tag of tags) lines.push(insert("endpoint_tags", { endpoint_id: endpoint.id, tag_id: `tag_${slug}_${tag}` }));
  }
  lines.push(
    insert("enrollment_tokens", {
      id: "et_demo_runtime",
      org_id: DEMO_ORG.id,
      client_id: "cl_acme",
      token_hash: sha256Hex(DEMO_RUNTIME_TOKEN),
      label: "Demo runtime (npm run dev)",
      created_by: "seed",
      created_at: now,
      expires_at: now + 3650 * 86_400_000,
      max_uses: 1000,
      uses: 0,
    }),
  );
  return lines.join("\n") + "\n";
}
