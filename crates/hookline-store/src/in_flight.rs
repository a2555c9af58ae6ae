//! The deliveries this node holds leases on and has not finished, per destination.
//! The dispatcher frees a place when an attempt ends; the store takes one in the same
//! step that leases a delivery to this node — at a claim, or at publish when the
//! embedded store hands fresh deliveries straight to the dispatcher (see `Handoff`) —
//! so a destination's `max_in_flight` and the node's concurrency hold whichever path
//! leased them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hookline_core::destination::Destination;
use hookline_core::ids::{DeliveryId, DestinationId};

use crate::Handback;

pub struct InFlight {
    /// Places on this node across all destinations.
    capacity: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// Whose place each held delivery takes (its org is what a hand-back needs). Shared,
    /// not copied: a node takes and frees thousands of places a second.
    places: HashMap<DeliveryId, Arc<Destination>>,
    per_destination: HashMap<DestinationId, u32>,
}

impl Held {
    fn insert(&mut self, delivery: &DeliveryId, destination: &Arc<Destination>) {
        if self.places.contains_key(delivery) {
            return;
        }
        match self.per_destination.get_mut(&destination.id) {
            Some(count) => *count += 1,
            None => {
                self.per_destination.insert(destination.id.clone(), 1);
            }
        }
        self.places.insert(delivery.clone(), destination.clone());
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
        self.held().places.len()
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
    pub fn hold(&self, delivery: &DeliveryId, destination: &Arc<Destination>) {
        self.held().insert(delivery, destination);
    }

    /// Holds `delivery` only if its destination is under its `max_in_flight` and the
    /// node has room; says whether it did.
    pub fn try_hold(&self, delivery: &DeliveryId, destination: &Arc<Destination>) -> bool {
        let mut held = self.held();
        let fits = held.places.len() < self.capacity
            && held.count(&destination.id) < destination.settings.max_in_flight;
        if fits {
            held.insert(delivery, destination);
        }
        fits
    }

    pub fn release(&self, delivery: &DeliveryId) {
        let mut held = self.held();
        if let Some(destination) = held.places.remove(delivery)
            && let Some(count) = held.per_destination.get_mut(&destination.id)
        {
            *count -= 1;
            if *count == 0 {
                held.per_destination.remove(&destination.id);
            }
        }
    }

    /// Every held delivery, as a hand-back due at `run_at`.
    pub fn handbacks(&self, run_at: hookline_core::clock::Millis) -> Vec<Handback> {
        self.held()
            .places
            .iter()
            .map(|(delivery, destination)| Handback {
                org_id: destination.org_id.clone(),
                delivery_id: delivery.clone(),
                run_at,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::destination;

    fn limited(max_in_flight: u32) -> Arc<Destination> {
        let mut destination = destination();
        destination.settings.max_in_flight = max_in_flight;
        Arc::new(destination)
    }

    #[test]
    fn a_destination_gets_no_more_than_its_limit_and_a_release_frees_a_place() {
        let in_flight = InFlight::new(10);
        let dst = limited(2);
        let [d1, d2, d3] = [(); 3].map(|_| DeliveryId::generate());
        assert!(in_flight.try_hold(&d1, &dst));
        assert!(in_flight.try_hold(&d2, &dst));
        assert!(!in_flight.try_hold(&d3, &dst));
        assert_eq!(in_flight.count(&dst.id), 2);
        in_flight.release(&d1);
        assert!(in_flight.try_hold(&d3, &dst));
        assert_eq!(in_flight.count(&dst.id), 2);
        assert_eq!(in_flight.room(), 8);
    }

    #[test]
    fn the_node_capacity_bounds_every_destination_together() {
        let in_flight = InFlight::new(2);
        let [a, b, c] = [(); 3].map(|_| limited(5));
        let [d1, d2, d3] = [(); 3].map(|_| DeliveryId::generate());
        assert!(in_flight.try_hold(&d1, &a));
        assert!(in_flight.try_hold(&d2, &b));
        assert!(!in_flight.try_hold(&d3, &c));
        assert_eq!(in_flight.room(), 0);
        assert_eq!(in_flight.count(&c.id), 0);
    }

    #[test]
    fn holding_a_delivery_twice_counts_it_once_and_it_goes_back_to_its_org() {
        let in_flight = InFlight::new(10);
        let (dst, d1) = (Arc::new(destination()), DeliveryId::generate());
        in_flight.hold(&d1, &dst);
        in_flight.hold(&d1, &dst);
        assert_eq!(in_flight.count(&dst.id), 1);
        let handbacks = in_flight.handbacks(7);
        assert_eq!(handbacks.len(), 1);
        assert_eq!(
            (
                &handbacks[0].org_id,
                &handbacks[0].delivery_id,
                handbacks[0].run_at
            ),
            (&dst.org_id, &d1, 7)
        );
        in_flight.release(&d1);
        assert!(in_flight.is_empty());
        assert!(in_flight.per_destination().is_empty());
    }
}
