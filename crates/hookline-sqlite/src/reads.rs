//! Reads: single objects by id (always scoped to the org, so another org's id is simply
//! not found) and cursor-paginated lists with optional filters.

use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::{AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::sealed::SealedKeys;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::{rows, stream_index};
use hookline_store::request_note::{self, RequestNote};
use hookline_store::{
    ApiKeyRecord, AttemptQuery, DeliveryQuery, DestinationQuery, DueNow, EventQuery, Org, Page,
    PageRequest, StoreResult, Unfinished,
};

/// A WHERE clause built up from optional filters, with its parameters.
struct Conditions {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    fn for_org(org: &OrgId) -> Self {
        Self {
            clauses: vec!["org_id = ?".into()],
            values: vec![Value::Text(org.as_str().to_owned())],
        }
    }

    fn add(&mut self, clause: &str, value: Option<Value>) {
        if let Some(value) = value {
            self.clauses.push(clause.to_owned());
            self.values.push(value);
        }
    }

    fn add_all(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) {
        self.clauses.push(clause.to_owned());
        self.values.extend(values);
    }

    /// Runs `SELECT columns FROM table WHERE … ORDER BY id [DESC] LIMIT limit+1` and pages it.
    fn page<T>(
        mut self,
        conn: &Connection,
        table: Table,
        page: &PageRequest,
        map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
        cursor_of: impl Fn(&T) -> String,
    ) -> StoreResult<Page<T>> {
        let Table {
            columns,
            name: table,
            newest_first,
        } = table;
        let (cmp, order) = if newest_first {
            ("id < ?", "DESC")
        } else {
            ("id > ?", "ASC")
        };
        self.add(cmp, page.cursor.clone().map(Value::Text));
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE {} ORDER BY id {order} LIMIT {}",
            self.clauses.join(" AND "),
            page.limit + 1
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(self.values), map)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit, cursor_of))
    }
}

