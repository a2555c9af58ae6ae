//! The rollups' SQL, the same on both stores but for how parameters are written, and
//! the batch's rollups as each store upserts them: one row per destination and minute
//! in `rollups`, added to when several batches touch it; after a day, folded into one
//! row per destination and hour in `rollup_hours`.

use std::collections::BTreeMap;

use hookline_core::clock::Millis;
use hookline_core::rollup::{HOUR_MS, Rollup, minute_of};

use crate::Completion;

/// The counters after `destination_id, bucket, org_id`.
const COUNTERS: [&str; 16] = [
    "attempts_ok",
    "attempts_failed",
    "delivered",
    "dead_lettered",
    "l0",
    "l1",
    "l2",
    "l3",
    "l4",
    "l5",
    "l6",
    "l7",
    "l8",
    "l9",
    "l10",
    "l11",
];

/// `INSERT … ON CONFLICT DO UPDATE` adding one row's counters; `param(n)` writes the
/// n-th parameter (from 1) as the store spells it.
pub fn upsert(param: fn(usize) -> String) -> String {
    let params: Vec<String> = (1..=COUNTERS.len() + 3).map(param).collect();
    let added: Vec<String> = COUNTERS
        .iter()
        .map(|c| format!("{c} = rollups.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO rollups (destination_id, bucket, org_id, {}) VALUES ({})
         ON CONFLICT (destination_id, bucket) DO UPDATE SET {}",
        COUNTERS.join(", "),
        params.join(", "),
        added.join(", ")
    )
}

/// `CAST(SUM(c) AS BIGINT)` of every counter: PostgreSQL sums BIGINTs as NUMERIC; the
/// cast (an INTEGER to SQLite) keeps them i64.
fn sums() -> String {
    let sums: Vec<String> = COUNTERS
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .collect();
    sums.join(", ")
}

/// The sums per bucket since `param(2)` for org `param(1)`, of one destination
/// (`param(3)`) when `one_destination`: minutes, and hours from the hour `param(2)` falls
/// in (a window's oldest hour counts whole once folded); rows are `bucket` then the
/// counters.
pub fn select(param: fn(usize) -> String, one_destination: bool) -> String {
    let destination = match one_destination {
        true => format!(" AND destination_id = {}", param(3)),
        false => String::new(),
    };
    let (org, since) = (param(1), param(2));
    let columns = COUNTERS.join(", ");
    format!(
        "SELECT bucket, {sums} FROM (
           SELECT bucket, {columns} FROM rollups
            WHERE org_id = {org} AND bucket >= {since}{destination}
           UNION ALL
           SELECT bucket, {columns} FROM rollup_hours
            WHERE org_id = {org} AND bucket >= {since} - {since} % {HOUR_MS}{destination}
         ) AS minutes_and_hours GROUP BY bucket ORDER BY bucket",
        sums = sums()
    )
}

/// The oldest minute left unfolded by a fold of about `param(3)` rows of org `param(1)`
/// before `param(2)`: none when fewer rows remain.
pub fn fold_bound(param: fn(usize) -> String) -> String {
    format!(
        "SELECT bucket FROM rollups WHERE org_id = {} AND bucket < {}
         ORDER BY bucket LIMIT 1 OFFSET {}",
        param(1),
        param(2),
        param(3)
    )
}

/// Adds org `param(1)`'s minute rows before `param(2)` into their hours.
pub fn fold_into_hours(param: fn(usize) -> String) -> String {
    let added: Vec<String> = COUNTERS
        .iter()
        .map(|c| format!("{c} = rollup_hours.{c} + excluded.{c}"))
        .collect();
    let hour = format!("bucket - bucket % {HOUR_MS}");
    format!(
        "INSERT INTO rollup_hours (destination_id, bucket, org_id, {columns})
         SELECT destination_id, {hour}, org_id, {sums} FROM rollups
          WHERE org_id = {org} AND bucket < {before}
          GROUP BY destination_id, {hour}, org_id
         ON CONFLICT (destination_id, bucket) DO UPDATE SET {added}",
        columns = COUNTERS.join(", "),
        sums = sums(),
        org = param(1),
        before = param(2),
        added = added.join(", ")
    )
}

/// Removes org `param(1)`'s minute rows before `param(2)`, once folded.
pub fn delete_folded(param: fn(usize) -> String) -> String {
    format!(
        "DELETE FROM rollups WHERE org_id = {} AND bucket < {}",
        param(1),
        param(2)
    )
}

/// A row of `select`'s counters, in order.
pub fn from_counters(c: &[i64; 16]) -> Rollup {
    let mut latency = [0; 12];
    latency.copy_from_slice(&c[4..]);
    Rollup {
        attempts_ok: c[0],
        attempts_failed: c[1],
        delivered: c[2],
        dead_lettered: c[3],
        latency,
    }
}

/// The counters of `rollup`, in `upsert`'s order after its first three parameters.
pub fn counters(r: &Rollup) -> [i64; 16] {
    let mut c = [0; 16];
    c[..4].copy_from_slice(&[
        r.attempts_ok,
        r.attempts_failed,
        r.delivered,
        r.dead_lettered,
    ]);
    c[4..].copy_from_slice(&r.latency);
    c
}

/// A batch's attempts summed per destination and minute, with each one's org; none
/// for what counted nothing (intercepted attempts).
pub fn of_batch(completions: &[Completion]) -> BTreeMap<(&str, Millis), (&str, Rollup)> {
    let mut rollups: BTreeMap<(&str, Millis), (&str, Rollup)> = BTreeMap::new();
    for c in completions {
        let a = &c.attempt;
        rollups
            .entry((a.destination_id.as_str(), minute_of(a.started_at)))
            .or_insert((a.org_id.as_str(), Rollup::default()))
            .1
            .add(a, c.next);
    }
    rollups.retain(|_, (_, r)| r.attempts() > 0);
    rollups
}
