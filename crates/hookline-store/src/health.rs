//! How a batch of attempt results changes a destination's health, so each backend
//! writes it once per destination per batch instead of once per attempt. Whether a
//! failing destination is then disabled is core's rule (`AutoDisable`), not the SQL's.

use hookline_core::clock::Millis;

/// A batch's effect on one destination's health, so it is written once per batch.
#[derive(Default)]
pub struct HealthDelta {
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
