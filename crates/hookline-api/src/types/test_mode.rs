//! Test mode bodies.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Whether the org's deliveries are intercepted instead of sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestModeOut {
    pub enabled: bool,
    /// When it was turned on; `null` when off.
    #[schema(format = DateTime)]
    pub since: Option<String>,
}

/// What `DELETE /v1/test-mode/log` removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogCleared {
    pub deleted: u64,
}

/// `GET /v1/test-mode/log`, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
