//! Statistics bodies: what a destination (or the whole org) did over a window, from the
//! per-minute rollups.

use hookline_core::clock::Millis;
use hookline_core::rollup::{MINUTE_MS, Rollup, minute_of};
use hookline_store::Unfinished;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::time;

/// `?window=`: how far back, and the series' step (a minute for 1h, an hour beyond).
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
pub enum Window {
    #[serde(rename = "1h")]
    Hour,
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Window {
    pub fn span_ms(self) -> Millis {
        const HOUR: Millis = 60 * MINUTE_MS;
        match self {
            Self::Hour => HOUR,
            Self::Day => 24 * HOUR,
            Self::Week => 7 * 24 * HOUR,
            Self::Month => 30 * 24 * HOUR,
        }
    }

    fn step_ms(self) -> Millis {
        match self {
            Self::Hour => MINUTE_MS,
            _ => 60 * MINUTE_MS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// The first minute the window counts, at `now`.
    pub fn since(self, now: Millis) -> Millis {
        minute_of(now - self.span_ms()) + MINUTE_MS
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// `1h`, `24h` (default), `7d` or `30d`.
    #[param(inline)]
    pub window: Option<Window>,
}

/// Latency percentiles in ms: the upper bound of the histogram bucket each falls in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Latency {
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

impl Latency {
    fn of(r: &Rollup) -> Self {
        Self {
            p50: r.latency_percentile_ms(50.0),
            p95: r.latency_percentile_ms(95.0),
            p99: r.latency_percentile_ms(99.0),
        }
    }
}

/// One step of the series.
#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    #[schema(format = DateTime)]
    pub at: String,
    pub attempts_ok: i64,
    pub attempts_failed: i64,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

/// What was attempted over the window: totals, and a series for charts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Totals {
    pub window: &'static str,
    pub attempts: i64,
    pub attempts_ok: i64,
    pub attempts_failed: i64,
    /// Deliveries that ended delivered, or dead-lettered, within the window.
    pub delivered: i64,
    pub dead_lettered: i64,
    /// Attempts answered with a 2xx, of all attempts; `null` without attempts.
    pub success_rate: Option<f64>,
    pub latency_ms: Latency,
    /// Every step of the window, oldest first, zero where nothing happened.
    pub series: Vec<Point>,
}

impl Totals {
    /// From the rollups (per minute, oldest first) of `window` at `now`.
    pub fn of(window: Window, now: Millis, minutes: &[(Millis, Rollup)]) -> Self {
        let mut total = Rollup::default();
        for (_, r) in minutes {
            total.merge(r);
        }
        let step = window.step_ms();
        let first = window.since(now) - window.since(now).rem_euclid(step);
        let steps = ((now - first) / step + 1) as usize;
        let mut per_step = vec![Rollup::default(); steps];
        for (at, r) in minutes {
            if let Some(slot) = per_step.get_mut(((at - first) / step) as usize) {
                slot.merge(r);
            }
        }
        Self {
            window: window.name(),
            attempts: total.attempts(),
            attempts_ok: total.attempts_ok,
            attempts_failed: total.attempts_failed,
            delivered: total.delivered,
            dead_lettered: total.dead_lettered,
            success_rate: total.success_rate(),
            latency_ms: Latency::of(&total),
            series: per_step
                .iter()
                .enumerate()
                .map(|(i, r)| Point {
                    at: time(first + i as Millis * step),
                    attempts_ok: r.attempts_ok,
                    attempts_failed: r.attempts_failed,
                    latency_p50_ms: r.latency_percentile_ms(50.0),
                    latency_p95_ms: r.latency_percentile_ms(95.0),
                })
                .collect(),
        }
    }
}

/// Deliveries that have not ended, by status, as they stand now (whatever the window).
#[derive(Debug, Serialize, ToSchema)]
pub struct UnfinishedOut {
    /// Waiting for their first attempt.
    pub pending: i64,
    /// An attempt is under way.
    pub delivering: i64,
    /// Failed at least once, waiting for a retry.
    pub failed: i64,
}

impl From<Unfinished> for UnfinishedOut {
    fn from(u: Unfinished) -> Self {
        Self {
            pending: u.pending,
            delivering: u.delivering,
            failed: u.failed,
        }
    }
}

/// The org's statistics: the window's totals and series, and what is still under way.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgStats {
    #[serde(flatten)]
    pub totals: Totals,
    pub unfinished: UnfinishedOut,
}

/// A destination's statistics: the window's totals and series, and how it stands now.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationStats {
    pub destination: String,
    #[serde(flatten)]
    pub totals: Totals,
    pub unfinished: UnfinishedOut,
    pub consecutive_failures: i64,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    pub disabled_reason: Option<String>,
}
