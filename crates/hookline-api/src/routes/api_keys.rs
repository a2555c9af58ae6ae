//! API keys of the calling org. A new key is shown once; the store keeps its hash.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::ids::ApiKeyId;
use hookline_store::{ApiKeyRecord, KeyDeletion, StoreError};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Authed;
use crate::types::Page;
use crate::types::api_keys::{ApiKeyCreated, ApiKeyOut};

/// Create an API key
///
/// The key is shown in this answer only; the store keeps its hash.
#[utoipa::path(post, operation_id = "create_api_key", path = "/v1/api-keys", tag = "api-keys",
    responses((status = 201, description = "Created; the key is shown this once", body = ApiKeyCreated)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    let (record, key) = ApiKeyRecord::issue(&org, state.clock.now_ms());
    state.store.create_api_key(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            shown: ApiKeyOut::from(&record),
            key,
        }),
    ))
}

/// List API keys
///
/// Every key of the org, in one page; never the keys themselves.
#[utoipa::path(get, operation_id = "list_api_keys", path = "/v1/api-keys", tag = "api-keys",
    responses((status = 200, description = "Every key of the org", body = Page<ApiKeyOut>)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<Page<ApiKeyOut>>, ApiError> {
    let keys = state.store.list_api_keys(&org).await?;
    Ok(Json(Page {
        data: keys.iter().map(ApiKeyOut::from).collect(),
        next_cursor: None,
    }))
}

/// Revoke an API key
///
/// Deleting the org's last key is refused: nobody could create another.
#[utoipa::path(delete, operation_id = "delete_api_key", path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "An API key id (`key_…`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 409, description = "This is the org's last key (`conflict`)", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ApiKeyId::parse(&id).ok_or_else(|| ApiError::not_found("api key"))?;
    match state.store.delete_api_key(&org, &id).await? {
        KeyDeletion::Deleted => Ok(StatusCode::NO_CONTENT),
        KeyDeletion::NotFound => Err(ApiError::not_found("api key")),
        KeyDeletion::LastKey => Err(StoreError::Conflict(
            "this is the org's last API key; create another before deleting it".into(),
        )
        .into()),
    }
}
