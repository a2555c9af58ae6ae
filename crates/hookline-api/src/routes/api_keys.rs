//! API keys of the calling org. A new key is shown once; the store keeps its hash.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::clock::rfc3339;
use hookline_core::ids::ApiKeyId;
use hookline_store::{ApiKeyRecord, KeyDeletion, StoreError};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Authed;

fn view(k: &ApiKeyRecord) -> Value {
    json!({"id": k.id, "prefix": k.display_prefix, "created_at": rfc3339(k.created_at)})
}

pub async fn create(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (record, key) = ApiKeyRecord::issue(&org, state.clock.now_ms());
    state.store.create_api_key(&record).await?;
    let mut body = view(&record);
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<Value>, ApiError> {
    let keys = state.store.list_api_keys(&org).await?;
    Ok(Json(json!({
        "data": keys.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": null,
    })))
}

/// Deleting the org's last key is refused: nobody could create another.
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
