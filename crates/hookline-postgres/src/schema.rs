//! The PostgreSQL schema. Migrations run under an advisory lock, so several nodes
//! starting at once apply each migration exactly once.

use hookline_core::clock::Millis;
use hookline_core::ids::EventId;
use sqlx::PgPool;

use hookline_store::StoreResult;

/// Any constant unique to Hookline's migrations.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65; // "hookline"

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    key_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_org ON api_keys(org_id, id);
CREATE TABLE streams (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    level TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    data TEXT NOT NULL,
    raw TEXT,
    idempotency_key TEXT,
    deliveries BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_stream_seq ON events(org_id, stream, seq);
CREATE UNIQUE INDEX events_idempotency ON events(org_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_org ON events(org_id, id);
CREATE TABLE destinations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    stream TEXT,
    settings TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    ordered BOOLEAN NOT NULL DEFAULT FALSE,
    secret TEXT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    disabled_reason TEXT,
    last_attempt_at BIGINT,
    last_success_at BIGINT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX destinations_org ON destinations(org_id, id) WHERE deleted_at IS NULL;
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at BIGINT,
    lease_until BIGINT,
    leased_by TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_attempt_at BIGINT,
    response_code BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- The queue churns: vacuum it early so claims do not wade through dead index entries.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
                            autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX deliveries_due ON deliveries(run_at, id) WHERE state IN ('pending', 'failed');
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE state = 'delivering';
CREATE INDEX deliveries_stream_order ON deliveries(destination_id, stream, event_seq)
    WHERE state IN ('pending', 'failed', 'delivering');
CREATE INDEX deliveries_org ON deliveries(org_id, id);
CREATE INDEX deliveries_destination ON deliveries(destination_id, id);
CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    number BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_status BIGINT,
    response_headers TEXT NOT NULL,
    response_body TEXT,
    response_truncated BOOLEAN NOT NULL,
    latency_ms BIGINT NOT NULL,
    error_kind TEXT,
    error_message TEXT
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, id);
"#,
    // See the SQLite schema: one-shot destinations and the org signing keys.
    r#"
ALTER TABLE destinations ADD COLUMN one_shot BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE orgs ADD COLUMN signing_keys TEXT;
"#,
    // An attempt keeps a note of what its event gives rather than a copy (see
    // `request_note`): the body's code (0: `request_body` holds what was sent) and
    // whether `request_headers` holds only the headers after the event's.
    r#"
ALTER TABLE attempts ADD COLUMN request_body_from_event BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN request_headers_from_event BOOLEAN NOT NULL DEFAULT FALSE;
"#,
    // Every way out of 'delivering' clears `leased_by`, so completions and releases can
    // find a node's rows by `leased_by` alone (see `queue::complete`). NOT VALID: rows
    // written before are not scanned at start, only rows written from now on are checked.
    r#"
ALTER TABLE deliveries ADD CONSTRAINT deliveries_leased_while_delivering
    CHECK ((state = 'delivering') = (leased_by IS NOT NULL)) NOT VALID;
"#,
    // The few destinations the queue treats specially, read at every claim, without
    // reading every destination (see `queue::special_destinations`).
    r#"
CREATE INDEX destinations_special ON destinations(id)
    WHERE deleted_at IS NULL AND (NOT enabled OR ordered);
"#,
    // Serving nodes and their last heartbeat (see `membership`).
    r#"
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);
"#,
    // A deleted org keeps its row (its history refers to it) but leaves every list.
    r#"
ALTER TABLE orgs ADD COLUMN deleted_at BIGINT;
"#,
    // A delivery knows whether its destination is ordered (kept in step when that flips),
    // so the due scan's index holds unordered rows only and the stream-order index ordered
    // ones only: an ordered destination's backlog is no longer stepped over by every claim,
    // and an unordered delivery no longer writes a stream-order index entry.
    r#"
ALTER TABLE deliveries ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE deliveries d SET ordered = TRUE FROM destinations t
    WHERE t.id = d.destination_id AND t.ordered AND d.state IN ('pending', 'failed', 'delivering');
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(run_at, id)
    WHERE state IN ('pending', 'failed') AND NOT ordered;
CREATE INDEX deliveries_due_ordered ON deliveries(run_at)
    WHERE state IN ('pending', 'failed') AND ordered;
DROP INDEX deliveries_stream_order;
CREATE INDEX deliveries_stream_order ON deliveries(destination_id, stream, event_seq)
    WHERE ordered AND state IN ('pending', 'failed', 'delivering');
"#,
    // Test mode: since when the org's deliveries are intercepted; NULL when off.
    r#"
ALTER TABLE orgs ADD COLUMN test_mode_since BIGINT;
"#,
    // An org's own retention in days; NULL: the server's.
    r#"
ALTER TABLE orgs ADD COLUMN retention_days DOUBLE PRECISION;
"#,
    // Per destination and minute: attempts by outcome, finished deliveries and a latency
    // histogram (see `hookline_core::rollup`), for statistics that never scan attempts.
    r#"
CREATE TABLE rollups (
    destination_id TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    org_id TEXT NOT NULL,
    attempts_ok BIGINT NOT NULL,
    attempts_failed BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    dead_lettered BIGINT NOT NULL,
    l0 BIGINT NOT NULL,
    l1 BIGINT NOT NULL,
    l2 BIGINT NOT NULL,
    l3 BIGINT NOT NULL,
    l4 BIGINT NOT NULL,
    l5 BIGINT NOT NULL,
    l6 BIGINT NOT NULL,
    l7 BIGINT NOT NULL,
    l8 BIGINT NOT NULL,
    l9 BIGINT NOT NULL,
    l10 BIGINT NOT NULL,
    l11 BIGINT NOT NULL,
    PRIMARY KEY (destination_id, bucket)
);
CREATE INDEX rollups_org ON rollups(org_id, bucket);
"#,
    // Rollups a day old, folded from minutes into one row per destination and hour, so
    // a month's statistics read 720 rows rather than 43,200.
    r#"
