//! Recent events, kept by the writer thread so that claims do not read and parse each
//! event again. A fan-out event is claimed once per destination, often across many
//! claims, and reading and parsing it again each time was a large share of the
//! writer's work in a fan-out. Publishes put their events here, and claims what they had to
//! load. Events never change once stored, so an entry is never stale; it is bounded by
//! the bytes of event data it holds and forgets the oldest first.

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use hookline_core::event::Event;

/// What the cache may hold, in bytes of event data (and `raw`) as JSON text plus
/// `ENTRY_OVERHEAD` each: about 4,000 small events, or fewer larger ones.
const CAPACITY_BYTES: usize = 4 * 1024 * 1024;
/// What an entry costs besides its data: the parsed event's allocations (ids, names,
/// the JSON tree) and the maps' slots, as measured from the server's RSS.
const ENTRY_OVERHEAD: usize = 1024;

pub struct EventCache {
    by_id: HashMap<String, Arc<Event>>,
    /// The same events in the order they came in, with what each costs, for eviction.
    order: VecDeque<(Arc<Event>, usize)>,
    bytes: usize,
    capacity: usize,
}

impl Default for EventCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY_BYTES)
    }
}

impl EventCache {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            by_id: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            capacity,
        }
    }

    pub fn get(&self, event_id: &str) -> Option<Arc<Event>> {
        self.by_id.get(event_id).cloned()
    }

    /// Keeps `event`, whose data and `raw` take `data_bytes` as JSON text, forgetting
    /// the oldest entries to make room. An event larger than the whole cache is not kept.
    pub fn keep(&mut self, event: &Arc<Event>, data_bytes: usize) {
        let cost = data_bytes + ENTRY_OVERHEAD;
        if cost > self.capacity || self.by_id.contains_key(event.id.as_str()) {
            return;
        }
        while self.bytes + cost > self.capacity {
            let Some((oldest, size)) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(oldest.id.as_str());
            self.bytes -= size;
        }
        self.by_id
            .insert(event.id.as_str().to_owned(), event.clone());
        self.order.push_back((event.clone(), cost));
        self.bytes += cost;
    }

    /// After a rollback: an undone publish's event must not be found.
    pub fn clear(&mut self) {
        self.by_id.clear();
        self.order.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_core::testing;

    /// A new event (a new id each time).
    fn event() -> Arc<Event> {
        let destination = Arc::new(testing::destination());
        Arc::new(testing::event_for(&destination))
    }

    #[test]
    fn forgets_the_oldest_events_when_full() {
        let mut cache = EventCache::with_capacity(3 * (100 + ENTRY_OVERHEAD));
        let events: Vec<_> = (0..4).map(|_| event()).collect();
        for e in &events {
            cache.keep(e, 100);
        }
        assert!(
            cache.get(events[0].id.as_str()).is_none(),
            "the oldest went"
        );
        for e in &events[1..] {
            let kept = cache.get(e.id.as_str()).expect("the newest three stay");
            assert!(Arc::ptr_eq(&kept, e));
        }
        assert_eq!(cache.bytes, 3 * (100 + ENTRY_OVERHEAD));
    }

    #[test]
    fn keeps_no_event_larger_than_itself_and_none_twice() {
        let capacity = 2 * ENTRY_OVERHEAD;
        let mut cache = EventCache::with_capacity(capacity);
        let (big, small) = (event(), event());
        cache.keep(&big, capacity - ENTRY_OVERHEAD + 1);
        assert!(cache.get(big.id.as_str()).is_none());
        cache.keep(&small, 10);
        cache.keep(&small, 10);
        assert_eq!(cache.order.len(), 1);
        assert_eq!(cache.bytes, 10 + ENTRY_OVERHEAD);
        cache.clear();
        assert!(cache.get(small.id.as_str()).is_none());
        assert_eq!(cache.bytes, 0);
    }
}
