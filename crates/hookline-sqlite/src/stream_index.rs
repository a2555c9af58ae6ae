//! Which events belong to a stream, in `seq` order, for `GET /v1/events?stream=`.
//!
//! An index on `events(org_id, stream, seq)` puts each new event on its stream's own
//! last page, so a group commit with events on 30 streams rewrote 30 index pages: in
//! the throughput benchmark most WAL frames were those pages. So publishing appends
//! `(org, stream, seq, event)` to `stream_events_recent`, which grows only at its end,
//! and the writer moves those rows into the keyed `stream_events` in one sorted pass
//! about ten times a second, rewriting each stream's page once per pass instead of once
//! per commit. Both tables are written in the publishing transaction or the writer's,
//! so nothing is lost in a crash; readers look in both.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

/// How often the writer moves recent rows into the keyed table.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The `id IN (…)` condition selecting a stream's events after a seq; its parameters
/// are org, stream and seq, twice.
pub const IN_STREAM: &str = "id IN (
    SELECT event_id FROM stream_events WHERE org_id = ? AND stream = ? AND seq > ?
    UNION ALL
    SELECT event_id FROM stream_events_recent WHERE org_id = ? AND stream = ? AND seq > ?)";

pub fn record(
    conn: &Connection,
    org: &str,
    stream: &str,
    seq: i64,
    event: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stream_events_recent (org_id, stream, seq, event_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![org, stream, seq, event])?;
    Ok(())
}

/// Paces the writer's `flush`es to one per `FLUSH_EVERY`.
pub struct FlushTimer {
    last: Instant,
}

impl FlushTimer {
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    /// Whether a flush is due; if so, the next one is due `FLUSH_EVERY` from now.
    pub fn due(&mut self) -> bool {
        if self.last.elapsed() < FLUSH_EVERY {
            return false;
        }
        self.last = Instant::now();
        true
    }
}

/// Sorted, so consecutive inserts land on the same page.
pub fn flush(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stream_events (org_id, stream, seq, event_id)
         SELECT org_id, stream, seq, event_id FROM stream_events_recent
         ORDER BY org_id, stream, seq",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM stream_events_recent")?
        .execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::types::Value;

    use super::*;

    fn stream_of(conn: &Connection, stream: &str, after: i64) -> Vec<String> {
        let once = [
            Value::Text("o".into()),
            Value::Text(stream.into()),
            Value::Integer(after),
        ];
        let values = once.iter().chain(once.iter());
        conn.prepare(&format!(
            "SELECT id FROM events WHERE {IN_STREAM} ORDER BY id"
        ))
        .unwrap()
        .query_map(rusqlite::params_from_iter(values), |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    fn publish(conn: &Connection, id: &str, stream: &str, seq: i64) {
        conn.execute(
            "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data, deliveries)
             VALUES (?1, 'o', ?2, ?3, 't', 'user', 0, '{}', 0)",
            params![id, stream, seq],
        )
        .unwrap();
        record(conn, "o", stream, seq, id).unwrap();
    }

    #[test]
    fn a_stream_reads_the_same_before_and_after_its_rows_move() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        publish(&conn, "evt_1", "a", 1);
        publish(&conn, "evt_2", "b", 1);
        publish(&conn, "evt_3", "a", 2);
        assert_eq!(stream_of(&conn, "a", 0), ["evt_1", "evt_3"]);
        flush(&conn).unwrap();
        let moved: i64 = conn
            .query_row("SELECT COUNT(*) FROM stream_events", [], |r| r.get(0))
            .unwrap();
        let recent: i64 = conn
            .query_row("SELECT COUNT(*) FROM stream_events_recent", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!((moved, recent), (3, 0));
        publish(&conn, "evt_4", "a", 3);
        assert_eq!(stream_of(&conn, "a", 0), ["evt_1", "evt_3", "evt_4"]);
        assert_eq!(stream_of(&conn, "a", 1), ["evt_3", "evt_4"]);
        assert_eq!(stream_of(&conn, "b", 0), ["evt_2"]);
    }
}
