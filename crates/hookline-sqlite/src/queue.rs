//! The delivery queue: claiming due deliveries under a lease, recording what their
//! attempts came to, and handing leases back. Claims never stay open across an HTTP
//! call: the transaction that leases a batch commits before anything is sent.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::delivery::ErrorKind;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::{DeliveryId, OrgId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::WriterState;
use crate::rows;
use hookline_core::auto_disable::{AutoDisable, FailingSince, destination_disabled};
use hookline_core::retry::NextStep;
use hookline_store::health::HealthDelta;
use hookline_store::rollups;
use hookline_store::{ClaimRequest, ClaimedDelivery, CompletedBatch, Handback, StoreResult};

/// Makes every lease expire now; only sound while this process owns the database file.
pub fn expire_all_leases(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE deliveries SET lease_until = 0 WHERE state = 'delivering'",
        [],
    )
}

/// The condition that delivery `d` of an ordered destination is the head of its stream
/// (`ordered = 1` lets the partial stream-order index answer it).
const NOT_BEHIND_ANOTHER: &str = "NOT EXISTS (SELECT 1 FROM deliveries e
     WHERE e.destination_id = d.destination_id AND e.stream = d.stream
       AND e.event_seq < d.event_seq AND e.ordered = 1
       AND e.state IN ('pending', 'failed', 'delivering'))";

/// Up to `?3` of destination `?1`'s rows due by `?2` (those meeting `extra` too), the
/// longest-waiting first: each row's rowid, id, next attempt number and event.
fn due_rows_sql(extra: &str) -> String {
    format!(
        "SELECT d.rowid, d.id, d.attempts + 1, d.event_id FROM deliveries d
         WHERE d.destination_id = ?1 AND d.state IN ('pending', 'failed')
           AND d.run_at <= ?2 {extra}
         ORDER BY d.run_at, d.id LIMIT ?3"
    )
}

/// A leased row on its way out of `claim`.
struct Leased {
    rowid: i64,
    delivery_id: DeliveryId,
    attempt: u32,
    event_id: String,
    destination: Arc<Destination>,
}

/// The statements that find a destination's due rows.
struct DueRows<'conn> {
    any: rusqlite::CachedStatement<'conn>,
    heads: rusqlite::CachedStatement<'conn>,
}

