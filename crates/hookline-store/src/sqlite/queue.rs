//! The delivery queue: claiming due deliveries under a lease, recording what their
//! attempts came to, and handing leases back. Claims never stay open across an HTTP
//! call: the transaction that leases a batch commits before anything is sent.

use std::collections::HashMap;

use hookline_core::clock::Millis;
use hookline_core::delivery::ErrorKind;
use hookline_core::event::Event;
use hookline_core::ids::DeliveryId;
use rusqlite::{Connection, OptionalExtension, params};

use super::cache::DestinationCache;
use super::rows;
use crate::{ClaimRequest, ClaimedDelivery, Completion, NextStep, StoreResult};

/// How many candidate rows to look at per delivery claimed, so that destinations at
/// their in-flight limit do not starve the claim.
const CANDIDATES_PER_CLAIM: u32 = 4;

/// Makes every lease expire now; only sound while this process owns the database file.
pub fn expire_all_leases(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE deliveries SET lease_until = 0 WHERE state = 'delivering'",
        [],
    )
}

pub fn claim(
    conn: &Connection,
    cache: &mut DestinationCache,
    req: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    // Destinations this node already has at their limit are left out of the scan, so
    // their backlog cannot fill the candidate window and starve everyone else.
    let mut saturated = Vec::new();
    for (id, count) in &req.in_flight {
        if *count >= cache.by_id(conn, id.as_str())?.settings.max_in_flight {
            saturated.push(id.as_str());
        }
    }
    let saturated = serde_json::to_string(&saturated).expect("strings serialize");
    let window = req.limit * CANDIDATES_PER_CLAIM;
    let mut candidates: Vec<(String, String)> = Vec::new();
    for (condition, order) in [
        (
            "d.state = 'delivering' AND d.lease_until <= ?1",
            "d.lease_until",
        ),
        (
            "d.state IN ('pending', 'failed') AND d.run_at <= ?1",
            "d.run_at, d.id",
        ),
    ] {
        let sql = format!(
            "SELECT d.id, d.destination_id FROM deliveries d
             JOIN destinations t ON t.id = d.destination_id
             WHERE {condition} AND t.enabled = 1 AND t.deleted_at IS NULL
               AND d.destination_id NOT IN (SELECT value FROM json_each(?3))
             ORDER BY {order} LIMIT ?2"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![req.now, window, saturated], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        candidates.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    }

    let mut busy: HashMap<String, u32> = req
        .in_flight
        .iter()
        .map(|(id, n)| (id.as_str().to_owned(), *n))
        .collect();
    let mut chosen = Vec::new();
    for (delivery_id, destination_id) in candidates {
        if chosen.len() >= req.limit as usize {
            break;
        }
        let destination = cache.by_id(conn, &destination_id)?;
        let count = busy.entry(destination_id).or_default();
        if *count < destination.settings.max_in_flight {
            *count += 1;
            chosen.push((delivery_id, destination));
        }
    }

    let mut lease = conn.prepare_cached(
        "UPDATE deliveries SET state = 'delivering', lease_until = ?1, leased_by = ?2,
             attempts = attempts + 1, updated_at = ?3
         WHERE id = ?4 RETURNING attempts, event_id",
    )?;
    let event_sql = format!("SELECT {} FROM events WHERE id = ?1", rows::EVENT_COLUMNS);
    let mut load_event = conn.prepare_cached(&event_sql)?;
    // Fan-out claims the same event for many destinations: read each once.
    let mut events: HashMap<String, Event> = HashMap::new();
    let mut claimed = Vec::with_capacity(chosen.len());
    for (delivery_id, destination) in chosen {
        let lease_until =
            req.now + i64::from(destination.settings.timeout_secs) * 1000 + req.lease_margin_ms;
        let (attempt, event_id): (u32, String) = lease.query_row(
            params![lease_until, req.node_id, req.now, delivery_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let event = match events.get(&event_id) {
            Some(event) => event.clone(),
            None => {
                let event = load_event.query_row(params![event_id], rows::event)?;
                events.insert(event_id, event.clone());
                event
            }
        };
        claimed.push(ClaimedDelivery {
            delivery_id: DeliveryId::from_trusted(delivery_id),
            attempt,
            event,
            destination,
        });
    }
    Ok(claimed)
}

pub fn complete(
    conn: &Connection,
    cache: &mut DestinationCache,
    completions: &[Completion],
) -> StoreResult<()> {
    let mut insert_attempt = conn.prepare_cached(&format!(
        "INSERT INTO attempts ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
             ?13, ?14, ?15, ?16, ?17, ?18)",
        rows::ATTEMPT_COLUMNS
    ))?;
    let mut update_delivery = conn.prepare_cached(
        "UPDATE deliveries SET state = ?1, run_at = ?2, lease_until = NULL, leased_by = NULL,
             last_attempt_at = ?3, response_code = ?4, error = ?5, updated_at = ?6
         WHERE id = ?7 AND state = 'delivering' AND leased_by = ?8",
    )?;
    let mut update_health = conn.prepare_cached(
        "UPDATE destinations SET last_attempt_at = ?1,
             last_success_at = CASE WHEN ?2 THEN ?1 ELSE last_success_at END,
             consecutive_failures = CASE WHEN ?2 THEN 0 ELSE consecutive_failures + 1 END
         WHERE id = ?3",
    )?;
    for c in completions {
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
            serde_json::to_string(&a.request_headers).expect("strings serialize"),
            a.request_body,
            a.response_status,
            serde_json::to_string(&a.response_headers).expect("strings serialize"),
            a.response_body,
            a.response_truncated,
            a.latency_ms,
            a.error_kind.map(ErrorKind::as_str),
            a.error_message,
        ])?;
        let (state, run_at) = match c.next {
            NextStep::Delivered => ("delivered", None),
            NextStep::RetryAt(at) => ("failed", Some(at)),
            NextStep::DeadLetter | NextStep::Gone => ("dead_letter", None),
        };
        let error = match (a.error_kind, a.response_status) {
            (Some(ErrorKind::HttpStatus), Some(status)) => Some(format!("HTTP {status}")),
            _ => a.error_message.clone(),
        };
        update_delivery.execute(params![
            state,
            run_at,
            a.started_at,
            a.response_status,
            error,
            c.now,
            a.delivery_id.as_str(),
            c.node_id,
        ])?;
        let success = c.next == NextStep::Delivered;
        update_health.execute(params![a.started_at, success, a.destination_id.as_str()])?;
        if c.next == NextStep::Gone {
            cache.forget_org(a.org_id.as_str());
            conn.execute(
                "UPDATE destinations SET enabled = 0, disabled_reason = 'gone', updated_at = ?1
                 WHERE id = ?2",
                params![c.now, a.destination_id.as_str()],
            )?;
        }
    }
    Ok(())
}

pub fn release(
    conn: &Connection,
    node_id: &str,
    ids: &[DeliveryId],
    now: Millis,
) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET
             state = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
             attempts = attempts - 1, run_at = ?1, lease_until = NULL, leased_by = NULL,
             updated_at = ?1
         WHERE id = ?2 AND leased_by = ?3 AND state = 'delivering'",
    )?;
    for id in ids {
        stmt.execute(params![now, id.as_str(), node_id])?;
    }
    Ok(())
}

pub fn next_due_at(conn: &Connection) -> StoreResult<Option<Millis>> {
    let due: Option<Millis> = conn
        .query_row(
            "SELECT d.run_at FROM deliveries d JOIN destinations t ON t.id = d.destination_id
             WHERE d.state IN ('pending', 'failed') AND t.enabled = 1 AND t.deleted_at IS NULL
             ORDER BY d.run_at LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let lease: Option<Millis> = conn.query_row(
        "SELECT MIN(lease_until) FROM deliveries WHERE state = 'delivering'",
        [],
        |r| r.get(0),
    )?;
    Ok(match (due, lease) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