/// What a list reads, and in which order: ids are time-ordered, so by id is by age.
struct Table {
    columns: &'static str,
    name: &'static str,
    newest_first: bool,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub fn org_for_key(conn: &Connection, key_hash: &str) -> StoreResult<Option<OrgId>> {
    Ok(conn
        .prepare_cached("SELECT org_id FROM api_keys WHERE key_hash = ?1")?
        .query_row(params![key_hash], |r| r.get(0))
        .optional()?
        .map(OrgId::from_trusted))
}

pub fn org_signing_keys(conn: &Connection, org: &OrgId) -> StoreResult<Option<SealedKeys>> {
    let keys: Option<Option<String>> = conn
        .prepare_cached("SELECT signing_keys FROM orgs WHERE id = ?1")?
        .query_row(params![org.as_str()], |r| r.get(0))
        .optional()?;
    Ok(keys.flatten().map(SealedKeys::from_stored))
}

pub fn due_now(conn: &Connection, now: Millis) -> StoreResult<DueNow> {
    let (count, oldest): (i64, Option<Millis>) = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(run_at) FROM deliveries
             WHERE state IN ('pending', 'failed') AND run_at <= ?1
               AND destination_id NOT IN (SELECT id FROM destinations WHERE enabled = 0)",
        )?
        .query_row(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(DueNow {
        count: count as u64,
        oldest,
    })
}

pub fn list_orgs(conn: &Connection) -> StoreResult<Vec<Org>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, created_at FROM orgs WHERE deleted_at IS NULL
         ORDER BY created_at, id",
    )?;
    let orgs = stmt
        .query_map([], |r| {
            Ok(Org {
                id: OrgId::from_trusted(r.get(0)?),
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(orgs)
}

pub fn list_api_keys(conn: &Connection, org: &OrgId) -> StoreResult<Vec<ApiKeyRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, org_id, key_hash, display_prefix, created_at FROM api_keys
         WHERE org_id = ?1 ORDER BY id",
    )?;
    let keys = stmt
        .query_map(params![org.as_str()], |r| {
            Ok(ApiKeyRecord {
                id: hookline_core::ids::ApiKeyId::from_trusted(r.get(0)?),
                org_id: OrgId::from_trusted(r.get(1)?),
                key_hash: r.get(2)?,
                display_prefix: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(keys)
}

pub fn get_event(conn: &Connection, org: &OrgId, id: &EventId) -> StoreResult<Option<Event>> {
    let sql = format!(
        "SELECT {} FROM events WHERE id = ?1 AND org_id = ?2",
        rows::EVENT_COLUMNS
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id.as_str(), org.as_str()], rows::event)
        .optional()?)
}

pub fn list_events(conn: &Connection, org: &OrgId, q: &EventQuery) -> StoreResult<Page<Event>> {
    let mut c = Conditions::for_org(org);
    match &q.stream {
        // The stream's own tables apply `after_seq` too.
        Some(stream) => {
            let after = Value::Integer(q.after_seq.unwrap_or(0));
            let (org, stream) = (text(org.as_str()), text(stream.as_str()));
            let once = [org, stream, after];
            c.add_all(
                stream_index::IN_STREAM,
                once.clone().into_iter().chain(once),
            );
        }
        None => c.add("seq > ?", q.after_seq.map(Value::Integer)),
    }
    c.add("type = ?", q.event_type.as_ref().map(|t| text(t.as_str())));
    c.page(
        conn,
        Table {
            columns: rows::EVENT_COLUMNS,
            name: "events",
            newest_first: q.newest_first,
        },
        &q.page,
        rows::event,
        |e| e.id.to_string(),
    )
}

pub fn get_destination(
    conn: &Connection,
    org: &OrgId,
    id: &DestinationId,
) -> StoreResult<Option<Destination>> {
    let sql = format!(
        "SELECT {} FROM destinations
         WHERE id = ?1 AND org_id = ?2 AND deleted_at IS NULL AND one_shot = 0",
        rows::DESTINATION_COLUMNS
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id.as_str(), org.as_str()], rows::destination)
        .optional()?)
}

pub fn list_destinations(
    conn: &Connection,
    org: &OrgId,
    q: &DestinationQuery,
) -> StoreResult<Page<Destination>> {
    let mut c = Conditions::for_org(org);
    c.clauses.push("deleted_at IS NULL AND one_shot = 0".into());
    c.add("stream = ?", q.stream.as_ref().map(|s| text(s.as_str())));
    c.page(
        conn,
        Table {
            columns: rows::DESTINATION_COLUMNS,
            name: "destinations",
            newest_first: false,
        },
        &q.page,
        rows::destination,
        |d| d.id.to_string(),
    )
}

pub fn get_delivery(
    conn: &Connection,
    org: &OrgId,
    id: &DeliveryId,
) -> StoreResult<Option<Delivery>> {
    let sql = format!(
        "SELECT {} FROM deliveries WHERE id = ?1 AND org_id = ?2",
        rows::DELIVERY_COLUMNS
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![id.as_str(), org.as_str()], rows::delivery)
        .optional()?)
}

pub fn list_deliveries(
    conn: &Connection,
    org: &OrgId,
    q: &DeliveryQuery,
) -> StoreResult<Page<Delivery>> {
    let mut c = Conditions::for_org(org);
    c.add(
        "destination_id = ?",
        q.destination.as_ref().map(|d| text(d.as_str())),
    );
    c.add("state = ?", q.status.map(|s| text(s.as_str())));
    c.add("stream = ?", q.stream.as_ref().map(|s| text(s.as_str())));
    c.add(
        "event_type = ?",
        q.event_type.as_ref().map(|t| text(t.as_str())),
    );
    c.add("created_at >= ?", q.since.map(Value::Integer));
    c.add("created_at < ?", q.until.map(Value::Integer));
    c.page(
        conn,
        Table {
            columns: rows::DELIVERY_COLUMNS,
            name: "deliveries",
            newest_first: true,
        },
        &q.page,
        rows::delivery,
        |d| d.id.to_string(),
    )
}

