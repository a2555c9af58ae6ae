//! What this node has done since it started, counted as it happens: events published
//! through its API and how long each took to store, attempts by what they came to and
//! how long they took, deliveries by outcome, attempts in flight. Read by the server's
//! once-a-minute log line and served by `GET /metrics` in the Prometheus text format.
//! Each label set is made once, here, so counting on the delivery path is an atomic add
//! (a histogram observation takes an uncontended lock); labels are bounded: outcomes and
//! error kinds, never a destination or an org.

use std::time::Duration;

use hookline_core::delivery::ErrorKind;
use hookline_core::retry::NextStep;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorKindLabel {
    error_kind: &'static str,
}

/// Seconds from 1 ms to about 33 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

#[derive(Debug)]
pub struct Activity {
    published: Counter,
    publish_seconds: Histogram,
    delivered: Counter,
    retried: Counter,
    dead_lettered: Counter,
    /// Dead-lettered because the receiver answered 410 Gone (also in `dead_lettered`).
    gone: Counter,
    intercepted: Counter,
    /// By `ErrorKind::ALL`'s order; successful attempts are counted as `none`.
    attempts_failed: Vec<Counter>,
    attempts_ok: Counter,
    attempt_seconds: Histogram,
    in_flight: Gauge,
    deliveries: Family<OutcomeLabel, Counter>,
    attempts: Family<ErrorKindLabel, Counter>,
}

/// The counts at one moment; `since` gives what happened between two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    pub published: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

impl Default for Activity {
    fn default() -> Self {
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        let outcome = |outcome| deliveries.get_or_create(&OutcomeLabel { outcome }).clone();
        let attempts = Family::<ErrorKindLabel, Counter>::default();
        let kind = |error_kind| {
            attempts
                .get_or_create(&ErrorKindLabel { error_kind })
                .clone()
        };
        Self {
            published: Counter::default(),
            publish_seconds: Histogram::new(latency_buckets()),
            delivered: outcome("delivered"),
            retried: outcome("retry"),
            dead_lettered: outcome("dead_letter"),
            gone: Counter::default(),
            intercepted: outcome("intercepted"),
            attempts_failed: ErrorKind::ALL.iter().map(|k| kind(k.as_str())).collect(),
            attempts_ok: kind("none"),
            attempt_seconds: Histogram::new(latency_buckets()),
            in_flight: Gauge::default(),
            deliveries,
            attempts,
        }
    }
}

impl Activity {
    /// An event stored by this node's API, `took` from request to commit.
    pub fn published(&self, took: Duration) {
        self.published.inc();
        self.publish_seconds.observe(took.as_secs_f64());
    }

    /// An attempt starts; the guard counts it in flight until it is dropped.
    pub(crate) fn attempt_started(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// An attempt ended: what it came to, how long it took, and what happens next.
    pub(crate) fn attempt_ended(&self, error: Option<ErrorKind>, took_ms: i64, next: NextStep) {
        let counter = match error {
            None => Some(&self.attempts_ok),
            Some(kind) => ErrorKind::ALL
                .iter()
                .position(|k| *k == kind)
                .and_then(|i| self.attempts_failed.get(i)),
        };
        if let Some(counter) = counter {
            counter.inc();
        }
        self.attempt_seconds.observe(took_ms.max(0) as f64 / 1000.0);
        match next {
            NextStep::Delivered => self.delivered.inc(),
            NextStep::RetryAt(_) => self.retried.inc(),
            NextStep::DeadLetter => self.dead_lettered.inc(),
            NextStep::Gone => {
                self.dead_lettered.inc();
                self.gone.inc()
            }
            NextStep::Intercepted => self.intercepted.inc(),
        };
    }

    pub fn counts(&self) -> ActivityCounts {
        let dead_lettered = self.dead_lettered.get();
        ActivityCounts {
            published: self.published.get(),
            delivered: self.delivered.get(),
            failed: self.retried.get() + dead_lettered,
            dead_lettered,
        }
    }

    /// Adds this node's metrics to `registry`, under the `hookline_` prefix it has.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "events_published",
            "Events stored by this node's API",
            self.published.clone(),
        );
        registry.register(
            "publish_duration_seconds",
            "From a publish request's arrival to its commit",
            self.publish_seconds.clone(),
        );
        registry.register(
            "deliveries",
            "Attempts by what the delivery does next: delivered, retry, dead_letter or intercepted (test mode)",
            self.deliveries.clone(),
        );
        registry.register(
            "dead_letters_gone",
            "Deliveries dead-lettered because the receiver answered 410 Gone",
            self.gone.clone(),
        );
        registry.register(
            "attempts",
            "Attempts by error kind (none: the receiver answered 2xx)",
            self.attempts.clone(),
        );
        registry.register(
            "attempt_duration_seconds",
            "From an attempt's request to its answer or error",
            self.attempt_seconds.clone(),
        );
        registry.register(
            "attempts_in_flight",
            "Attempts this node is making now",
            self.in_flight.clone(),
        );
    }
}

/// Counts one attempt in flight while it lives.
pub(crate) struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ActivityCounts {
    /// What happened after `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            published: self.published - earlier.published,
            delivered: self.delivered - earlier.delivered,
            failed: self.failed - earlier.failed,
            dead_lettered: self.dead_lettered - earlier.dead_lettered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_differences() {
        let activity = Activity::default();
        activity.published(Duration::from_millis(2));
        let before = activity.counts();
        activity.published(Duration::from_millis(3));
        activity.attempt_ended(None, 4, NextStep::Delivered);
        activity.attempt_ended(Some(ErrorKind::Timeout), 30_000, NextStep::RetryAt(9));
        activity.attempt_ended(Some(ErrorKind::HttpStatus), 5, NextStep::DeadLetter);
        let minute = activity.counts().since(before);
        assert_eq!(
            minute,
            ActivityCounts {
                published: 1,
                delivered: 1,
                failed: 2,
                dead_lettered: 1
            }
        );
    }

    #[test]
    fn the_text_format_has_each_family_with_bounded_labels() {
        let activity = Activity::default();
        activity.attempt_ended(Some(ErrorKind::Timeout), 30_000, NextStep::RetryAt(9));
        {
            let _flying = activity.attempt_started();
            let mut registry = Registry::with_prefix("hookline");
            activity.register(&mut registry);
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            assert!(
                text.contains("hookline_attempts_total{error_kind=\"timeout\"} 1"),
                "{text}"
            );
            assert!(
                text.contains("hookline_attempts_total{error_kind=\"none\"} 0"),
                "{text}"
            );
            assert!(
                text.contains("hookline_deliveries_total{outcome=\"retry\"} 1"),
                "{text}"
            );
            assert!(text.contains("hookline_attempts_in_flight 1"), "{text}");
            assert!(
                text.contains("hookline_attempt_duration_seconds_count 1"),
                "{text}"
            );
        }
        let mut registry = Registry::default();
        activity.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("attempts_in_flight 0"), "{text}");
    }
}
