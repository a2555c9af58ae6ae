//! Which due rows a claim looks at, and locks (`FOR UPDATE SKIP LOCKED`, so nodes
//! claiming at once each get different rows): rows whose lease ran out, due rows of
//! unordered destinations in `run_at` order, and the head of each stream of the ordered
//! ones. The heads are found by walking the stream-order index one stream at a time
//! (a loose index scan): testing every due row of an ordered destination for an earlier
//! one cost a subquery per row, so one ordered destination with a backlog of 20,000
//! made every claim of every destination take 158 ms.

use sqlx::PgConnection;

use hookline_store::{ClaimRequest, StoreResult};

/// The condition that delivery `d` is the head of its stream for its destination.
const NOT_BEHIND_ANOTHER: &str = "NOT EXISTS (SELECT 1 FROM deliveries e
     WHERE e.destination_id = d.destination_id AND e.stream = d.stream AND e.ordered
       AND e.event_seq < d.event_seq AND e.state IN ('pending', 'failed', 'delivering'))";

/// A row a claim may take: its delivery id, destination id and event id (the event id
/// finds the row's partition).
pub type Candidate = (String, String, String);

/// Candidate rows locked per delivery wanted, so destinations at their limit do not
/// starve the claim.
const CANDIDATES_PER_CLAIM: i64 = 2;

/// The rows this claim may take, locked. `excluded`
/// destinations are skipped (paused, or full on this node); `ordered` ones yield only
/// their streams' heads.
pub async fn locked(
    conn: &mut PgConnection,
    req: &ClaimRequest,
    excluded: &[String],
    ordered: &[String],
) -> StoreResult<Vec<Candidate>> {
    let limit = i64::from(req.limit) * CANDIDATES_PER_CLAIM;
    // A lease that ran out is rare (its node died) and its row is a stream's head
    // whenever its destination is ordered; the check costs little on these few rows.
    let expired = format!(
        "SELECT d.id, d.destination_id, d.event_id FROM deliveries d
         WHERE d.state = 'delivering' AND d.lease_until <= $1
           AND NOT (d.destination_id = ANY($3))
           AND (NOT (d.destination_id = ANY($4)) OR {NOT_BEHIND_ANOTHER})
         ORDER BY d.lease_until
         LIMIT $2
         FOR UPDATE OF d SKIP LOCKED"
    );
    let mut found: Vec<Candidate> = sqlx::query_as(&expired)
        .bind(req.now)
        .bind(limit)
        .bind(excluded)
        .bind(ordered)
        .fetch_all(&mut *conn)
        .await?;
    // One table, one index, in order: joining destinations here made the planner walk
    // a destination's whole history instead. Ordered destinations' rows are not in this
    // index (`deliveries.ordered`), except those a publish stored while a patch made their
    // destination ordered: those are flagged now, and offered as heads from then on.
    let due: Vec<Candidate> = sqlx::query_as(
        "SELECT d.id, d.destination_id, d.event_id FROM deliveries d
         WHERE d.state IN ('pending', 'failed') AND NOT d.ordered AND d.run_at <= $1
           AND NOT (d.destination_id = ANY($3))
         ORDER BY d.run_at, d.id
         LIMIT $2
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(req.now)
    .bind(limit)
    .bind(excluded)
    .fetch_all(&mut *conn)
    .await?;
    let (late, due): (Vec<_>, Vec<_>) = due.into_iter().partition(|(_, d, _)| ordered.contains(d));
    if !late.is_empty() {
        let late: Vec<&String> = late.iter().map(|(id, _, _)| id).collect();
        sqlx::query("UPDATE deliveries SET ordered = TRUE WHERE id = ANY($1)")
            .bind(&late)
            .execute(&mut *conn)
            .await?;
    }
    found.extend(due);
    let ordered: Vec<&String> = ordered.iter().filter(|d| !excluded.contains(d)).collect();
    if !ordered.is_empty() {
        found.extend(heads(conn, req, limit, &ordered).await?);
    }
    Ok(found)
}

/// The due heads of the streams of `ordered` destinations, locked.
async fn heads(
    conn: &mut PgConnection,
    req: &ClaimRequest,
    limit: i64,
    ordered: &[&String],
) -> StoreResult<Vec<Candidate>> {
    // Each step finds the next stream of a destination with unfinished deliveries, and
    // that stream's first one, from the index alone; the heads are then locked by id.
    Ok(sqlx::query_as(
        "WITH RECURSIVE heads AS (
             SELECT first.* FROM unnest($3::text[]) AS o(id), LATERAL (
                 SELECT id, destination_id, stream, state, run_at FROM deliveries
                 WHERE destination_id = o.id AND ordered
                   AND state IN ('pending', 'failed', 'delivering')
                 ORDER BY stream, event_seq LIMIT 1) first
             UNION ALL
             SELECT next.* FROM heads h, LATERAL (
                 SELECT e.id, e.destination_id, e.stream, e.state, e.run_at FROM deliveries e
                 WHERE e.destination_id = h.destination_id AND e.stream > h.stream
                   AND e.ordered AND e.state IN ('pending', 'failed', 'delivering')
                 ORDER BY e.stream, e.event_seq LIMIT 1) next)
         SELECT d.id, d.destination_id, d.event_id FROM deliveries d
         WHERE d.id IN (SELECT id FROM heads
                        WHERE state IN ('pending', 'failed') AND run_at <= $1)
           AND d.state IN ('pending', 'failed')
         ORDER BY d.run_at, d.id
         LIMIT $2
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(req.now)
    .bind(limit)
    .bind(ordered)
    .fetch_all(conn)
    .await?)
}
