//! How a batch of attempt results changes a destination's health, so each backend
//! writes it once per destination per batch instead of once per attempt.

use hookline_core::clock::Millis;
use hookline_core::event::{EventType, Level, NewEvent, StreamName};

/// A batch's effect on one destination's health, so it is written once per batch.
#[derive(Default)]
pub(crate) struct HealthDelta {
    pub last_attempt_at: Millis,
    pub last_success_at: Option<Millis>,
    /// Failures after the batch's last success (or all of them, if none succeeded).
    pub failures_since_success: i64,
}

impl HealthDelta {
    pub fn record(&mut self, at: Millis, success: bool) {
        self.last_attempt_at = self.last_attempt_at.max(at);
        if success {
            self.last_success_at = Some(self.last_success_at.unwrap_or(at).max(at));
            self.failures_since_success = 0;
        } else {
            self.failures_since_success += 1;
        }
    }
}

/// The event published to the org's own stream when a destination is auto-disabled,
/// so it can be subscribed to like any other.
pub(crate) fn destination_disabled(destination_id: &str, consecutive_failures: i64) -> NewEvent {
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

/// Disables a destination that meets `AutoDisable`, in either backend's SQL dialect
/// (`?n` for SQLite, `$n` for PostgreSQL); returns `org_id, consecutive_failures`.
pub(crate) fn auto_disable_sql(placeholder: char) -> String {
    let p = |n: u8| format!("{placeholder}{n}");
    format!(
        "UPDATE destinations SET enabled = {f}, disabled_reason = 'failing', updated_at = {now}
         WHERE id = {id} AND enabled = {t} AND consecutive_failures >= {min}
           AND COALESCE(last_success_at, created_at) <= {now} - {after}
         RETURNING org_id, consecutive_failures",
        f = if placeholder == '$' { "FALSE" } else { "0" },
        t = if placeholder == '$' { "TRUE" } else { "1" },
        now = p(1),
        id = p(2),
        min = p(3),
        after = p(4),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_from_the_last_success() {
        let mut d = HealthDelta::default();
        d.record(10, false);
        d.record(20, true);
        d.record(30, false);
        d.record(40, false);
        assert_eq!(d.last_attempt_at, 40);
        assert_eq!(d.last_success_at, Some(20));
        assert_eq!(d.failures_since_success, 2);
    }
}
