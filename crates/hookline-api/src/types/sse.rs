//! Query strings of the Server-Sent Events routes.

use serde::Deserialize;
use utoipa::IntoParams;

use super::LevelName;

/// `GET /v1/streams/{stream}/events/sse`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamSseQuery {
    /// Comma-separated type patterns (`run.*,turn.completed`); absent: every type.
    pub types: Option<String>,
    /// The lowest level sent (default `user`).
    #[param(inline)]
    pub level: Option<LevelName>,
    /// Start after this seq (default 0: the stream's first event); `Last-Event-ID` wins.
    #[param(minimum = 0)]
    pub after_seq: Option<i64>,
}

/// `GET /v1/events/sse`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrgSseQuery {
    /// Comma-separated type patterns (`run.*,turn.completed`); absent: every type.
    pub types: Option<String>,
    /// The lowest level sent (default `user`).
    #[param(inline)]
    pub level: Option<LevelName>,
    /// Start after this event id (default: events published from now on);
    /// `Last-Event-ID` wins.
    pub after: Option<String>,
}