impl DueRows<'_> {
    /// Up to `cap` of `destination_id`'s due rows (fewer if it has fewer free places),
    /// not yet leased. Parks a disabled destination, and forgets a destination's due
    /// time once it has nothing more due.
    fn take(
        &mut self,
        conn: &Connection,
        state: &mut WriterState,
        req: &ClaimRequest,
        destination_id: &str,
        cap: usize,
    ) -> StoreResult<Vec<Leased>> {
        let destination = state.destinations.by_id(conn, destination_id)?;
        if !destination.settings.enabled {
            state.due().park(destination_id);
            return Ok(Vec::new());
        }
        let held = req.node.held(&destination.id);
        let room = (destination.settings.max_in_flight.saturating_sub(held) as usize).min(cap);
        if room == 0 {
            return Ok(Vec::new());
        }
        let statement = match destination.settings.ordered {
            true => &mut self.heads,
            false => &mut self.any,
        };
        let rows: Vec<Leased> = statement
            .query_map(params![destination_id, req.now, room], |r| {
                Ok(Leased {
                    rowid: r.get(0)?,
                    delivery_id: DeliveryId::from_trusted(r.get(1)?),
                    attempt: r.get(2)?,
                    event_id: r.get(3)?,
                    destination: destination.clone(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        if rows.len() < room {
            state.due().refresh(conn, destination_id)?;
        }
        Ok(rows)
    }
}

pub fn claim(
    conn: &Connection,
    state: &mut WriterState,
    req: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    // Publishes since the dispatcher asked may have taken places on this node.
    let limit = (req.limit as usize).min(req.node.room());
    // Every row is leased by rowid once found: no second search by id, and no RETURNING,
    // which buffers its rows in a temporary table for every statement run.
    let mut lease_row = conn.prepare_cached(
        "UPDATE deliveries SET state = 'delivering', lease_until = ?1, leased_by = ?2,
             attempts = attempts + 1, updated_at = ?3
         WHERE rowid = ?4",
    )?;
    let mut lease = |state: &mut WriterState, taken: &Leased| -> StoreResult<()> {
        let until = req.node.claim_lease_until(&taken.destination, req.now, 0);
        lease_row.execute(params![until, req.node.node_id(), req.now, taken.rowid])?;
        state
            .leases
            .hold(&req.node, &taken.delivery_id, &taken.destination);
        Ok(())
    };
    let mut leased: Vec<Leased> = Vec::new();

    // Expired leases first: the node that held them died.
    let expired: Vec<(i64, String, u32, String, String)> = conn
        .prepare_cached(
            "SELECT rowid, id, attempts + 1, event_id, destination_id FROM deliveries
             WHERE state = 'delivering' AND lease_until <= ?1 ORDER BY lease_until LIMIT ?2",
        )?
        .query_map(params![req.now, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (rowid, delivery_id, attempt, event_id, destination_id) in expired {
        let destination = state.destinations.by_id(conn, &destination_id)?;
        let held = req.node.held(&destination.id);
        if destination.settings.enabled && held < destination.settings.max_in_flight {
            let taken = Leased {
                rowid,
                delivery_id: DeliveryId::from_trusted(delivery_id),
                attempt,
                event_id,
                destination,
            };
            lease(state, &taken)?;
            leased.push(taken);
        }
    }

    // Then due rows, destination by destination, each up to its free in-flight places.
    // The first pass gives each due destination an even share of the batch, so the
    // destinations of a fan-out take the same events and each event is read once below
    // (taking one destination's whole share at a time read every event once per
    // destination); the second pass lets those with more due work take what is left.
    let round = state.due().due_round(req.now);
    let share = limit.div_ceil(round.len().max(1));
    let mut due = DueRows {
        any: conn.prepare_cached(&due_rows_sql(""))?,
        // Ordered destinations: only each stream's head, the earliest unfinished delivery.
        heads: conn.prepare_cached(&due_rows_sql(&format!("AND {NOT_BEHIND_ANOTHER}")))?,
    };
    let mut more_due = Vec::new();
    for destination_id in round {
        let cap = share.min(limit - leased.len());
        if cap == 0 {
            break;
        }
        let rows = due.take(conn, state, req, &destination_id, cap)?;
        let took_all = rows.len() == cap;
        for taken in rows {
            lease(state, &taken)?;
            leased.push(taken);
        }
        if took_all {
            more_due.push(destination_id);
        }
    }
    for destination_id in more_due {
        let cap = limit - leased.len();
        if cap == 0 {
            break;
        }
        for taken in due.take(conn, state, req, &destination_id, cap)? {
            lease(state, &taken)?;
            leased.push(taken);
        }
    }

    leased
        .into_iter()
        .map(|l| {
            // A delivery's event is its destination's org's.
            let event = cached_event(conn, state, l.destination.org_id.as_str(), &l.event_id)?;
            Ok(ClaimedDelivery {
                delivery_id: l.delivery_id,
                attempt: l.attempt,
                event,
                lease_until: req.node.claim_lease_until(&l.destination, req.now, 0),
                destination: l.destination,
                row_hint: Some(l.rowid),
            })
        })
        .collect()
}

/// Event `event_id` of `org_id`, from the writer's cache or else read and kept there.
fn cached_event(
    conn: &Connection,
    state: &mut WriterState,
    org_id: &str,
    event_id: &str,
) -> StoreResult<Arc<Event>> {
    // Ids are unique across orgs, but an event is never handed to another org's
    // delivery on the strength of that alone.
    if let Some(event) = state.events.get(event_id)
        && event.org_id.as_str() == org_id
    {
        return Ok(event);
    }
    let sql = format!(
        "SELECT {}, octet_length(data) + coalesce(octet_length(raw), 0) FROM events
         WHERE org_id = ?1 AND id = ?2",
        rows::EVENT_COLUMNS
    );
    let (event, data_bytes) = conn
        .prepare_cached(&sql)?
        .query_row(params![org_id, event_id], |r| {
            Ok((Arc::new(rows::event(r)?), r.get::<_, usize>(9)?))
        })?;
    state.events.keep(&event, data_bytes);
    Ok(event)
}

/// Moves a leased delivery on after its attempt. The claim's rowid (?10) spares the
/// search through `deliveries_org`; the row must still be the delivery's, and `complete`
/// runs a hint that finds nothing again without it.
const FINISH_DELIVERY: &str = "UPDATE deliveries SET state = ?1, run_at = ?2, lease_until = NULL,
         leased_by = NULL, last_attempt_at = ?3, response_code = ?4, error = ?5, updated_at = ?6
     WHERE rowid = coalesce(?10, (SELECT rowid FROM deliveries WHERE org_id = ?9 AND id = ?7))
       AND org_id = ?9 AND id = ?7 AND state = 'delivering' AND leased_by = ?8";

pub fn complete(
    conn: &Connection,
    state: &mut WriterState,
    batch: &CompletedBatch,
) -> StoreResult<()> {
    let mut insert_attempt = conn.prepare_cached(&format!(
        "INSERT INTO attempts ({})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20)",
        rows::ATTEMPT_COLUMNS
    ))?;
    let mut update_delivery = conn.prepare_cached(FINISH_DELIVERY)?;
    let mut health: HashMap<&str, HealthDelta> = HashMap::new();
    for c in &batch.completions {
        let a = &c.attempt;
        insert_attempt.execute(params![
            a.id.as_str(),
            a.org_id.as_str(),
            a.delivery_id.as_str(),
            a.destination_id.as_str(),
            a.event_id.as_str(),
            a.event_type,
            a.number,
            a.started_at,
            a.url,
            c.request_headers_json,
            a.request_body,
            a.response_status,
            c.response_headers_json,
            a.response_body,
            a.response_truncated,
            a.latency_ms,
            a.error_kind.map(ErrorKind::as_str),
            a.error_message,
            c.note.body.code(),
            c.note.headers_from_event,
        ])?;
        let (new_state, run_at) = c.next_state();
        let error = c.delivery_error();
        let mut finish = |row_hint: Option<i64>| {
            update_delivery.execute(params![
                new_state,
                run_at,
                a.started_at,
                a.response_status,
                error,
                c.now,
                a.delivery_id.as_str(),
                batch.node_id,
                a.org_id.as_str(),
                row_hint,
            ])
        };
        let changed = match finish(c.row_hint)? {
            0 if c.row_hint.is_some() => finish(None)?,
            changed => changed,
        };
        if let (NextStep::RetryAt(at), 1) = (c.next, changed) {
            state.due().mark(a.destination_id.as_str(), at);
        }
        // An intercepted attempt was never sent: it says nothing of the receiver's health.
        if c.next != NextStep::Intercepted {
            health
                .entry(a.destination_id.as_str())
                .or_default()
                .record(a.started_at, c.next == NextStep::Delivered);
        }
        if c.next == NextStep::Gone {
            state.destination_changed(a.org_id.as_str(), a.destination_id.as_str());
            state.due().park(a.destination_id.as_str());
            conn.execute(
                "UPDATE destinations SET enabled = 0, disabled_reason = 'gone', updated_at = ?1
                 WHERE id = ?2",
                params![c.now, a.destination_id.as_str()],
            )?;
        }
    }
    let mut update_health = conn.prepare_cached(
        "UPDATE destinations SET
             last_attempt_at = MAX(COALESCE(last_attempt_at, 0), ?1),
             last_success_at = CASE WHEN ?2 IS NULL THEN last_success_at
                                    ELSE MAX(COALESCE(last_success_at, 0), ?2) END,
             consecutive_failures = CASE WHEN ?2 IS NULL THEN consecutive_failures + ?3
                                         ELSE ?3 END
         WHERE id = ?4",
    )?;
    let now = batch
        .completions
        .iter()
        .map(|c| c.now)
        .max()
        .unwrap_or_default();
    for (destination_id, delta) in health {
        update_health.execute(params![
            delta.last_attempt_at,
            delta.last_success_at,
            delta.failures_since_success,
            destination_id
        ])?;
        if delta.last_success_at.is_none() {
            auto_disable(conn, state, destination_id, batch.auto_disable, now)?;
        }
    }
    add_rollups(conn, batch)
}

/// Adds the batch's attempts to their destinations' per-minute rollups.
fn add_rollups(conn: &Connection, batch: &CompletedBatch) -> StoreResult<()> {
    static UPSERT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = UPSERT.get_or_init(|| rollups::upsert(|n| format!("?{n}")));
    let mut upsert = conn.prepare_cached(sql)?;
    for ((destination, bucket), (org, rollup)) in rollups::of_batch(&batch.completions) {
        let counters = rollups::counters(&rollup);
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&destination, &bucket, &org];
        values.extend(counters.iter().map(|c| c as &dyn rusqlite::ToSql));
        upsert.execute(values.as_slice())?;
    }
    Ok(())
}

/// Disables the destination if `rule` says it has only failed for long enough, and says
/// so on the org's `hookline` stream.
fn auto_disable(
    conn: &Connection,
    state: &mut WriterState,
    destination_id: &str,
    rule: AutoDisable,
    now: Millis,
) -> StoreResult<()> {
    let failing = conn
        .prepare_cached(
            "SELECT org_id, consecutive_failures, COALESCE(last_success_at, created_at)
             FROM destinations WHERE id = ?1 AND enabled = 1",
        )?
        .query_row(params![destination_id], |r| {
            let failing = FailingSince {
                consecutive_failures: r.get(1)?,
                since: r.get(2)?,
            };
            Ok((r.get::<_, String>(0)?, failing))
        })
        .optional()?;
    let Some((org, failing)) = failing.filter(|(_, failing)| rule.disables(*failing, now)) else {
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE destinations SET enabled = 0, disabled_reason = 'failing', updated_at = ?1
         WHERE id = ?2",
    )?
    .execute(params![now, destination_id])?;
    tracing::warn!(
        destination = destination_id,
        failures = failing.consecutive_failures,
        "a destination that only failed is disabled (auto-disable)"
    );
    let org = OrgId::from_trusted(org);
    state.destination_changed(org.as_str(), destination_id);
    state.due().park(destination_id);
    crate::publish::publish(
        conn,
        state,
        &org,
        destination_disabled(destination_id, failing.consecutive_failures),
        now,
    )?;
    Ok(())
}

pub fn release(
    conn: &Connection,
    state: &mut WriterState,
    node_id: &str,
    handbacks: &[Handback],
    now: Millis,
) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET
             state = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
             attempts = attempts - 1, run_at = ?1, lease_until = NULL, leased_by = NULL,
             updated_at = ?4
         WHERE org_id = ?5 AND id = ?2 AND leased_by = ?3 AND state = 'delivering'
         RETURNING destination_id",
    )?;
    for h in handbacks {
        let key = (h.delivery_id.as_str(), h.org_id.as_str());
        let released: Option<String> = stmt
            .query_row(params![h.run_at, key.0, node_id, now, key.1], |r| r.get(0))
            .optional()?;
        if let Some(destination_id) = released {
            state.due().mark(&destination_id, h.run_at);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use hookline_core::ids::OrgId;
    use serde_json::json;

    use super::*;
    use hookline_core::testing;

    #[test]
    fn a_cached_event_of_another_org_is_passed_over_for_the_stored_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let mut state = WriterState::default();
        let stored = testing::event_for(&Arc::new(testing::destination()));
        conn.execute(
            "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data,
                                 deliveries)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
            params![
                stored.id.as_str(),
                stored.org_id.as_str(),
                stored.stream.as_str(),
                stored.seq,
                stored.event_type.as_str(),
                stored.level.as_str(),
                stored.timestamp,
                stored.data.to_string(),
            ],
        )
        .unwrap();
        let mut impostor = stored.clone();
        impostor.org_id = OrgId::generate();
        impostor.data = json!({"another": "org's data"});
        state.events.keep(&Arc::new(impostor), 32);

        let org = stored.org_id.as_str();
        let found = cached_event(&conn, &mut state, org, stored.id.as_str()).unwrap();
        assert_eq!(*found, stored);
    }

    #[test]
    fn a_completion_goes_to_its_row_by_rowid_and_to_the_org_index_only_without_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FINISH_DELIVERY}"))
            .unwrap()
            .query_map([rusqlite::types::Null; 10], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            plan.starts_with("SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"),
            "{plan}"
        );
        assert!(plan.contains("INDEX deliveries_org"), "{plan}");
    }
}
