//! The SQLite schema, applied in order and tracked with `PRAGMA user_version`.
//! The `deliveries` table is the queue: a partial index over due states, per
//! destination, makes "what is due next here" an index range scan however many
//! finished deliveries pile up.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    key_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_org ON api_keys(org_id, id);
CREATE TABLE streams (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (org_id, name)
) WITHOUT ROWID;
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    level TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    data TEXT NOT NULL,
    raw TEXT,
    idempotency_key TEXT,
    deliveries INTEGER NOT NULL
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
    enabled INTEGER NOT NULL,
    secret TEXT NOT NULL,
    disabled_reason TEXT,
    last_attempt_at INTEGER,
    last_success_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX destinations_org ON destinations(org_id, id) WHERE deleted_at IS NULL;
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at INTEGER,
    lease_until INTEGER,
    leased_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    response_code INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(run_at, id) WHERE state IN ('pending', 'failed');
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE state = 'delivering';
CREATE INDEX deliveries_org ON deliveries(org_id, id);
CREATE INDEX deliveries_destination ON deliveries(destination_id, state);
CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_status INTEGER,
    response_headers TEXT NOT NULL,
    response_body TEXT,
    response_truncated INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    error_kind TEXT,
    error_message TEXT
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, id);
"#,
    // Claims read due rows destination by destination (see due.rs), not in one global
    // run_at order, so the global index gives way to a per-destination one.
    r#"
DROP INDEX deliveries_due;
CREATE INDEX deliveries_destination_due ON deliveries(destination_id, run_at, id)
    WHERE state IN ('pending', 'failed');
-- For ordered destinations: is there an unfinished delivery earlier in this stream?
CREATE INDEX deliveries_stream_order ON deliveries(destination_id, stream, event_seq)
    WHERE state IN ('pending', 'failed', 'delivering');
-- Keyed by id rather than state, so state changes on the hot path leave it alone.
DROP INDEX deliveries_destination;
CREATE INDEX deliveries_destination ON deliveries(destination_id, id);
"#,
    // One-shot destinations (`webhook_url` on publish) are rows like any other, so the
    // queue needs nothing new, but they match no later event and are never listed.
    // Orgs get sealed signing keys for them.
    r#"
ALTER TABLE destinations ADD COLUMN one_shot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN signing_keys TEXT;
"#,
    // The stream-order index only serves ordered destinations, yet every delivery paid
    // for it: an insert and a delete on a page picked by its stream, so a commit touched
    // a page per stream in it. Deliveries now say whether their destination is ordered,
    // and only those rows are indexed.
    r#"
ALTER TABLE deliveries ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET ordered = 1
 WHERE state IN ('pending', 'failed', 'delivering')
   AND destination_id IN (SELECT id FROM destinations
                           WHERE json_extract(settings, '$.ordered') = 1);
DROP INDEX deliveries_stream_order;
CREATE INDEX deliveries_stream_order ON deliveries(destination_id, stream, event_seq)
    WHERE ordered = 1 AND state IN ('pending', 'failed', 'delivering');
"#,
    // Stream membership leaves the events table for two of its own (see stream_index.rs).
    r#"
CREATE TABLE stream_events (
    org_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (org_id, stream, seq)
) WITHOUT ROWID;
CREATE TABLE stream_events_recent (
    org_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL
);
INSERT INTO stream_events SELECT org_id, stream, seq, id FROM events;
DROP INDEX events_stream_seq;
"#,
    // Every b-tree a commit touches costs at least one page written to the WAL, and
    // `events` and `attempts` each had two indexes on the same ids: the primary key's and
    // the listing one. Each now keeps only the listing index, made unique; every read
    // names the org (events) or the delivery (attempts) anyway.
    r#"
CREATE TABLE events_v6 (
    id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    level TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    data TEXT NOT NULL,
    raw TEXT,
    idempotency_key TEXT,
    deliveries INTEGER NOT NULL
);
INSERT INTO events_v6 (id, org_id, stream, seq, type, level, timestamp, data, raw,
                       idempotency_key, deliveries)
    SELECT id, org_id, stream, seq, type, level, timestamp, data, raw, idempotency_key,
           deliveries
      FROM events ORDER BY rowid;
