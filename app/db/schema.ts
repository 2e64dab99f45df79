// D1 schema for the tenant directory. Migrations in /migrations are generated
// from this file with `npm run db:generate`; never edit them by hand.
import { sql } from "drizzle-orm";
import {
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

import { JURISDICTIONS, LOCATION_HINTS } from "@protocol/location-hints";

const now = sql`(unixepoch('subsec') * 1000)`;

export const ROLES = ["admin", "technician", "noc"] as const;
export type Role = (typeof ROLES)[number];

export const OPERATING_SYSTEMS = ["windows", "linux", "macos"] as const;
export type OperatingSystem = (typeof OPERATING_SYSTEMS)[number];

/** An MSP tenant; `id` is the Clerk organisation id. */
export const organisations = sqliteTable("organisations", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  slug: text("slug").notNull().unique(),
  createdAt: integer("created_at").notNull().default(now),
  /** Sessions of endpoints enrolled while this is set live only in that jurisdiction (e.g. "eu"). */
  requiredJurisdiction: text("required_jurisdiction", { enum: JURISDICTIONS }),
  /** The runtime version an admin wants on every endpoint of the tenant (null: no updates offered). */
  runtimeTargetVersion: text("runtime_target_version"),
  /** JSON RuntimeTarget (protocol/session-contract.ts): version, downgrade consent and per-platform artifacts. */
  runtimeTarget: text("runtime_target"),
  /** Days sessions keep transcripts, output and audit rows, and D1 keeps audit events before archiving them (ADR 0029). */
  retentionDays: integer("retention_days").notNull().default(90),
  retentionUpdatedBy: text("retention_updated_by"),
  retentionUpdatedAt: integer("retention_updated_at"),
});

export const members = sqliteTable(
  "members",
  {
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    userId: text("user_id").notNull(),
    name: text("name").notNull(),
    email: text("email").notNull(),
    role: text("role", { enum: ROLES }).notNull(),
    createdAt: integer("created_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId] }), index("members_user_idx").on(t.userId)],
);

/**
 * Members Clerk removed from an organisation, and when. Just-in-time
 * provisioning refuses a session token issued before the removal.
 */
export const memberRemovals = sqliteTable(
  "member_removals",
  {
    orgId: text("org_id").notNull(),
    userId: text("user_id").notNull(),
    removedAt: integer("removed_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId] })],
);

export const clients = sqliteTable(
  "clients",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    contactName: text("contact_name"),
    contactEmail: text("contact_email"),
    /** IANA zone the client's people live in: approval pages show times in it. */
    timeZone: text("time_zone").notNull().default("UTC"),
    createdAt: integer("created_at").notNull().default(now),
    /** The MSP's own notes about the client (never shown to the client). */
    notes: text("notes").notNull().default(""),
    /** Archived: hidden from default lists, no new enrollments; endpoints stay readable and keep running. */
    archivedAt: integer("archived_at"),
    archivedBy: text("archived_by"),
  },
  (t) => [uniqueIndex("clients_org_name_idx").on(t.orgId, t.name)],
);

/** Free-form labels (site, department, line) used to group and filter endpoints. */
export const tags = sqliteTable(
  "tags",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
  },
  (t) => [uniqueIndex("tags_org_name_idx").on(t.orgId, t.name)],
);

export const endpoints = sqliteTable(
  "endpoints",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    hostname: text("hostname").notNull(),
    /** An admin's name for the endpoint ("Reception PC"); the hostname stays what the runtime reports. */
    displayName: text("display_name"),
    os: text("os", { enum: OPERATING_SYSTEMS }).notNull(),
    osVersion: text("os_version").notNull().default(""),
    region: text("region").notNull().default(""),
    online: integer("online", { mode: "boolean" }).notNull().default(false),
    lastSeenAt: integer("last_seen_at"),
    enrolledAt: integer("enrolled_at").notNull().default(now),
    /** SHA-256 of the runtime's bearer credential; the credential itself is never stored. */
    credentialHash: text("credential_hash"),
    /**
     * When an admin revoked the runtime's credential (the hash is cleared in the
     * same statement); null again once a runtime re-enrolls with a bound token.
     */
    revokedAt: integer("revoked_at"),
    /** When the endpoint was decommissioned: revoked for good, kept (never deleted) so its transcript and audit stay readable. */
    decommissionedAt: integer("decommissioned_at"),
    /** Placement of the session (protocol/placement.ts): fixed when the runtime's first contact created it. */
    locationHint: text("location_hint", { enum: LOCATION_HINTS }),
    jurisdiction: text("jurisdiction", { enum: JURISDICTIONS }),
    /** Null until the runtime's first contact created the session; viewers and approvals never create it. */
    placedAt: integer("placed_at"),
    /** The Cloudflare data centre the runtime last connected through. */
    runtimeColo: text("runtime_colo"),
    /** As the runtime last reported it in `hello` / check-in (replicated by its session). */
    runtimeVersion: text("runtime_version"),
    runtimePlatform: text("runtime_platform"),
    /** JSON {version, phase, detail, at} of the latest update step the session recorded. */
    runtimeUpdate: text("runtime_update"),
  },
  (t) => [
    index("endpoints_org_hostname_idx").on(t.orgId, t.hostname, t.id),
    index("endpoints_org_client_hostname_idx").on(t.orgId, t.clientId, t.hostname, t.id),
    index("endpoints_org_online_hostname_idx").on(t.orgId, t.online, t.hostname, t.id),
    index("endpoints_org_os_hostname_idx").on(t.orgId, t.os, t.hostname, t.id),
    uniqueIndex("endpoints_credential_idx").on(t.credentialHash),
  ],
);

export const endpointTags = sqliteTable(
  "endpoint_tags",
  {
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => endpoints.id, { onDelete: "cascade" }),
    tagId: text("tag_id")
      .notNull()
      .references(() => tags.id, { onDelete: "cascade" }),
  },
  (t) => [primaryKey({ columns: [t.endpointId, t.tagId] }), index("endpoint_tags_tag_idx").on(t.tagId, t.endpointId)],
);

