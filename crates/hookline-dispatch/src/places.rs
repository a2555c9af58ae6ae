//! Places to send from: at most a destination's limit of attempts to it at once (its
//! `max_in_flight`, or what its answers taught when its concurrency is adaptive), and
//! at most the node's `max_concurrency` in all. The store may hold more deliveries
//! for this node than that (see `InFlight`): their tasks wait here, in
//! the order they asked, until an attempt ends and frees a place.

use foldhash::{HashMap, HashMapExt};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_core::clock::Millis;
use hookline_core::concurrency::{AdaptiveLimit, Change, Signal};
use hookline_core::destination::{Concurrency, Destination};
use hookline_core::ids::DestinationId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How many of a destination's limit changes are kept for an operator to read.
const HISTORY: usize = 20;
/// A learned limit idle this long is forgotten (the destination starts afresh), so a
/// node that has sent to many destinations keeps only those of the last while.
const FORGET_IDLE: Duration = Duration::from_secs(600);
/// Idle learned limits are looked for each time the table grows by this many.
const SWEEP_EVERY: usize = 1024;

pub(crate) struct Places {
    node: Arc<Semaphore>,
    /// Fixed destinations with an attempt sending or waiting (a place given back last
    /// removes the entry), and every adaptive destination this node has sent to, so a
    /// learned limit outlives a quiet spell.
    per_destination: Mutex<HashMap<DestinationId, Limit>>,
}

/// A destination's places: as many as its limit, fixed or learned.
struct Limit {
    max_in_flight: u32,
    places: Arc<Semaphore>,
    /// Permits that exist: free, held, or owed.
    granted: u32,
    /// Permits to drop as they come back, since the limit fell below what was held.
    owed: u32,
    /// Attempts holding a place now.
    open: u32,
    /// Set exactly when the destination's concurrency is adaptive.
    adaptive: Option<Learned>,
    /// Since when nobody holds or waits for these places.
    idle_since: Option<Instant>,
}

/// What an adaptive destination's answers have taught this node.
struct Learned {
    limit: AdaptiveLimit,
    history: VecDeque<LimitChange>,
    /// No attempt starts before this (a 429 or 503 with `Retry-After`).
    paused_until: Option<Instant>,
}

/// One move of a learned limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitChange {
    pub at: Millis,
    pub limit: u32,
    pub change: Change,
}

/// How a destination's limit stands on this node.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitNow {
    pub limit: u32,
    pub open: u32,
    pub baseline_ms: Option<u64>,
    pub paused_for: Option<Duration>,
    /// Oldest first.
    pub history: Vec<LimitChange>,
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
    /// that deliveries waiting on a busy destination keep no place of the node's; then
    /// out any pause its receiver asked for, holding that place, so none of its
    /// attempts starts meanwhile.
    pub async fn take(&self, destination: &Destination) -> Place<'_> {
        let places = {
            let mut all = self.per_destination();
            if !all.contains_key(&destination.id) && (all.len() + 1).is_multiple_of(SWEEP_EVERY) {
                all.retain(|_, limit| {
                    limit
                        .idle_since
                        .is_none_or(|since| since.elapsed() < FORGET_IDLE)
                });
            }
            let entry = all
                .entry(destination.id.clone())
                .or_insert_with(|| Limit::of(destination));
            entry.follow(destination);
            entry.idle_since = None;
            entry.places.clone()
        };
        let mut place = Place {
            places: self,
            destination: destination.id.clone(),
            permits: None,
        };
        // Neither semaphore is ever closed.
        let Ok(own) = places.acquire_owned().await else {
            return place;
        };
        while let Some(until) = self.paused_until(&destination.id) {
            tokio::time::sleep_until(until).await;
        }
        if let Ok(node) = self.node.clone().acquire_owned().await {
            if let Some(entry) = self.per_destination().get_mut(&destination.id)
                && entry.issued(&own)
            {
                entry.open += 1;
            }
            place.permits = Some((own, node));
        }
        place
    }

    fn paused_until(&self, destination: &DestinationId) -> Option<Instant> {
        let all = self.per_destination();
        let until = all.get(destination)?.adaptive.as_ref()?.paused_until?;
        (until > Instant::now()).then_some(until)
    }

    /// How `destination`'s limit stands on this node, if it has sent there.
    pub fn limit_now(&self, destination: &DestinationId) -> Option<LimitNow> {
        let all = self.per_destination();
        let entry = all.get(destination)?;
        let learned = entry.adaptive.as_ref();
        Some(LimitNow {
            limit: entry.granted - entry.owed,
            open: entry.open,
            baseline_ms: learned.and_then(|l| l.limit.baseline_ms()),
            paused_for: learned
                .and_then(|l| l.paused_until)
                .and_then(|until| until.checked_duration_since(Instant::now())),
            history: learned.map_or_else(Vec::new, |l| l.history.iter().copied().collect()),
        })
    }

    /// The sum of the limits of the destinations this node has sent to, and how many
    /// of those are adaptive: what `/metrics` shows.
    pub fn totals(&self) -> (u64, u64) {
        let all = self.per_destination();
        let sum = all.values().map(|l| u64::from(l.granted - l.owed)).sum();
        let adaptive = all.values().filter(|l| l.adaptive.is_some()).count() as u64;
        (sum, adaptive)
    }
}

