//! Deliveries and their attempts: what happened to each event at each destination.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::ids::DeliveryId;
use hookline_store::{AttemptQuery, PageRequest};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authed};
use crate::types::Page;
use crate::types::deliveries::{AttemptOut, DeliveryDetail, DeliveryListQuery, DeliveryOut};

/// How many of a delivery's latest attempts its detail shows; the rest are paged by
/// `GET /v1/attempts?delivery=`.
const ATTEMPT_HISTORY: u32 = 20;

fn parse_id(id: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(id).ok_or_else(|| ApiError::not_found("delivery"))
}

/// List deliveries
///
/// Newest first.
#[utoipa::path(get, operation_id = "list_deliveries", path = "/v1/deliveries", tag = "deliveries",
    params(DeliveryListQuery),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryOut>)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<DeliveryListQuery>,
) -> Result<Json<Page<DeliveryOut>>, ApiError> {
    let page = state
        .store
        .list_deliveries(&org, &query.try_into()?)
        .await?;
    Ok(Json(Page::of(page, |d| DeliveryOut::from(&d))))
}

/// Get a delivery
///
/// With its latest 20 attempts, oldest of them first; older ones are paged by `GET /v1/attempts?delivery=`.
#[utoipa::path(get, operation_id = "get_delivery", path = "/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "A delivery id (`dlv_…`)")),
    responses((status = 200, description = "The delivery and its attempts", body = DeliveryDetail)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let id = parse_id(&id)?;
    let delivery = state
        .store
        .get_delivery(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let latest = AttemptQuery {
        delivery: Some(id),
        page: PageRequest {
            limit: ATTEMPT_HISTORY,
            cursor: None,
        },
        ..AttemptQuery::default()
    };
    let page = state.store.list_attempts(&org, &latest).await?;
    Ok(Json(DeliveryDetail {
        delivery: DeliveryOut::from(&delivery),
        attempt_history: page.data.iter().rev().map(AttemptOut::from).collect(),
        older_attempts_cursor: page.next_cursor,
    }))
}

/// Redeliver
///
/// Sends the delivery again now, whatever its state; receivers dedupe on `webhook-id`.
#[utoipa::path(post, operation_id = "redeliver", path = "/v1/deliveries/{id}/redeliver", tag = "deliveries",
    params(("id" = String, Path, description = "A delivery id (`dlv_…`)")),
    responses(
        (status = 202, description = "Queued to be sent again", body = DeliveryOut),
        (status = 409, description = "The delivery's destination was deleted (`conflict`)", body = crate::types::ErrorBody),
        (status = 429, description = "The org redelivers faster than it may (`rate_limited`); see Retry-After", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryOut>), ApiError> {
    let id = parse_id(&id)?;
    state.limits.admit_redelivery(&org)?;
    let delivery = state
        .store
        .redeliver(&org, &id, state.clock.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryOut::from(&delivery))))
}
