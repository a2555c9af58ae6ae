//! The events claims read lately, parsed. A fan-out claims one event for each of its
//! destinations, usually over several claims (the destinations take turns), and each
//! claim read the row and parsed its JSON again. An event never changes once stored, so
//! a small memory of the last ones read stays right; it is bounded by count and by the
//! size of the events' JSON, and it is only ever touched by the writer thread.

use std::collections::{HashMap, VecDeque};

use hookline_core::event::Event;
use rusqlite::{Connection, params};

use super::rows;
use crate::StoreResult;

/// Events remembered at most.
const MAX_EVENTS: usize = 1024;
/// Their JSON text (data and raw) at most, in bytes; parsed, they take a few times more.
const MAX_JSON_BYTES: usize = 1 << 20;
/// A larger event is read each time rather than pushing out many small ones.
const MAX_EVENT_JSON_BYTES: usize = MAX_JSON_BYTES / 16;

#[derive(Default)]
pub struct ClaimedEvents {
    by_id: HashMap<String, Event>,
    /// Oldest first: an event's id and the size it counts for.
    order: VecDeque<(String, usize)>,
    json_bytes: usize,
}

impl ClaimedEvents {
    /// Event `id` of `org`, from memory or from the table.
    pub fn get(&mut self, conn: &Connection, org: &str, id: &str) -> StoreResult<Event> {
        if let Some(event) = self.by_id.get(id)
            && event.org_id.as_str() == org
        {
            return Ok(event.clone());
        }
        let sql = format!(
            "SELECT {}, length(data) + COALESCE(length(raw), 0) FROM events
             WHERE org_id = ?1 AND id = ?2",
            rows::EVENT_COLUMNS
        );
        let (event, size): (Event, usize) = conn
            .prepare_cached(&sql)?
            .query_row(params![org, id], |r| Ok((rows::event(r)?, r.get(9)?)))?;
        if size <= MAX_EVENT_JSON_BYTES {
            self.remember(id, event.clone(), size);
        }
        Ok(event)
    }

    fn remember(&mut self, id: &str, event: Event, size: usize) {
        self.by_id.insert(id.to_owned(), event);
        self.order.push_back((id.to_owned(), size));
        self.json_bytes += size;
        while self.order.len() > MAX_EVENTS || self.json_bytes > MAX_JSON_BYTES {
            let Some((oldest, size)) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(&oldest);
            self.json_bytes -= size;
        }
    }

    pub fn forget(&mut self) {
        self.by_id.clear();
        self.order.clear();
        self.json_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_table() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::sqlite::schema::migrate(&mut conn).unwrap();
        conn
    }

    fn store_event(conn: &Connection, org: &str, id: &str, data: &str) {
        conn.execute(
            "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data,
                                 deliveries)
             VALUES (?1, ?2, 's', 1, 'a.b', 'user', 0, ?3, 1)",
            params![id, org, data],
        )
        .unwrap();
    }

    #[test]
    fn a_remembered_event_is_answered_without_reading_the_table() {
        let conn = events_table();
        store_event(&conn, "org_1", "evt_1", r#"{"n":1}"#);
        let mut events = ClaimedEvents::default();
        let first = events.get(&conn, "org_1", "evt_1").unwrap();
        assert_eq!(first.data["n"], 1);
        conn.execute("DELETE FROM events", []).unwrap();
        assert_eq!(events.get(&conn, "org_1", "evt_1").unwrap(), first);
        assert!(
            events.get(&conn, "org_2", "evt_1").is_err(),
            "another org's id is read from the table, where it is not"
        );
        events.forget();
        assert!(events.get(&conn, "org_1", "evt_1").is_err());
    }

    #[test]
    fn the_oldest_go_first_once_the_json_budget_is_spent_and_large_ones_never_stay() {
        let conn = events_table();
        let data = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_EVENT_JSON_BYTES - 20));
        let count = MAX_JSON_BYTES / data.len() + 1;
        for n in 0..count {
            store_event(&conn, "o", &format!("evt_{n}"), &data);
        }
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_EVENT_JSON_BYTES));
        store_event(&conn, "o", "evt_big", &big);
        let mut events = ClaimedEvents::default();
        for n in 0..count {
            events.get(&conn, "o", &format!("evt_{n}")).unwrap();
        }
        events.get(&conn, "o", "evt_big").unwrap();
        assert!(events.json_bytes <= MAX_JSON_BYTES);
        assert!(!events.by_id.contains_key("evt_0"), "the oldest went");
        assert!(events.by_id.contains_key(&format!("evt_{}", count - 1)));
        assert!(!events.by_id.contains_key("evt_big"));
    }
}
