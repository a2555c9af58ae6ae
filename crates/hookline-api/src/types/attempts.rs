//! The dispatch inspector's query: which attempts to list.

use hookline_core::ValidationError;
use hookline_core::clock::parse_rfc3339;
use hookline_core::delivery::ErrorKind;
use hookline_core::event::EventType;
use hookline_core::ids::{AttemptId, DeliveryId, DestinationId};
use hookline_store::AttemptQuery;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{id_param, page_request};

/// `GET /v1/attempts`, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptListQuery {
    /// Only attempts to this destination (`dst_…`).
    #[param(pattern = r"^dst_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub destination: Option<String>,
    /// Only attempts of this delivery (`dlv_…`).
    #[param(pattern = r"^dlv_[0-9A-HJKMNP-TV-Z]{26}$")]
    pub delivery: Option<String>,
    #[param(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    pub event_type: Option<String>,
    /// Only attempts the receiver answered with this status.
    #[param(minimum = 100, maximum = 599)]
    pub status_code: Option<u16>,
    /// Only attempts that failed this way.
    #[param(inline)]
    pub error: Option<ErrorKindName>,
    /// Started at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Started before this time (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Why an attempt got no successful answer.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKindName {
    Timeout,
    Connect,
    Dns,
    Tls,
    BlockedAddress,
    HttpStatus,
    Signing,
    Intercepted,
}

impl From<ErrorKindName> for ErrorKind {
    fn from(kind: ErrorKindName) -> Self {
        match kind {
            ErrorKindName::Timeout => Self::Timeout,
            ErrorKindName::Connect => Self::Connect,
            ErrorKindName::Dns => Self::Dns,
            ErrorKindName::Tls => Self::Tls,
            ErrorKindName::BlockedAddress => Self::BlockedAddress,
            ErrorKindName::HttpStatus => Self::HttpStatus,
            ErrorKindName::Signing => Self::Signing,
            ErrorKindName::Intercepted => Self::Intercepted,
        }
    }
}

impl TryFrom<AttemptListQuery> for AttemptQuery {
    type Error = ValidationError;

    fn try_from(q: AttemptListQuery) -> Result<Self, Self::Error> {
        Ok(Self {
            destination: q
                .destination
                .map(|d| id_param("destination", &d, DestinationId::parse))
                .transpose()?,
            delivery: q
                .delivery
                .map(|d| id_param("delivery", &d, DeliveryId::parse))
                .transpose()?,
            event_type: q
                .event_type
                .map(|t| EventType::parse("event_type", &t))
                .transpose()?,
            status_code: q
                .status_code
                .map(|s| {
                    (100..=599).contains(&s).then_some(s).ok_or_else(|| {
                        ValidationError::new("status_code", "must be an HTTP status, 100 to 599")
                    })
                })
                .transpose()?,
            error: q.error.map(ErrorKind::from),
            since: q.since.map(|t| parse_rfc3339("since", &t)).transpose()?,
            until: q.until.map(|t| parse_rfc3339("until", &t)).transpose()?,
            page: page_request(q.limit, q.cursor, |c| AttemptId::parse(c).is_some())?,
        })
    }
}