export const enrollmentTokens = sqliteTable(
  "enrollment_tokens",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    /** SHA-256 of the token; the token is shown once at creation and never stored. */
    tokenHash: text("token_hash").notNull().unique(),
    label: text("label").notNull().default(""),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull().default(now),
    expiresAt: integer("expires_at").notNull(),
    maxUses: integer("max_uses").notNull(),
    uses: integer("uses").notNull().default(0),
    revokedAt: integer("revoked_at"),
    /**
     * Set for a re-enrollment token (credential rotation): redeeming it gives
     * this existing endpoint a new credential instead of creating an endpoint.
     */
    endpointId: text("endpoint_id").references(() => endpoints.id), // no ON DELETE: endpoints are decommissioned, never deleted
  },
  (t) => [
    index("enrollment_tokens_client_idx").on(t.orgId, t.clientId, t.createdAt),
    index("enrollment_tokens_endpoint_idx").on(t.endpointId),
  ],
);

export type Organisation = typeof organisations.$inferSelect;
export type Member = typeof members.$inferSelect;
export type Client = typeof clients.$inferSelect;
export type Endpoint = typeof endpoints.$inferSelect;
export type EnrollmentToken = typeof enrollmentTokens.$inferSelect;

/**
 * Replica of every endpoint's audit chain (see protocol/audit.ts), written in
 * batches by the endpoint's Durable Object. (endpoint_id, seq) is the primary
 * key, so a retried batch inserts each event once.
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    endpointId: text("endpoint_id").notNull(),
    seq: integer("seq").notNull(),
    orgId: text("org_id").notNull(),
    at: integer("at").notNull(),
    kind: text("kind").notNull(),
    actorId: text("actor_id"),
    actorName: text("actor_name"),
    actorAddress: text("actor_address"),
    commandId: text("command_id"),
    status: text("status"),
    detail: text("detail").notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.endpointId, t.seq] }),
    index("audit_events_org_at_idx").on(t.orgId, t.at),
    index("audit_events_org_kind_at_idx").on(t.orgId, t.kind, t.at),
    index("audit_events_command_idx").on(t.commandId),
  ],
);

/** A NOC reviewer's "seen it" mark on one audit event. */
export const auditReviews = sqliteTable(
  "audit_reviews",
  {
    orgId: text("org_id").notNull(),
    userId: text("user_id").notNull(),
    endpointId: text("endpoint_id").notNull(),
    seq: integer("seq").notNull(),
    reviewedAt: integer("reviewed_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId, t.endpointId, t.seq] })],
);

export type AuditEventRow = typeof auditEvents.$inferSelect;

/**
 * Which commands on a client's endpoints need the client's consent. A missing
 * row means the defaults in protocol/approvals.ts.
 */
export const approvalPolicies = sqliteTable("approval_policies", {
  clientId: text("client_id")
    .primaryKey()
    .references(() => clients.id, { onDelete: "cascade" }),
  orgId: text("org_id").notNull(),
  /**
   * "allowlist": only the exact commands in allowed_commands run without approval (the default);
   * "denylist": commands matching a pattern ask (advisory: patterns can be evaded by spelling).
   */
  mode: text("mode", { enum: ["allowlist", "denylist"] }).notNull().default("allowlist"),
  /** JSON array of exact command lines that run without approval in allowlist mode. */
  allowedCommands: text("allowed_commands").notNull().default("[]"),
  /** JSON array of case-insensitive regular expressions matched against the command text. */
  patterns: text("patterns").notNull(),
  /** JSON array of {name, email} approver contacts. */
  approvers: text("approvers").notNull(),
  linkTtlHours: integer("link_ttl_hours").notNull().default(24),
  updatedBy: text("updated_by").notNull(),
  updatedAt: integer("updated_at").notNull().default(now),
});

/** A tenant's reusable diagnostic sequence. */
export const sequenceTemplates = sqliteTable(
  "sequence_templates",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** JSON array of {text, shell} steps. */
    steps: text("steps").notNull(),
    stopOnFailure: integer("stop_on_failure", { mode: "boolean" }).notNull().default(true),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull().default(now),
  },
  (t) => [uniqueIndex("sequence_templates_org_name_idx").on(t.orgId, t.name)],
);

/**
 * The newest audit head each endpoint's session vouched for, with an HMAC
 * under a key only the session worker (and the verifier) holds. Written in the
 * same D1 batch as the events it covers, so a replica rewritten with
 * recomputed hashes, or with its tail deleted, no longer matches it.
 */
export const auditCheckpoints = sqliteTable("audit_checkpoints", {
  endpointId: text("endpoint_id").primaryKey(),
  orgId: text("org_id").notNull(),
  seq: integer("seq").notNull(),
  hash: text("hash").notNull(),
  at: integer("at").notNull(),
  /** HMAC-SHA256(AUDIT_MAC_KEY, canonicalCheckpointPayload(…)) in protocol/audit.ts, hex. */
  mac: text("mac").notNull(),
});

/**
 * Where an endpoint's D1 audit replica starts after archiving (ADR 0029): the
 * last archived and deleted event, MACed (canonicalPruneAnchorPayload in
 * protocol/audit.ts), and the R2 object holding it.
 */
export const auditPruneAnchors = sqliteTable(
  "audit_prune_anchors",
  {
    endpointId: text("endpoint_id").primaryKey(),
    orgId: text("org_id").notNull(),
    seq: integer("seq").notNull(),
    hash: text("hash").notNull(),
    at: integer("at").notNull(),
    archiveKey: text("archive_key").notNull(),
    mac: text("mac").notNull(),
  },
  (t) => [index("audit_prune_anchors_org_idx").on(t.orgId)],
);

/**
 * Local dev and CI only (offline mode): every email the capture mailer would
 * have sent, shown on /dev/mailbox so tests follow links as a recipient would.
 */
export const captureMailbox = sqliteTable(
  "capture_mailbox",
  {
    id: text("id").primaryKey(),
    to: text("to").notNull(),
    subject: text("subject").notNull(),
    text: text("text").notNull(),
    html: text("html").notNull(),
    createdAt: integer("created_at").notNull().default(now),
  },
  (t) => [index("capture_mailbox_to_idx").on(t.to, t.createdAt)],
);

/**
 * Directory changes admins make (clients, endpoint names and tags), one hash
 * chain per tenant (app/models/directory-audit.server.ts). Each row is written
 * in the same D1 batch as the change it records; (org_id, seq) is the primary
 * key, so two concurrent writers cannot both extend the chain from one head.
 */
export const directoryAudit = sqliteTable(
  "directory_audit",
  {
    orgId: text("org_id").notNull(),
    seq: integer("seq").notNull(),
    at: integer("at").notNull(),
    kind: text("kind").notNull(),
    actorId: text("actor_id").notNull(),
    actorName: text("actor_name").notNull(),
    actorAddress: text("actor_address"),
    subjectType: text("subject_type").notNull(),
    subjectId: text("subject_id").notNull(),
    detail: text("detail").notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.seq] }), index("directory_audit_subject_idx").on(t.orgId, t.subjectType, t.subjectId, t.seq)],
);