pub fn list_attempts(
    conn: &Connection,
    org: &OrgId,
    q: &AttemptQuery,
) -> StoreResult<Page<Attempt>> {
    // One delivery's attempts are found by `attempts_delivery`; the unary `+` keeps the
    // planner from walking the org's whole history by `attempts_org` instead.
    let mut c = match &q.delivery {
        Some(_) => Conditions {
            clauses: vec!["+org_id = ?".into()],
            values: vec![text(org.as_str())],
        },
        None => Conditions::for_org(org),
    };
    c.add(
        "destination_id = ?",
        q.destination.as_ref().map(|d| text(d.as_str())),
    );
    c.add(
        "delivery_id = ?",
        q.delivery.as_ref().map(|d| text(d.as_str())),
    );
    c.add(
        "event_type = ?",
        q.event_type.as_ref().map(|t| text(t.as_str())),
    );
    c.add(
        "response_status = ?",
        q.status_code.map(|s| Value::Integer(s.into())),
    );
    c.add("error_kind = ?", q.error.map(|k| text(k.as_str())));
    c.add("started_at >= ?", q.since.map(Value::Integer));
    c.add("started_at < ?", q.until.map(Value::Integer));
    let noted = c.page(
        conn,
        Table {
            columns: rows::ATTEMPT_COLUMNS,
            name: "attempts",
            newest_first: true,
        },
        &q.page,
        rows::attempt,
        |(a, _)| a.id.to_string(),
    )?;
    Ok(Page {
        data: rebuild(conn, org, noted.data)?,
        next_cursor: noted.next_cursor,
    })
}

pub fn get_attempt(conn: &Connection, org: &OrgId, id: &AttemptId) -> StoreResult<Option<Attempt>> {
    let sql = format!(
        "SELECT {} FROM attempts WHERE id = ?1 AND org_id = ?2",
        rows::ATTEMPT_COLUMNS
    );
    let noted = conn
        .prepare_cached(&sql)?
        .query_row(params![id.as_str(), org.as_str()], rows::attempt)
        .optional()?;
    Ok(rebuild(conn, org, noted.into_iter().collect())?.pop())
}

/// The attempts' requests as sent, from the events their notes stand for.
fn rebuild(
    conn: &Connection,
    org: &OrgId,
    noted: Vec<(Attempt, RequestNote)>,
) -> StoreResult<Vec<Attempt>> {
    let events = request_note::events_to_read(&noted)
        .into_iter()
        .map(|id| get_event(conn, org, id))
        .filter_map(Result::transpose)
        .collect::<StoreResult<Vec<_>>>()?;
    request_note::rebuild(noted, &events)
}

/// Counted through the partial due and lease indexes (named, so the planner never walks an
/// org's or a destination's whole history instead).
pub fn unfinished(
    conn: &Connection,
    org: &OrgId,
    destination: Option<&DestinationId>,
) -> StoreResult<Unfinished> {
    let mut counts = Unfinished::default();
    let one = match destination {
        Some(_) => "AND destination_id = ?2",
        None => "",
    };
    for (index, states) in [
        (
            "deliveries_destination_due",
            "state IN ('pending', 'failed')",
        ),
        ("deliveries_leased", "state = 'delivering'"),
    ] {
        let sql = format!(
            "SELECT state, COUNT(*) FROM deliveries INDEXED BY {index}
             WHERE {states} AND org_id = ?1 {one} GROUP BY state"
        );
        let mut select = conn.prepare_cached(&sql)?;
        let mut rows = match destination {
            Some(d) => select.query(params![org.as_str(), d.as_str()])?,
            None => select.query(params![org.as_str()])?,
        };
        while let Some(row) = rows.next()? {
            counts.add(&row.get::<_, String>(0)?, row.get(1)?)?;
        }
    }
    Ok(counts)
}
