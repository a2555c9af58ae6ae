//! The deliveries this node holds leases on and has not finished, per destination.
//! The dispatcher frees a place when an attempt ends; the store takes one, through
//! `NodeAdmission`, in the same step that leases a delivery to this node — at a claim,
//! or at publish when the embedded store hands fresh deliveries straight to the
//! dispatcher — so a destination's `max_in_flight` and the node's concurrency hold
//! whichever path leased them.
//!
//! At publish the node may hold more than it can send at once (`HELD_ROUNDS`): the
//! dispatcher keeps those waiting for a place to send from rather than leaving them to
//! a claim, which would write each row a second time. Claims take only free places.

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use hookline_core::destination::Destination;
use hookline_core::ids::{DeliveryId, DestinationId};

use hookline_store::Handback;

/// How many times its sending places a node holds of a destination, at publish or by a
/// claim (and of all destinations together): one round being sent, the others waiting
/// in order. When a backlog is claimed, what is held must last until the next claim,
/// which on PostgreSQL takes milliseconds: with 4 rounds a destination at the default
/// `max_in_flight` emptied its rounds between claims and waited; 16 keep its places
/// busy (docs/perf-history.md, twentieth session). On the embedded store, where fresh
/// deliveries are held at publish, 4 and 16 ran alike. Each waiting delivery is a task
/// and a lease held in memory.
pub const HELD_ROUNDS: u32 = 16;

pub struct InFlight {
    /// Places on this node across all destinations.
    capacity: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// Whose place each held delivery takes (its org is what a hand-back needs). Shared,
    /// not copied: a node takes and frees thousands of places a second.
    places: HashMap<DeliveryId, Hold>,
    per_destination: HashMap<DestinationId, DestinationHeld>,
}

/// A delivery held for this node: whose it is, and as of which change.
struct Hold {
    destination: Arc<Destination>,
    /// The destination's `changes` when it was held.
    changes_seen: u32,
}

#[derive(Default)]
struct DestinationHeld {
    count: u32,
    /// Bumped by `changed`: a delivery held from before was leased under settings that
    /// no longer stand.
    changes: u32,
}

impl Held {
    fn insert(&mut self, delivery: &DeliveryId, destination: &Arc<Destination>) {
        if self.places.contains_key(delivery) {
            return;
        }
        let held = match self.per_destination.get_mut(&destination.id) {
            Some(held) => held,
            None => self
                .per_destination
                .entry(destination.id.clone())
                .or_default(),
        };
        held.count += 1;
        let changes_seen = held.changes;
        self.places.insert(
            delivery.clone(),
            Hold {
                destination: destination.clone(),
                changes_seen,
            },
        );
    }

    fn count(&self, destination: &DestinationId) -> u32 {
        self.per_destination
            .get(destination)
            .map_or(0, |held| held.count)
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
        let held = self.held();
        held.per_destination
            .iter()
            .map(|(id, held)| (id.clone(), held.count))
            .collect()
    }

    /// Holds `delivery` whatever the limits (it is already leased); holding it twice
    /// counts once.
    pub fn hold(&self, delivery: &DeliveryId, destination: &Arc<Destination>) {
        self.held().insert(delivery, destination);
    }

    /// Holds `delivery` at publish only if this node holds fewer than `HELD_ROUNDS` times
    /// its destination's `max_in_flight` and its own capacity; says whether it did.
    pub fn try_hold(&self, delivery: &DeliveryId, destination: &Arc<Destination>) -> bool {
        let mut held = self.held();
        let fits = held.places.len() < self.capacity * HELD_ROUNDS as usize
            && held.count(&destination.id)
                < destination
                    .settings
                    .max_in_flight
                    .saturating_mul(HELD_ROUNDS);
        if fits {
            held.insert(delivery, destination);
        }
        fits
    }