DROP TABLE events;
ALTER TABLE events_v6 RENAME TO events;
CREATE UNIQUE INDEX events_org ON events(org_id, id);
CREATE UNIQUE INDEX events_idempotency ON events(org_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE attempts_v6 (
    id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_status INTEGER,
    response_headers TEXT NOT NULL,
    response_body TEXT,
    response_truncated INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    error_kind TEXT,
    error_message TEXT
);
INSERT INTO attempts_v6 (id, org_id, delivery_id, destination_id, event_id, event_type,
                         number, started_at, url, request_headers, request_body,
                         response_status, response_headers, response_body,
                         response_truncated, latency_ms, error_kind, error_message)
    SELECT id, org_id, delivery_id, destination_id, event_id, event_type, number,
           started_at, url, request_headers, request_body, response_status,
           response_headers, response_body, response_truncated, latency_ms, error_kind,
           error_message
      FROM attempts ORDER BY rowid;
DROP TABLE attempts;
ALTER TABLE attempts_v6 RENAME TO attempts;
CREATE UNIQUE INDEX attempts_delivery ON attempts(delivery_id, id);
"#,
    // The same for `deliveries`: every lookup by id names the org too (hand-backs carry
    // it), so the listing index `(org_id, id)` is the only one on ids.
    r#"
CREATE TABLE deliveries_v7 (
    id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    destination_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    state TEXT NOT NULL,
    run_at INTEGER,
    lease_until INTEGER,
    leased_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    response_code INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ordered INTEGER NOT NULL DEFAULT 0
);
INSERT INTO deliveries_v7 (id, org_id, event_id, destination_id, stream, event_seq,
                           event_type, state, run_at, lease_until, leased_by, attempts,
                           last_attempt_at, response_code, error, created_at, updated_at,
                           ordered)
    SELECT id, org_id, event_id, destination_id, stream, event_seq, event_type, state,
           run_at, lease_until, leased_by, attempts, last_attempt_at, response_code, error,
           created_at, updated_at, ordered
      FROM deliveries ORDER BY rowid;
DROP TABLE deliveries;
ALTER TABLE deliveries_v7 RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_org ON deliveries(org_id, id);
CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE state = 'delivering';
CREATE INDEX deliveries_destination_due ON deliveries(destination_id, run_at, id)
    WHERE state IN ('pending', 'failed');
CREATE INDEX deliveries_destination ON deliveries(destination_id, id);
CREATE INDEX deliveries_stream_order ON deliveries(destination_id, stream, event_seq)
    WHERE ordered = 1 AND state IN ('pending', 'failed', 'delivering');
"#,
    // An attempt whose body is its event's envelope keeps a note of which envelope (1
    // without `raw`, 2 with it) and an empty `request_body`; reads rebuild the body from
    // the event (see `hookline_store::request_note`). 0: `request_body` holds what was sent.
    r#"
ALTER TABLE attempts ADD COLUMN request_body_from_event INTEGER NOT NULL DEFAULT 0;
"#,
    // 1: the attempt's request began with its event's headers (`event_headers`), which
    // reads rebuild, and `request_headers` holds only those after them. 0: it holds all.
    r#"
ALTER TABLE attempts ADD COLUMN request_headers_from_event INTEGER NOT NULL DEFAULT 0;
"#,
    // A deleted org keeps its row (its history refers to it) but leaves every list.
    r#"
ALTER TABLE orgs ADD COLUMN deleted_at INTEGER;
"#,
    // The dispatch inspector lists an org's attempts newest first (`GET /v1/attempts`);
    // its other filters narrow what this index walks.
    r#"
CREATE INDEX attempts_org ON attempts(org_id, id);
"#,
    // Test mode: since when the org's deliveries are intercepted; NULL when off.
    r#"
ALTER TABLE orgs ADD COLUMN test_mode_since INTEGER;
"#,
    // An org's own retention in days; NULL: the server's.
    r#"
ALTER TABLE orgs ADD COLUMN retention_days REAL;
"#,
    // Per destination and minute: attempts by outcome, finished deliveries and a latency
    // histogram (see `hookline_core::rollup`), for statistics that never scan attempts.
    r#"
CREATE TABLE rollups (
    destination_id TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    org_id TEXT NOT NULL,
    attempts_ok INTEGER NOT NULL,
    attempts_failed INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    dead_lettered INTEGER NOT NULL,
    l0 INTEGER NOT NULL,
    l1 INTEGER NOT NULL,
    l2 INTEGER NOT NULL,
    l3 INTEGER NOT NULL,
    l4 INTEGER NOT NULL,
    l5 INTEGER NOT NULL,
    l6 INTEGER NOT NULL,
    l7 INTEGER NOT NULL,
    l8 INTEGER NOT NULL,
    l9 INTEGER NOT NULL,
    l10 INTEGER NOT NULL,
    l11 INTEGER NOT NULL,
    PRIMARY KEY (destination_id, bucket)
) WITHOUT ROWID;
CREATE INDEX rollups_org ON rollups(org_id, bucket);
"#,
    // Rollups a day old, folded from minutes into one row per destination and hour, so
    // a month's statistics read 720 rows rather than 43,200.
    r#"
CREATE TABLE rollup_hours (
    destination_id TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    org_id TEXT NOT NULL,
    attempts_ok INTEGER NOT NULL,
    attempts_failed INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    dead_lettered INTEGER NOT NULL,
    l0 INTEGER NOT NULL,
    l1 INTEGER NOT NULL,
    l2 INTEGER NOT NULL,
    l3 INTEGER NOT NULL,
    l4 INTEGER NOT NULL,
    l5 INTEGER NOT NULL,
    l6 INTEGER NOT NULL,
    l7 INTEGER NOT NULL,
    l8 INTEGER NOT NULL,
    l9 INTEGER NOT NULL,
    l10 INTEGER NOT NULL,
    l11 INTEGER NOT NULL,
    PRIMARY KEY (destination_id, bucket)
) WITHOUT ROWID;
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
    rate_per_sec INTEGER NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    state TEXT NOT NULL,
    cursor TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'replay'
);
CREATE INDEX replays_org ON replays(org_id, id);
CREATE INDEX replays_running ON replays(id) WHERE state = 'running';
"#,
];

