//! `POST /v1/events` and reading events back.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hookline_core::ValidationError;
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::envelope::Envelope;
use hookline_core::event::{Event, EventType, IdempotencyKey, Level, NewEvent, StreamName};
use hookline_core::ids::{DestinationId, EventId, OrgId};
use hookline_core::url_policy::{DestinationUrl, UrlPolicy};
use hookline_store::EventQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed, Params};
use crate::routes::org;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    #[serde(rename = "type")]
    event_type: String,
    stream: Option<String>,
    level: Option<String>,
    /// Absent: `{}`.
    #[serde(default = "empty_object")]
    data: Value,
    raw: Option<Value>,
    id: Option<String>,
    webhook_url: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl PublishRequest {
    /// The event, and the `webhook_url` to send it to besides its destinations.
    fn parse(
        self,
        headers: &HeaderMap,
        policy: &UrlPolicy,
    ) -> Result<(NewEvent, Option<DestinationUrl>), ApiError> {
        let webhook_url = self
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
        let key = match (self.id.as_deref(), header_key) {
            (Some(a), Some(b)) if a != b => {
                return Err(ValidationError::new(
                    "id",
                    "differs from the Idempotency-Key header; send one or make them equal",
                )
                .into());
            }
            (Some(k), _) => Some(IdempotencyKey::parse("id", k)?),
            (None, Some(k)) => Some(IdempotencyKey::parse("Idempotency-Key", k)?),
            (None, None) => None,
        };
        let event = NewEvent {
            event_type: EventType::parse("type", &self.event_type)?,
            stream: StreamName::parse_for_publish(
                "stream",
                self.stream.as_deref().unwrap_or(StreamName::DEFAULT),
            )?,
            level: self
                .level
                .as_deref()
                .map(|l| Level::parse("level", l))
                .transpose()?
                .unwrap_or_default(),
            data: self.data,
            raw: self.raw,
            idempotency_key: key,
            one_shot: None,
        };
        Ok((event, webhook_url))
    }
}

pub async fn publish(
    State(state): State<AppState>,
    Authed(org): Authed,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (mut new, webhook_url) = request.parse(&headers, &state.url_policy)?;
    state.limits.admit_event(&org)?;
    if let Some(url) = webhook_url {
        new.one_shot = Some(one_shot_destination(&state, &org, &new.stream, url).await?);
    }
    let published = state.store.publish(&org, new, state.clock.now_ms()).await?;
    if published.created {
        state.dispatcher.activity().published();
    }
    let status = if published.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "id": published.event.id,
            "stream": published.event.stream,
            "seq": published.event.seq,
            "deliveries": published.deliveries,
        })),
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

fn view(event: &Event) -> Value {
    Envelope::of(event, true).to_value()
}

pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = EventId::parse(&id).ok_or_else(|| ApiError::not_found("event"))?;
    let event = state
        .store
        .get_event(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    Ok(Json(view(&event)))
}

pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let query = EventQuery {
        stream: params.get("stream", StreamName::parse)?,
        event_type: params.get("type", EventType::parse)?,
        after_seq: params.get("after_seq", |field, v| {
            v.parse::<i64>()
                .map_err(|_| ValidationError::new(field, "must be an integer"))
        })?,
        page: params.page(|c| EventId::parse(c).is_some())?,
    };
    params.no_others()?;
    let page = state.store.list_events(&org, &query).await?;
    Ok(Json(json!({
        "data": page.data.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}
