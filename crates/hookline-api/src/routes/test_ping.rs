//! `POST /v1/destinations/:id/test`: send a signed test event to a destination now and
//! answer with the attempt, so its owner can check URL, signature and receiver in one
//! call. Nothing is stored and nothing is retried; a paused destination can be tested.

use axum::Json;
use axum::extract::{Path, State};
use hookline_core::event::{EventType, Level, NewEvent, StreamName};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authed};
use crate::routes::destinations::parse_id;
use crate::types::deliveries::{AttemptOut, TestPingIn, TestPingOut};

const DEFAULT_TYPE: &str = "webhook.test";

/// Send a test ping
///
/// A signed test event sent now; the answer is the attempt. Nothing is stored or retried; a paused destination can be tested.
#[utoipa::path(post, operation_id = "test_destination", path = "/v1/destinations/{id}/test", tag = "destinations",
    params(("id" = String, Path, description = "A destination id (`dst_…`)")),
    request_body(content = Option<TestPingIn>, description = "Optional; an empty body sends `webhook.test` with `{}`"),
    responses((status = 200, description = "The attempt, whatever the receiver answered", body = TestPingOut)),
    security(("api_key" = [])))]
pub async fn send(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<TestPingIn>,
) -> Result<Json<TestPingOut>, ApiError> {
    let id = parse_id(&id)?;
    let event_type = match request.event_type {
        None => EventType::from_trusted(DEFAULT_TYPE.into()),
        Some(t) => EventType::parse("type", &t)?,
    };
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
        data: request
            .data
            .unwrap_or_else(|| Value::Object(Default::default())),
        raw: None,
        idempotency_key: None,
        one_shot: None,
    }
    .into_event(org, 0, state.clock.now_ms());
    let (attempt, delivered) = state.dispatcher.send_test(destination, event).await;
    Ok(Json(TestPingOut {
        attempt: AttemptOut::from(&attempt),
        delivered,
    }))
}
