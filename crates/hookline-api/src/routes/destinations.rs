//! Destinations: create (org-wide or for one stream), read, patch, delete, rotate the
//! secret. A secret is shown once, in the create or rotate response; afterwards only its
//! last four characters. Keys and sensitive header values are sealed under the master key
//! before they are stored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::ValidationError;
use hookline_core::clock::rfc3339;
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::StreamName;
use hookline_core::ids::DestinationId;
use hookline_core::keys::SigningKeys;
use hookline_core::sealed::MasterKey;
use hookline_core::secret::SigningSecret;
use hookline_core::signing::SignatureScheme;
use hookline_store::DestinationQuery;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed, Params};

/// The destination as the API shows it: never a secret, only its hint (and the public
/// key when it signs with ed25519).
pub fn view(master: &MasterKey, d: &Destination) -> Value {
    let mut fields = d.settings.to_json();
    fields.insert("id".into(), json!(d.id));
    fields.insert("stream".into(), json!(d.stream));
    let keys = master.open(&d.keys, d.id.as_str()).ok();
    fields.insert(
        "secret_hint".into(),
        json!(keys.as_ref().map(|k| k.secret.hint())),
    );
    if d.settings.signature == SignatureScheme::Ed25519 {
        fields.insert(
            "public_key".into(),
            json!(keys.as_ref().map(|k| k.ed25519.public_key())),
        );
    }
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
    let keys = SigningKeys::new(chosen_secret(fields.remove("secret"))?);
    let mut settings = DestinationSettings::from_json(&fields, &state.url_policy)?;
    let now = state.clock.now_ms();
    let id = DestinationId::generate();
    settings.headers.seal(&state.master_key, id.as_str());
    let destination = Destination {
        keys: state.master_key.seal(&keys, id.as_str()),
        id,
        org_id: org,
        stream,
        settings,
        health: DestinationHealth::default(),
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .insert_destination(&destination, state.limits.max_destinations())
        .await?;
    let mut body = view(&state.master_key, &destination);
    body["secret"] = json!(keys.secret.expose());
    Ok((StatusCode::CREATED, Json(body)))
}

/// The `secret` a caller chose, if any.
fn chosen_secret(value: Option<Value>) -> Result<Option<SigningSecret>, ValidationError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(SigningSecret::parse("secret", &s)?)),
        Some(_) => Err(ValidationError::new("secret", "must be a string")),
    }
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

pub(crate) fn parse_id(id: &str) -> Result<DestinationId, ApiError> {
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
    Ok(Json(view(&state.master_key, &destination)))
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
    params.no_others()?;
    let page = state.store.list_destinations(&org, &query).await?;
    Ok(Json(json!({
        "data": page.data.iter().map(|d| view(&state.master_key, d)).collect::<Vec<_>>(),
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
    destination
        .settings
        .headers
        .seal(&state.master_key, id.as_str());
    let now = state.clock.now_ms();
    if !state
        .store
        .update_destination_settings(&org, &id, &destination.settings, now)
        .await?
    {
        return Err(ApiError::not_found("destination"));
    }
    let updated = state
        .store
        .get_destination(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    Ok(Json(view(&state.master_key, &updated)))
}

/// The longest grace period a rotation may give the old secret.
const MAX_GRACE_SECS: i64 = 7 * 24 * 3600;
const DEFAULT_GRACE_SECS: i64 = 24 * 3600;

/// How long a rotation keeps the old secret signing (`grace_secs`, default one day).
pub(crate) fn take_grace_secs(fields: &mut Map<String, Value>) -> Result<i64, ValidationError> {
    match fields.remove("grace_secs") {
        None | Some(Value::Null) => Ok(DEFAULT_GRACE_SECS),
        Some(v) => v
            .as_i64()
            .filter(|g| (0..=MAX_GRACE_SECS).contains(g))
            .ok_or_else(|| {
                ValidationError::new(
                    "grace_secs",
                    format!("must be an integer from 0 to {MAX_GRACE_SECS}"),
                )
            }),
    }
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(mut fields): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let secret = chosen_secret(fields.remove("secret"))?;
    let grace_secs = take_grace_secs(&mut fields)?;
    if let Some(field) = fields.keys().next() {
        return Err(ValidationError::new(field, "is not a field of rotate-secret").into());
    }
    // Compare-and-set: of two concurrent rotations one wins and the other starts over
    // from the winner's keys, so no caller is handed a secret that was overwritten.
    loop {
        let destination = state
            .store
            .get_destination(&org, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("destination"))?;
        let current = state.master_key.open(&destination.keys, id.as_str())?;
        let now = state.clock.now_ms();
        let rotated = current.rotate(secret.clone(), now + grace_secs * 1000);
        let sealed = state.master_key.seal(&rotated, id.as_str());
        if state
            .store
            .replace_destination_keys(&org, &id, &sealed, &destination.keys, now)
            .await?
        {
            let updated = Destination {
                keys: sealed,
                updated_at: now,
                ..destination
            };
            let mut body = view(&state.master_key, &updated);
            body["secret"] = json!(rotated.secret.expose());
            body["previous_secret_expires_at"] = json!(rfc3339(now + grace_secs * 1000));
            return Ok(Json(body));
        }
    }
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
