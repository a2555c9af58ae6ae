//! When a destination that only fails is switched off, and what the org hears of it.
//! The rule is decided here, once, for both stores: they write each batch's attempts,
//! read back where a failing destination stands, and ask `AutoDisable::disables`.

use crate::clock::Millis;
use crate::event::{EventType, Level, NewEvent, StreamName};

/// A destination is disabled after `after_ms` without a success (counted from its
/// creation if it never had one) and at least `min_failures` failed attempts in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoDisable {
    pub after_ms: Millis,
    pub min_failures: i64,
}

impl Default for AutoDisable {
    /// Five days and twenty failures (DESIGN.md §4).
    fn default() -> Self {
        Self {
            after_ms: 5 * 24 * 3600 * 1000,
            min_failures: 20,
        }
    }
}

/// Where a destination stands after a batch of attempts with no success in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailingSince {
    pub consecutive_failures: i64,
    /// Its last success, or its creation if it never had one.
    pub since: Millis,
}

impl AutoDisable {
    /// Whether a destination failing like `failing` at `now` is to be disabled.
    pub fn disables(&self, failing: FailingSince, now: Millis) -> bool {
        failing.consecutive_failures >= self.min_failures
            && failing.since <= now.saturating_sub(self.after_ms)
    }
}

/// The event published to the org's own stream when a destination is auto-disabled,
/// so it can be subscribed to like any other.
pub fn destination_disabled(destination_id: &str, consecutive_failures: i64) -> NewEvent {
    NewEvent {
        event_type: EventType::from_trusted("destination.disabled".into()),
        stream: StreamName::from_trusted(StreamName::SYSTEM.into()),
        level: Level::User,
        data: serde_json::json!({
            "destination_id": destination_id,
            "reason": "failing",
            "consecutive_failures": consecutive_failures,
        }),
        raw: None,
        idempotency_key: None,
        one_shot: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: AutoDisable = AutoDisable {
        after_ms: 1_000,
        min_failures: 3,
    };

    fn failing(consecutive_failures: i64, since: Millis) -> FailingSince {
        FailingSince {
            consecutive_failures,
            since,
        }
    }

    #[test]
    fn both_the_time_and_the_count_must_be_reached() {
        assert!(RULE.disables(failing(3, 0), 1_000));
        assert!(
            !RULE.disables(failing(3, 1), 1_000),
            "not failing long enough"
        );
        assert!(!RULE.disables(failing(2, 0), 5_000), "too few failures");
        assert!(RULE.disables(failing(50, 0), 5_000));
    }

    #[test]
    fn the_event_names_the_destination_on_the_system_stream() {
        let event = destination_disabled("dst_1", 21);
        assert_eq!(event.event_type.as_str(), "destination.disabled");
        assert_eq!(event.stream.as_str(), StreamName::SYSTEM);
        assert_eq!(event.data["consecutive_failures"], 21);
    }
}
