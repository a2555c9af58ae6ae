//! Adaptive concurrency: how many attempts to one destination may be open at once,
//! learned from what the receiver shows, up to the destination's `max_in_flight`.
//! Additive increase while answers come back fast and the limit is what holds sending
//! back; multiplicative decrease on signs of overload (429, 503, 504, timeouts, refused
//! connections) or on latency well above the receiver's own baseline: the scheme TCP
//! congestion control and Vector's adaptive request concurrency use. Near the level at
//! which the receiver last shed load it grows slowly (as TCP CUBIC does near its last
//! loss), so a receiver at its capacity sees a shed request now and then, not every
//! few round trips. Pure: the
//! dispatcher feeds it each attempt's outcome and the time.

use crate::clock::Millis;

/// Where a destination's limit starts: today's fixed default, so a new destination is
/// never sent more at once than before adaptive limits existed.
pub const INITIAL_LIMIT: u32 = 10;
/// On overload the limit is multiplied by this.
const DECREASE: f64 = 0.9;
/// Latency above `SLOW × baseline + SLACK_MS` counts as a sign of overload.
const SLOW: f64 = 2.0;
/// Keeps a receiver that answers in a millisecond from looking overloaded at two.
const SLACK_MS: f64 = 5.0;
/// How fast the recent latency follows each answer.
const RECENT_WEIGHT: f64 = 0.2;
/// The baseline falls fast towards a faster answer and rises slowly, so it tracks the
/// receiver's unloaded latency and still follows one that has become slower for good.
const BASELINE_DOWN: f64 = 0.2;
const BASELINE_UP: f64 = 0.005;
/// Near the limit at which the receiver last showed overload, the limit grows this many
/// times slower: it keeps probing for more room, shedding a request now and then
/// rather than every few round trips (each shed request waits for its retry).
const CAREFUL: f64 = 8.0;
/// Past this multiple of that limit without overload, the receiver has more room than
/// it had: growth is quick again.
const ROOM_GREW: f64 = 1.2;
/// At most one decrease per round trip (the recent latency), and never twice within
/// this long: the answers to one round of too many requests are one signal, not fifty.
const MIN_CUT_INTERVAL_MS: Millis = 10;

/// What one attempt says about the receiver's load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Signal {
    /// A 2xx after this long.
    Answered { latency_ms: u64 },
    /// 429, 503 or 504, a timeout, or a refused connection.
    Overloaded,
    /// Any other failure: a 4xx or a 500 says nothing of load.
    Neutral,
}

impl Signal {
    /// Reads an attempt's outcome: its status, if it got one, and whether it timed out
    /// or could not connect.
    pub fn of(status: Option<u16>, latency_ms: u64, timed_out_or_refused: bool) -> Self {
        match status {
            Some(200..=299) => Self::Answered { latency_ms },
            Some(429 | 503 | 504) => Self::Overloaded,
            None if timed_out_or_refused => Self::Overloaded,
            _ => Self::Neutral,
        }
    }
}

/// Why the limit last moved, for an operator reading its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Grew,
    /// 429, 503, 504, a timeout or a refused connection.
    Overloaded,
    /// Answers came back well above the baseline latency.
    Slowed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveLimit {
    limit: f64,
    ceiling: u32,
    baseline_ms: Option<f64>,
    recent_ms: Option<f64>,
    last_cut: Option<Millis>,
    /// The limit when the receiver last showed overload.
    overloaded_at: Option<f64>,
}

