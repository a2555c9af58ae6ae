//! Per-org limits, so that on a shared server one org cannot take what the others need:
//! events published per second and redeliveries per minute (429 with `Retry-After`
//! beyond them), and destinations held (counted by the store, atomically with the
//! insert). Rates are kept by each node in memory, as a destination's
//! `rate_limit_per_sec` is: a shared bucket would cost a store write per publish.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use hookline_core::ids::OrgId;

use crate::error::ApiError;

/// The limits a server applies to every org; 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgLimitsConfig {
    pub max_destinations: u32,
    pub events_per_sec: u32,
    pub redeliveries_per_min: u32,
}

/// How many orgs' buckets are kept before the idle ones are dropped.
const BUCKETS_KEPT: usize = 10_000;

/// One rate, a bucket per org. A full bucket holds one period's worth, so an org may
/// publish a second's events in a burst.
struct OrgRate {
    limiter: DefaultKeyedRateLimiter<OrgId>,
    clock: DefaultClock,
    /// What the 429 says was exceeded, e.g. "1000 events per second (org_events_per_sec)".
    describes: String,
}

impl OrgRate {
    fn new(quota: Option<Quota>, describes: String) -> Option<Self> {
        Some(Self {
            limiter: DefaultKeyedRateLimiter::dashmap(quota?),
            clock: DefaultClock::default(),
            describes,
        })
    }

    /// Takes `n` from `org`'s bucket, or answers 429 (and takes nothing).
    fn admit(&self, org: &OrgId, n: NonZeroU32) -> Result<(), ApiError> {
        if self.limiter.len() > BUCKETS_KEPT {
            self.limiter.retain_recent();
        }
        let admitted = self.limiter.check_key_n(org, n).map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this org may send at most {}: {n} at once can never be admitted; \
                     send fewer in each request",
                    self.describes
                ),
            )
        })?;
        admitted.map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this org may send at most {}; nothing was changed, retry after the \
                     time in Retry-After",
                    self.describes
                ),
            )
            .retry_after(whole_secs(wait))
        })
    }
}

/// Seconds to wait, rounded up: a client that waits exactly this long is admitted.
fn whole_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

pub struct OrgLimits {
    max_destinations: u32,
    events: Option<OrgRate>,
    redeliveries: Option<OrgRate>,
}

impl OrgLimits {
    pub fn new(config: OrgLimitsConfig) -> Self {
        let events = NonZeroU32::new(config.events_per_sec).map(Quota::per_second);
        let redeliveries = NonZeroU32::new(config.redeliveries_per_min).map(Quota::per_minute);
        Self {
            max_destinations: match config.max_destinations {
                0 => u32::MAX,
                n => n,
            },
            events: OrgRate::new(
                events,
                format!(
                    "{} events per second (org_events_per_sec)",
                    config.events_per_sec
                ),
            ),
            redeliveries: OrgRate::new(
                redeliveries,
                format!(
                    "{} redeliveries per minute (org_redeliveries_per_min)",
                    config.redeliveries_per_min
                ),
            ),
        }
    }

    /// Destinations an org may hold (`u32::MAX` when unlimited).
    pub fn max_destinations(&self) -> u32 {
        self.max_destinations
    }

    /// Takes one event from `org`'s allowance, or answers 429.
    pub fn admit_event(&self, org: &OrgId) -> Result<(), ApiError> {
        self.admit_events(org, NonZeroU32::MIN)
    }

    /// Takes `n` events from `org`'s allowance at once (a batch), or answers 429.
    pub fn admit_events(&self, org: &OrgId, n: NonZeroU32) -> Result<(), ApiError> {
        self.events
            .as_ref()
            .map_or(Ok(()), |rate| rate.admit(org, n))
    }

    /// Takes one redelivery from `org`'s allowance, or answers 429.
    pub fn admit_redelivery(&self, org: &OrgId) -> Result<(), ApiError> {
        self.redeliveries
            .as_ref()
            .map_or(Ok(()), |rate| rate.admit(org, NonZeroU32::MIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_rate_is_refused_with_a_wait_and_other_orgs_are_not() {
        let limits = OrgLimits::new(OrgLimitsConfig {
            max_destinations: 0,
            events_per_sec: 0,
            redeliveries_per_min: 3,
        });
        let (busy, quiet) = (OrgId::generate(), OrgId::generate());
        for _ in 0..3 {
            limits.admit_redelivery(&busy).unwrap();
        }
        let refused = limits.admit_redelivery(&busy).unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = refused.retry_after_secs().unwrap();
        assert!((1..=20).contains(&wait), "one of 3 a minute: {wait} s");
        limits.admit_redelivery(&quiet).unwrap();
        for _ in 0..1_000 {
            limits.admit_event(&busy).unwrap();
        }
        assert_eq!(limits.max_destinations(), u32::MAX);
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::from_secs(2)), 2);
        assert_eq!(whole_secs(Duration::from_millis(2_001)), 3);
    }
}
