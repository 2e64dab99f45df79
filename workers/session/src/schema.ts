// The endpoint session's SQLite schema, versioned in one place. Each entry runs
// once, in order, inside the Durable Object's storage; never edit a shipped one.
export const SESSION_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    shell TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL,
    requested_by_id TEXT NOT NULL,
    requested_by_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    dispatched_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    received_at INTEGER,
    duration_ms REAL,
    exit_code INTEGER,
    output_bytes INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    error TEXT
  );
  CREATE INDEX commands_status_idx ON commands (status, created_at);
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    command_id TEXT,
    chunk_index INTEGER,
    body TEXT NOT NULL
  );
  CREATE UNIQUE INDEX events_output_chunk_idx ON events (command_id, chunk_index) WHERE chunk_index IS NOT NULL;
  CREATE TABLE runtime_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    actor_address TEXT,
    command_id TEXT,
    status TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    replicated INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX audit_log_unreplicated_idx ON audit_log (replicated, seq);
  `,
  `
  CREATE TABLE approvals (
    command_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    binding_hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_at INTEGER,
    decided_address TEXT
  );
  `,
  `
  ALTER TABLE commands ADD COLUMN sequence_id TEXT;
  ALTER TABLE commands ADD COLUMN sequence_name TEXT;
  ALTER TABLE commands ADD COLUMN step_index INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE commands ADD COLUMN step_count INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE commands ADD COLUMN stop_on_failure INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE commands ADD COLUMN not_before INTEGER;
  ALTER TABLE commands ADD COLUMN expires_at INTEGER;
  ALTER TABLE commands ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX commands_sequence_idx ON commands (sequence_id, step_index);
  `,
  // Approval integrity: one link per approver (never one shared link), the
  // session's own copy of the client's policy. Single-link requests of the old
  // table cannot be decided by a named approver, so they are not carried over.
  `
  DROP TABLE approvals;
  CREATE TABLE approval_requests (
    command_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    rule TEXT,
    requester_id TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_email TEXT,
    decided_at INTEGER,
    decided_address TEXT
  );
  CREATE INDEX approval_requests_state_idx ON approval_requests (state, expires_at);
  CREATE TABLE approval_links (
    id TEXT PRIMARY KEY,
    command_id TEXT NOT NULL,
    approver_name TEXT NOT NULL,
    approver_email TEXT NOT NULL,
    binding_hash TEXT NOT NULL,
    secret_hash TEXT UNIQUE,
    issued_at INTEGER,
    viewed_at INTEGER,
    delivery TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error TEXT,
    UNIQUE (command_id, approver_email)
  );
  CREATE TABLE session_policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    loaded_at INTEGER NOT NULL
  );
  `,
  // Commands run one at a time per endpoint unless marked to run alongside.
  `
  ALTER TABLE commands ADD COLUMN alongside INTEGER NOT NULL DEFAULT 0;
  `,
  // Interrupted sequence steps (ADR 0018): retries are new rows pointing at the step they repeat.
  `
  ALTER TABLE commands ADD COLUMN idempotent INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE commands ADD COLUMN retry_of TEXT;
  ALTER TABLE commands ADD COLUMN resolution TEXT;
  `,
  // Runtime self-update (runtime-updates.ts): what the runtime reported, the
  // session's copy of the tenant's target, and the one offer in progress.
  `
  CREATE TABLE runtime_update (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    target TEXT,
    target_loaded_at INTEGER NOT NULL DEFAULT 0,
    reported_version TEXT,
    reported_platform TEXT,
    offered_version TEXT,
    offered_target_at INTEGER,
    offered_to TEXT,
    phase TEXT,
    detail TEXT,
    phase_at INTEGER,
    given_up TEXT
  );
  INSERT INTO runtime_update (id) VALUES (1);
  `,
  // Server time is the truth (ADR 0017): the runtime's own start time and the clock estimate that converted it.
  `
  ALTER TABLE commands ADD COLUMN runtime_started_at INTEGER;
  ALTER TABLE commands ADD COLUMN clock_offset_ms REAL;
  ALTER TABLE commands ADD COLUMN clock_uncertainty_ms REAL;
  `,
  // Recurring maintenance windows (ADR 0026): work that starts only inside one of the endpoint's windows.
  `
  ALTER TABLE commands ADD COLUMN maintenance_window INTEGER NOT NULL DEFAULT 0;
  `,
];

export function migrate(sql: SqlStorage): void {
  sql.exec("CREATE TABLE IF NOT EXISTS _schema_version (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT version FROM _schema_version").toArray()[0];
  let version = row?.version ?? 0;
  if (!row) sql.exec("INSERT INTO _schema_version (version) VALUES (0)");
  while (version < SESSION_MIGRATIONS.length) {
    sql.exec(SESSION_MIGRATIONS[version]!);
    version += 1;
    sql.exec("UPDATE _schema_version SET version = ?", version);
  }
}
