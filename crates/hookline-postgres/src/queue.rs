//! The queue on PostgreSQL: due rows are locked with `FOR UPDATE SKIP LOCKED`, so
//! nodes claiming at once each get different rows and never wait for one another.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::delivery::ErrorKind;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::DeliveryId;
use sqlx::{PgConnection, Row};

use crate::candidates;
use crate::{notify_work, publish, rows};
use hookline_core::auto_disable::{AutoDisable, FailingSince, destination_disabled};
use hookline_core::retry::NextStep;
use hookline_store::health::HealthDelta;
use hookline_store::raw::{ATTEMPT_COLUMNS, DESTINATION_COLUMNS, EVENT_COLUMNS};
use hookline_store::rollups;
use hookline_store::{
    ClaimRequest, ClaimedDelivery, CompletedBatch, Completion, Handback, LocalLeases, StoreError,
    StoreResult,
};

async fn destinations_by_id(
    conn: &mut PgConnection,
    ids: &[String],
) -> StoreResult<HashMap<String, Arc<Destination>>> {
    let sql = format!(
        "SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ANY($1) AND deleted_at IS NULL"
    );
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

/// Live destinations the queue must treat specially, read in one query: those whose
/// deliveries wait (paused, or disabled e.g. after a 410), and the ordered ones.
struct SpecialDestinations {
    paused: Vec<String>,
    ordered: Vec<String>,
}

async fn special_destinations(conn: &mut PgConnection) -> StoreResult<SpecialDestinations> {
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT id, enabled, ordered FROM destinations
         WHERE deleted_at IS NULL AND (NOT enabled OR ordered)",
    )
    .fetch_all(conn)
    .await?;
    let mut special = SpecialDestinations {
        paused: Vec::new(),
        ordered: Vec::new(),
    };
    for (id, enabled, ordered) in rows {
        if ordered {
            special.ordered.push(id.clone());
        }
        if !enabled {
            special.paused.push(id);
        }
    }
    Ok(special)
}

/// Deliveries other nodes hold, per destination among the candidates': their live
/// leased rows. (What this node holds it knows in memory: a place of its own is free as
/// soon as its attempt ends, before its result is recorded; the row stays leased
/// meanwhile, so no claim takes the delivery itself.) Takes a transaction-level advisory
/// lock per destination first (in sorted order, so nodes cannot deadlock), so two nodes
/// cannot both see the same free slot: `max_in_flight` holds across the cluster, not
/// per node.
async fn held_by_other_nodes(
    conn: &mut PgConnection,
    mut ids: Vec<&str>,
    node_id: &str,
    now: Millis,
) -> StoreResult<HashMap<String, u32>> {
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext(d)) FROM unnest($1::text[]) AS d ORDER BY d",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    // Every live lease first, through the small partial index of leased rows, then the
    // candidates' among them: given the destination up front, the planner walked that
    // destination's whole history of deliveries instead, on every claim.
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "WITH leased AS MATERIALIZED (
             SELECT destination_id, leased_by FROM deliveries
             WHERE state = 'delivering' AND lease_until > $1)
         SELECT destination_id, COUNT(*) FROM leased
         WHERE destination_id = ANY($2) AND leased_by <> $3
         GROUP BY destination_id",
    )
    .bind(now)
    .bind(&ids)
    .bind(node_id)
    .fetch_all(conn)
    .await?;
    Ok(counts.into_iter().map(|(d, n)| (d, n as u32)).collect())
}

