//! Delivery and attempt bodies: what happened to each event at each destination.

use std::collections::BTreeMap;

use hookline_core::ValidationError;
use hookline_core::clock::parse_rfc3339;
use hookline_core::delivery::{Attempt, Delivery, DeliveryState, ErrorKind};
use hookline_core::event::{EventType, StreamName};
use hookline_core::ids::{DeliveryId, DestinationId};
use hookline_store::DeliveryQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{id_param, page_request, time};

/// One event's delivery to one destination.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    #[schema(example = "dlv_01JD3V6Q2W8T7Y4N5K9H0B1C2D")]
    pub id: String,
    pub stream: String,
    pub destination: String,
    pub event_id: String,
    pub event_seq: i64,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    pub response_code: Option<i64>,
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Delivered,
    Failed,
    DeadLetter,
    Canceled,
    Intercepted,
}

impl From<DeliveryState> for DeliveryStatus {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => Self::Pending,
            DeliveryState::Delivering => Self::Delivering,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Failed => Self::Failed,
            DeliveryState::DeadLetter => Self::DeadLetter,
            DeliveryState::Canceled => Self::Canceled,
            DeliveryState::Intercepted => Self::Intercepted,
        }
    }
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            stream: d.stream.clone(),
            destination: d.destination_id.to_string(),
            event_id: d.event_id.to_string(),
            event_seq: d.event_seq,
            event_type: d.event_type.clone(),
            status: d.state.into(),
            attempts: d.attempts.into(),
            next_attempt_at: d.next_attempt_at.map(time),
            last_attempt_at: d.last_attempt_at.map(time),
            response_code: d.response_code.map(i64::from),
            error: d.error.clone(),
            created_at: time(d.created_at),
            updated_at: time(d.updated_at),
        }
    }
}

/// One HTTP request made for a delivery (or a test ping), and what came back.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    #[schema(example = "att_01JD3V6Q2W8T7Y4N5K9H0B1C2D")]
    pub id: String,
    pub delivery_id: String,
    pub destination_id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    #[schema(format = DateTime)]
    pub started_at: String,
    pub url: String,
    /// As sent; sensitive values masked.
    pub request_headers: BTreeMap<String, String>,
    pub request_body: String,
    pub response_status: Option<i64>,
    pub response_headers: BTreeMap<String, String>,
    /// Capped; `response_truncated` says when it was cut.
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub latency_ms: i64,
    /// `timeout`, `connect`, `tls`, `dns`, `http_status`, `ssrf_blocked`, …
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

impl From<&Attempt> for AttemptOut {
    fn from(a: &Attempt) -> Self {
        let headers = |h: &[(String, String)]| h.iter().cloned().collect();
        Self {
            id: a.id.to_string(),
            delivery_id: a.delivery_id.to_string(),
            destination_id: a.destination_id.to_string(),
            event_id: a.event_id.to_string(),
            event_type: a.event_type.clone(),
            attempt: a.number.into(),
            started_at: time(a.started_at),
            url: a.url.clone(),
            request_headers: headers(&a.request_headers),
            request_body: a.request_body.clone(),
            response_status: a.response_status.map(i64::from),
            response_headers: headers(&a.response_headers),
            response_body: a.response_body.clone(),
            response_truncated: a.response_truncated,
            latency_ms: a.latency_ms,
            error_kind: a.error_kind.map(|k| ErrorKind::as_str(k).to_owned()),
            error: a.error_message.clone(),
        }
    }
}

/// A delivery with its latest attempts, oldest of them first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryOut,
    /// At most the latest 20 attempts.
    pub attempt_history: Vec<AttemptOut>,
    /// Set when older attempts exist: pass it as `cursor` to
    /// `GET /v1/attempts?delivery=<id>` for them.
    pub older_attempts_cursor: Option<String>,
}

/// `POST /v1/destinations/{id}/test`; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPingIn {
    /// Default `webhook.test`.
    #[serde(rename = "type")]
    #[schema(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    pub event_type: Option<String>,
    /// Default `{}`.
    pub data: Option<Value>,
}

/// The test ping's attempt, and whether the receiver took it (a 2xx).
#[derive(Debug, Serialize, ToSchema)]
pub struct TestPingOut {
    #[serde(flatten)]
    pub attempt: AttemptOut,
    pub delivered: bool,
}

/// `GET /v1/deliveries`, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// Only the deliveries to this destination (`dst_…`).
    #[param(pattern = r"^dst_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub destination: Option<String>,
    #[param(inline)]
    pub status: Option<DeliveryStatus>,
    #[param(pattern = r"^[A-Za-z0-9_.:-]{1,128}$")]
    pub stream: Option<String>,
    #[param(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    pub event_type: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Created before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl From<DeliveryStatus> for DeliveryState {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Delivering => Self::Delivering,
            DeliveryStatus::Delivered => Self::Delivered,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::DeadLetter => Self::DeadLetter,
            DeliveryStatus::Canceled => Self::Canceled,
            DeliveryStatus::Intercepted => Self::Intercepted,
        }
    }
}

impl TryFrom<DeliveryListQuery> for DeliveryQuery {
    type Error = ValidationError;

    fn try_from(q: DeliveryListQuery) -> Result<Self, Self::Error> {
        Ok(Self {
            destination: q
                .destination
                .map(|d| id_param("destination", &d, DestinationId::parse))
                .transpose()?,
            status: q.status.map(DeliveryState::from),
            stream: q
                .stream
                .map(|s| StreamName::parse("stream", &s))
                .transpose()?,
            event_type: q
                .event_type
                .map(|t| EventType::parse("event_type", &t))
                .transpose()?,
            since: q.since.map(|t| parse_rfc3339("since", &t)).transpose()?,
            until: q.until.map(|t| parse_rfc3339("until", &t)).transpose()?,
            page: page_request(q.limit, q.cursor, |c| DeliveryId::parse(c).is_some())?,
        })
    }
}