impl Limit {
    fn of(destination: &Destination) -> Self {
        let settings = &destination.settings;
        let adaptive = (settings.concurrency == Concurrency::Adaptive).then(|| Learned {
            limit: AdaptiveLimit::new(settings.max_in_flight),
            history: VecDeque::new(),
            paused_until: None,
        });
        let granted = adaptive
            .as_ref()
            .map_or(settings.max_in_flight, |l| l.limit.limit());
        Self {
            max_in_flight: settings.max_in_flight,
            places: Arc::new(Semaphore::new(granted as usize)),
            granted,
            owed: 0,
            open: 0,
            adaptive,
            idle_since: None,
        }
    }

    /// Takes up a change of the destination's settings. A new mode starts afresh (those
    /// waiting or sending under the old places keep them until they end); a new
    /// ceiling bounds the learned limit at once.
    fn follow(&mut self, destination: &Destination) {
        let settings = &destination.settings;
        let adaptive = settings.concurrency == Concurrency::Adaptive;
        if adaptive != self.adaptive.is_some()
            || (!adaptive && settings.max_in_flight != self.max_in_flight)
        {
            *self = Self::of(destination);
            return;
        }
        if let Some(learned) = &mut self.adaptive
            && settings.max_in_flight != self.max_in_flight
        {
            self.max_in_flight = settings.max_in_flight;
            learned.limit.set_ceiling(settings.max_in_flight);
            let target = learned.limit.limit();
            self.resize(target);
        }
    }

    /// Whether `permit` is one of these places' (not of ones a change of settings replaced).
    fn issued(&self, permit: &OwnedSemaphorePermit) -> bool {
        Arc::ptr_eq(permit.semaphore(), &self.places)
    }

    /// Makes `target` permits exist: new ones free at once; fewer, by dropping free
    /// ones now and held ones as their attempts end.
    fn resize(&mut self, target: u32) {
        let current = self.granted - self.owed;
        if target > current {
            let forgiven = self.owed.min(target - current);
            self.owed -= forgiven;
            let added = target - (self.granted - self.owed);
            self.places.add_permits(added as usize);
            self.granted += added;
        } else if target < current {
            let surplus = current - target;
            let dropped = self.places.forget_permits(surplus as usize) as u32;
            self.granted -= dropped;
            self.owed += surplus - dropped;
        }
    }
}

