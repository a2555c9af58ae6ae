//! Statistics from the per-minute rollups the store keeps with each completion batch:
//! never a scan of the attempts.

use axum::Json;
use axum::extract::{Path, State};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authed};
use crate::routes::destinations::parse_id;
use crate::types::stats::{DestinationStats, OrgStats, StatsQuery, Totals};
use crate::types::time;

/// A destination's statistics
///
/// Over `window`: attempts by outcome, success rate, latency percentiles, deliveries that
/// ended, and a series (per minute for 1h, per hour beyond); the deliveries still under
/// way by status, and the destination's health.
#[utoipa::path(get, operation_id = "get_destination_stats", path = "/v1/destinations/{id}/stats", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)"), StatsQuery),
    responses((status = 200, description = "The destination's statistics", body = DestinationStats)),
    security(("api_key" = [])))]
pub async fn destination(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<DestinationStats>, ApiError> {
    let id = parse_id(&id)?;
    let destination = state
        .store
        .get_destination(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    let window = query.window.unwrap_or_default();
    let now = state.clock.now_ms();
    let minutes = state
        .store
        .rollups(&org, Some(&id), window.since(now))
        .await?;
    let unfinished = state.store.unfinished(&org, Some(&id)).await?;
    let health = destination.health;
    Ok(Json(DestinationStats {
        destination: id.to_string(),
        totals: Totals::of(window, now, &minutes),
        unfinished: unfinished.into(),
        consecutive_failures: health.consecutive_failures,
        last_success_at: health.last_success_at.map(time),
        disabled_reason: health.disabled_reason,
    }))
}

/// The org's statistics
///
/// The same totals, series and deliveries under way as a destination's, over every
/// destination of the org.
#[utoipa::path(get, operation_id = "get_stats", path = "/v1/stats", tag = "deliveries",
    params(StatsQuery),
    responses((status = 200, description = "The org's statistics", body = OrgStats)),
    security(("api_key" = [])))]
pub async fn org(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<OrgStats>, ApiError> {
    let window = query.window.unwrap_or_default();
    let now = state.clock.now_ms();
    let minutes = state.store.rollups(&org, None, window.since(now)).await?;
    let unfinished = state.store.unfinished(&org, None).await?;
    Ok(Json(OrgStats {
        totals: Totals::of(window, now, &minutes),
        unfinished: unfinished.into(),
    }))
}
