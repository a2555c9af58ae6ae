//! Per-destination, per-minute summaries of attempts, kept beside the attempts so that
//! statistics never scan them: counts by outcome and a latency histogram, which add up
//! across minutes and destinations, and give percentiles within a bucket's bounds.
//! After a day, minutes are folded into hours, so a month is 720 rows, not 43,200.

use crate::clock::Millis;
use crate::delivery::Attempt;
use crate::retry::NextStep;

/// The upper bounds, in ms, of the latency histogram's buckets; the last takes the rest.
pub const LATENCY_BOUNDS_MS: [i64; 12] = [
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    i64::MAX,
];

pub const MINUTE_MS: Millis = 60_000;
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
/// Minute rollups are kept this long, then folded into hourly ones: the 1h and 24h
/// windows read minutes only, the longer ones hours beyond this and minutes within.
pub const MINUTES_KEPT_MS: Millis = 25 * HOUR_MS;

/// The minute an attempt that started at `at` is counted in.
pub fn minute_of(at: Millis) -> Millis {
    at - at.rem_euclid(MINUTE_MS)
}

/// Minute rollups before this, at `now`, are folded into hours: a whole hour at least
/// `MINUTES_KEPT_MS` old.
pub fn fold_before(now: Millis) -> Millis {
    let cut = now - MINUTES_KEPT_MS;
    cut - cut.rem_euclid(HOUR_MS)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Attempts the receiver answered with a 2xx.
    pub attempts_ok: i64,
    pub attempts_failed: i64,
    /// Deliveries this minute's attempts finished: delivered, and dead-lettered.
    pub delivered: i64,
    pub dead_lettered: i64,
    pub latency: [i64; 12],
}

impl Rollup {
    /// Counts one attempt and what its delivery does next; an intercepted attempt was
    /// never sent and is not counted.
    pub fn add(&mut self, attempt: &Attempt, next: NextStep) {
        match next {
            NextStep::Intercepted => return,
            NextStep::Delivered => self.delivered += 1,
            NextStep::DeadLetter | NextStep::Gone => self.dead_lettered += 1,
            NextStep::RetryAt(_) => {}
        }
        match attempt.error_kind {
            None => self.attempts_ok += 1,
            Some(_) => self.attempts_failed += 1,
        }
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| attempt.latency_ms <= *bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len() - 1);
        self.latency[bucket] += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        self.attempts_ok += other.attempts_ok;
        self.attempts_failed += other.attempts_failed;
        self.delivered += other.delivered;
        self.dead_lettered += other.dead_lettered;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
    }

    pub fn attempts(&self) -> i64 {
        self.attempts_ok + self.attempts_failed
    }

    /// The share of attempts answered with a 2xx; `None` without attempts.
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts() > 0).then(|| self.attempts_ok as f64 / self.attempts() as f64)
    }

    /// The upper bound in ms of the bucket holding the `p`th percentile of latency (the
    /// last bucket has none: its lower bound); `None` without attempts.
    pub fn latency_percentile_ms(&self, p: f64) -> Option<i64> {
        let total: i64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (i, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(match LATENCY_BOUNDS_MS[i] {
                    i64::MAX => LATENCY_BOUNDS_MS[i - 1],
                    bound => bound,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ErrorKind;
    use crate::ids::{AttemptId, DeliveryId, DestinationId, EventId, OrgId};

    #[test]
    fn folding_stops_at_an_hour_boundary_before_the_day_the_minutes_serve() {
        let now = 1_000 * HOUR_MS + 17 * MINUTE_MS + 5;
        let cut = fold_before(now);
        assert_eq!(cut, 975 * HOUR_MS);
        assert!(cut <= now - 24 * HOUR_MS - MINUTE_MS);
        assert_eq!(fold_before(1_000 * HOUR_MS), 975 * HOUR_MS);
    }

    fn attempt(latency_ms: i64, error_kind: Option<ErrorKind>) -> Attempt {
        Attempt {
            id: AttemptId::generate(),
            org_id: OrgId::generate(),
            delivery_id: DeliveryId::generate(),
            destination_id: DestinationId::generate(),
            event_id: EventId::generate(),
            event_type: "a.b".into(),
            number: 1,
            started_at: 0,
            url: "https://example.com/h".into(),
            request_headers: Vec::new(),
            request_body: String::new(),
            response_status: None,
            response_headers: Vec::new(),
            response_body: None,
            response_truncated: false,
            latency_ms,
            error_kind,
            error_message: None,
        }
    }

    #[test]
    fn counts_outcomes_and_percentiles_by_bucket_bounds() {
        let mut r = Rollup::default();
        for ms in [1, 2, 3, 4, 7, 8, 30, 30, 200] {
            r.add(&attempt(ms, None), NextStep::Delivered);
        }
        r.add(
            &attempt(20_000, Some(ErrorKind::Timeout)),
            NextStep::RetryAt(5),
        );
        r.add(
            &attempt(0, Some(ErrorKind::Intercepted)),
            NextStep::Intercepted,
        );
        assert_eq!((r.attempts_ok, r.attempts_failed, r.delivered), (9, 1, 9));
        assert_eq!(r.success_rate(), Some(0.9));
        assert_eq!(r.latency_percentile_ms(50.0), Some(10));
        assert_eq!(r.latency_percentile_ms(90.0), Some(250));
        assert_eq!(r.latency_percentile_ms(99.0), Some(10_000));
        let mut twice = r;
        twice.merge(&r);
        assert_eq!(twice.attempts(), 20);
        assert_eq!(Rollup::default().latency_percentile_ms(50.0), None);
        assert_eq!(minute_of(125_000), 120_000);
    }
}