/// Makes the rest of the caller's transaction find rows by their keys. A claim and a
/// completion look up a few rows by key in each day's partition: the planner cannot count
/// that run-time pruning leaves one partition per row, and a day's partition fills faster
/// than autovacuum analyzes it, so on stale statistics it chose to hash-join over a scan
/// of the whole day instead (docs/perf-history.md, twentieth session).
async fn plan_by_key(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query(
        "SELECT set_config('enable_seqscan', 'off', true),
                set_config('enable_hashjoin', 'off', true),
                set_config('enable_mergejoin', 'off', true)",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs inside the caller's transaction; the locks it takes end at commit.
pub async fn claim(
    conn: &mut PgConnection,
    req: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    plan_by_key(conn).await?;
    let held = req.node.held_per_destination();
    let in_flight: Vec<String> = held.keys().map(|id| id.to_string()).collect();
    let mut destinations = destinations_by_id(conn, &in_flight).await?;
    let SpecialDestinations {
        paused: mut excluded,
        ordered,
    } = special_destinations(conn).await?;
    let saturated = held
        .iter()
        .filter(|(id, n)| {
            destinations
                .get(id.as_str())
                .is_some_and(|d| **n >= req.node.claim_ceiling(d, 0))
        })
        .map(|(id, _)| id.to_string());
    excluded.extend(saturated);
    let candidates = candidates::locked(conn, req, &excluded, &ordered).await?;
    let missing: Vec<String> = candidates
        .iter()
        .map(|(_, d, _)| d.clone())
        .filter(|d| !destinations.contains_key(d))
        .collect();
    destinations.extend(destinations_by_id(conn, &missing).await?);

    let candidate_destinations = candidates.iter().map(|(_, d, _)| d.as_str()).collect();
    let others =
        held_by_other_nodes(conn, candidate_destinations, req.node.node_id(), req.now).await?;
    let mut own: HashMap<String, u32> = held.iter().map(|(id, n)| (id.to_string(), *n)).collect();
    // Each chosen delivery, its event, its destination, and its place among this node's
    // holds of it.
    let mut chosen = Vec::new();
    // Rows whose destination was deleted while they were being published.
    let mut orphans = Vec::new();
    for (delivery_id, destination_id, event_id) in candidates {
        let Some(destination) = destinations.get(&destination_id) else {
            orphans.push(delivery_id);
            continue;
        };
        if chosen.len() >= req.limit as usize {
            continue;
        }
        let others = others.get(&destination_id).copied().unwrap_or(0);
        let ceiling = req.node.claim_ceiling(destination, others);
        let holding = own.entry(destination_id).or_default();
        if *holding < ceiling {
            chosen.push((delivery_id, event_id, destination.clone(), *holding));
            *holding += 1;
        }
    }
    if !orphans.is_empty() {
        sqlx::query(
            "UPDATE deliveries SET state = 'canceled', run_at = NULL, lease_until = NULL,
                 leased_by = NULL, updated_at = $1
             WHERE id = ANY($2)",
        )
        .bind(req.now)
        .bind(&orphans)
        .execute(&mut *conn)
        .await?;
    }
    let lease_ends: Vec<Millis> = chosen
        .iter()
        .map(|(_, _, destination, position)| {
            req.node.claim_lease_until(destination, req.now, *position)
        })
        .collect();
    let (chosen, chosen_events): (Vec<String>, Vec<String>) = chosen
        .into_iter()
        .map(|(id, event, _, _)| (id, event))
        .unzip();
    // The event id as well as the delivery's: it names the row's partition, so only that
    // one is searched.
    let leased: Vec<(String, i64, String, String, Millis)> = sqlx::query_as(
        "UPDATE deliveries d SET state = 'delivering', lease_until = c.until, leased_by = $2,
             attempts = d.attempts + 1, updated_at = $1
         FROM UNNEST($3::text[], $4::bigint[], $5::text[]) AS c(id, until, event_id)
         WHERE d.id = c.id AND d.event_id = c.event_id
         RETURNING d.id, d.attempts, d.event_id, d.destination_id, d.lease_until",
    )
    .bind(req.now)
    .bind(req.node.node_id())
    .bind(&chosen)
    .bind(&lease_ends)
    .bind(&chosen_events)
    .fetch_all(&mut *conn)
    .await?;
    let event_ids: Vec<&str> = leased.iter().map(|(_, _, e, _, _)| e.as_str()).collect();
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ANY($1)");
    let events: HashMap<String, Arc<Event>> = sqlx::query(&sql)
        .bind(&event_ids)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| rows::event(row).map(|e| (e.id.to_string(), Arc::new(e))))
        .collect::<StoreResult<_>>()?;
    leased
        .into_iter()
        .map(|(id, attempt, event_id, destination_id, lease_until)| {
            let corrupt =
                || StoreError::Corrupt(format!("delivery {id} lost its event or destination"));
            Ok(ClaimedDelivery {
                event: events.get(&event_id).cloned().ok_or_else(corrupt)?,
                destination: destinations
                    .get(&destination_id)
                    .cloned()
                    .ok_or_else(corrupt)?,
                lease_until,
                delivery_id: DeliveryId::from_trusted(id),
                attempt: attempt as u32,
                row_hint: None,
            })
        })
        .collect()
}

/// Records a batch in three statements whatever its size: attempts and delivery
/// updates go in as arrays (`UNNEST`), health once per destination.
/// Adds the batch's attempts to their destinations' per-minute rollups, in key order (as
/// every node does, so batches upserting the same rows cannot deadlock).
async fn add_rollups(conn: &mut PgConnection, batch: &CompletedBatch) -> StoreResult<()> {
    static UPSERT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = UPSERT.get_or_init(|| rollups::upsert(|n| format!("${n}")));
    for ((destination, bucket), (org, rollup)) in rollups::of_batch(&batch.completions) {
        let mut query = sqlx::query(sql).bind(destination).bind(bucket).bind(org);
        for counter in rollups::counters(&rollup) {
            query = query.bind(counter);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn complete(conn: &mut PgConnection, batch: &CompletedBatch) -> StoreResult<()> {
    plan_by_key(conn).await?;
    let completions = &batch.completions;
    let attempts: Vec<&hookline_core::delivery::Attempt> =
        completions.iter().map(|c| &c.attempt).collect();
    let column = |f: fn(&hookline_core::delivery::Attempt) -> String| -> Vec<String> {
        attempts.iter().map(|a| f(a)).collect()
    };
    let stored =
        |json: fn(&Completion) -> &str| -> Vec<&str> { completions.iter().map(json).collect() };
    sqlx::query(&format!(
        "INSERT INTO attempts ({ATTEMPT_COLUMNS})
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::text[],
             $12::bigint[], $13::text[], $14::text[], $15::bool[], $16::bigint[], $17::text[],
             $18::text[], $19::bigint[], $20::bool[])"
    ))
    .bind(column(|a| a.id.to_string()))
    .bind(column(|a| a.org_id.to_string()))
    .bind(column(|a| a.delivery_id.to_string()))
    .bind(column(|a| a.destination_id.to_string()))
    .bind(column(|a| a.event_id.to_string()))
    .bind(column(|a| a.event_type.clone()))
    .bind(
        attempts
            .iter()
            .map(|a| i64::from(a.number))
            .collect::<Vec<_>>(),
    )
    .bind(attempts.iter().map(|a| a.started_at).collect::<Vec<_>>())
    .bind(column(|a| a.url.clone()))
    .bind(stored(|c| &c.request_headers_json))
    .bind(column(|a| a.request_body.clone()))
    .bind(
        attempts
            .iter()
            .map(|a| a.response_status.map(i64::from))
            .collect::<Vec<_>>(),
    )
    .bind(stored(|c| &c.response_headers_json))
    .bind(
        attempts
            .iter()
            .map(|a| a.response_body.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        attempts
            .iter()
            .map(|a| a.response_truncated)
            .collect::<Vec<_>>(),
    )
    .bind(attempts.iter().map(|a| a.latency_ms).collect::<Vec<_>>())
    .bind(
        attempts
            .iter()
            .map(|a| a.error_kind.map(ErrorKind::as_str))
            .collect::<Vec<_>>(),
    )
    .bind(
        attempts
            .iter()
            .map(|a| a.error_message.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        completions
            .iter()
            .map(|c| c.note.body.code())
            .collect::<Vec<_>>(),
    )
    .bind(
        completions
            .iter()
            .map(|c| c.note.headers_from_event)
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;

    let mut states = Vec::with_capacity(completions.len());
    let mut run_ats = Vec::with_capacity(completions.len());
    let mut errors = Vec::with_capacity(completions.len());
    for c in completions {
        let (state, run_at) = c.next_state();
        states.push(state);
        run_ats.push(run_at);
        errors.push(c.delivery_error());
    }
    // Only rows still leased to this node: `leased_by` is set exactly while a row is
    // 'delivering' (the schema checks it). Asking for the state as well let the planner
    // choose the partial index of leased rows when its statistics were stale, and hash
    // every leased row for each batch: seconds a batch once tens of thousands were leased.
    // The event id names the row's partition.
    sqlx::query(
        "UPDATE deliveries d SET state = u.state, run_at = u.run_at, lease_until = NULL,
             leased_by = NULL, last_attempt_at = u.started_at, response_code = u.code,
             error = u.error, updated_at = u.now
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::text[], $8::bigint[], $9::text[])
              AS u(id, state, run_at, started_at, code, error, now, event_id)
         WHERE d.id = u.id AND d.event_id = u.event_id AND d.leased_by = $7",
    )
    .bind(column(|a| a.delivery_id.to_string()))
    .bind(&states)
    .bind(&run_ats)
    .bind(attempts.iter().map(|a| a.started_at).collect::<Vec<_>>())
    .bind(
        attempts
            .iter()
            .map(|a| a.response_status.map(i64::from))
            .collect::<Vec<_>>(),
    )
    .bind(&errors)
    .bind(&batch.node_id)
    .bind(completions.iter().map(|c| c.now).collect::<Vec<_>>())
    .bind(column(|a| a.event_id.to_string()))
    .execute(&mut *conn)
    .await?;

    // Destination rows are updated in id order: nodes completing at once then lock them
    // in the same order and cannot deadlock.
    let mut health: BTreeMap<&str, HealthDelta> = BTreeMap::new();
    let mut gone: BTreeMap<&str, Millis> = BTreeMap::new();
    // An intercepted attempt was never sent: it says nothing of the receiver's health.
    for c in completions
        .iter()
        .filter(|c| c.next != NextStep::Intercepted)
    {
        let destination = c.attempt.destination_id.as_str();
        health
            .entry(destination)
            .or_default()
            .record(c.attempt.started_at, c.next == NextStep::Delivered);
        if c.next == NextStep::Gone {
            gone.insert(destination, c.now);
        }
    }
    let now = completions.iter().map(|c| c.now).max().unwrap_or_default();
    for (destination_id, delta) in health {
        if let Some(now) = gone.get(destination_id) {
            sqlx::query(
                "UPDATE destinations SET enabled = FALSE, disabled_reason = 'gone', updated_at = $1
                 WHERE id = $2",
            )
            .bind(now)
            .bind(destination_id)
            .execute(&mut *conn)
            .await?;
        }
        // The row stays locked to this transaction from here, so what it returns
        // still stands when `auto_disable` acts on it.
        let standing: Option<(String, bool, i64, i64)> = sqlx::query_as(
            "UPDATE destinations SET
                 last_attempt_at = GREATEST(COALESCE(last_attempt_at, 0), $1),
                 last_success_at = CASE WHEN $2::BIGINT IS NULL THEN last_success_at
                                        ELSE GREATEST(COALESCE(last_success_at, 0), $2) END,
                 consecutive_failures = CASE WHEN $2::BIGINT IS NULL
                                             THEN consecutive_failures + $3 ELSE $3 END
             WHERE id = $4
             RETURNING org_id, enabled, consecutive_failures,
                       COALESCE(last_success_at, created_at)",
        )
        .bind(delta.last_attempt_at)
        .bind(delta.last_success_at)
        .bind(delta.failures_since_success)
        .bind(destination_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let (Some((org, true, consecutive_failures, since)), None) =
            (standing, delta.last_success_at)
        {
            let failing = FailingSince {
                consecutive_failures,
                since,
            };
            auto_disable(conn, &org, destination_id, failing, batch.auto_disable, now).await?;
        }
    }
    add_rollups(conn, batch).await
}

/// Disables the destination if `rule` says it has only failed for long enough, and says
/// so on the org's `hookline` stream.
async fn auto_disable(
    conn: &mut PgConnection,
    org: &str,
    destination_id: &str,
    failing: FailingSince,
    rule: AutoDisable,
    now: Millis,
) -> StoreResult<()> {
    if !rule.disables(failing, now) {
        return Ok(());
    }
    sqlx::query(
        "UPDATE destinations SET enabled = FALSE, disabled_reason = 'failing', updated_at = $1
         WHERE id = $2",
    )
    .bind(now)
    .bind(destination_id)
    .execute(&mut *conn)
    .await?;
    tracing::warn!(
        destination = destination_id,
        failures = failing.consecutive_failures,
        "a destination that only failed is disabled (auto-disable)"
    );
    let org = hookline_core::ids::OrgId::from_trusted(org.to_owned());
    let event = destination_disabled(destination_id, failing.consecutive_failures);
    // Left to the queue: this transaction's leases are the completion's, not a publish's.
    let mut no_leases = LocalLeases::default();
    publish::publish(conn, &org, event, now, true, &mut no_leases).await?;
    Ok(())
}

pub async fn release(
    conn: &mut PgConnection,
    node_id: &str,
    handbacks: &[Handback],
    now: Millis,
) -> StoreResult<()> {
    plan_by_key(conn).await?;
    let ids: Vec<&str> = handbacks.iter().map(|h| h.delivery_id.as_str()).collect();
    let run_at: Vec<Millis> = handbacks.iter().map(|h| h.run_at).collect();
    sqlx::query(
        "UPDATE deliveries d SET
             state = CASE WHEN d.attempts > 1 THEN 'failed' ELSE 'pending' END,
             attempts = d.attempts - 1, run_at = h.run_at, lease_until = NULL,
             leased_by = NULL, updated_at = $1
         FROM UNNEST($2::text[], $4::bigint[]) AS h(id, run_at)
         WHERE d.id = h.id AND d.leased_by = $3",
    )
    .bind(now)
    .bind(&ids)
    .bind(node_id)
    .bind(&run_at)
    .execute(&mut *conn)
    .await?;
    notify_work(conn).await
}

pub async fn next_due_at(conn: &mut PgConnection) -> StoreResult<Option<Millis>> {
    let paused = special_destinations(conn).await?.paused;
    let row = sqlx::query(
        "SELECT LEAST(
             (SELECT run_at FROM deliveries
              WHERE state IN ('pending', 'failed') AND NOT ordered
                AND NOT (destination_id = ANY($1))
              ORDER BY run_at LIMIT 1),
             (SELECT run_at FROM deliveries
              WHERE state IN ('pending', 'failed') AND ordered
                AND NOT (destination_id = ANY($1))
              ORDER BY run_at LIMIT 1)),
             (SELECT MIN(lease_until) FROM deliveries WHERE state = 'delivering')",
    )
    .bind(&paused)
    .fetch_one(conn)
    .await?;
    let due: Option<Millis> = row.try_get(0)?;
    let lease: Option<Millis> = row.try_get(1)?;
    Ok(match (due, lease) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
