//! Liveness and readiness, without auth.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::ApiError;
use crate::types::Health;

/// Liveness
///
/// The process answers.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness
///
/// Ready when the store answers.
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "ops",
    responses((status = 200, description = "The store answers", body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Health { status: "ready" }))
}
