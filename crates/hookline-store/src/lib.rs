//! Storage behind one trait. The queue is the database: deliveries are rows that the
//! dispatcher claims with a lease, so nothing is held only in memory and a crash loses
//! nothing. SQLite is the embedded default; a PostgreSQL implementation of the same
//! trait lets many nodes share one database.

mod admission;
mod error;
mod health;
mod model;
pub mod postgres;
mod raw;
mod request_note;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod test_admission;
#[cfg(feature = "test-support")]
pub mod test_databases;

use std::sync::Arc;

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::event::{Event, NewEvent};
use hookline_core::ids::{ApiKeyId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::sealed::SealedKeys;

pub use admission::Admission;
pub use error::StoreError;
pub use model::*;

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the store answers at all (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    async fn create_org(&self, org: &Org, first_key: &ApiKeyRecord) -> StoreResult<()>;
    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    async fn list_api_keys(&self, org: &OrgId) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn delete_api_key(&self, org: &OrgId, id: &ApiKeyId) -> StoreResult<bool>;
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

    /// Stores the event and a delivery for every destination that wants it, in one
    /// durable transaction: when this returns Ok, nothing can be lost.
    async fn publish(&self, org: &OrgId, event: NewEvent, now: Millis) -> StoreResult<Published>;
    async fn get_event(&self, org: &OrgId, id: &EventId) -> StoreResult<Option<Event>>;
    async fn list_events(&self, org: &OrgId, query: &EventQuery) -> StoreResult<Page<Event>>;

    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()>;
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
    /// failure count. Returns false if there is no such destination.
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
    /// A delivery's attempts, oldest first.
    async fn list_attempts_of(&self, org: &OrgId, id: &DeliveryId) -> StoreResult<Vec<Attempt>>;
    /// Queues a fresh attempt now, whatever the state; `Conflict` if the destination is gone.
    async fn redeliver(
        &self,
        org: &OrgId,
        id: &DeliveryId,
        now: Millis,
    ) -> StoreResult<Option<Delivery>>;

    /// Leases up to `limit` due deliveries of enabled destinations to `request.node`,
    /// respecting each destination's `max_in_flight` given what the node already holds,
    /// and has the node hold each one before answering.
    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records finished attempts and moves their deliveries on; a delivery whose lease
    /// the batch's node no longer holds keeps its state (the attempt is still recorded).
    /// A destination with no success in the batch is disabled if the batch's
    /// `auto_disable` says so. Takes the batch by value: the embedded store hands it to
    /// its writer thread as it is.
    async fn complete(&self, batch: CompletedBatch) -> StoreResult<()>;
    /// Gives leased deliveries back untried, each due again at its time (at once on
    /// shutdown; later when a rate limit defers it). The attempt is not counted.
    async fn release(&self, node_id: &str, handbacks: &[Handback], now: Millis) -> StoreResult<()>;
    /// When the next delivery of an enabled destination falls due, or a lease expires.
    /// The dispatcher claims at least once per poll interval, and a claim takes over
    /// expired leases, so a store whose leases are all this process's own may leave
    /// them out (SQLite: a lease outlives its attempt only when recording it failed).
    async fn next_due_at(&self) -> StoreResult<Option<Millis>>;
    /// Attaches the dispatcher of this process (replacing any earlier one): the store
    /// wakes it whenever it commits work that is due, and a store this process owns
    /// alone may lease fresh deliveries to it as they are published.
    fn attach(&self, node: Arc<dyn Admission>);
}
