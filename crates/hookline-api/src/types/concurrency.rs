//! How a destination's limit of attempts open at once stands on the node that answers:
//! so an operator can see why a destination is slow (its receiver shed load, or slowed
//! down) without reading logs.

use hookline_core::clock::{Millis, rfc3339};
use hookline_core::concurrency::Change;
use hookline_dispatch::{LimitChange, LimitNow};
use serde::Serialize;
use utoipa::ToSchema;

/// The limit as this node holds it (each node learns its own; `max_in_flight` bounds
/// them all together).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcurrencyNowOut {
    /// Attempts this node may have open to the destination at once now.
    pub limit: u32,
    /// Attempts open now.
    pub in_flight: u32,
    /// The receiver's latency when not loaded, as learned (adaptive only).
    pub latency_baseline_ms: Option<u64>,
    /// No attempt starts before this: the receiver's `Retry-After` (adaptive only).
    #[schema(format = DateTime)]
    pub paused_until: Option<String>,
    /// The latest moves of the limit, oldest first (at most 20).
    pub history: Vec<LimitChangeOut>,
}

/// One move of the learned limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitChangeOut {
    #[schema(format = DateTime)]
    pub at: String,
    pub limit: u32,
    /// `grew` (answers came back fast while the limit held sending back), `overloaded`
    /// (429, 503, 504, a timeout or a refused connection) or `slowed` (latency far above
    /// the baseline).
    pub reason: ChangeReason,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    Grew,
    Overloaded,
    Slowed,
}

impl ConcurrencyNowOut {
    pub fn of(now: &LimitNow, at: Millis) -> Self {
        Self {
            limit: now.limit,
            in_flight: now.open,
            latency_baseline_ms: now.baseline_ms,
            paused_until: now
                .paused_for
                .map(|pause| rfc3339(at + pause.as_millis() as Millis)),
            history: now.history.iter().map(LimitChangeOut::from).collect(),
        }
    }
}

impl From<&LimitChange> for LimitChangeOut {
    fn from(change: &LimitChange) -> Self {
        Self {
            at: rfc3339(change.at),
            limit: change.limit,
            reason: match change.change {
                Change::Grew => ChangeReason::Grew,
                Change::Overloaded => ChangeReason::Overloaded,
                Change::Slowed => ChangeReason::Slowed,
            },
        }
    }
}
