//! The dispatch inspector: every attempt Hookline made, with the request as it was sent
//! and what came back, filtered and paged newest first.

use axum::Json;
use axum::extract::{Path, State};
use hookline_core::ids::AttemptId;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authed};
use crate::types::Page;
use crate::types::attempts::AttemptListQuery;
use crate::types::deliveries::AttemptOut;

/// List attempts
///
/// The dispatch inspector, newest first: each attempt's request headers and body as sent,
/// the response's status, headers and body (capped), latency and error kind.
#[utoipa::path(get, operation_id = "list_attempts", path = "/v1/attempts", tag = "deliveries",
    params(AttemptListQuery),
    responses((status = 200, description = "A page of attempts", body = Page<AttemptOut>)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<AttemptListQuery>,
) -> Result<Json<Page<AttemptOut>>, ApiError> {
    let page = state.store.list_attempts(&org, &query.try_into()?).await?;
    Ok(Json(Page::of(page, |a| AttemptOut::from(&a))))
}

/// Get an attempt
///
/// One attempt: the request as sent and what came back.
#[utoipa::path(get, operation_id = "get_attempt", path = "/v1/attempts/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "An attempt id (`att_…`)")),
    responses((status = 200, description = "The attempt", body = AttemptOut)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<AttemptOut>, ApiError> {
    let id = AttemptId::parse(&id).ok_or_else(|| ApiError::not_found("attempt"))?;
    let attempt = state
        .store
        .get_attempt(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("attempt"))?;
    Ok(Json(AttemptOut::from(&attempt)))
}