CREATE TABLE rollup_hours (
    destination_id TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    org_id TEXT NOT NULL,
    attempts_ok BIGINT NOT NULL,
    attempts_failed BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    dead_lettered BIGINT NOT NULL,
    l0 BIGINT NOT NULL,
    l1 BIGINT NOT NULL,
    l2 BIGINT NOT NULL,
    l3 BIGINT NOT NULL,
    l4 BIGINT NOT NULL,
    l5 BIGINT NOT NULL,
    l6 BIGINT NOT NULL,
    l7 BIGINT NOT NULL,
    l8 BIGINT NOT NULL,
    l9 BIGINT NOT NULL,
    l10 BIGINT NOT NULL,
    l11 BIGINT NOT NULL,
    PRIMARY KEY (destination_id, bucket)
);
CREATE INDEX rollup_hours_org ON rollup_hours(org_id, bucket);
"#,
    // Bulk replays and backfills: a job per request, moved on by one node at a time
    // under a lease.
    r#"
CREATE TABLE replays (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    filter TEXT NOT NULL,
    rate_per_sec BIGINT NOT NULL,
    total BIGINT NOT NULL,
    done BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    state TEXT NOT NULL,
    cursor TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'replay'
);
CREATE INDEX replays_org ON replays(org_id, id);
CREATE INDEX replays_running ON replays(id) WHERE state = 'running';
"#,
    // Deliveries and attempts partitioned by their event's id, a day per partition (see
    // `partitions`), so retention drops a day's tables instead of deleting its rows. The
    // tables as they were become the first partition, of every event before the cutover
    // (`{CUTOVER}`, the lowest event id at the time this runs): their rows stay where
    // they are. A partition's primary key must hold its partition key, so both tables'
    // keys gain the event id.
    r#"
ALTER TABLE deliveries RENAME TO deliveries_legacy;
ALTER TABLE deliveries_legacy DROP CONSTRAINT deliveries_pkey;
ALTER TABLE deliveries_legacy VALIDATE CONSTRAINT deliveries_leased_while_delivering;
ALTER INDEX deliveries_due RENAME TO deliveries_legacy_due;
ALTER INDEX deliveries_due_ordered RENAME TO deliveries_legacy_due_ordered;
ALTER INDEX deliveries_leased RENAME TO deliveries_legacy_leased;
ALTER INDEX deliveries_stream_order RENAME TO deliveries_legacy_stream_order;
ALTER INDEX deliveries_org RENAME TO deliveries_legacy_org;
ALTER INDEX deliveries_destination RENAME TO deliveries_legacy_destination;
CREATE TABLE deliveries (LIKE deliveries_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id, event_id)) PARTITION BY RANGE (event_id);
CREATE INDEX deliveries_due ON deliveries(run_at, id)
    WHERE state IN ('pending', 'failed') AND NOT ordered;
CREATE INDEX deliveries_due_ordered ON deliveries(run_at)
    WHERE state IN ('pending', 'failed') AND ordered;
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE state = 'delivering';
CREATE INDEX deliveries_stream_order ON deliveries(destination_id, stream, event_seq)
    WHERE ordered AND state IN ('pending', 'failed', 'delivering');
CREATE INDEX deliveries_org ON deliveries(org_id, id);
CREATE INDEX deliveries_destination ON deliveries(destination_id, id);
ALTER TABLE deliveries ATTACH PARTITION deliveries_legacy
    FOR VALUES FROM (MINVALUE) TO ('{CUTOVER}');
ALTER TABLE attempts RENAME TO attempts_legacy;
ALTER TABLE attempts_legacy DROP CONSTRAINT attempts_pkey;
ALTER INDEX attempts_delivery RENAME TO attempts_legacy_delivery;
CREATE TABLE attempts (LIKE attempts_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (id, event_id)) PARTITION BY RANGE (event_id);
CREATE INDEX attempts_delivery ON attempts(delivery_id, id);
ALTER TABLE attempts ATTACH PARTITION attempts_legacy
    FOR VALUES FROM (MINVALUE) TO ('{CUTOVER}');
"#,
];

/// Applies what is missing, all in one transaction under a transaction-level advisory
/// lock: a node that starts while another migrates waits, then finds nothing to do.
/// `now` places the cutover of a migration that partitions a table.
pub async fn migrate(pool: &PgPool, now: Millis) -> StoreResult<()> {
    migrate_first(pool, now, MIGRATIONS.len()).await
}

/// How many migrations come before the one that partitions deliveries and attempts:
/// a database migrated this far is one from before partitioning.
#[cfg(feature = "test-support")]
pub(crate) const BEFORE_PARTITIONING: usize = 13;

/// Applies the first `count` migrations, those missing of them.
pub(crate) async fn migrate_first(pool: &PgPool, now: Millis, count: usize) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    // `CREATE TABLE IF NOT EXISTS` would otherwise log a notice on every start.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS hookline_migrations (version INT PRIMARY KEY)")
        .execute(&mut *tx)
        .await?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hookline_migrations")
        .fetch_one(&mut *tx)
        .await?;
    let cutover = EventId::lowest_at(now).to_string();
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(count)
        .skip(applied as usize)
    {
        // One statement at a time (the migrations hold no `;` inside a statement):
        // sqlx's multi-statement `raw_sql` future is not `Send` here.
        let sql = sql.replace("{CUTOVER}", &cutover);
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO hookline_migrations (version) VALUES ($1)")
            .bind(index as i32 + 1)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
