//! Destinations: create (org-wide or for one stream), read, patch, delete. The secret is
//! shown once, in the create response; afterwards only its last four characters.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::ValidationError;
use hookline_core::clock::rfc3339;
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::StreamName;
use hookline_core::ids::DestinationId;
use hookline_core::secret::SigningSecret;
use hookline_store::DestinationQuery;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed, Params};

pub fn view(d: &Destination) -> Value {
    let mut fields = d.settings.to_json();
    fields.insert("id".into(), json!(d.id));
    fields.insert("stream".into(), json!(d.stream));
    fields.insert("secret_hint".into(), json!(d.secret.hint()));
    let DestinationHealth {
        disabled_reason,
        last_attempt_at,
        last_success_at,
        consecutive_failures,
    } = &d.health;
    fields.insert("disabled_reason".into(), json!(disabled_reason));
    fields.insert(
        "last_attempt_at".into(),
        json!(last_attempt_at.map(rfc3339)),
    );
    fields.insert(
        "last_success_at".into(),
        json!(last_success_at.map(rfc3339)),
    );
    fields.insert("consecutive_failures".into(), json!(consecutive_failures));
    fields.insert("created_at".into(), json!(rfc3339(d.created_at)));
    fields.insert("updated_at".into(), json!(rfc3339(d.updated_at)));
    Value::Object(fields)
}

async fn create(
    state: AppState,
    org: hookline_core::ids::OrgId,
    stream: Option<StreamName>,
    mut fields: Map<String, Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let secret = match fields.remove("secret") {
        None | Some(Value::Null) => SigningSecret::generate(),
        Some(Value::String(s)) => SigningSecret::parse("secret", &s)?,
        Some(_) => return Err(ValidationError::new("secret", "must be a string").into()),
    };
    let settings = DestinationSettings::from_json(&fields, &state.url_policy)?;
    let now = state.clock.now_ms();
    let destination = Destination {
        id: DestinationId::generate(),
        org_id: org,
        stream,
        settings,
        secret,
        health: DestinationHealth::default(),
        created_at: now,
        updated_at: now,
    };
    state.store.insert_destination(&destination).await?;
    let mut body = view(&destination);
    body["secret"] = json!(destination.secret.expose());
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn create_org_wide(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create(state, org, None, fields).await
}

pub async fn create_for_stream(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(stream): Path<String>,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let stream = StreamName::parse("stream", &stream)?;
    create(state, org, Some(stream), fields).await
}

fn parse_id(id: &str) -> Result<DestinationId, ApiError> {
    DestinationId::parse(id).ok_or_else(|| ApiError::not_found("destination"))
}

pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let destination = state
        .store
        .get_destination(&org, &parse_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    Ok(Json(view(&destination)))
}

pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let query = DestinationQuery {
        stream: params.get("stream", StreamName::parse)?,
        page: params.page(|c| DestinationId::parse(c).is_some())?,
    };
    let page = state.store.list_destinations(&org, &query).await?;
    Ok(Json(json!({
        "data": page.data.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub async fn update(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    if fields.contains_key("secret") {
        return Err(ValidationError::new(
            "secret",
            "cannot be patched; use POST /v1/destinations/{id}/rotate-secret",
        )
        .into());
    }
    let mut destination = state
        .store
        .get_destination(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    for (field, value) in &fields {
        destination
            .settings
            .apply(field, value, &state.url_policy)?;
    }
    let now = state.clock.now_ms();
    if !state
        .store
        .update_destination_settings(&org, &id, &destination.settings, now)
        .await?
    {
        return Err(ApiError::not_found("destination"));
    }
    if destination.settings.enabled {
        state.dispatcher.notify_one();
    }
    let updated = state
        .store
        .get_destination(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    Ok(Json(view(&updated)))
}

pub async fn delete(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if state
        .store
        .delete_destination(&org, &id, state.clock.now_ms())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("destination"))
    }
}
