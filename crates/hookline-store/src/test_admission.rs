//! A dispatcher's admission that takes every delivery offered and records what the
//! store asked of it, for tests of how a store leases (the real one is
//! `hookline_dispatch::NodeAdmission`, whose own rules are tested there).

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::ids::{DeliveryId, DestinationId};

use crate::{Admission, ClaimedDelivery};

#[derive(Default)]
pub struct RecordingAdmission {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    asked: usize,
    undone: Vec<DeliveryId>,
    handed: Vec<DeliveryId>,
}

impl RecordingAdmission {
    /// Every lease this admission grants ends then.
    pub const LEASE_UNTIL: Millis = 1_000_000;

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many fresh deliveries it was offered at publish.
    pub fn asked(&self) -> usize {
        self.seen().asked
    }

    /// Leases it was told were undone, in order.
    pub fn undone(&self) -> Vec<DeliveryId> {
        self.seen().undone.clone()
    }

    /// Deliveries handed over after a commit, in order.
    pub fn handed(&self) -> Vec<DeliveryId> {
        self.seen().handed.clone()
    }
}

impl Admission for RecordingAdmission {
    fn node_id(&self) -> &str {
        "recording"
    }

    fn room(&self) -> usize {
        usize::MAX
    }

    fn held(&self, _destination: &DestinationId) -> u32 {
        0
    }

    fn held_per_destination(&self) -> HashMap<DestinationId, u32> {
        HashMap::default()
    }

    fn claim_ceiling(&self, destination: &Destination, others: u32) -> u32 {
        destination.settings.max_in_flight.saturating_sub(others)
    }

    fn claim_lease_until(
        &self,
        _destination: &Destination,
        _now: Millis,
        _position: u32,
    ) -> Millis {
        Self::LEASE_UNTIL
    }

    fn hold(&self, _delivery: &DeliveryId, _destination: &Arc<Destination>) {}

    fn lease_at_publish(
        &self,
        _delivery: &DeliveryId,
        _destination: &Arc<Destination>,
        _now: Millis,
    ) -> Option<Millis> {
        self.seen().asked += 1;
        Some(Self::LEASE_UNTIL)
    }

    fn undo(&self, delivery: &DeliveryId) {
        self.seen().undone.push(delivery.clone());
    }

    fn destination_changed(&self, _destination: &DestinationId) {}

    fn hand_over(&self, delivery: ClaimedDelivery) {
        self.seen().handed.push(delivery.delivery_id);
    }

    fn wake(&self) {}
}
