//! Destinations: create (org-wide or for one stream), read, patch, delete, rotate the
//! secret. A secret is shown once, in the create or rotate response; afterwards only its
//! last four characters. Keys and sensitive header values are sealed under the master key
//! before they are stored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::ValidationError;
use hookline_core::clock::{Millis, parse_rfc3339};
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings, Setting};
use hookline_core::event::StreamName;
use hookline_core::ids::EventId;
use hookline_core::ids::{DestinationId, OrgId};
use hookline_core::keys::SigningKeys;
use hookline_core::replay::{Backfill, Replay, ReplayWork};
use hookline_core::secret::SigningSecret;
use hookline_core::signing::SignatureScheme;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Authed};
use crate::types::Page;
use crate::types::concurrency::ConcurrencyNowOut;
use crate::types::destinations::{
    DestinationCreated, DestinationIn, DestinationListQuery, DestinationOut, DestinationPatch,
    DestinationRotated, RotateSecretIn,
};
use crate::types::replays::BackfillOut;

async fn create(
    state: AppState,
    org: OrgId,
    stream: Option<StreamName>,
    mut request: DestinationIn,
) -> Result<(StatusCode, Json<DestinationCreated>), ApiError> {
    let asked = (
        request.backfill_from_seq.take(),
        request.backfill_since.take(),
    );
    let (secret, settings) = request.into();
    let mut settings =
        DestinationSettings::create(Vec::<Setting>::from(settings), &state.url_policy)?;
    let signs_with_secret = settings.signature != SignatureScheme::Ed25519;
    if secret.is_some() && !signs_with_secret {
        return Err(ValidationError::new("secret", NO_SECRET_FOR_ED25519).into());
    }
    let keys = SigningKeys::new(secret.map(|s| chosen_secret(&s)).transpose()?);
    let now = state.clock.now_ms();
    let backfill = backfill_asked(asked.0, asked.1, stream.is_some(), now)?;
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
    let mut shown = DestinationOut::of(&state.master_key, &destination);
    if let Some(backfill) = backfill {
        let job = Replay::start(
            destination.org_id.clone(),
            destination.id.clone(),
            ReplayWork::Backfill(backfill),
            BACKFILL_PER_SEC,
            0,
            now,
        );
        state.store.insert_replay(&job).await?;
        shown.backfill = Some(BackfillOut::from(&job));
    }
    Ok((
        StatusCode::CREATED,
        Json(DestinationCreated {
            destination: shown,
            secret: signs_with_secret.then(|| keys.secret.expose().to_owned()),
        }),
    ))
}

/// Earlier events a backfill sends a second: a large history must not starve live
/// traffic.
const BACKFILL_PER_SEC: u32 = 100;

/// The backfill a create asks for: `backfill_from_seq` for a stream's destination,
/// `backfill_since` for an org-wide one; of the events published before `now`.
fn backfill_asked(
    from_seq: Option<i64>,
    since: Option<String>,
    for_stream: bool,
    now: Millis,
) -> Result<Option<Backfill>, ValidationError> {
    let (from_seq, since) = match (from_seq, since, for_stream) {
        (None, None, _) => return Ok(None),
        (Some(seq), None, true) if seq >= 1 => (Some(seq), None),
        (Some(_), None, true) => {
            return Err(ValidationError::new(
                "backfill_from_seq",
                "must be a seq of the stream, 1 or more",
            ));
        }
        (Some(_), _, false) => {
            return Err(ValidationError::new(
                "backfill_from_seq",
                "backfills a stream's destination (POST /v1/streams/{stream}/destinations); \
                 an org-wide one takes backfill_since",
            ));
        }
        (None, Some(since), false) => (None, Some(parse_rfc3339("backfill_since", &since)?)),
        (_, Some(_), true) => {
            return Err(ValidationError::new(
                "backfill_since",
                "backfills an org-wide destination; a stream's takes backfill_from_seq",
            ));
        }
    };
    Ok(Some(Backfill {
        from_seq,
        since,
        before: EventId::lowest_at(now),
    }))
}

const NO_SECRET_FOR_ED25519: &str = "an ed25519 destination signs with its key pair and \
     takes no secret; receivers verify with its public_key";

fn chosen_secret(secret: &str) -> Result<SigningSecret, ValidationError> {
    SigningSecret::parse("secret", secret)
}

/// Create an org-wide destination
///
/// It receives every stream's matching events. The secret is shown in this answer only.
#[utoipa::path(post, operation_id = "create_destination", path = "/v1/destinations", tag = "destinations",
    request_body = DestinationIn,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = DestinationCreated),
        (status = 409, description = "The org has as many destinations as it may (`limit_reached`)", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn create_org_wide(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiJson(request): ApiJson<DestinationIn>,
) -> Result<(StatusCode, Json<DestinationCreated>), ApiError> {
    create(state, org, None, request).await
}

/// Create a destination for one stream
///
/// It receives that stream's matching events only. The secret is shown in this answer only.
#[utoipa::path(post, operation_id = "create_stream_destination", path = "/v1/streams/{stream}/destinations", tag = "destinations",
    params(("stream" = String, Path, description = "The stream, e.g. `sess_42`", pattern = r"^[A-Za-z0-9_.:-]{1,128}$")),
    request_body = DestinationIn,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = DestinationCreated),
        (status = 409, description = "The org has as many destinations as it may (`limit_reached`)", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn create_for_stream(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(stream): Path<String>,
    ApiJson(request): ApiJson<DestinationIn>,
) -> Result<(StatusCode, Json<DestinationCreated>), ApiError> {
    let stream = StreamName::parse("stream", &stream)?;
    create(state, org, Some(stream), request).await
}

pub(crate) fn parse_id(id: &str) -> Result<DestinationId, ApiError> {
    DestinationId::parse(id).ok_or_else(|| ApiError::not_found("destination"))
}

pub(crate) async fn load(
    state: &AppState,
    org: &OrgId,
    id: &DestinationId,
) -> Result<Destination, ApiError> {
    state
        .store
        .get_destination(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))
}

