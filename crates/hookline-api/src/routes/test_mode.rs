//! Test mode, per org: while it is on, every delivery is built and signed exactly as it
//! would be sent, recorded as `intercepted` with that request, and not sent. Turning it
//! off sends none of what was intercepted (redeliver one to send it). Test pings are
//! still sent. The log is the org's intercepted attempts, newest first.

use axum::Json;
use axum::extract::State;
use hookline_core::clock::Millis;
use hookline_core::delivery::ErrorKind;
use hookline_core::ids::{AttemptId, OrgId};
use hookline_store::AttemptQuery;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authed};
use crate::types::deliveries::AttemptOut;
use crate::types::test_mode::{LogCleared, LogQuery, TestModeOut};
use crate::types::{Page, page_request, time};

fn shown(since: Option<Millis>) -> TestModeOut {
    TestModeOut {
        enabled: since.is_some(),
        since: since.map(time),
    }
}

async fn switch(state: &AppState, org: &OrgId, on: bool) -> Result<TestModeOut, ApiError> {
    let since = on.then(|| state.clock.now_ms());
    state.store.set_test_mode(org, since).await?;
    state.dispatcher.test_modes().set(org, on);
    Ok(shown(state.store.test_mode(org).await?))
}

/// Turn test mode on
///
/// From now on, the org's deliveries are built and signed but not sent, and each is
/// recorded as `intercepted`. On PostgreSQL, other nodes follow within about a second.
#[utoipa::path(post, operation_id = "enable_test_mode", path = "/v1/test-mode/enable", tag = "test-mode",
    responses((status = 200, description = "Test mode is on", body = TestModeOut)),
    security(("api_key" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<TestModeOut>, ApiError> {
    switch(&state, &org, true).await.map(Json)
}

/// Turn test mode off
///
/// Deliveries are sent again from now on; what was intercepted stays unsent.
#[utoipa::path(post, operation_id = "disable_test_mode", path = "/v1/test-mode/disable", tag = "test-mode",
    responses((status = 200, description = "Test mode is off", body = TestModeOut)),
    security(("api_key" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<TestModeOut>, ApiError> {
    switch(&state, &org, false).await.map(Json)
}

/// Whether test mode is on
///
/// And since when.
#[utoipa::path(get, operation_id = "get_test_mode", path = "/v1/test-mode", tag = "test-mode",
    responses((status = 200, description = "Test mode's state", body = TestModeOut)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<TestModeOut>, ApiError> {
    Ok(Json(shown(state.store.test_mode(&org).await?)))
}

/// The intercepted requests
///
/// Newest first: each intercepted attempt with its request headers (signature included)
/// and body exactly as they would have been sent.
#[utoipa::path(get, operation_id = "list_test_mode_log", path = "/v1/test-mode/log", tag = "test-mode",
    params(LogQuery),
    responses((status = 200, description = "A page of intercepted attempts", body = Page<AttemptOut>)),
    security(("api_key" = [])))]
pub async fn log(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<Page<AttemptOut>>, ApiError> {
    let query = AttemptQuery {
        error: Some(ErrorKind::Intercepted),
        page: page_request(query.limit, query.cursor, |c| AttemptId::parse(c).is_some())?,
        ..AttemptQuery::default()
    };
    let page = state.store.list_attempts(&org, &query).await?;
    Ok(Json(Page::of(page, |a| AttemptOut::from(&a))))
}

/// Clear the log
///
/// Deletes the org's intercepted attempts; their deliveries stay `intercepted`.
#[utoipa::path(delete, operation_id = "clear_test_mode_log", path = "/v1/test-mode/log", tag = "test-mode",
    responses((status = 200, description = "How many entries were deleted", body = LogCleared)),
    security(("api_key" = [])))]
pub async fn clear(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<LogCleared>, ApiError> {
    let deleted = state.store.clear_intercepted(&org).await?;
    Ok(Json(LogCleared { deleted }))
}
