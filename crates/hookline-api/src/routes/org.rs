//! The org's own signing keys, which sign one-shot `webhook_url` deliveries. They are
//! created on first use; `GET` shows only a hint, and `rotate` returns a new secret
//! once. Writes are compare-and-set, so concurrent first uses or rotations cannot leave
//! a caller holding a secret that was overwritten.

use axum::Json;
use axum::extract::State;
use hookline_core::clock::rfc3339;
use hookline_core::ids::OrgId;
use hookline_core::keys::SigningKeys;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed};
use crate::routes::destinations::take_grace_secs;

/// The org's signing keys, created now if it has none yet.
pub(crate) async fn signing_keys(state: &AppState, org: &OrgId) -> Result<SigningKeys, ApiError> {
    loop {
        if let Some(sealed) = state.store.org_signing_keys(org).await? {
            return Ok(state.master_key.open(&sealed, org.as_str())?);
        }
        let keys = SigningKeys::new(None);
        let sealed = state.master_key.seal(&keys, org.as_str());
        if state.store.set_org_signing_keys(org, &sealed, None).await? {
            return Ok(keys);
        }
    }
}

fn view(keys: &SigningKeys, now: i64) -> Value {
    json!({
        "secret_hint": keys.secret.hint(),
        "previous_secret_expires_at": keys.retired_at(now).map(|r| rfc3339(r.until)),
    })
}

pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<Value>, ApiError> {
    let keys = signing_keys(&state, &org).await?;
    Ok(Json(view(&keys, state.clock.now_ms())))
}

pub async fn rotate(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiJson(mut fields): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let grace_secs = take_grace_secs(&mut fields)?;
    if let Some(field) = fields.keys().next() {
        return Err(hookline_core::ValidationError::new(field, "is not a field of rotate").into());
    }
    loop {
        let sealed = state.store.org_signing_keys(&org).await?;
        let now = state.clock.now_ms();
        // No keys yet: nothing was ever signed, so nothing needs a grace period.
        let rotated = match &sealed {
            Some(sealed) => state
                .master_key
                .open(sealed, org.as_str())?
                .rotate(None, now + grace_secs * 1000),
            None => SigningKeys::new(None),
        };
        let replacement = state.master_key.seal(&rotated, org.as_str());
        if state
            .store
            .set_org_signing_keys(&org, &replacement, sealed.as_ref())
            .await?
        {
            let mut body = view(&rotated, now);
            body["secret"] = json!(rotated.secret.expose());
            return Ok(Json(body));
        }
    }
}
