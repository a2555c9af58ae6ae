//! The queue on PostgreSQL: due rows are locked with `FOR UPDATE SKIP LOCKED`, so
//! nodes claiming at once each get different rows and never wait for one another.

use std::collections::HashMap;
use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::delivery::ErrorKind;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::DeliveryId;
use sqlx::{PgConnection, Row};

use super::{rows, writes};
use crate::health::HealthDelta;
use crate::raw::{ATTEMPT_COLUMNS, DESTINATION_COLUMNS, EVENT_COLUMNS, header_json};
use crate::{ClaimRequest, ClaimedDelivery, Completion, NextStep, StoreError, StoreResult};

/// Candidate rows locked per delivery wanted, so destinations at their limit do not
/// starve the claim.
const CANDIDATES_PER_CLAIM: i64 = 4;

async fn destinations_by_id(
    conn: &mut PgConnection,
    ids: &[String],
) -> StoreResult<HashMap<String, Arc<Destination>>> {
    let sql = format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ANY($1)");
    sqlx::query(&sql)
        .bind(ids)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| {
            let d = rows::destination(row)?;
            Ok((d.id.to_string(), Arc::new(d)))
        })
        .collect()
}

/// Deliveries in flight on any node, per destination among the candidates'. Takes a
/// transaction-level advisory lock per destination first (in sorted order, so nodes
/// cannot deadlock), so two nodes cannot both see the same free slot: `max_in_flight`
/// holds across the cluster, not per node.
async fn in_flight_everywhere(
    conn: &mut PgConnection,
    candidates: &[(String, String)],
    now: Millis,
) -> StoreResult<HashMap<String, u32>> {
    let mut ids: Vec<&str> = candidates.iter().map(|(_, d)| d.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(d)) FROM unnest($1::text[]) AS d ORDER BY d")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT destination_id, COUNT(*) FROM deliveries
         WHERE state = 'delivering' AND lease_until > $1 AND destination_id = ANY($2)
         GROUP BY destination_id",
    )
    .bind(now)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(counts.into_iter().map(|(d, n)| (d, n as u32)).collect())
}

/// Runs inside the caller's transaction; the locks it takes end at commit.
pub async fn claim(
    conn: &mut PgConnection,
    req: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let in_flight: Vec<String> = req.in_flight.keys().map(|id| id.to_string()).collect();
    let mut destinations = destinations_by_id(conn, &in_flight).await?;
    let saturated: Vec<String> = req
        .in_flight
        .iter()
        .filter(|(id, n)| {
            destinations
                .get(id.as_str())
                .is_some_and(|d| **n >= d.settings.max_in_flight)
        })
        .map(|(id, _)| id.to_string())
        .collect();
    let candidates: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.id, d.destination_id FROM deliveries d
         JOIN destinations t ON t.id = d.destination_id
         WHERE ((d.state IN ('pending', 'failed') AND d.run_at <= $1)
                OR (d.state = 'delivering' AND d.lease_until <= $1))
           AND t.enabled AND t.deleted_at IS NULL
           AND NOT (d.destination_id = ANY($3))
         ORDER BY d.run_at, d.id
         LIMIT $2
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(req.now)
    .bind(i64::from(req.limit) * CANDIDATES_PER_CLAIM)
    .bind(&saturated)
    .fetch_all(&mut *conn)
    .await?;
    let missing: Vec<String> = candidates
        .iter()
        .map(|(_, d)| d.clone())
        .filter(|d| !destinations.contains_key(d))
        .collect();
    destinations.extend(destinations_by_id(conn, &missing).await?);

    let mut busy = in_flight_everywhere(conn, &candidates, req.now).await?;
    let mut chosen = Vec::new();
    for (delivery_id, destination_id) in candidates {
        if chosen.len() >= req.limit as usize {
            break;
        }
        let Some(destination) = destinations.get(&destination_id) else {
            continue;
        };
        let count = busy.entry(destination_id).or_default();
        if *count < destination.settings.max_in_flight {
            *count += 1;
            chosen.push(delivery_id);
        }
    }
    let leased: Vec<(String, i64, String, String)> = sqlx::query_as(
        "UPDATE deliveries d SET state = 'delivering',
             lease_until = $1 + t.timeout_secs * 1000 + $2, leased_by = $3,
             attempts = d.attempts + 1, updated_at = $1
         FROM destinations t
         WHERE d.id = ANY($4) AND t.id = d.destination_id
         RETURNING d.id, d.attempts, d.event_id, d.destination_id",
    )
    .bind(req.now)
    .bind(req.lease_margin_ms)
    .bind(&req.node_id)
    .bind(&chosen)
    .fetch_all(&mut *conn)
    .await?;
    let event_ids: Vec<&str> = leased.iter().map(|(_, _, e, _)| e.as_str()).collect();
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ANY($1)");
    let events: HashMap<String, Event> = sqlx::query(&sql)
        .bind(&event_ids)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| rows::event(row).map(|e| (e.id.to_string(), e)))
        .collect::<StoreResult<_>>()?;
    leased
        .into_iter()
        .map(|(id, attempt, event_id, destination_id)| {
            let corrupt =
                || StoreError::Corrupt(format!("delivery {id} lost its event or destination"));
            Ok(ClaimedDelivery {
                event: events.get(&event_id).cloned().ok_or_else(corrupt)?,
                destination: destinations
                    .get(&destination_id)
                    .cloned()
                    .ok_or_else(corrupt)?,
                delivery_id: DeliveryId::from_trusted(id),
                attempt: attempt as u32,
            })
        })
        .collect()
}