impl AdaptiveLimit {
    pub fn new(ceiling: u32) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            limit: f64::from(INITIAL_LIMIT.min(ceiling)),
            ceiling,
            baseline_ms: None,
            recent_ms: None,
            last_cut: None,
            overloaded_at: None,
        }
    }

    /// How many attempts may be open now: at least one, at most the ceiling.
    pub fn limit(&self) -> u32 {
        (self.limit.floor() as u32).clamp(1, self.ceiling)
    }

    /// The receiver's unloaded latency as learned so far.
    pub fn baseline_ms(&self) -> Option<u64> {
        self.baseline_ms.map(|b| b.round() as u64)
    }

    /// The user's `max_in_flight` changed: the limit stays within the new one.
    pub fn set_ceiling(&mut self, ceiling: u32) {
        self.ceiling = ceiling.max(1);
        self.limit = self.limit.min(f64::from(self.ceiling));
    }

    /// Learns from one attempt that ended at `now`, when `open` attempts (itself among
    /// them) were open. Returns how the whole-number limit moved, if it did.
    pub fn observe(&mut self, signal: Signal, open: u32, now: Millis) -> Option<Change> {
        let before = self.limit();
        let change = match signal {
            Signal::Neutral => None,
            Signal::Overloaded => {
                let at = self.limit;
                self.cut(now).then(|| {
                    self.overloaded_at = Some(at);
                    Change::Overloaded
                })
            }
            Signal::Answered { latency_ms } => {
                let latency = latency_ms as f64;
                let recent = ewma(self.recent_ms, latency, RECENT_WEIGHT);
                self.recent_ms = Some(recent);
                let baseline = match self.baseline_ms {
                    None => latency,
                    Some(b) if latency < b => b + (latency - b) * BASELINE_DOWN,
                    Some(b) => b + (latency - b) * BASELINE_UP,
                };
                self.baseline_ms = Some(baseline);
                if recent > baseline * SLOW + SLACK_MS {
                    self.cut(now).then_some(Change::Slowed)
                } else if open >= before && self.limit < f64::from(self.ceiling) {
                    // Only while the limit is what holds sending back: a receiver sent
                    // to one at a time says nothing about how many it could take.
                    self.limit = (self.limit + self.step()).min(f64::from(self.ceiling));
                    Some(Change::Grew)
                } else {
                    None
                }
            }
        };
        change.filter(|_| self.limit() != before)
    }

    /// How much one fast answer adds: one per round trip, a fraction of that near
    /// where the receiver last showed overload.
    fn step(&mut self) -> f64 {
        let step = 1.0 / self.limit;
        match self.overloaded_at {
            Some(at) if self.limit > at * ROOM_GREW => {
                self.overloaded_at = None;
                step
            }
            Some(at) if self.limit >= at * DECREASE => step / CAREFUL,
            _ => step,
        }
    }

    /// Multiplies the limit down, unless it was cut within the last interval.
    fn cut(&mut self, now: Millis) -> bool {
        let interval = MIN_CUT_INTERVAL_MS.max(self.recent_ms.unwrap_or(0.0) as Millis);
        if self.last_cut.is_some_and(|at| now - at < interval) {
            return false;
        }
        self.last_cut = Some(now);
        self.limit = (self.limit * DECREASE).max(1.0);
        true
    }
}

