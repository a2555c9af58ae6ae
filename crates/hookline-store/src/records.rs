//! The records a store keeps: orgs and their keys, destinations, and what was published
//! and attempted, read back for the API. Writes here that change what is due (resuming
//! or deleting a destination) keep the queue in step in the same transaction.

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::event::Event;
use hookline_core::ids::{ApiKeyId, AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::rollup::Rollup;
use hookline_core::sealed::SealedKeys;

use crate::{
    ApiKeyRecord, AttemptQuery, DeliveryQuery, DestinationQuery, EventQuery, KeyDeletion, Org,
    Page, PageRequest, Purged, StoreResult, Unfinished,
};

#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// Whether the store answers at all (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    async fn create_org(&self, org: &Org, first_key: &ApiKeyRecord) -> StoreResult<()>;
    /// Every org not deleted, oldest first.
    async fn list_orgs(&self) -> StoreResult<Vec<Org>>;
    /// Turns the org's test mode on (keeping when it was first turned on, if it is
    /// already) or, with `None`, off.
    async fn set_test_mode(&self, org: &OrgId, since: Option<Millis>) -> StoreResult<()>;
    /// When the org's test mode was turned on, if it is on.
    async fn test_mode(&self, org: &OrgId) -> StoreResult<Option<Millis>>;
    /// The orgs in test mode now: what every node's dispatcher intercepts.
    async fn orgs_in_test_mode(&self) -> StoreResult<Vec<OrgId>>;
    /// Removes, in one short transaction, up to `batch` finished deliveries last changed
    /// before their org's cut (`now` less the org's own retention, else `window`; no
    /// cut, nothing removed) with their attempts, and the events before the cut that no
    /// delivery refers to any more. A delivery not finished, and its event, are kept
    /// however old. On PostgreSQL one node purges at a time; the others remove nothing.
    /// There a call first drops the oldest day of deliveries and attempts that retention
    /// has wholly passed and that holds nothing unfinished, if there is one, and does no
    /// more; rows go one by one up to a day behind the cut (for what a day held back).
    async fn purge(&self, now: Millis, window: Option<Millis>, batch: u32) -> StoreResult<Purged>;
    /// Makes ahead of time what writes will need: on PostgreSQL, the partitions of today
    /// and the days ahead (`hookline_core::partition`); returns how many days it made.
    /// The embedded store needs nothing.
    async fn prepare(&self, _now: Millis) -> StoreResult<u32> {
        Ok(0)
    }
    /// Folds minute rollups before `before` (an hour boundary) into hourly ones, in one
    /// short transaction of about `rows` minute rows (whole minutes, so a minute of more
    /// destinations than that goes whole); returns how many minute rows went. On
    /// PostgreSQL one node folds at a time (with retention's lock); the others fold
    /// nothing.
    async fn fold_rollups(&self, before: Millis, rows: u32) -> StoreResult<u64>;
    /// Gives the org a retention of its own, in days (0: keep everything), or with `None`
    /// the server's; false if there is no such org.
    async fn set_org_retention(&self, org: &OrgId, days: Option<f64>) -> StoreResult<bool>;
    /// Deletes the org's intercepted attempts (its test-mode log); how many there were.
    async fn clear_intercepted(&self, org: &OrgId) -> StoreResult<u64>;
    /// Deletes an org at once: its keys stop working, its destinations are deleted and
    /// their unfinished deliveries canceled. What it published stays until retention
    /// removes it. False if there is no such org.
    async fn delete_org(&self, org: &OrgId, now: Millis) -> StoreResult<bool>;
    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn list_api_keys(&self, org: &OrgId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Deletes the key unless it is the org's last one, atomically.
    async fn delete_api_key(&self, org: &OrgId, id: &ApiKeyId) -> StoreResult<KeyDeletion>;
    /// The org a key (by its hash) belongs to.
    async fn org_for_key(&self, key_hash: &str) -> StoreResult<Option<OrgId>>;
    /// The org's sealed signing keys (for `webhook_url`), if it has any yet.
    async fn org_signing_keys(&self, org: &OrgId) -> StoreResult<Option<SealedKeys>>;
    /// Sets the org's signing keys if they are still `expected` (compare-and-set, so
    /// two concurrent rotations cannot both win). False if they had changed.
    async fn set_org_signing_keys(
        &self,
        org: &OrgId,
        keys: &SealedKeys,
        expected: Option<&SealedKeys>,
    ) -> StoreResult<bool>;

    async fn get_event(&self, org: &OrgId, id: &EventId) -> StoreResult<Option<Event>>;
    async fn list_events(&self, org: &OrgId, query: &EventQuery) -> StoreResult<Page<Event>>;

    /// Inserts a destination unless its org already has `max_per_org` of them
    /// (`StoreError::LimitReached`); concurrent inserts cannot both take the last place.
    async fn insert_destination(
        &self,
        destination: &Destination,
        max_per_org: u32,
    ) -> StoreResult<()>;
    async fn get_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>>;
    async fn list_destinations(
        &self,
        org: &OrgId,
        query: &DestinationQuery,
    ) -> StoreResult<Page<Destination>>;
    /// Replaces the settings; turning `enabled` on clears a `disabled_reason` and the
    /// failure count, and wakes the attached dispatcher. Returns false if there is no
    /// such destination.
    async fn update_destination_settings(
        &self,
        org: &OrgId,
        id: &DestinationId,
        settings: &DestinationSettings,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Replaces the sealed signing keys (rotation) if they are still `expected`
    /// (compare-and-set). False if they had changed or there is no such destination.
    async fn replace_destination_keys(
        &self,
        org: &OrgId,
        id: &DestinationId,
        keys: &SealedKeys,
        expected: &SealedKeys,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Deletes the destination and cancels its unfinished deliveries.
    async fn delete_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
        now: Millis,
    ) -> StoreResult<bool>;

    async fn list_deliveries(
        &self,
        org: &OrgId,
        query: &DeliveryQuery,
    ) -> StoreResult<Page<Delivery>>;
    async fn get_delivery(&self, org: &OrgId, id: &DeliveryId) -> StoreResult<Option<Delivery>>;
    /// The org's per-minute rollups since `since` (of one destination, if given), summed
    /// per minute, oldest first.
    async fn rollups(
        &self,
        org: &OrgId,
        destination: Option<&DestinationId>,
        since: Millis,
    ) -> StoreResult<Vec<(Millis, Rollup)>>;
    /// The org's deliveries (of one destination, if given) that have not ended, by status;
    /// read from the due and lease indexes, so it costs the backlog, not the history.
    async fn unfinished(
        &self,
        org: &OrgId,
        destination: Option<&DestinationId>,
    ) -> StoreResult<Unfinished>;
    /// Attempts, newest first, each with its request as it was sent.
    async fn list_attempts(&self, org: &OrgId, query: &AttemptQuery) -> StoreResult<Page<Attempt>>;
    async fn get_attempt(&self, org: &OrgId, id: &AttemptId) -> StoreResult<Option<Attempt>>;
    /// Every attempt of a delivery, oldest first.
    async fn list_attempts_of(&self, org: &OrgId, id: &DeliveryId) -> StoreResult<Vec<Attempt>> {
        let mut query = AttemptQuery {
            delivery: Some(id.clone()),
            page: PageRequest {
                limit: crate::MAX_PAGE_LIMIT,
                cursor: None,
            },
            ..AttemptQuery::default()
        };
        let mut attempts = Vec::new();
        loop {
            let page = self.list_attempts(org, &query).await?;
            attempts.extend(page.data);
            match page.next_cursor {
                Some(cursor) => query.page.cursor = Some(cursor),
                None => break,
            }
        }
        attempts.reverse();
        Ok(attempts)
    }
}