pub async fn complete(conn: &mut PgConnection, completions: &[Completion]) -> StoreResult<()> {
    let insert_attempt = format!(
        "INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
             $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    );
    let mut health: HashMap<&str, HealthDelta> = HashMap::new();
    for c in completions {
        let a = &c.attempt;
        sqlx::query(&insert_attempt)
            .bind(a.id.as_str())
            .bind(a.org_id.as_str())
            .bind(a.delivery_id.as_str())
            .bind(a.destination_id.as_str())
            .bind(a.event_id.as_str())
            .bind(&a.event_type)
            .bind(i64::from(a.number))
            .bind(a.started_at)
            .bind(&a.url)
            .bind(header_json(&a.request_headers))
            .bind(&a.request_body)
            .bind(a.response_status.map(i64::from))
            .bind(header_json(&a.response_headers))
            .bind(&a.response_body)
            .bind(a.response_truncated)
            .bind(a.latency_ms)
            .bind(a.error_kind.map(ErrorKind::as_str))
            .bind(&a.error_message)
            .execute(&mut *conn)
            .await?;
        let (state, run_at) = match c.next {
            NextStep::Delivered => ("delivered", None),
            NextStep::RetryAt(at) => ("failed", Some(at)),
            NextStep::DeadLetter | NextStep::Gone => ("dead_letter", None),
        };
        let error = match (a.error_kind, a.response_status) {
            (Some(ErrorKind::HttpStatus), Some(status)) => Some(format!("HTTP {status}")),
            _ => a.error_message.clone(),
        };
        sqlx::query(
            "UPDATE deliveries SET state = $1, run_at = $2, lease_until = NULL, leased_by = NULL,
                 last_attempt_at = $3, response_code = $4, error = $5, updated_at = $6
             WHERE id = $7 AND state = 'delivering' AND leased_by = $8",
        )
        .bind(state)
        .bind(run_at)
        .bind(a.started_at)
        .bind(a.response_status.map(i64::from))
        .bind(error)
        .bind(c.now)
        .bind(a.delivery_id.as_str())
        .bind(&c.node_id)
        .execute(&mut *conn)
        .await?;
        health
            .entry(a.destination_id.as_str())
            .or_default()
            .record(a.started_at, c.next == NextStep::Delivered);
        if c.next == NextStep::Gone {
            sqlx::query(
                "UPDATE destinations SET enabled = FALSE, disabled_reason = 'gone', updated_at = $1
                 WHERE id = $2",
            )
            .bind(c.now)
            .bind(a.destination_id.as_str())
            .execute(&mut *conn)
            .await?;
        }
    }
    for (destination_id, delta) in health {
        sqlx::query(
            "UPDATE destinations SET
                 last_attempt_at = GREATEST(COALESCE(last_attempt_at, 0), $1),
                 last_success_at = CASE WHEN $2::BIGINT IS NULL THEN last_success_at
                                        ELSE GREATEST(COALESCE(last_success_at, 0), $2) END,
                 consecutive_failures = CASE WHEN $2::BIGINT IS NULL
                                             THEN consecutive_failures + $3 ELSE $3 END
             WHERE id = $4",
        )
        .bind(delta.last_attempt_at)
        .bind(delta.last_success_at)
        .bind(delta.failures_since_success)
        .bind(destination_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn release(
    conn: &mut PgConnection,
    node_id: &str,
    ids: &[DeliveryId],
    now: Millis,
) -> StoreResult<()> {
    let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
    sqlx::query(
        "UPDATE deliveries SET
             state = CASE WHEN attempts > 1 THEN 'failed' ELSE 'pending' END,
             attempts = attempts - 1, run_at = $1, lease_until = NULL, leased_by = NULL,
             updated_at = $1
         WHERE id = ANY($2) AND leased_by = $3 AND state = 'delivering'",
    )
    .bind(now)
    .bind(&ids)
    .bind(node_id)
    .execute(&mut *conn)
    .await?;
    writes::notify_work(conn).await
}

pub async fn next_due_at(conn: &mut PgConnection) -> StoreResult<Option<Millis>> {
    let row = sqlx::query(
        "SELECT
             (SELECT d.run_at FROM deliveries d JOIN destinations t ON t.id = d.destination_id
              WHERE d.state IN ('pending', 'failed') AND t.enabled AND t.deleted_at IS NULL
              ORDER BY d.run_at LIMIT 1),
             (SELECT MIN(lease_until) FROM deliveries WHERE state = 'delivering')",
    )
    .fetch_one(conn)
    .await?;
    let due: Option<Millis> = row.try_get(0)?;
    let lease: Option<Millis> = row.try_get(1)?;
    Ok(match (due, lease) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