fn ewma(previous: Option<f64>, value: f64, weight: f64) -> f64 {
    previous.map_or(value, |p| p + (value - p) * weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver that serves `capacity` at once in `latency_ms` and sheds the rest
    /// with 503, sent to as fast as the limit allows for `rounds` round trips from `now`.
    /// Returns the limit each round and the share of attempts shed.
    fn drive(
        limit: &mut AdaptiveLimit,
        now: &mut Millis,
        capacity: u32,
        latency_ms: u64,
        rounds: u32,
    ) -> (Vec<u32>, f64) {
        let (mut sent, mut shed, mut seen) = (0u64, 0u64, Vec::new());
        for _ in 0..rounds {
            let open = limit.limit();
            for i in 0..open {
                sent += 1;
                let signal = if i < capacity {
                    Signal::Answered { latency_ms }
                } else {
                    shed += 1;
                    Signal::Overloaded
                };
                limit.observe(signal, open, *now);
            }
            *now += latency_ms.max(1) as Millis;
            seen.push(limit.limit());
        }
        (seen, shed as f64 / sent as f64)
    }

    #[test]
    fn starts_at_the_initial_limit_within_the_ceiling() {
        assert_eq!(AdaptiveLimit::new(100).limit(), INITIAL_LIMIT);
        assert_eq!(AdaptiveLimit::new(3).limit(), 3);
        assert_eq!(AdaptiveLimit::new(0).limit(), 1);
    }

    #[test]
    fn grows_towards_a_receivers_capacity_and_sheds_little_once_there() {
        let mut limit = AdaptiveLimit::new(1000);
        let (seen, shed) = drive(&mut limit, &mut 0, 50, 5, 2000);
        let settled = &seen[1000..];
        let (low, high) = (settled.iter().min().unwrap(), settled.iter().max().unwrap());
        assert!(
            *low >= 40 && *high <= 60,
            "settled between {low} and {high}"
        );
        assert!(shed < 0.05, "{:.1}% shed", shed * 100.0);
    }

    #[test]
    fn near_the_last_overload_it_grows_slowly_and_finds_new_room_quickly() {
        let mut limit = AdaptiveLimit::new(1000);
        let mut now = 0;
        drive(&mut limit, &mut now, 50, 5, 1000);
        // Capacity doubles: past 1.2 × the old level growth is quick again.
        let (seen, _) = drive(&mut limit, &mut now, 100, 5, 1000);
        let reached = seen
            .iter()
            .position(|l| *l >= 90)
            .expect("never reached 90");
        assert!(reached < 400, "took {reached} round trips");
    }

    #[test]
    fn never_passes_the_ceiling_however_fast_the_receiver() {
        let mut limit = AdaptiveLimit::new(30);
        let (seen, shed) = drive(&mut limit, &mut 0, 10_000, 1, 3000);
        assert_eq!(*seen.last().unwrap(), 30);
        assert!(seen.iter().all(|l| *l <= 30));
        assert_eq!(shed, 0.0);
    }

    #[test]
    fn comes_down_when_the_receiver_starts_shedding_and_stays_at_least_one() {
        let mut limit = AdaptiveLimit::new(1000);
        let mut now = 0;
        drive(&mut limit, &mut now, 200, 5, 3000);
        let before = limit.limit();
        let (seen, _) = drive(&mut limit, &mut now, 20, 5, 400);
        let after = *seen.last().unwrap();
        assert!(before > 150 && after <= 26, "{before} → {after}");
        let mut dead = AdaptiveLimit::new(100);
        for t in 0..1000 {
            dead.observe(Signal::Overloaded, 1, t * 1000);
        }
        assert_eq!(dead.limit(), 1);
    }

    #[test]
    fn a_burst_of_overload_answers_at_one_moment_is_one_cut() {
        let mut limit = AdaptiveLimit::new(100);
        for _ in 0..50 {
            limit.observe(Signal::Overloaded, 10, 1_000);
        }
        assert_eq!(limit.limit, 10.0 * DECREASE);
        limit.observe(Signal::Overloaded, 9, 1_000 + MIN_CUT_INTERVAL_MS);
        assert_eq!(limit.limit, 10.0 * DECREASE * DECREASE);
    }

    #[test]
    fn latency_far_above_the_baseline_brings_it_down_and_a_lasting_change_is_learned() {
        let mut limit = AdaptiveLimit::new(100);
        let mut now = 0;
        for _ in 0..6000 {
            let open = limit.limit();
            limit.observe(Signal::Answered { latency_ms: 20 }, open, now);
            now += 20;
        }
        let high = limit.limit();
        assert_eq!(high, 100);
        let mut lowest = high;
        for _ in 0..400 {
            let open = limit.limit();
            limit.observe(Signal::Answered { latency_ms: 200 }, open, now);
            lowest = lowest.min(limit.limit());
            now += 200;
        }
        assert!(lowest < high / 2, "{high} → {lowest}");
        // Slower for good: the baseline follows, and the limit climbs again.
        for _ in 0..20_000 {
            let open = limit.limit();
            limit.observe(Signal::Answered { latency_ms: 200 }, open, now);
            now += 200;
        }
        assert!(
            limit.baseline_ms().unwrap() > 100,
            "{:?}",
            limit.baseline_ms()
        );
        assert!(limit.limit() > lowest, "{lowest} → {}", limit.limit());
    }

    #[test]
    fn an_idle_receiver_does_not_raise_the_limit() {
        let mut limit = AdaptiveLimit::new(100);
        for t in 0..1000 {
            limit.observe(Signal::Answered { latency_ms: 1 }, 1, t);
        }
        assert_eq!(limit.limit(), INITIAL_LIMIT);
    }

    #[test]
    fn neutral_failures_change_nothing() {
        let mut limit = AdaptiveLimit::new(100);
        let before = limit.clone();
        assert_eq!(limit.observe(Signal::Neutral, 10, 0), None);
        assert_eq!(limit, before);
        assert_eq!(Signal::of(Some(500), 3, false), Signal::Neutral);
        assert_eq!(Signal::of(Some(404), 3, false), Signal::Neutral);
        assert_eq!(Signal::of(Some(503), 3, false), Signal::Overloaded);
        assert_eq!(Signal::of(Some(429), 3, false), Signal::Overloaded);
        assert_eq!(Signal::of(None, 3, true), Signal::Overloaded);
        assert_eq!(Signal::of(None, 3, false), Signal::Neutral);
        assert_eq!(
            Signal::of(Some(204), 3, false),
            Signal::Answered { latency_ms: 3 }
        );
    }

    #[test]
    fn a_lower_ceiling_holds_at_once() {
        let mut limit = AdaptiveLimit::new(100);
        drive(&mut limit, &mut 0, 1000, 1, 3000);
        limit.set_ceiling(5);
        assert_eq!(limit.limit(), 5);
    }
}