/// Applies the migrations the database has not seen yet, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_deliveries_of_ordered_destinations_keep_their_order_across_migration_4() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            r#"
INSERT INTO destinations (id, org_id, settings, enabled, secret, created_at, updated_at)
VALUES ('dst_o', 'org_1', '{"ordered":true}', 1, 'k', 0, 0),
       ('dst_u', 'org_1', '{"ordered":false}', 1, 'k', 0, 0);
INSERT INTO deliveries (id, org_id, event_id, destination_id, stream, event_seq, event_type,
                        state, created_at, updated_at)
VALUES ('dlv_1', 'org_1', 'evt_1', 'dst_o', 's', 1, 't', 'failed', 0, 0),
       ('dlv_2', 'org_1', 'evt_2', 'dst_o', 's', 2, 't', 'delivered', 0, 0),
       ('dlv_3', 'org_1', 'evt_1', 'dst_u', 's', 1, 't', 'pending', 0, 0);
"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let ordered: Vec<String> = conn
            .prepare("SELECT id FROM deliveries WHERE ordered = 1 ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ordered, ["dlv_1"]);
    }

    /// How SQLite plans `sql`: the detail column of each step, joined.
    fn plan(conn: &Connection, sql: &str) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("; ")
    }

    #[test]
    fn migrations_6_and_7_keep_the_rows_and_read_ids_by_one_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            r#"
INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data, raw,
                    idempotency_key, deliveries)
VALUES ('evt_1', 'org_1', 's', 1, 'a.b', 'user', 7, '{"n":1}', NULL, 'key-1', 1);
INSERT INTO attempts (id, org_id, delivery_id, destination_id, event_id, event_type, number,
                      started_at, url, request_headers, request_body, response_status,
                      response_headers, response_body, response_truncated, latency_ms)
VALUES ('att_1', 'org_1', 'dlv_1', 'dst_1', 'evt_1', 'a.b', 1, 8, 'https://x.test/h', '[]',
        '{}', 200, '[]', 'ok', 0, 3);
INSERT INTO deliveries (id, org_id, event_id, destination_id, stream, event_seq, event_type,
                        state, run_at, attempts, created_at, updated_at, ordered)
VALUES ('dlv_1', 'org_1', 'evt_1', 'dst_1', 's', 1, 'a.b', 'failed', 50, 1, 0, 0, 1);
"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();

        let event: (String, String, i64) = conn
            .query_row(
                "SELECT data, idempotency_key, deliveries FROM events
                 WHERE org_id = 'org_1' AND id = 'evt_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(event, ("{\"n\":1}".into(), "key-1".into(), 1));
        let attempt: (String, i64) = conn
            .query_row(
                "SELECT response_body, latency_ms FROM attempts WHERE delivery_id = 'dlv_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(attempt, ("ok".into(), 3));
        let duplicate = conn.execute(
            "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data,
                                 deliveries)
             VALUES ('evt_1', 'org_1', 's', 2, 'a.b', 'user', 9, '{}', 0)",
            [],
        );
        assert!(duplicate.is_err(), "an event id stays unique in its org");
        let delivery: (String, i64, i64, i64) = conn
            .query_row(
                "SELECT state, run_at, attempts, ordered FROM deliveries
                 WHERE org_id = 'org_1' AND id = 'dlv_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(delivery, ("failed".into(), 50, 1, 1));

        let by_id = plan(
            &conn,
            "SELECT data FROM events WHERE org_id = 'o' AND id = 'e'",
        );
        assert!(by_id.contains("INDEX events_org"), "{by_id}");
        // As `reads::list_attempts` asks: one delivery's attempts, and an org's.
        let listed = plan(
            &conn,
            "SELECT id FROM attempts WHERE +org_id = 'o' AND delivery_id = 'd' ORDER BY id DESC",
        );
        assert!(listed.contains("INDEX attempts_delivery"), "{listed}");
        assert!(!listed.contains("TEMP B-TREE"), "{listed}");
        let inspected = plan(
            &conn,
            "SELECT id FROM attempts WHERE org_id = 'o' AND id < 'a' ORDER BY id DESC",
        );
        assert!(inspected.contains("INDEX attempts_org"), "{inspected}");
        assert!(!inspected.contains("TEMP B-TREE"), "{inspected}");
        let finished = plan(
            &conn,
            "UPDATE deliveries SET state = 'delivered' WHERE org_id = 'o' AND id = 'd'",
        );
        assert!(finished.contains("INDEX deliveries_org"), "{finished}");
        let due = plan(
            &conn,
            "SELECT rowid FROM deliveries WHERE destination_id = 'd'
               AND state IN ('pending', 'failed') AND run_at <= 5 ORDER BY run_at, id LIMIT 9",
        );
        assert!(due.contains("INDEX deliveries_destination_due"), "{due}");
    }
}
