//! Folding minute rollups into hours keeps every statistic: before and after a fold
//! the totals of every window and destination are the same, minutes older than the cut
//! become hour rows, batches stay bounded, and a second fold finds nothing.

#[macro_use]
mod support;

use hookline_core::ids::{DestinationId, OrgId};
use hookline_core::rollup::{HOUR_MS, MINUTE_MS, Rollup, fold_before};
use hookline_dispatch::NodeAdmission;
use hookline_store::testing as fixture;
use hookline_store::{ApiKeyRecord, Org, Store};
use serde_json::json;
use support::Backend;

const T0: i64 = 1_800_000_000_000;
/// Attempts are recorded from `T0` on, one every 17 minutes: 34 hours of them.
const ATTEMPTS: i64 = 120;
const NOW: i64 = T0 + ATTEMPTS * 17 * MINUTE_MS;

async fn totals(
    store: &dyn Store,
    org: &OrgId,
    destination: Option<&DestinationId>,
    since: i64,
) -> (Rollup, usize) {
    let rows = store.rollups(org, destination, since).await.unwrap();
    let mut total = Rollup::default();
    for (_, r) in &rows {
        total.merge(r);
    }
    (total, rows.len())
}

on_both_stores!(folding_keeps_every_total_and_leaves_hours_behind_the_cut);
async fn folding_keeps_every_total_and_leaves_hours_behind_the_cut(backend: Backend) {
    let store = backend.open().await;
    let org = Org::new("o", T0);
    let (key, _) = ApiKeyRecord::issue(&org.id, T0);
    store.create_org(&org, &key).await.unwrap();
    let mut destinations = Vec::new();
    for _ in 0..3 {
        let d = fixture::destination(&org.id, json!({"max_in_flight": 100}), T0);
        store.insert_destination(&d, u32::MAX).await.unwrap();
        destinations.push(d.id);
    }
    for _ in 0..ATTEMPTS / 3 {
        store
            .publish(&org.id, fixture::event("s", json!({})), T0)
            .await
            .unwrap();
    }
    let node = NodeAdmission::new("node-a".into(), 5_000, usize::MAX, Default::default()).0;
    let claimed = store
        .claim_due(&fixture::claim(node, T0, ATTEMPTS as u32))
        .await
        .unwrap();
    assert_eq!(claimed.len() as i64, ATTEMPTS);
    let completions = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| fixture::delivered(c, T0 + i as i64 * 17 * MINUTE_MS))
        .collect();
    store
        .complete(fixture::batch("node-a", completions))
        .await
        .unwrap();

    let month = NOW - 30 * 24 * HOUR_MS;
    let day = NOW - 24 * HOUR_MS + MINUTE_MS;
    let (before, minute_rows) = totals(&*store, &org.id, None, month).await;
    assert_eq!(before.attempts_ok, ATTEMPTS);
    assert_eq!(minute_rows as i64, ATTEMPTS);
    let mut per_destination = Vec::new();
    for d in &destinations {
        per_destination.push(totals(&*store, &org.id, Some(d), month).await.0);
    }
    let last_day = totals(&*store, &org.id, None, day).await;

    let cut = fold_before(NOW);
    let older = (0..ATTEMPTS)
        .filter(|i| T0 + i * 17 * MINUTE_MS < cut)
        .count() as u64;
    let (mut folded, mut batches) = (0, 0);
    loop {
        let rows = store.fold_rollups(cut, 10).await.unwrap();
        folded += rows;
        batches += 1;
        assert!(rows <= 10, "a batch folded {rows} rows");
        if rows < 10 {
            break;
        }
    }
    assert_eq!(folded, older);
    assert!(batches > 1, "{batches}");
    assert_eq!(store.fold_rollups(cut, 10).await.unwrap(), 0);

    let rows = store.rollups(&org.id, None, month).await.unwrap();
    let (after, _) = totals(&*store, &org.id, None, month).await;
    assert_eq!(after, before);
    for (at, _) in rows.iter().filter(|(at, _)| *at < cut) {
        assert_eq!(at % HOUR_MS, 0, "a minute row before the cut at {at}");
    }
    let hours_before_cut = rows.iter().filter(|(at, _)| *at < cut).count() as u64;
    assert!(hours_before_cut < older, "{hours_before_cut} of {older}");
    for (d, expected) in destinations.iter().zip(&per_destination) {
        assert_eq!(&totals(&*store, &org.id, Some(d), month).await.0, expected);
    }
    assert_eq!(totals(&*store, &org.id, None, day).await, last_day);
}
