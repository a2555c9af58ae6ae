//! The deliveries this node holds leases on and has not finished, per destination.
//! The dispatcher frees a place when an attempt ends; the store takes one in the same
//! step that leases a delivery to this node — at a claim, or at publish when the
//! embedded store hands fresh deliveries straight to the dispatcher (see `Handoff`) —
//! so a destination's `max_in_flight` and the node's concurrency hold whichever path
//! leased them.

use std::collections::HashMap;
use std::sync::Mutex;

use hookline_core::ids::{DeliveryId, DestinationId};

pub struct InFlight {
    /// Places on this node across all destinations.
    capacity: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    destination_of: HashMap<DeliveryId, DestinationId>,
    per_destination: HashMap<DestinationId, u32>,
}

impl Held {
    fn insert(&mut self, delivery: DeliveryId, destination: DestinationId) {
        if self.destination_of.contains_key(&delivery) {
            return;
        }
        *self.per_destination.entry(destination.clone()).or_default() += 1;
        self.destination_of.insert(delivery, destination);
    }

    fn count(&self, destination: &DestinationId) -> u32 {
        self.per_destination.get(destination).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("capacity", &self.capacity)
            .field("held", &self.len())
            .finish()
    }
}

impl InFlight {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            held: Mutex::new(Held::default()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.held().destination_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Places still free on this node.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    /// How many deliveries of `destination` are held.
    pub fn count(&self, destination: &DestinationId) -> u32 {
        self.held().count(destination)
    }

    /// Every destination with deliveries held, and how many.
    pub fn per_destination(&self) -> HashMap<DestinationId, u32> {
        self.held().per_destination.clone()
    }

    /// Holds `delivery` whatever the limits (it is already leased); holding it twice
    /// counts once.
    pub fn hold(&self, delivery: DeliveryId, destination: DestinationId) {
        self.held().insert(delivery, destination);
    }

    /// Holds `delivery` only if its destination has fewer than `limit` held and the node
    /// has room; says whether it did.
    pub fn try_hold(&self, delivery: DeliveryId, destination: DestinationId, limit: u32) -> bool {
        let mut held = self.held();
        let fits = held.destination_of.len() < self.capacity && held.count(&destination) < limit;
        if fits {
            held.insert(delivery, destination);
        }
        fits
    }

    pub fn release(&self, delivery: &DeliveryId) {
        let mut held = self.held();
        if let Some(destination) = held.destination_of.remove(delivery)
            && let Some(count) = held.per_destination.get_mut(&destination)
        {
            *count -= 1;
            if *count == 0 {
                held.per_destination.remove(&destination);
            }
        }
    }

    pub fn deliveries(&self) -> Vec<DeliveryId> {
        self.held().destination_of.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(delivery: &str, destination: &str) -> (DeliveryId, DestinationId) {
        (
            DeliveryId::from_trusted(delivery.to_owned()),
            DestinationId::from_trusted(destination.to_owned()),
        )
    }

    #[test]
    fn a_destination_gets_no_more_than_its_limit_and_a_release_frees_a_place() {
        let in_flight = InFlight::new(10);
        let (d1, dst) = ids("dlv_1", "dst_a");
        let (d2, _) = ids("dlv_2", "dst_a");
        let (d3, _) = ids("dlv_3", "dst_a");
        assert!(in_flight.try_hold(d1.clone(), dst.clone(), 2));
        assert!(in_flight.try_hold(d2, dst.clone(), 2));
        assert!(!in_flight.try_hold(d3.clone(), dst.clone(), 2));
        assert_eq!(in_flight.count(&dst), 2);
        in_flight.release(&d1);
        assert!(in_flight.try_hold(d3, dst.clone(), 2));
        assert_eq!(in_flight.count(&dst), 2);
        assert_eq!(in_flight.room(), 8);
    }

    #[test]
    fn the_node_capacity_bounds_every_destination_together() {
        let in_flight = InFlight::new(2);
        let (d1, a) = ids("dlv_1", "dst_a");
        let (d2, b) = ids("dlv_2", "dst_b");
        let (d3, c) = ids("dlv_3", "dst_c");
        assert!(in_flight.try_hold(d1, a, 5));
        assert!(in_flight.try_hold(d2, b, 5));
        assert!(!in_flight.try_hold(d3, c.clone(), 5));
        assert_eq!(in_flight.room(), 0);
        assert_eq!(in_flight.count(&c), 0);
    }

    #[test]
    fn holding_a_delivery_twice_counts_it_once() {
        let in_flight = InFlight::new(10);
        let (d1, dst) = ids("dlv_1", "dst_a");
        in_flight.hold(d1.clone(), dst.clone());
        in_flight.hold(d1.clone(), dst.clone());
        assert_eq!(in_flight.count(&dst), 1);
        in_flight.release(&d1);
        assert!(in_flight.is_empty());
        assert!(in_flight.per_destination().is_empty());
    }
}
