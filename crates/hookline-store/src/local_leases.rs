//! Leases a store takes for this node inside its open transaction: claimed deliveries
//! (the embedded store), and fresh ones leased at publish for the dispatcher (both
//! stores). The node's `Admission` decides and takes a place as each is leased, so a
//! publish later in the same batch sees it. A rollback gives the places back; a commit
//! sends the deliveries leased at publish on to the dispatcher, never before.

use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::{DeliveryId, DestinationId};

use crate::{Admission, AttachedNode, ClaimedDelivery};

#[derive(Default)]
pub struct LocalLeases {
    /// Set by `Store::attach`, from outside the writer thread.
    node: AttachedNode,
    /// Places taken in the open transaction.
    held: Vec<(Arc<dyn Admission>, DeliveryId)>,
    /// Leased at publish in the open transaction, and where each goes after the commit.
    handed: Vec<(Arc<dyn Admission>, ClaimedDelivery)>,
}

/// A lease taken at publish: the row is stored leased to the node until then.
pub struct PublishLease {
    node: Arc<dyn Admission>,
    pub until: Millis,
}

impl PublishLease {
    pub fn node_id(&self) -> &str {
        self.node.node_id()
    }
}

impl LocalLeases {
    pub fn new(node: AttachedNode) -> Self {
        Self {
            node,
            ..Self::default()
        }
    }

    /// The node deliveries may be leased to at publish, if one is attached.
    pub fn node(&self) -> Option<Arc<dyn Admission>> {
        self.node.get()
    }

    /// Holds a delivery the open transaction claimed for `node`.
    pub fn hold(
        &mut self,
        node: &Arc<dyn Admission>,
        delivery: &DeliveryId,
        destination: &Arc<Destination>,
    ) {
        node.hold(delivery, destination);
        self.held.push((node.clone(), delivery.clone()));
    }

    /// Leases a fresh delivery of `event` to the attached node if nothing of its
    /// destination is `older_due` and the node's admission takes it.
    pub fn lease_at_publish(
        &mut self,
        delivery_id: &DeliveryId,
        destination: &Arc<Destination>,
        event: &Arc<Event>,
        older_due: bool,
        now: Millis,
    ) -> Option<PublishLease> {
        if older_due {
            return None;
        }
        let node = self.node.get()?;
        let until = node.lease_at_publish(delivery_id, destination, now)?;
        self.held.push((node.clone(), delivery_id.clone()));
        let claimed = ClaimedDelivery {
            delivery_id: delivery_id.clone(),
            attempt: 1,
            event: event.clone(),
            destination: destination.clone(),
            // Known once the row is in: `inserted_as`.
            row_hint: None,
            lease_until: until,
        };
        self.handed.push((node.clone(), claimed));
        Some(PublishLease { node, until })
    }

    /// Tells the attached node that destination `id` is changing. A rollback leaves it
    /// told: its deliveries go back to the queue and are claimed again, which costs a
    /// write and loses nothing.
    pub fn destination_changed(&self, id: &str) {
        if let Some(node) = self.node.get() {
            node.destination_changed(&DestinationId::from_trusted(id.to_owned()));
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
    /// publish go to the dispatcher.
    pub fn committed(&mut self) {
        self.held.clear();
        for (node, claimed) in self.handed.drain(..) {
            node.hand_over(claimed);
        }
    }

    /// The open transaction was undone: its leases never happened.
    pub fn undone(&mut self) {
        for (node, id) in self.held.drain(..) {
            node.undo(&id);
        }
        self.handed.clear();
    }
}

#[cfg(test)]
mod tests {
    use hookline_core::testing;

    use super::*;
    use crate::test_admission::RecordingAdmission;

    fn attached(node: &Arc<RecordingAdmission>) -> LocalLeases {
        let attached = AttachedNode::default();
        attached.set(node.clone());
        LocalLeases::new(attached)
    }

    #[test]
    fn an_undone_lease_frees_its_place_and_only_a_committed_one_is_handed_over() {
        let node = Arc::new(RecordingAdmission::default());
        let mut leases = attached(&node);
        let destination = Arc::new(testing::destination());
        let (event, id) = (
            Arc::new(testing::event_for(&destination)),
            DeliveryId::generate(),
        );

        let lease = leases.lease_at_publish(&id, &destination, &event, false, 1_000);
        assert_eq!(
            lease.map(|l| l.until),
            Some(RecordingAdmission::LEASE_UNTIL)
        );
        leases.undone();
        assert_eq!(
            node.undone(),
            std::slice::from_ref(&id),
            "the rolled-back lease gave its place back"
        );
        assert!(node.handed().is_empty(), "nothing is sent before a commit");

        // The batch runs again and commits: one hand-over.
        assert!(
            leases
                .lease_at_publish(&id, &destination, &event, false, 1_000)
                .is_some()
        );
        leases.committed();
        assert_eq!(node.handed(), [id]);
        assert_eq!(node.undone().len(), 1);
    }

    #[test]
    fn nothing_is_leased_at_publish_while_older_deliveries_are_due() {
        let node = Arc::new(RecordingAdmission::default());
        let mut leases = attached(&node);
        let destination = Arc::new(testing::destination());
        let event = Arc::new(testing::event_for(&destination));
        let lease = leases.lease_at_publish(&DeliveryId::generate(), &destination, &event, true, 0);
        assert!(lease.is_none());
        assert_eq!(node.asked(), 0, "the node was not even asked");
    }
}
