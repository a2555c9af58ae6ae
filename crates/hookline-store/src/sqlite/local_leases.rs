//! Leases the writer takes for this node inside its open transaction: claimed
//! deliveries, and fresh ones leased at publish for the dispatcher (see `Handoff`).
//! Each takes a place in the node's `InFlight` as it is leased, so a publish later in
//! the same batch sees it. A rollback gives the places back; a commit sends the
//! deliveries leased at publish on to the dispatcher, never before.

use std::sync::{Arc, Mutex};

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::{DeliveryId, DestinationId};

use crate::in_flight::HELD_ROUNDS;
use crate::model::lease_until;
use crate::{ClaimedDelivery, Handoff, InFlight};

#[derive(Default)]
pub(crate) struct LocalLeases {
    /// Set by `Store::hand_off_at_publish`, from outside the writer thread.
    handoff: Arc<Mutex<Option<Arc<Handoff>>>>,
    /// Places taken in the open transaction.
    held: Vec<(Arc<InFlight>, DeliveryId)>,
    /// Leased at publish in the open transaction, and where each goes after the commit.
    handed: Vec<(Arc<Handoff>, ClaimedDelivery)>,
}

/// A lease taken at publish: the row is stored leased to the hand-off's node until then.
pub(crate) struct PublishLease {
    handoff: Arc<Handoff>,
    pub until: Millis,
}

impl PublishLease {
    pub fn node_id(&self) -> &str {
        &self.handoff.node_id
    }
}

impl LocalLeases {
    pub fn new(handoff: Arc<Mutex<Option<Arc<Handoff>>>>) -> Self {
        Self {
            handoff,
            ..Self::default()
        }
    }

    /// Holds a delivery the open transaction claimed for this node.
    pub fn hold(
        &mut self,
        in_flight: &Arc<InFlight>,
        delivery: &DeliveryId,
        destination: &Arc<Destination>,
    ) {
        in_flight.hold(delivery, destination);
        self.held.push((in_flight.clone(), delivery.clone()));
    }

    /// Leases a fresh delivery of `event` to this node's dispatcher if it would be
    /// claimed at once anyway: a dispatcher is listening, the destination is enabled,
    /// unordered and not rate-limited, nothing of it is `older_due`, and it has a place.
    pub fn lease_at_publish(
        &mut self,
        delivery_id: &DeliveryId,
        destination: &Arc<Destination>,
        event: &Arc<Event>,
        older_due: bool,
        now: Millis,
    ) -> Option<PublishLease> {
        let settings = &destination.settings;
        if older_due
            || !settings.enabled
            || settings.ordered
            || settings.rate_limit_per_sec.is_some()
        {
            return None;
        }
        let handoff = self
            .handoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|h| !h.deliveries.is_closed())?;
        if !handoff.in_flight.try_hold(delivery_id, destination) {
            return None;
        }
        self.held
            .push((handoff.in_flight.clone(), delivery_id.clone()));
        let until = lease_until(now, destination, HELD_ROUNDS, handoff.lease_margin_ms);
        let lease = PublishLease {
            until,
            handoff: handoff.clone(),
        };
        let claimed = ClaimedDelivery {
            delivery_id: delivery_id.clone(),
            attempt: 1,
            event: event.clone(),
            destination: destination.clone(),
            // Known once the row is in: `inserted_as`.
            row_hint: None,
            lease_until: until,
        };
        self.handed.push((handoff, claimed));
        Some(lease)
    }

    /// Tells the dispatcher, if any, that destination `id` is changing (see
    /// `InFlight::changed`). A rollback leaves it told: its deliveries go back to the
    /// queue and are claimed again, which costs a write and loses nothing.
    pub fn destination_changed(&self, id: &str) {
        let handoff = self.handoff.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handoff) = handoff.as_ref() {
            handoff
                .in_flight
                .changed(&DestinationId::from_trusted(id.to_owned()));
        }
    }

    /// The delivery last leased at publish was stored as row `rowid`, which its
    /// completion can then go straight to.
    pub fn inserted_as(&mut self, rowid: i64) {
        if let Some((_, claimed)) = self.handed.last_mut() {
            claimed.row_hint = Some(rowid);
        }
    }

    /// The open transaction committed: its leases stand, and the deliveries leased at
    /// publish go to the dispatcher. One that has stopped meanwhile leaves its leases to
    /// expire (at the latest when the store is next opened); nothing is lost.
    pub fn committed(&mut self) {
        self.held.clear();
        for (handoff, claimed) in self.handed.drain(..) {
            let id = claimed.delivery_id.clone();
            if handoff.deliveries.send(claimed).is_err() {
                handoff.in_flight.release(&id);
            }
        }
    }

    /// The open transaction was undone: its leases never happened.
    pub fn undone(&mut self) {
        for (in_flight, id) in self.held.drain(..) {
            in_flight.release(&id);
        }
        self.handed.clear();
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::test_support;

    fn destination() -> Arc<Destination> {
        Arc::new(test_support::destination())
    }

    /// Leases for node-a, with room for ten, and what it is handed.
    fn handing_off() -> (
        LocalLeases,
        Arc<InFlight>,
        mpsc::UnboundedReceiver<ClaimedDelivery>,
    ) {
        let in_flight = Arc::new(InFlight::new(10));
        let (deliveries, handed) = mpsc::unbounded_channel();
        let leases = LocalLeases::new(Arc::new(Mutex::new(Some(Arc::new(Handoff {
            node_id: "node-a".into(),
            lease_margin_ms: 5_000,
            in_flight: in_flight.clone(),
            deliveries,
        })))));
        (leases, in_flight, handed)
    }

    #[test]
    fn an_undone_lease_frees_its_place_and_only_a_committed_one_is_handed_over() {
        let (mut leases, in_flight, mut handed) = handing_off();
        let destination = destination();
        let (event, id) = (
            Arc::new(test_support::event_for(&destination)),
            DeliveryId::generate(),
        );

        let lease = leases.lease_at_publish(&id, &destination, &event, false, 1_000);
        // Time for every round held before it to use its whole 30 s timeout, and its own.
        let rounds = i64::from(HELD_ROUNDS);
        assert_eq!(
            lease.map(|l| l.until),
            Some(1_000 + rounds * 30_000 + 5_000)
        );
        leases.undone();
        assert!(
            in_flight.is_empty(),
            "the rolled-back lease gave its place back"
        );
        assert!(
            handed.try_recv().is_err(),
            "nothing is sent before a commit"
        );

        // The batch runs again and commits: one place, one hand-over.
        assert!(
            leases
                .lease_at_publish(&id, &destination, &event, false, 1_000)
                .is_some()
        );
        leases.committed();
        assert_eq!(in_flight.count(&destination.id), 1);
        assert_eq!(handed.try_recv().unwrap().delivery_id, id);
        assert!(handed.try_recv().is_err());
    }

    #[test]
    fn nothing_is_leased_at_publish_while_older_deliveries_are_due() {
        let (mut leases, in_flight, _handed) = handing_off();
        let destination = destination();
        let event = Arc::new(test_support::event_for(&destination));
        let lease = leases.lease_at_publish(&DeliveryId::generate(), &destination, &event, true, 0);
        assert!(lease.is_none());
        assert!(in_flight.is_empty());
    }
}
