//! The queue: deliveries are rows that a publish creates, a claim leases to one node,
//! a completion moves on by the retry policy's answer, and a release gives back. Nothing
//! is held only in memory, so a crash loses nothing; a lease that outlives its node is
//! claimed again.

use std::sync::Arc;

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::delivery::Delivery;
use hookline_core::destination::Destination;
use hookline_core::event::{Event, NewEvent};
use hookline_core::ids::{DeliveryId, OrgId};

use crate::{
    Admission, ClaimRequest, ClaimedDelivery, CompletedBatch, DueNow, Handback, Published,
    StoreResult,
};

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores the event and a delivery for every destination that wants it, in one
    /// durable transaction: when this returns Ok, nothing can be lost. Wakes the
    /// attached dispatcher for what it queued.
    async fn publish(&self, org: &OrgId, event: NewEvent, now: Millis) -> StoreResult<Published>;
    /// Stores every event as `publish` would, all in one durable transaction: all of them
    /// or, on an error, none. Answers for each in order.
    async fn publish_batch(
        &self,
        org: &OrgId,
        events: Vec<NewEvent>,
        now: Millis,
    ) -> StoreResult<Vec<Published>>;
    /// Queues a delivery to `destination` of each of `events` (earlier events, which a
    /// backfill sends), due now, and wakes the attached dispatcher; returns how many. On
    /// PostgreSQL an event whose day retention has dropped gets none (it is being purged).
    async fn backfill(
        &self,
        destination: &Destination,
        events: &[Event],
        now: Millis,
    ) -> StoreResult<u32>;
    /// Queues a fresh attempt now, whatever the state, and wakes the attached
    /// dispatcher; `Conflict` if the destination is gone.
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
    /// shutdown; later when a rate limit defers it), and wakes the attached dispatcher.
    /// The attempt is not counted.
    async fn release(&self, node_id: &str, handbacks: &[Handback], now: Millis) -> StoreResult<()>;
    /// When the next delivery of an enabled destination falls due, or a lease expires.
    /// The dispatcher claims at least once per poll interval, and a claim takes over
    /// expired leases, so a store whose leases are all this process's own may leave
    /// them out (SQLite: a lease outlives its attempt only when recording it failed).
    async fn next_due_at(&self) -> StoreResult<Option<Millis>>;
    /// Deliveries of enabled destinations whose time has come at `now`, and the time
    /// the oldest of them fell due: what the server's once-a-minute log line reports.
    async fn due_now(&self, now: Millis) -> StoreResult<DueNow>;
    /// How long this store's commits take.
    fn commit_times(&self) -> crate::CommitTimes;
    /// Attaches the dispatcher of this process (replacing any earlier one): the store
    /// wakes it whenever it commits work that is due, and a store this process owns
    /// alone may lease fresh deliveries to it as they are published.
    fn attach(&self, node: Arc<dyn Admission>);
}
