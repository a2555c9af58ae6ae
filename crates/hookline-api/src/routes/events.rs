//! `POST /v1/events` and reading events back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hookline_core::ValidationError;
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::{EventType, IdempotencyKey, Level, NewEvent, StreamName};
use hookline_core::ids::{DestinationId, EventId, OrgId};
use hookline_core::url_policy::{DestinationUrl, UrlPolicy};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Authed};
use crate::routes::org;
use crate::types::Page;
use crate::types::events::{
    BatchItemOut, BatchPublished, EventBatchIn, EventIn, EventListQuery, EventOut, MAX_BATCH,
    Published,
};

/// The event, and the `webhook_url` to send it to besides its destinations.
fn parse(
    request: EventIn,
    headers: &HeaderMap,
    policy: &UrlPolicy,
) -> Result<(NewEvent, Option<DestinationUrl>), ValidationError> {
    let webhook_url = request
        .webhook_url
        .as_deref()
        .map(|url| DestinationUrl::parse("webhook_url", url, policy))
        .transpose()?;
    let header_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ValidationError::new("Idempotency-Key", "must be visible ASCII"))
        })
        .transpose()?;
    let key = match (request.id.as_deref(), header_key) {
        (Some(a), Some(b)) if a != b => {
            return Err(ValidationError::new(
                "id",
                "differs from the Idempotency-Key header; send one or make them equal",
            ));
        }
        (Some(k), _) => Some(IdempotencyKey::parse("id", k)?),
        (None, Some(k)) => Some(IdempotencyKey::parse("Idempotency-Key", k)?),
        (None, None) => None,
    };
    let event = NewEvent {
        event_type: EventType::parse("type", &request.event_type)?,
        stream: StreamName::parse_for_publish(
            "stream",
            request.stream.as_deref().unwrap_or(StreamName::DEFAULT),
        )?,
        level: request.level.map(Level::from).unwrap_or_default(),
        data: request.data,
        raw: request.raw,
        idempotency_key: key,
        one_shot: None,
    };
    Ok((event, webhook_url))
}

/// Publish an event
///
/// Stored durably, then delivered to every matching destination (and to `webhook_url`, once).
#[utoipa::path(post, operation_id = "publish_event", path = "/v1/events", tag = "events",
    request_body = EventIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `id`: publishing the same key again returns the first event")),
    responses(
        (status = 202, description = "Stored; deliveries are under way", body = Published),
        (status = 200, description = "This idempotency key was published before: the first event", body = Published),
        (status = 429, description = "The org publishes faster than it may (`rate_limited`); see Retry-After", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn publish(
    State(state): State<AppState>,
    Authed(org): Authed,
    headers: HeaderMap,
    ApiJson(request): ApiJson<EventIn>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let arrived = std::time::Instant::now();
    let (mut new, webhook_url) = parse(request, &headers, &state.url_policy)?;
    state.limits.admit_event(&org)?;
    if let Some(url) = webhook_url {
        new.one_shot = Some(one_shot_destination(&state, &org, &new.stream, url).await?);
    }
    let published = state.store.publish(&org, new, state.clock.now_ms()).await?;
    if published.created {
        state.dispatcher.activity().published(arrived.elapsed());
        state.feed.published();
    }
    let status = if published.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Published::of(&published))))
}

/// Publish events in a batch
///
/// Up to 1,000 events in one request and one transaction: all are stored, or (on any
/// error, which names the item's index) none. Each item's `id` is its idempotency key.
#[utoipa::path(post, operation_id = "publish_events_batch", path = "/v1/events/batch", tag = "events",
    request_body = EventBatchIn,
    responses(
        (status = 202, description = "Stored; deliveries are under way", body = BatchPublished),
        (status = 413, description = "More than 1,000 events, or a body over 1 MiB (`payload_too_large`)", body = crate::types::ErrorBody),
        (status = 429, description = "The org publishes faster than it may (`rate_limited`); see Retry-After", body = crate::types::ErrorBody),
    ),
    security(("api_key" = [])))]
pub async fn publish_batch(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiJson(request): ApiJson<EventBatchIn>,
) -> Result<(StatusCode, Json<BatchPublished>), ApiError> {
    let arrived = std::time::Instant::now();
    let count = request.events.len();
    if count > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a batch holds at most {MAX_BATCH} events; this one has {count}"),
        ));
    }
    let Some(count) = std::num::NonZeroU32::new(count as u32) else {
        return Err(ValidationError::new("events", "must hold at least one event").into());
    };
    let no_headers = HeaderMap::new();
    let mut events = Vec::with_capacity(request.events.len());
    for (i, item) in request.events.into_iter().enumerate() {
        let (new, webhook_url) = parse(item, &no_headers, &state.url_policy)
            .map_err(|e| ValidationError::new(format!("events[{i}].{}", e.field), e.message))?;
        events.push((new, webhook_url));
    }
    state.limits.admit_events(&org, count)?;
    let mut batch = Vec::with_capacity(events.len());
    for (mut new, webhook_url) in events {
        if let Some(url) = webhook_url {
            new.one_shot = Some(one_shot_destination(&state, &org, &new.stream, url).await?);
        }
        batch.push(new);
    }
    let published = state
        .store
        .publish_batch(&org, batch, state.clock.now_ms())
        .await?;
    let created = published.iter().filter(|p| p.created).count();
    for _ in 0..created {
        state.dispatcher.activity().published(arrived.elapsed());
    }
    // As a single publish does: SSE streams are woken only for events newly stored.
    if created > 0 {
        state.feed.published();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(BatchPublished {
            events: published
                .iter()
                .map(|p| BatchItemOut {
                    published: Published::of(p),
                    created: p.created,
                })
                .collect(),
        }),
    ))
}

/// A destination for one event's `webhook_url`: default settings, signed with the org's
/// keys as they are now (sealed to this destination, so retries sign the same way).
async fn one_shot_destination(
    state: &AppState,
    org: &OrgId,
    stream: &StreamName,
    url: DestinationUrl,
) -> Result<Destination, ApiError> {
    let keys = org::signing_keys(state, org).await?;
    let id = DestinationId::generate();
    let now = state.clock.now_ms();
    Ok(Destination {
        keys: state.master_key.seal(&keys, id.as_str()),
        id,
        org_id: org.clone(),
        stream: Some(stream.clone()),
        settings: DestinationSettings::new(url),
        health: DestinationHealth::default(),
        created_at: now,
        updated_at: now,
    })
}

/// Get an event
///
/// In the webhook envelope.
#[utoipa::path(get, operation_id = "get_event", path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "An event id (`evt_…`)")),
    responses((status = 200, description = "The event", body = EventOut)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<EventOut>, ApiError> {
    let id = EventId::parse(&id).ok_or_else(|| ApiError::not_found("event"))?;
    let event = state
        .store
        .get_event(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    Ok(Json(event.into()))
}

/// List events
///
/// Oldest first; `order=desc` lists newest first. To read a stream from a known point, pass `stream` and `after_seq`.
#[utoipa::path(get, operation_id = "list_events", path = "/v1/events", tag = "events",
    params(EventListQuery),
    responses((status = 200, description = "A page of events", body = Page<EventOut>)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    ApiQuery(query): ApiQuery<EventListQuery>,
) -> Result<Json<Page<EventOut>>, ApiError> {
    let page = state.store.list_events(&org, &query.try_into()?).await?;
    Ok(Json(Page::of(page, EventOut::from)))
}