// --- Script library, API tokens, alert webhooks (migrations 0015, 0016; docs/decisions/0025-script-library-and-api.md)

export const scripts = sqliteTable(
  "scripts",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    latestVersion: integer("latest_version").notNull(),
    archivedAt: integer("archived_at"),
    archivedBy: text("archived_by"),
    createdAt: integer("created_at").notNull().default(now),
  },
  (t) => [uniqueIndex("scripts_org_name_idx").on(t.orgId, t.name)],
);

export const scriptVersions = sqliteTable(
  "script_versions",
  {
    scriptId: text("script_id")
      .notNull()
      .references(() => scripts.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    orgId: text("org_id").notNull(),
    /** JSON: { description, params, steps, stopOnFailure } (app/models/script-library.server.ts scriptBodySchema). */
    body: text("body").notNull(),
    changedById: text("changed_by_id").notNull(),
    changedByName: text("changed_by_name").notNull(),
    changeNote: text("change_note").notNull().default(""),
    changedAt: integer("changed_at").notNull().default(now),
  },
  (t) => [primaryKey({ columns: [t.scriptId, t.version] })],
);

export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Hex SHA-256 of the whole token; the token itself is never stored. */
    tokenHash: text("token_hash").notNull(),
    /** The first characters, to tell tokens apart in the list. */
    prefix: text("prefix").notNull(),
    /** JSON array of scopes. */
    scopes: text("scopes").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull().default(now),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
    revokedBy: text("revoked_by"),
  },
  (t) => [uniqueIndex("api_tokens_hash_idx").on(t.tokenHash), index("api_tokens_org_idx").on(t.orgId, t.createdAt)],
);

