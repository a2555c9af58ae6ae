//! This node's answer to the store's questions when it leases deliveries here
//! (`hookline_store::Admission`): how many it holds, whether a fresh delivery is taken
//! at publish, and how long a lease lasts. Claims and publishes ask in the transaction
//! that writes the lease; what they hand over arrives on the channel `new` returns.

use foldhash::HashMap;
use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::ids::{DeliveryId, DestinationId};
use hookline_store::{Admission, ClaimedDelivery};
use tokio::sync::{Notify, mpsc};

pub use crate::in_flight::{HELD_ROUNDS, InFlight};

pub struct NodeAdmission {
    node_id: String,
    /// A lease outlasts the attempts it covers by this much.
    lease_margin_ms: Millis,
    in_flight: InFlight,
    /// Deliveries leased at publish, once committed, to the dispatcher's loop.
    handed: mpsc::UnboundedSender<ClaimedDelivery>,
    wake: Arc<Notify>,
}

impl NodeAdmission {
    /// Admission for node `node_id` with `capacity` places to send from; wakes `wake`.
    /// Also returns where deliveries leased at publish arrive.
    pub fn new(
        node_id: String,
        lease_margin_ms: Millis,
        capacity: usize,
        wake: Arc<Notify>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<ClaimedDelivery>) {
        let (handed, arrivals) = mpsc::unbounded_channel();
        let admission = Self {
            node_id,
            lease_margin_ms,
            in_flight: InFlight::new(capacity),
            handed,
            wake,
        };
        (Arc::new(admission), arrivals)
    }

    /// What this node holds.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }
}

impl Admission for NodeAdmission {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn room(&self) -> usize {
        self.in_flight.room()
    }

    fn held(&self, destination: &DestinationId) -> u32 {
        self.in_flight.count(destination)
    }

    fn held_per_destination(&self) -> HashMap<DestinationId, u32> {
        self.in_flight.per_destination()
    }

    /// Up to `HELD_ROUNDS` rounds while no other node holds any (an unordered, unlimited
    /// destination, as at publish), so a place freed here is refilled without a claim;
    /// otherwise what `max_in_flight` leaves free across the nodes. Once one node holds
    /// more than `max_in_flight`, the others see it full, so at most one node ever holds
    /// beyond it and the sum of what is sent stays within it.
    fn claim_ceiling(&self, destination: &Destination, others: u32) -> u32 {
        let max_in_flight = destination.settings.max_in_flight;
        if others == 0 && may_wait_for_rounds(destination) {
            max_in_flight.saturating_mul(HELD_ROUNDS)
        } else {
            max_in_flight.saturating_sub(others)
        }
    }

    fn claim_lease_until(&self, destination: &Destination, now: Millis, position: u32) -> Millis {
        let rounds = position / destination.settings.max_in_flight.max(1) + 1;
        lease_until(now, destination, rounds, self.lease_margin_ms)
    }

    fn hold(&self, delivery: &DeliveryId, destination: &Arc<Destination>) {
        self.in_flight.hold(delivery, destination);
    }

    /// Taken only if it would be claimed at once anyway: the dispatcher is listening,
    /// the destination is enabled, unordered and not rate-limited, and this node holds
    /// fewer than `HELD_ROUNDS` of its places. Its lease covers the rounds ahead of it.
    fn lease_at_publish(
        &self,
        delivery: &DeliveryId,
        destination: &Arc<Destination>,
        now: Millis,
    ) -> Option<Millis> {
        if self.handed.is_closed()
            || !destination.settings.enabled
            || !may_wait_for_rounds(destination)
            || !self.in_flight.try_hold(delivery, destination)
        {
            return None;
        }
        Some(lease_until(
            now,
            destination,
            HELD_ROUNDS,
            self.lease_margin_ms,
        ))
    }

    fn undo(&self, delivery: &DeliveryId) {
        self.in_flight.release(delivery);
    }

    fn destination_changed(&self, destination: &DestinationId) {
        self.in_flight.changed(destination);
    }

    /// A dispatcher that has stopped meanwhile leaves the lease to expire (at the latest
    /// when the store is next opened); nothing is lost.
    fn hand_over(&self, delivery: ClaimedDelivery) {
        let id = delivery.delivery_id.clone();
        if self.handed.send(delivery).is_err() {
            self.in_flight.release(&id);
        }
    }

    fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Whether deliveries of `destination` may wait in this node, beyond its free places,
/// for the rounds ahead of them: not when it is ordered (only a stream's head may go)
/// or rate-limited (what waits is sent back to the queue at its turn anyway).
fn may_wait_for_rounds(destination: &Destination) -> bool {
    !destination.settings.ordered && destination.settings.rate_limit_per_sec.is_none()
}

/// The longest one attempt to `destination` may take.
fn attempt_limit_ms(destination: &Destination) -> Millis {
    i64::from(destination.settings.timeout_secs) * 1000
}

/// Until when a delivery of `destination` leased at `now` stays this node's: `rounds`
/// attempts' timeouts (one for a claim; `HELD_ROUNDS` for a delivery held at publish,
/// which may wait for its place behind the others held), plus `margin_ms`.
fn lease_until(now: Millis, destination: &Destination, rounds: u32, margin_ms: Millis) -> Millis {
    now + i64::from(rounds) * attempt_limit_ms(destination) + margin_ms
}

/// Whether an attempt of `claimed` started at `now` ends, at its timeout, within the
/// lease: one that could not must not start (the dispatcher hands it back instead).
pub(crate) fn lease_outlasts_attempt(claimed: &ClaimedDelivery, now: Millis) -> bool {
    now + attempt_limit_ms(&claimed.destination) <= claimed.lease_until
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_core::testing::{destination, event_for};

    fn admission(
        capacity: usize,
    ) -> (Arc<NodeAdmission>, mpsc::UnboundedReceiver<ClaimedDelivery>) {
        NodeAdmission::new("node-a".into(), 5_000, capacity, Arc::new(Notify::new()))
    }

    #[test]
    fn an_attempt_starts_only_if_its_timeout_ends_within_the_lease() {
        let destination = Arc::new(destination());
        let timeout_ms = i64::from(destination.settings.timeout_secs) * 1000;
        let claimed = ClaimedDelivery {
            delivery_id: DeliveryId::generate(),
            attempt: 1,
            event: Arc::new(event_for(&destination)),
            lease_until: lease_until(1_000, &destination, 2, 500),
            destination,
            row_hint: None,
        };
        assert_eq!(claimed.lease_until, 1_000 + 2 * timeout_ms + 500);
        let last_start = claimed.lease_until - timeout_ms;
        assert!(lease_outlasts_attempt(&claimed, last_start));
        assert!(!lease_outlasts_attempt(&claimed, last_start + 1));
    }

    #[test]
    fn a_lease_at_publish_covers_the_rounds_ahead_and_a_claim_one_attempt() {
        let (admission, _arrivals) = admission(10);
        let destination = Arc::new(destination());
        let timeout_ms = i64::from(destination.settings.timeout_secs) * 1000;
        let until = admission.lease_at_publish(&DeliveryId::generate(), &destination, 1_000);
        assert_eq!(
            until,
            Some(1_000 + i64::from(HELD_ROUNDS) * timeout_ms + 5_000)
        );
        assert_eq!(
            admission.claim_lease_until(&destination, 1_000, 0),
            1_000 + timeout_ms + 5_000
        );
        let max_in_flight = destination.settings.max_in_flight;
        assert_eq!(
            admission.claim_lease_until(&destination, 1_000, max_in_flight - 1),
            1_000 + timeout_ms + 5_000,
            "the last of the first round"
        );
        assert_eq!(
            admission.claim_lease_until(&destination, 1_000, max_in_flight),
            1_000 + 2 * timeout_ms + 5_000,
            "the first to wait for a round"
        );
    }

    #[test]
    fn a_claim_holds_rounds_only_while_no_other_node_holds_the_destination() {
        let (admission, _arrivals) = admission(10);
        let mut destination = destination();
        destination.settings.max_in_flight = 10;
        assert_eq!(admission.claim_ceiling(&destination, 0), 10 * HELD_ROUNDS);
        assert_eq!(admission.claim_ceiling(&destination, 3), 7);
        assert_eq!(admission.claim_ceiling(&destination, 12), 0);
        destination.settings.ordered = true;
        assert_eq!(admission.claim_ceiling(&destination, 0), 10);
    }

    #[test]
    fn ordered_rate_limited_and_paused_destinations_are_left_to_the_queue() {
        let (admission, _arrivals) = admission(10);
        for change in [
            |d: &mut Destination| d.settings.ordered = true,
            |d: &mut Destination| d.settings.rate_limit_per_sec = Some(5),
            |d: &mut Destination| d.settings.enabled = false,
        ] {
            let mut destination = destination();
            change(&mut destination);
            let destination = Arc::new(destination);
            let id = DeliveryId::generate();
            assert_eq!(admission.lease_at_publish(&id, &destination, 0), None);
        }
        assert!(admission.in_flight().is_empty());
    }

    #[test]
    fn nothing_is_taken_or_handed_over_once_the_dispatcher_stopped() {
        let (admission, arrivals) = admission(10);
        let destination = Arc::new(destination());
        let id = DeliveryId::generate();
        assert!(admission.lease_at_publish(&id, &destination, 0).is_some());
        drop(arrivals);
        admission.hand_over(ClaimedDelivery {
            delivery_id: id.clone(),
            attempt: 1,
            event: Arc::new(event_for(&destination)),
            destination: destination.clone(),
            row_hint: None,
            lease_until: 0,
        });
        assert!(admission.in_flight().is_empty(), "its place was freed");
        let later = DeliveryId::generate();
        assert_eq!(admission.lease_at_publish(&later, &destination, 0), None);
    }
}
