//! The org's own signing keys, which sign one-shot `webhook_url` deliveries. They are
//! created on first use; `GET` shows only a hint, and `rotate` returns a new secret
//! once. Writes are compare-and-set, so concurrent first uses or rotations cannot leave
//! a caller holding a secret that was overwritten.

use axum::Json;
use axum::extract::State;
use hookline_core::clock::Millis;
use hookline_core::ids::OrgId;
use hookline_core::keys::SigningKeys;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed};
use crate::routes::destinations::grace_secs;
use crate::types::org::{OrgRotateIn, OrgSecretOut, OrgSecretRotated};
use crate::types::time;

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

fn shown(keys: &SigningKeys, now: Millis) -> OrgSecretOut {
    OrgSecretOut {
        secret_hint: keys.secret.hint(),
        previous_secret_expires_at: keys.grace_ends(now).map(time),
    }
}

/// Get the org's signing secret
///
/// A hint only. The org's secret signs one-shot `webhook_url` deliveries.
#[utoipa::path(get, operation_id = "get_org_signing_secret", path = "/v1/org/signing-secret", tag = "org",
    responses((status = 200, description = "A hint of the secret", body = OrgSecretOut)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
) -> Result<Json<OrgSecretOut>, ApiError> {
    let keys = signing_keys(&state, &org).await?;
    Ok(Json(shown(&keys, state.clock.now_ms())))
}

/// Rotate the org's signing secret
///
/// The old secret keeps signing too for `grace_secs`.
#[utoipa::path(post, operation_id = "rotate_org_signing_secret", path = "/v1/org/signing-secret/rotate", tag = "org",
    request_body(content = Option<OrgRotateIn>, description = "Optional"),
    responses((status = 200, description = "Rotated; the new secret is shown this once", body = OrgSecretRotated)),
    security(("api_key" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiJson(request): ApiJson<OrgRotateIn>,
) -> Result<Json<OrgSecretRotated>, ApiError> {
    let grace_secs = grace_secs(request.grace_secs)?;
    loop {
        let sealed = state.store.org_signing_keys(&org).await?;
        let now = state.clock.now_ms();
        // No keys yet: nothing was ever signed, so nothing needs a grace period.
        let rotated = match &sealed {
            Some(sealed) => state.master_key.open(sealed, org.as_str())?.rotate(
                None,
                now,
                now + grace_secs * 1000,
            ),
            None => SigningKeys::new(None),
        };
        let replacement = state.master_key.seal(&rotated, org.as_str());
        if state
            .store
            .set_org_signing_keys(&org, &replacement, sealed.as_ref())
            .await?
        {
            return Ok(Json(OrgSecretRotated {
                shown: shown(&rotated, now),
                secret: rotated.secret.expose().to_owned(),
            }));
        }
    }
}