export const apiAudit = sqliteTable(
  "api_audit",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    at: integer("at").notNull(),
    kind: text("kind").notNull(),
    actor: text("actor").notNull(),
    tokenId: text("token_id"),
    detail: text("detail").notNull(),
  },
  (t) => [index("api_audit_org_idx").on(t.orgId, t.at)],
);

export const alertWebhooks = sqliteTable("alert_webhooks", {
  id: text("id").primaryKey(),
  orgId: text("org_id")
    .notNull()
    .references(() => organisations.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  scriptId: text("script_id")
    .notNull()
    .references(() => scripts.id, { onDelete: "cascade" }),
  /** JSON object of fixed parameter values; the alert may supply the rest. */
  params: text("params").notNull().default("{}"),
  createdBy: text("created_by").notNull(),
  createdAt: integer("created_at").notNull().default(now),
  disabledAt: integer("disabled_at"),
});

export const alertDeliveries = sqliteTable(
  "alert_deliveries",
  {
    webhookId: text("webhook_id")
      .notNull()
      .references(() => alertWebhooks.id, { onDelete: "cascade" }),
    alertId: text("alert_id").notNull(),
    orgId: text("org_id").notNull(),
    endpointId: text("endpoint_id").notNull(),
    requestId: text("request_id").notNull(),
    /** JSON: the answer the first delivery got, repeated to every later delivery of the same alert. */
    outcome: text("outcome").notNull(),
    receivedAt: integer("received_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.webhookId, t.alertId] })],
);

// ---------------------------------------------------------------------------
// Fleet runs and recurring maintenance windows (docs/decisions/0026-fleet-runs-and-maintenance-windows.md).

/** One command or sequence queued on many endpoints of a tenant. */
export const fleetRuns = sqliteTable(
  "fleet_runs",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: text("kind", { enum: ["command", "sequence"] }).notNull(),
    /** JSON array of {text, shell, idempotent} steps (one for a command). */
    steps: text("steps").notNull(),
    stopOnFailure: integer("stop_on_failure", { mode: "boolean" }).notNull().default(true),
    /** JSON of the target selector as chosen: {client, tag, os, filterId}. */
    selector: text("selector").notNull(),
    /** "now", "at" (notBefore) or "window" (each target's next maintenance window). */
    schedule: text("schedule", { enum: ["now", "at", "window"] }).notNull(),
    notBefore: integer("not_before"),
    createdById: text("created_by_id").notNull(),
    createdByName: text("created_by_name").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("fleet_runs_org_created_idx").on(t.orgId, t.createdAt)],
);

/**
 * A target of a fleet run and how it was handed to its session: "queued" (the session holds it; progress comes
 * from the audit replica), "never_connected" (no session exists yet: nothing was queued), "refused" or
 * "unreachable" (not queued; `error` says why).
 */
export const fleetRunTargets = sqliteTable(
  "fleet_run_targets",
  {
    fleetRunId: text("fleet_run_id")
      .notNull()
      .references(() => fleetRuns.id, { onDelete: "cascade" }),
    endpointId: text("endpoint_id").notNull(),
    orgId: text("org_id").notNull(),
    hostname: text("hostname").notNull(),
    clientName: text("client_name").notNull(),
    handover: text("handover", { enum: ["queued", "never_connected", "refused", "unreachable"] }).notNull(),
    error: text("error"),
    requestId: text("request_id").notNull(),
    sequenceId: text("sequence_id"),
  },
  (t) => [primaryKey({ columns: [t.fleetRunId, t.endpointId] })],
);

/** The command ids a target's session created for a fleet run, one per step. */
export const fleetRunCommands = sqliteTable(
  "fleet_run_commands",
  {
    fleetRunId: text("fleet_run_id")
      .notNull()
      .references(() => fleetRuns.id, { onDelete: "cascade" }),
    endpointId: text("endpoint_id").notNull(),
    commandId: text("command_id").notNull(),
    step: integer("step").notNull(),
  },
  (t) => [primaryKey({ columns: [t.fleetRunId, t.endpointId, t.step] }), index("fleet_run_commands_command_idx").on(t.commandId)],
);

/** A named endpoint search (client, tag, OS, text) a fleet run can target. */
export const endpointFilters = sqliteTable(
  "endpoint_filters",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** JSON {q, client, tag, os}. */
    filter: text("filter").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("endpoint_filters_org_name_idx").on(t.orgId, t.name)],
);

/** A recurring window per client or per endpoint tag (exactly one of the two), in the endpoint's client's zone. */
export const maintenanceWindows = sqliteTable(
  "maintenance_windows",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organisations.id, { onDelete: "cascade" }),
    clientId: text("client_id").references(() => clients.id, { onDelete: "cascade" }),
    tagId: text("tag_id").references(() => tags.id, { onDelete: "cascade" }),
    /** JSON array of local weekdays, 0 = Sunday. */
    days: text("days").notNull(),
    startMinute: integer("start_minute").notNull(),
    durationMinutes: integer("duration_minutes").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("maintenance_windows_client_idx").on(t.clientId), index("maintenance_windows_tag_idx").on(t.tagId)],
);