impl Place<'_> {
    /// Teaches the destination's limit what this attempt showed, when it is adaptive:
    /// `retry_after` (a 429 or 503's `Retry-After`) pauses the whole destination.
    pub fn observe(&self, signal: Signal, retry_after: Option<Duration>, now: Millis) {
        let mut all = self.places.per_destination();
        let Some(entry) = all.get_mut(&self.destination) else {
            return;
        };
        if !self
            .permits
            .as_ref()
            .is_some_and(|(own, _)| entry.issued(own))
        {
            return;
        }
        let open = entry.open;
        let Some(learned) = &mut entry.adaptive else {
            return;
        };
        if let Some(pause) = retry_after {
            learned.paused_until = Some(Instant::now() + pause);
        }
        if let Some(change) = learned.limit.observe(signal, open, now) {
            let limit = learned.limit.limit();
            if learned.history.len() == HISTORY {
                learned.history.pop_front();
            }
            learned.history.push_back(LimitChange {
                at: now,
                limit,
                change,
            });
            entry.resize(limit);
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let permits = self.permits.take();
        let mut all = self.places.per_destination();
        let Some(entry) = all.get_mut(&self.destination) else {
            return;
        };
        // A permit of places made before a change of settings is simply given back to
        // them: the entry counts only its own.
        if let Some((own, node)) = permits
            && entry.issued(&own)
        {
            entry.open -= 1;
            drop(node);
            if entry.owed > 0 {
                own.forget();
                entry.owed -= 1;
                entry.granted -= 1;
            }
        }
        // A fixed destination that nobody holds or waits for is forgotten; an adaptive
        // one keeps what it learned until it has been idle for a while.
        if Arc::strong_count(&entry.places) == 1 {
            if entry.adaptive.is_none() {
                all.remove(&self.destination);
            } else {
                entry.idle_since = Some(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hookline_core::concurrency::INITIAL_LIMIT;

    use super::*;

    /// A destination of its own with a fixed limit (only its id and limits matter here).
    fn destination(max_in_flight: u32) -> Destination {
        let mut destination = hookline_core::testing::destination();
        destination.settings.max_in_flight = max_in_flight;
        destination.settings.concurrency = Concurrency::Fixed;
        destination
    }

    fn adaptive(max_in_flight: u32) -> Destination {
        let mut destination = destination(max_in_flight);
        destination.settings.concurrency = Concurrency::Adaptive;
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

    /// Takes every place `destination` has free now.
    async fn take_all<'a>(places: &'a Places, destination: &Destination) -> Vec<Place<'a>> {
        let mut taken = Vec::new();
        while let Some(place) = gets_place(places, destination).await {
            taken.push(place);
        }
        taken
    }

    #[tokio::test]
    async fn an_adaptive_destination_starts_at_the_initial_limit_and_grows_on_fast_answers() {
        let places = Places::new(1000);
        let fast = adaptive(100);
        let held = take_all(&places, &fast).await;
        assert_eq!(held.len(), INITIAL_LIMIT as usize);
        // Every place busy and answers fast: a round of answers adds one, a little over
        // `limit` answers as the limit grows.
        for t in 0..=INITIAL_LIMIT as usize {
            held[t % held.len()].observe(Signal::Answered { latency_ms: 2 }, None, t as Millis);
        }
        drop(held);
        let now = places.limit_now(&fast.id).unwrap();
        assert_eq!(now.limit, INITIAL_LIMIT + 1);
        assert_eq!(now.history.last().unwrap().change, Change::Grew);
        assert_eq!(
            take_all(&places, &fast).await.len(),
            INITIAL_LIMIT as usize + 1
        );
    }

    #[tokio::test]
    async fn overload_shrinks_the_places_even_while_they_are_all_held_and_the_lesson_is_kept() {
        let places = Places::new(1000);
        let shedding = adaptive(100);
        let mut held = take_all(&places, &shedding).await;
        held[0].observe(Signal::Overloaded, None, 0);
        assert_eq!(places.limit_now(&shedding.id).unwrap().limit, 9);
        drop(held.pop());
        // The place given back was owed: the destination is still full.
        assert!(gets_place(&places, &shedding).await.is_none());
        drop(held);
        assert_eq!(take_all(&places, &shedding).await.len(), 9);
        // Idle now, and still limited to what it learned.
        assert_eq!(places.limit_now(&shedding.id).unwrap().open, 0);
        assert_eq!(places.limit_now(&shedding.id).unwrap().limit, 9);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_attempt_to_the_destination_until_it_passes() {
        let places = Places::new(1000);
        let busy = adaptive(10);
        let place = places.take(&busy).await;
        place.observe(Signal::Overloaded, Some(Duration::from_secs(30)), 0);
        drop(place);
        let paused = places.limit_now(&busy.id).unwrap().paused_for.unwrap();
        assert!(paused > Duration::from_secs(29), "{paused:?}");
        let started = Instant::now();
        let _next = places.take(&busy).await;
        assert!(started.elapsed() >= Duration::from_secs(30));
        // A fixed destination ignores it: its users asked for exactly its limit.
        let fixed = destination(10);
        let place = places.take(&fixed).await;
        place.observe(Signal::Overloaded, Some(Duration::from_secs(30)), 0);
        drop(place);
        let started = Instant::now();
        let _next = places.take(&fixed).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn places_held_across_a_change_of_mode_are_given_back_to_the_places_they_came_from() {
        let places = Places::new(1000);
        let mut dst = adaptive(4);
        let held = take_all(&places, &dst).await;
        dst.settings.concurrency = Concurrency::Fixed;
        let fixed = take_all(&places, &dst).await;
        assert_eq!(fixed.len(), 4);
        held[0].observe(Signal::Overloaded, None, 0);
        drop(held);
        let now = places.limit_now(&dst.id).unwrap();
        assert_eq!((now.limit, now.open), (4, 4));
        drop(fixed);
        assert!(
            places.limit_now(&dst.id).is_none(),
            "an idle fixed destination is forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_limit_idle_for_ten_minutes_is_forgotten_when_the_table_grows() {
        let places = Places::new(1000);
        let (old, recent) = (adaptive(10), adaptive(10));
        drop(places.take(&old).await);
        tokio::time::advance(FORGET_IDLE).await;
        drop(places.take(&recent).await);
        for _ in 0..SWEEP_EVERY {
            drop(places.take(&adaptive(10)).await);
        }
        assert!(places.limit_now(&old.id).is_none(), "idle for ten minutes");
        assert!(places.limit_now(&recent.id).is_some(), "idle for a moment");
    }

    #[tokio::test]
    async fn a_lower_ceiling_bounds_a_learned_limit_at_once() {
        let places = Places::new(1000);
        let mut dst = adaptive(100);
        drop(take_all(&places, &dst).await);
        dst.settings.max_in_flight = 4;
        assert_eq!(take_all(&places, &dst).await.len(), 4);
    }

    #[tokio::test]
    async fn a_fixed_destination_with_nothing_in_flight_is_forgotten_and_a_new_limit_applies() {
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
