//! Bulk replay bodies: what to replay, a dry run's count, and a replay job as shown.

use hookline_core::ValidationError;
use hookline_core::clock::parse_rfc3339;
use hookline_core::delivery::DeliveryState;
use hookline_core::replay::{Replay, ReplayFilter, ReplayState, check_rate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::deliveries::DeliveryStatus;
use super::{page_request, time};
use hookline_store::PageRequest;

/// `POST /v1/destinations/{id}/replay`; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "dead_letter", "since": "2026-12-05T00:00:00Z", "dry_run": true}))]
pub struct ReplayIn {
    /// Which deliveries: those that ended so (default `dead_letter`; also `failed`,
    /// `delivered`, `canceled`, `intercepted`).
    pub status: Option<DeliveryStatus>,
    /// Created at or after (RFC 3339).
    #[schema(format = DateTime)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// Event type patterns (`run.*`); absent: every type.
    pub event_types: Option<Vec<String>>,
    /// Only count what would be replayed.
    pub dry_run: Option<bool>,
    /// Deliveries sent again per second, 1–1000 (default 10).
    #[schema(minimum = 1, maximum = 1000)]
    pub rate_per_sec: Option<i64>,
}

impl ReplayIn {
    /// The filter and rate it asks for, checked.
    pub fn parse(&self) -> Result<(ReplayFilter, u32), ValidationError> {
        let status = self
            .status
            .map(DeliveryState::from)
            .unwrap_or(DeliveryState::DeadLetter);
        let since = self
            .since
            .as_deref()
            .map(|t| parse_rfc3339("since", t))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|t| parse_rfc3339("until", t))
            .transpose()?;
        let filter = ReplayFilter::new(status, since, until, self.event_types.as_deref())?;
        Ok((filter, check_rate(self.rate_per_sec)?))
    }
}

/// A dry run's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayCount {
    /// Deliveries a replay would send again now.
    pub count: i64,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayStateName {
    Running,
    Done,
    Canceled,
}

/// A replay job and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    #[schema(example = "rpl_01JD3V6Q2W8T7Y4N5K9H0B1C2D")]
    pub id: String,
    pub destination: String,
    pub status: DeliveryStatus,
    #[schema(format = DateTime)]
    pub since: Option<String>,
    #[schema(format = DateTime)]
    pub until: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub rate_per_sec: u32,
    /// Deliveries that matched when the replay was made.
    pub total: i64,
    /// Sent again so far.
    pub done: i64,
    /// Could not be sent again (their destination was deleted meanwhile).
    pub failed: i64,
    pub state: ReplayStateName,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<ReplayState> for ReplayStateName {
    fn from(state: ReplayState) -> Self {
        match state {
            ReplayState::Running => Self::Running,
            ReplayState::Done => Self::Done,
            ReplayState::Canceled => Self::Canceled,
        }
    }
}

impl ReplayOut {
    /// The replay `r`, which sends again what `filter` names.
    pub fn of(r: &Replay, filter: &ReplayFilter) -> Self {
        Self {
            id: r.id.to_string(),
            destination: r.destination_id.to_string(),
            status: filter.status.into(),
            since: filter.since.map(time),
            until: filter.until.map(time),
            event_types: filter
                .event_types
                .as_ref()
                .map(|t| t.iter().map(|p| p.to_text()).collect()),
            rate_per_sec: r.rate_per_sec,
            total: r.total,
            done: r.done,
            failed: r.failed,
            state: r.state.into(),
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

/// A destination's backfill and how far it has got.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillOut {
    /// Earlier events queued to the destination so far.
    pub done: i64,
    pub state: ReplayStateName,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Replay> for BackfillOut {
    fn from(r: &Replay) -> Self {
        Self {
            done: r.done,
            state: r.state.into(),
            updated_at: time(r.updated_at),
        }
    }
}

/// `GET /v1/replays`, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayListQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl TryFrom<ReplayListQuery> for PageRequest {
    type Error = ValidationError;

    fn try_from(q: ReplayListQuery) -> Result<Self, Self::Error> {
        page_request(q.limit, q.cursor, |c| {
            hookline_core::ids::ReplayId::parse(c).is_some()
        })
    }
}
