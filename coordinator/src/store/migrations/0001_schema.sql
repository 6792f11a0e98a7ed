-- Version 1: the coordinator's state. Specs, results and device profiles are stored as their
-- protobuf encodings, so new fields never need a migration. Written in the SQL both stores take:
-- BIGINT and DOUBLE PRECISION (SQLite: INTEGER and REAL affinity), BLOB (in PostgreSQL a domain
-- over bytea, created before this file runs).
CREATE TABLE IF NOT EXISTS runs (
    id           TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL,
    spec_toml    TEXT NOT NULL,
    spec_path    TEXT NOT NULL,
    skipped      TEXT NOT NULL DEFAULT '[]',
    created_ms   BIGINT NOT NULL,
    finished_ms  BIGINT NOT NULL DEFAULT 0,
    submitted_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS cells (
    id               TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs(id),
    seq              BIGINT NOT NULL,
    target           TEXT NOT NULL,
    spec             BLOB NOT NULL,
    baseline_unit    TEXT NOT NULL,
    benchmark_index  BIGINT NOT NULL,
    reference_variant TEXT NOT NULL DEFAULT '',
    min_agreement    DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    state            TEXT NOT NULL,
    agent_id         TEXT NOT NULL DEFAULT '',
    agent_name       TEXT NOT NULL DEFAULT '',
    attempts         BIGINT NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    result           BLOB,
    device           BLOB,
    wait_until_ms    BIGINT NOT NULL DEFAULT 0,
    updated_ms       BIGINT NOT NULL,
    -- While its agent is away: the lease's deadline, and since when it is away.
    lease_until_ms   BIGINT NOT NULL DEFAULT 0,
    away_since_ms    BIGINT NOT NULL DEFAULT 0,
    interruptions    BIGINT NOT NULL DEFAULT 0,
    interrupted_ms   BIGINT NOT NULL DEFAULT 0,
    duplicates       BIGINT NOT NULL DEFAULT 0,
    result_attempt   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cells_by_state ON cells(state);
CREATE INDEX IF NOT EXISTS cells_by_run ON cells(run_id, seq);
-- A run's cells in one state, in matrix order: the scheduler's queue, the run's state.
CREATE INDEX IF NOT EXISTS cells_by_run_state ON cells(run_id, state, seq);
-- An agent's cells, latest last: its last result (temperatures in /metrics), what it fetched.
CREATE INDEX IF NOT EXISTS cells_by_agent ON cells(agent_id, state, updated_ms);

CREATE TABLE IF NOT EXISTS intervals (
    cell_id     TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    repetition  BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    latency     BLOB NOT NULL,
    seq         BIGINT NOT NULL DEFAULT 0  -- the agent's outbox seq: a replayed interval is kept once
);
CREATE INDEX IF NOT EXISTS intervals_by_cell ON intervals(cell_id);
CREATE UNIQUE INDEX IF NOT EXISTS intervals_once ON intervals(cell_id, attempt, seq) WHERE seq > 0;

-- Every attempt of a cell: which agent had it, and how it ended ('' while in flight; result,
-- error, lost, duplicate). A late report is taken only from the agent the attempt was given to.
CREATE TABLE IF NOT EXISTS attempts (
    cell_id      TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    agent_id     TEXT NOT NULL,
    agent_name   TEXT NOT NULL,
    device       BLOB,
    assigned_ms  BIGINT NOT NULL,
    ended_ms     BIGINT NOT NULL DEFAULT 0,
    outcome      TEXT NOT NULL DEFAULT '',
    result       BLOB,               -- a duplicate result, kept aside
    PRIMARY KEY (cell_id, attempt)
);

CREATE TABLE IF NOT EXISTS agents (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    tags           TEXT NOT NULL,
    units          TEXT NOT NULL,
    profile        BLOB NOT NULL,
    first_seen_ms  BIGINT NOT NULL,
    last_seen_ms   BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS artifacts (
    digest      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS baselines (
    name        TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    figures     BLOB NOT NULL,
    note        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- Who may call the coordinator: only each token's SHA-256 is kept. An agent credential is bound to
-- the agent identity of its first session.
CREATE TABLE IF NOT EXISTS credentials (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    agent_id     TEXT NOT NULL DEFAULT '',
    created_ms   BIGINT NOT NULL,
    revoked_ms   BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS live_credential_names ON credentials(name) WHERE revoked_ms = 0;
