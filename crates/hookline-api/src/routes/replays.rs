//! Bulk replay: a destination's deliveries that ended a given way, sent again by a
//! stored job at a set rate (the server's replay task moves it on), watched and
//! canceled here. A dry run only counts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookline_core::ids::{OrgId, ReplayId};
use hookline_core::replay::{Replay, ReplayWork};
use hookline_store::replays::count_matching;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Authed};
use crate::routes::destinations::{load, parse_id};
use crate::types::Page;
use crate::types::replays::{ReplayCount, ReplayIn, ReplayListQuery, ReplayOut};

fn replay_id(id: &str) -> Result<ReplayId, ApiError> {
    ReplayId::parse(id).ok_or_else(|| ApiError::not_found("replay"))
}

/// A replay as shown; the store lists replays only, never a backfill.
fn shown(replay: &Replay) -> Result<ReplayOut, ApiError> {
    match &replay.work {
        ReplayWork::Redeliver(filter) => Ok(ReplayOut::of(replay, filter)),
        ReplayWork::Backfill(_) => Err(ApiError::not_found("replay")),
    }
}

async fn load_replay(state: &AppState, org: &OrgId, id: &ReplayId) -> Result<Replay, ApiError> {
    state
        .store
        .get_replay(org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("replay"))
}

/// Replay a destination's deliveries
///
/// Sends again, at `rate_per_sec`, the destination's deliveries that ended with `status`
/// (default `dead_letter`), created between `since` and `until`, of `event_types`. Each
/// keeps its `webhook-id`, so receivers dedupe. `dry_run` only counts them.
#[utoipa::path(post, operation_id = "replay_destination", path = "/v1/destinations/{id}/replay", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)")),
    request_body(content = Option<ReplayIn>, description = "Optional; an empty body replays every dead letter"),
    responses(
        (status = 202, description = "A replay job, started", body = ReplayOut),
        (status = 200, description = "The dry run's count", body = ReplayCount),
    ),
    security(("api_key" = [])))]
pub async fn start(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReplayIn>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let (filter, rate_per_sec) = request.parse()?;
    load(&state, &org, &id).await?;
    let count = count_matching(state.store.as_ref(), &org, &id, &filter).await?;
    if request.dry_run == Some(true) {
        return Ok(Json(ReplayCount { count }).into_response());
    }
    let replay = Replay::start(
        org,
        id,
        ReplayWork::Redeliver(filter),
        rate_per_sec,
        count,
        state.clock.now_ms(),
    );
    state.store.insert_replay(&replay).await?;
    Ok((StatusCode::ACCEPTED, Json(shown(&replay)?)).into_response())
}

/// Get a replay
///
/// Its progress: `total`, `done`, `failed` and `state`.
#[utoipa::path(get, operation_id = "get_replay", path = "/v1/replays/{id}", tag = "replays",
    params(("id" = String, Path, description = "A replay id (`rpl_…`)")),
    responses((status = 200, description = "The replay", body = ReplayOut)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<ReplayOut>, ApiError> {
    let replay = load_replay(&state, &org, &replay_id(&id)?).await?;
    Ok(Json(shown(&replay)?))
}

/// List replays
///
/// Newest first.
#[utoipa::path(get, operation_id = "list_replays", path = "/v1/replays", tag = "replays",
    params(ReplayListQuery),
    responses((status = 200, description = "A page of replays", body = Page<ReplayOut>)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<ReplayListQuery>,
) -> Result<Json<Page<ReplayOut>>, ApiError> {
    let page = state.store.list_replays(&org, &query.try_into()?).await?;
    let data = page.data.iter().map(shown).collect::<Result<_, _>>()?;
    Ok(Json(Page {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// Cancel a replay
///
/// Nothing more is sent again; what was already sent stays sent.
#[utoipa::path(delete, operation_id = "cancel_replay", path = "/v1/replays/{id}", tag = "replays",
    params(("id" = String, Path, description = "A replay id (`rpl_…`)")),
    responses(
        (status = 200, description = "The replay, canceled", body = ReplayOut),
        (status = 409, description = "The replay had already ended (`conflict`)", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<ReplayOut>, ApiError> {
    let id = replay_id(&id)?;
    let canceled = state
        .store
        .cancel_replay(&org, &id, state.clock.now_ms())
        .await?;
    let replay = load_replay(&state, &org, &id).await?;
    if !canceled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("replay {id} had already ended ({})", replay.state.as_str()),
        ));
    }
    Ok(Json(shown(&replay)?))
}