    pub fn release(&self, delivery: &DeliveryId) {
        let mut held = self.held();
        if let Some(hold) = held.places.remove(delivery)
            && let Some(destination) = held.per_destination.get_mut(&hold.destination.id)
        {
            destination.count -= 1;
            if destination.count == 0 {
                held.per_destination.remove(&hold.destination.id);
            }
        }
    }

    /// The destination's settings, keys or existence changed: what this node holds of it
    /// was leased under the old ones (see `is_current`).
    pub fn changed(&self, destination: &DestinationId) {
        if let Some(held) = self.held().per_destination.get_mut(destination) {
            held.changes = held.changes.wrapping_add(1);
        }
    }

    /// Whether `delivery` is held and its destination has not changed since.
    pub fn is_current(&self, delivery: &DeliveryId) -> bool {
        let held = self.held();
        held.places.get(delivery).is_some_and(|hold| {
            held.per_destination
                .get(&hold.destination.id)
                .is_some_and(|destination| destination.changes == hold.changes_seen)
        })
    }

    /// Every held delivery, as a hand-back due at `run_at`.
    pub fn handbacks(&self, run_at: hookline_core::clock::Millis) -> Vec<Handback> {
        self.held()
            .places
            .iter()
            .map(|(delivery, hold)| Handback {
                org_id: hold.destination.org_id.clone(),
                delivery_id: delivery.clone(),
                run_at,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_core::testing::destination;

    fn limited(max_in_flight: u32) -> Arc<Destination> {
        let mut destination = destination();
        destination.settings.max_in_flight = max_in_flight;
        Arc::new(destination)
    }

    /// `count` fresh delivery ids.
    fn deliveries(count: u32) -> Vec<DeliveryId> {
        (0..count).map(|_| DeliveryId::generate()).collect()
    }

    #[test]
    fn a_destination_is_held_up_to_its_rounds_of_places_and_a_release_frees_one() {
        let in_flight = InFlight::new(100);
        let dst = limited(2);
        let held = deliveries(2 * HELD_ROUNDS);
        for delivery in &held {
            assert!(in_flight.try_hold(delivery, &dst));
        }
        let one_more = DeliveryId::generate();
        assert!(!in_flight.try_hold(&one_more, &dst));
        assert_eq!(in_flight.count(&dst.id), 2 * HELD_ROUNDS);
        in_flight.release(&held[0]);
        assert!(in_flight.try_hold(&one_more, &dst));
        assert_eq!(in_flight.count(&dst.id), 2 * HELD_ROUNDS);
        assert_eq!(in_flight.room(), 100 - 2 * HELD_ROUNDS as usize);
    }

    #[test]
    fn the_node_holds_its_rounds_of_capacity_across_destinations_and_claims_get_no_room() {
        let in_flight = InFlight::new(2);
        let [a, b, c] = [(); 3].map(|_| limited(5));
        let held = deliveries(2 * HELD_ROUNDS);
        for (i, delivery) in held.iter().enumerate() {
            assert!(in_flight.try_hold(delivery, if i % 2 == 0 { &a } else { &b }));
        }
        assert!(!in_flight.try_hold(&DeliveryId::generate(), &c));
        assert_eq!(in_flight.room(), 0, "nothing free for a claim to take");
        assert_eq!(in_flight.count(&c.id), 0);
    }

    #[test]
    fn a_change_of_its_destination_leaves_what_was_held_before_not_current() {
        let in_flight = InFlight::new(10);
        let (changed, other) = (limited(5), limited(5));
        let [before, unrelated, after] = [(); 3].map(|_| DeliveryId::generate());
        assert!(in_flight.try_hold(&before, &changed));
        assert!(in_flight.try_hold(&unrelated, &other));
        in_flight.changed(&changed.id);
        assert!(in_flight.try_hold(&after, &changed));
        assert!(!in_flight.is_current(&before));
        assert!(in_flight.is_current(&unrelated));
        assert!(in_flight.is_current(&after), "held under the new settings");
        in_flight.release(&after);
        assert!(!in_flight.is_current(&after), "no longer held");
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
