//! `POST /v1/destinations/:id/test`: send a signed test event to a destination now and
//! answer with the attempt, so its owner can check URL, signature and receiver in one
//! call. Nothing is stored and nothing is retried; a paused destination can be tested.

use axum::Json;
use axum::extract::{Path, State};
use hookline_core::ValidationError;
use hookline_core::event::{EventType, Level, NewEvent, StreamName};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed};
use crate::routes::deliveries::attempt_view;
use crate::routes::destinations::parse_id;

const DEFAULT_TYPE: &str = "webhook.test";

pub async fn send(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(mut fields): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let event_type = match fields.remove("type") {
        None | Some(Value::Null) => EventType::from_trusted(DEFAULT_TYPE.into()),
        Some(Value::String(t)) => EventType::parse("type", &t)?,
        Some(_) => return Err(ValidationError::new("type", "must be a string").into()),
    };
    let data = match fields.remove("data") {
        None | Some(Value::Null) => json!({}),
        Some(data) => data,
    };
    if let Some(field) = fields.keys().next() {
        return Err(ValidationError::new(field, "is not a field of a test ping").into());
    }
    let destination = state
        .store
        .get_destination(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("destination"))?;
    let stream = destination
        .stream
        .clone()
        .unwrap_or_else(|| StreamName::from_trusted(StreamName::SYSTEM.into()));
    let event = NewEvent {
        event_type,
        stream,
        level: Level::User,
        data,
        raw: None,
        idempotency_key: None,
        one_shot: None,
    }
    .into_event(org, 0, state.clock.now_ms());
    let (attempt, delivered) = state.dispatcher.send_test(destination, event).await;
    let mut body = attempt_view(&attempt);
    body["delivered"] = json!(delivered);
    Ok(Json(body))
}
