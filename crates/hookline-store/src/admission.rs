//! What a store asks of the dispatcher in its own process when it leases deliveries to
//! that node. The dispatcher decides (`hookline_dispatch::NodeAdmission`): how many
//! deliveries it holds per destination and in all, whether a fresh one is taken at
//! publish, and how long a lease lasts. The store asks in the transaction that writes
//! the lease, undoes what a rolled-back transaction took, and hands over what committed.

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::ids::{DeliveryId, DestinationId};

use crate::ClaimedDelivery;

/// The dispatcher attached to a store (`Queue::attach`), if any: one slot the store and
/// whatever it hands work to share, set from outside and read on every commit.
#[derive(Clone, Default)]
pub struct AttachedNode(Arc<Mutex<Option<Arc<dyn Admission>>>>);

impl AttachedNode {
    pub fn set(&self, node: Arc<dyn Admission>) {
        *self.slot() = Some(node);
    }

    pub fn get(&self) -> Option<Arc<dyn Admission>> {
        self.slot().clone()
    }

    /// Tells the attached dispatcher, if any, that work it may claim was committed.
    pub fn wake(&self) {
        if let Some(node) = self.get() {
            node.wake();
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<dyn Admission>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub trait Admission: Send + Sync + 'static {
    /// Whose leases these are; a restarted process gets a new id.
    fn node_id(&self) -> &str;

    /// Deliveries a claim may still lease to this node, across all destinations.
    fn room(&self) -> usize;

    /// How many deliveries of `destination` this node holds.
    fn held(&self, destination: &DestinationId) -> u32;

    /// Every destination this node holds deliveries of, and how many.
    fn held_per_destination(&self) -> HashMap<DestinationId, u32>;

    /// The most deliveries of `destination` this node may hold once a claim is done,
    /// while other nodes hold `others` of them. Beyond `max_in_flight`, the rest wait in
    /// this node for a place to send from.
    fn claim_ceiling(&self, destination: &Destination, others: u32) -> u32;

    /// When the lease of a delivery to `destination` claimed at `now` ends, when it is
    /// the `position`-th (from 0) this node holds of it: one beyond `max_in_flight`
    /// waits for the rounds ahead of it first.
    fn claim_lease_until(&self, destination: &Destination, now: Millis, position: u32) -> Millis;

    /// A claim leased `delivery` to this node: it holds a place until its attempt ends.
    fn hold(&self, delivery: &DeliveryId, destination: &Arc<Destination>);

    /// A fresh delivery of `destination` is being published while nothing older of it
    /// is due: the end of its lease if this node takes it at once, or None to leave it
    /// to the queue.
    fn lease_at_publish(
        &self,
        delivery: &DeliveryId,
        destination: &Arc<Destination>,
        now: Millis,
    ) -> Option<Millis>;

    /// The transaction that leased `delivery` to this node was undone: the lease never
    /// happened and its place is free.
    fn undo(&self, delivery: &DeliveryId);

    /// `destination`'s settings, keys or existence are changing: what this node holds of
    /// it was leased under the old ones and must not be sent under them.
    fn destination_changed(&self, destination: &DestinationId);

    /// A delivery leased at publish has committed: it is the dispatcher's to send.
    fn hand_over(&self, delivery: ClaimedDelivery);

    /// Work this node may claim now was committed (published, redelivered, resumed,
    /// handed back), here or, on a shared store, by another node.
    fn wake(&self);
}