/// Get a destination
///
/// Never its secret: only the secret's last characters.
#[utoipa::path(get, operation_id = "get_destination", path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)")),
    responses((status = 200, description = "The destination", body = DestinationOut)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<DestinationOut>, ApiError> {
    let destination = load(&state, &org, &parse_id(&id)?).await?;
    let mut shown = shown(&state, &destination);
    shown.backfill = state
        .store
        .backfill_of(&org, &destination.id)
        .await?
        .as_ref()
        .map(BackfillOut::from);
    Ok(Json(shown))
}

/// List destinations
///
/// Oldest first.
#[utoipa::path(get, operation_id = "list_destinations", path = "/v1/destinations", tag = "destinations",
    params(DestinationListQuery),
    responses((status = 200, description = "A page of destinations", body = Page<DestinationOut>)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<DestinationListQuery>,
) -> Result<Json<Page<DestinationOut>>, ApiError> {
    let page = state
        .store
        .list_destinations(&org, &query.try_into()?)
        .await?;
    Ok(Json(Page::of(page, |d| shown(&state, &d))))
}

/// A destination as GET shows it: with how its limit stands on this node.
fn shown(state: &AppState, destination: &Destination) -> DestinationOut {
    let mut out = DestinationOut::of(&state.master_key, destination);
    out.concurrency_now = state
        .dispatcher
        .limit_now(&destination.id)
        .map(|now| ConcurrencyNowOut::of(&now, state.clock.now_ms()));
    out
}

/// Update a destination
///
/// Given fields change, `null` resets one to its default, absent fields stay.
#[utoipa::path(patch, operation_id = "update_destination", path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)")),
    request_body = DestinationPatch,
    responses((status = 200, description = "The destination as it is now", body = DestinationOut)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<DestinationPatch>,
) -> Result<Json<DestinationOut>, ApiError> {
    let id = parse_id(&id)?;
    if patch.secret.is_some() {
        return Err(ValidationError::new(
            "secret",
            "cannot be patched; use POST /v1/destinations/{id}/rotate-secret",
        )
        .into());
    }
    let mut destination = load(&state, &org, &id).await?;
    for setting in Vec::<Setting>::from(patch) {
        destination.settings.set(setting, &state.url_policy)?;
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
    let updated = load(&state, &org, &id).await?;
    Ok(Json(DestinationOut::of(&state.master_key, &updated)))
}

/// The longest grace period a rotation may give the old secret.
const MAX_GRACE_SECS: i64 = 7 * 24 * 3600;
const DEFAULT_GRACE_SECS: i64 = 24 * 3600;

/// How long a rotation keeps the old secret signing (default one day).
pub(crate) fn grace_secs(given: Option<i64>) -> Result<i64, ValidationError> {
    match given {
        None => Ok(DEFAULT_GRACE_SECS),
        Some(g) if (0..=MAX_GRACE_SECS).contains(&g) => Ok(g),
        Some(_) => Err(ValidationError::new(
            "grace_secs",
            format!("must be an integer from 0 to {MAX_GRACE_SECS}"),
        )),
    }
}

/// Rotate a destination's secret
///
/// The old secret keeps signing too for `grace_secs`, so receivers can switch without losing a request.
#[utoipa::path(post, operation_id = "rotate_destination_secret", path = "/v1/destinations/{id}/rotate-secret", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)")),
    request_body(content = Option<RotateSecretIn>, description = "Optional; an empty body generates a secret"),
    responses((status = 200, description = "Rotated; the new secret is shown this once", body = DestinationRotated)),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RotateSecretIn>,
) -> Result<Json<DestinationRotated>, ApiError> {
    let id = parse_id(&id)?;
    let secret = request.secret.as_deref().map(chosen_secret).transpose()?;
    let grace_secs = grace_secs(request.grace_secs)?;
    // Compare-and-set: of two concurrent rotations one wins and the other starts over
    // from the winner's keys, so no caller is handed a secret that was overwritten.
    loop {
        let destination = load(&state, &org, &id).await?;
        let signs_with_secret = destination.settings.signature != SignatureScheme::Ed25519;
        if secret.is_some() && !signs_with_secret {
            return Err(ValidationError::new("secret", NO_SECRET_FOR_ED25519).into());
        }
        let current = state.master_key.open(&destination.keys, id.as_str())?;
        let now = state.clock.now_ms();
        let expires_at = now + grace_secs * 1000;
        let rotated = current.rotate(secret.clone(), now, expires_at);
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
            return Ok(Json(DestinationRotated {
                destination: DestinationOut::of(&state.master_key, &updated),
                secret: signs_with_secret.then(|| rotated.secret.expose().to_owned()),
                previous_secret_expires_at: crate::types::time(expires_at),
            }));
        }
    }
}

/// Delete a destination
///
/// Nothing more is sent to it.
#[utoipa::path(delete, operation_id = "delete_destination", path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)")),
    responses((status = 204, description = "Deleted")),
    security(("api_key" = [])))]
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
