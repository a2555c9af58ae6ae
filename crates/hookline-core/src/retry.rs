//! When a failed attempt is tried again. The policy is pure: given what happened and how
//! many attempts were made, it says delivered, retry after a delay, or give up. The
//! dispatcher supplies the jitter so tests can pin it.

use crate::ValidationError;
use crate::clock::Millis;

/// Delays between attempts when a destination does not choose its own: 8 attempts over ~27 h.
pub const DEFAULT_SCHEDULE_SECS: [u32; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];
const MAX_ENTRIES: usize = 20;
const MAX_DELAY_SECS: i64 = 86_400;
/// A `Retry-After` is honoured up to an hour, by a delivery's retry and by a destination's pause.
pub const MAX_RETRY_AFTER_SECS: u64 = 3_600;
/// ±10% of each scheduled delay, so a receiver's outage does not end in a stampede.
const JITTER_FRACTION: f64 = 0.10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<u32>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(DEFAULT_SCHEDULE_SECS.to_vec())
    }
}

impl RetrySchedule {
    pub fn parse(field: &str, delays: &[i64]) -> Result<Self, ValidationError> {
        if delays.len() > MAX_ENTRIES {
            return Err(ValidationError::new(
                field,
                format!("has more than {MAX_ENTRIES} entries"),
            ));
        }
        delays
            .iter()
            .map(|&d| {
                u32::try_from(d)
                    .ok()
                    .filter(|_| d <= MAX_DELAY_SECS)
                    .ok_or_else(|| {
                        ValidationError::new(
                            field,
                            format!("each delay must be between 0 and {MAX_DELAY_SECS} seconds"),
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn secs(&self) -> &[u32] {
        &self.0
    }

    /// Attempts in all: the first one plus one per scheduled delay.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }
}

/// What one HTTP attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx within the timeout.
    Success,
    /// Any other status; `retry_after_secs` from a `Retry-After` header, if any.
    Status {
        code: u16,
        retry_after_secs: Option<u64>,
    },
    /// No status at all: timeout, refused connection, TLS or DNS failure.
    NoResponse,
}

/// Where a delivery goes after an attempt: the policy's answer, which the store records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    /// Due again at this time.
    RetryAt(Millis),
    DeadLetter,
    /// 410 Gone: dead-letter this delivery and disable the destination.
    Gone,
    /// Not sent: the org is in test mode. Says nothing of the receiver's health.
    Intercepted,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    pub retry_on_4xx: bool,
}

impl RetryPolicy {
    /// `attempts_made` counts the attempt that just ended at `now`; `jitter` is in [-1, 1].
    pub fn decide(
        &self,
        attempts_made: u32,
        result: AttemptResult,
        jitter: f64,
        now: Millis,
    ) -> NextStep {
        let retry_after = match result {
            AttemptResult::Success => return NextStep::Delivered,
            AttemptResult::Status { code: 410, .. } => return NextStep::Gone,
            AttemptResult::Status { code, .. }
                if (400..500).contains(&code)
                    && code != 408
                    && code != 429
                    && !self.retry_on_4xx =>
            {
                return NextStep::DeadLetter;
            }
            AttemptResult::Status {
                code: 429 | 503,
                retry_after_secs,
            } => retry_after_secs,
            _ => None,
        };
        let Some(&scheduled) = self
            .schedule
            .secs()
            .get(attempts_made.saturating_sub(1) as usize)
        else {
            return NextStep::DeadLetter;
        };
        let delay_ms = match retry_after {
            Some(secs) => secs.min(MAX_RETRY_AFTER_SECS) as i64 * 1000,
            None => {
                let base = f64::from(scheduled) * 1000.0;
                (base * (1.0 + JITTER_FRACTION * jitter.clamp(-1.0, 1.0))).round() as i64
            }
        };
        NextStep::RetryAt(now + delay_ms)
    }
}

/// Reads a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: Millis) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta_ms = at.timestamp_millis() - now;
    Some((delta_ms.max(0) as u64).div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(schedule: &[i64], retry_on_4xx: bool) -> RetryPolicy {
        RetryPolicy {
            schedule: RetrySchedule::parse("retry_schedule_secs", schedule).unwrap(),
            retry_on_4xx,
        }
    }

    fn status(code: u16) -> AttemptResult {
        AttemptResult::Status {
            code,
            retry_after_secs: None,
        }
    }

    #[test]
    fn default_schedule_is_eight_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(p.schedule.max_attempts(), 8);
        // A retry falls due its delay after the attempt ended.
        assert_eq!(
            p.decide(1, status(500), 0.0, 1_000),
            NextStep::RetryAt(6_000)
        );
        assert_eq!(
            p.decide(7, status(500), 0.0, 0),
            NextStep::RetryAt(36_000_000)
        );
        assert_eq!(p.decide(8, status(500), 0.0, 0), NextStep::DeadLetter);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = policy(&[100], false);
        assert_eq!(
            p.decide(1, AttemptResult::NoResponse, 1.0, 0),
            NextStep::RetryAt(110_000)
        );
        assert_eq!(
            p.decide(1, AttemptResult::NoResponse, -1.0, 0),
            NextStep::RetryAt(90_000)
        );
        assert_eq!(
            p.decide(1, AttemptResult::NoResponse, 7.0, 0),
            NextStep::RetryAt(110_000)
        );
    }

    #[test]
    fn client_errors_are_final_unless_asked() {
        let p = policy(&[1, 1], false);
        assert_eq!(p.decide(1, status(400), 0.0, 0), NextStep::DeadLetter);
        assert_eq!(p.decide(1, status(404), 0.0, 0), NextStep::DeadLetter);
        assert_eq!(p.decide(1, status(408), 0.0, 0), NextStep::RetryAt(1_000));
        assert_eq!(p.decide(1, status(429), 0.0, 0), NextStep::RetryAt(1_000));
        assert_eq!(p.decide(1, status(503), 0.0, 0), NextStep::RetryAt(1_000));
        assert_eq!(p.decide(1, status(302), 0.0, 0), NextStep::RetryAt(1_000));
        let lenient = policy(&[1], true);
        assert_eq!(
            lenient.decide(1, status(404), 0.0, 0),
            NextStep::RetryAt(1_000)
        );
    }

    #[test]
    fn gone_and_success_end_the_delivery() {
        let p = policy(&[1], true);
        assert_eq!(p.decide(1, status(410), 0.0, 0), NextStep::Gone);
        assert_eq!(
            p.decide(1, AttemptResult::Success, 0.0, 0),
            NextStep::Delivered
        );
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_and_capped() {
        let p = policy(&[60, 60], false);
        let with = |code, secs| AttemptResult::Status {
            code,
            retry_after_secs: Some(secs),
        };
        assert_eq!(p.decide(1, with(429, 2), 0.5, 0), NextStep::RetryAt(2_000));
        assert_eq!(
            p.decide(1, with(503, 7200), 0.0, 0),
            NextStep::RetryAt(3_600_000)
        );
        assert_eq!(p.decide(1, with(500, 2), 0.0, 0), NextStep::RetryAt(60_000));
        assert_eq!(p.decide(3, with(429, 2), 0.0, 0), NextStep::DeadLetter);
    }

    #[test]
    fn schedules_are_bounded() {
        assert!(RetrySchedule::parse("r", &[0; 20]).is_ok());
        assert!(RetrySchedule::parse("r", &[1; 21]).is_err());
        assert!(RetrySchedule::parse("r", &[86_401]).is_err());
        assert!(RetrySchedule::parse("r", &[-1]).is_err());
        assert_eq!(RetrySchedule::parse("r", &[]).unwrap().max_attempts(), 1);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(parse_retry_after(" 30 ", now), Some(30));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now),
            Some(10)
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
