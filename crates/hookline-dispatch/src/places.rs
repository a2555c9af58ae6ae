//! Places to send from: at most a destination's `max_in_flight` attempts to it at once,
//! and at most the node's `max_concurrency` in all. The store may hold more deliveries
//! for this node than that (see `InFlight`): their tasks wait here, in
//! the order they asked, until an attempt ends and frees a place.

use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex};

use hookline_core::destination::Destination;
use hookline_core::ids::DestinationId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct Places {
    node: Arc<Semaphore>,
    /// Only destinations with an attempt sending or waiting: a place given back last
    /// removes its destination's entry.
    per_destination: Mutex<HashMap<DestinationId, Limit>>,
}

/// A destination's places, as many as its `max_in_flight` when they were made.
struct Limit {
    max_in_flight: u32,
    places: Arc<Semaphore>,
}

/// One attempt's place; dropping it frees the place for the next waiting attempt.
pub(crate) struct Place<'a> {
    places: &'a Places,
    destination: DestinationId,
    /// Both permits are always set; they are options only so that `drop` can give
    /// them back before it looks whether anyone else still uses the destination's.
    permits: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Places {
    pub fn new(max_concurrency: usize) -> Self {
        Self {
            node: Arc::new(Semaphore::new(max_concurrency)),
            per_destination: Mutex::new(HashMap::new()),
        }
    }

    fn per_destination(&self) -> std::sync::MutexGuard<'_, HashMap<DestinationId, Limit>> {
        self.per_destination
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a place to send to `destination` from: the destination's own first, so
    /// that deliveries waiting on a busy destination keep no place of the node's.
    pub async fn take(&self, destination: &Destination) -> Place<'_> {
        let limit = destination.settings.max_in_flight;
        let places = {
            let mut all = self.per_destination();
            let entry = all
                .entry(destination.id.clone())
                .or_insert_with(|| Limit::of(limit));
            // A changed limit applies to the attempts that start from now on; those
            // waiting or sending under the old one keep its places until they end.
            if entry.max_in_flight != limit {
                *entry = Limit::of(limit);
            }
            entry.places.clone()
        };
        let mut place = Place {
            places: self,
            destination: destination.id.clone(),
            permits: None,
        };
        // Neither semaphore is ever closed.
        if let (Ok(own), Ok(node)) = (
            places.acquire_owned().await,
            self.node.clone().acquire_owned().await,
        ) {
            place.permits = Some((own, node));
        }
        place
    }
}

impl Limit {
    fn of(max_in_flight: u32) -> Self {
        Self {
            max_in_flight,
            places: Arc::new(Semaphore::new(max_in_flight as usize)),
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.permits = None;
        let mut all = self.places.per_destination();
        // Nobody holds or waits for this destination's places but the map itself.
        if all
            .get(&self.destination)
            .is_some_and(|limit| Arc::strong_count(&limit.places) == 1)
        {
            all.remove(&self.destination);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A destination of its own (only its id and limit matter here).
    fn destination(max_in_flight: u32) -> Destination {
        let mut destination = hookline_core::testing::destination();
        destination.settings.max_in_flight = max_in_flight;
        destination
    }

    /// Whether `take` gets a place within a short wait.
    async fn gets_place<'a>(places: &'a Places, destination: &Destination) -> Option<Place<'a>> {
        tokio::time::timeout(Duration::from_millis(50), places.take(destination))
            .await
            .ok()
    }

    #[tokio::test]
    async fn a_destination_sends_no_more_than_its_limit_until_a_place_is_freed() {
        let places = Places::new(10);
        let two = destination(2);
        let first = gets_place(&places, &two).await.expect("a free place");
        let _second = gets_place(&places, &two).await.expect("a free place");
        assert!(gets_place(&places, &two).await.is_none(), "the third waits");
        drop(first);
        assert!(gets_place(&places, &two).await.is_some());
    }

    #[tokio::test]
    async fn the_node_limit_holds_across_destinations_and_a_waiting_one_holds_no_node_place() {
        let places = Places::new(2);
        let (a, b, c) = (destination(1), destination(5), destination(5));
        let _a = gets_place(&places, &a).await.expect("a free place");
        // Waits on its own destination's limit, without taking one of the node's.
        assert!(gets_place(&places, &a).await.is_none());
        let _b = gets_place(&places, &b)
            .await
            .expect("the node's second place");
        assert!(gets_place(&places, &c).await.is_none(), "the node is full");
    }

    #[tokio::test]
    async fn a_destination_with_nothing_in_flight_is_forgotten_and_a_new_limit_applies() {
        let places = Places::new(10);
        let one = destination(1);
        drop(gets_place(&places, &one).await.expect("a free place"));
        assert!(places.per_destination().is_empty());

        let held = gets_place(&places, &one).await.expect("a free place");
        let mut raised = one.clone();
        raised.settings.max_in_flight = 2;
        assert!(gets_place(&places, &raised).await.is_some());
        drop(held);
        assert!(places.per_destination().is_empty());
    }
}
