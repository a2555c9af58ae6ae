//! Deliveries and their attempts: what happened to each event at each destination.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookline_core::clock::{parse_rfc3339, rfc3339};
use hookline_core::delivery::{Attempt, Delivery, DeliveryState, ErrorKind};
use hookline_core::event::{EventType, StreamName};
use hookline_core::ids::{DeliveryId, DestinationId};
use hookline_store::DeliveryQuery;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Authed, Params};

fn view(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "stream": d.stream,
        "destination": d.destination_id,
        "event_id": d.event_id,
        "event_seq": d.event_seq,
        "event_type": d.event_type,
        "status": d.state.as_str(),
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.map(rfc3339),
        "last_attempt_at": d.last_attempt_at.map(rfc3339),
        "response_code": d.response_code,
        "error": d.error,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
    })
}

fn header_map(headers: &[(String, String)]) -> Map<String, Value> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

pub(crate) fn attempt_view(a: &Attempt) -> Value {
    json!({
        "id": a.id,
        "delivery_id": a.delivery_id,
        "destination_id": a.destination_id,
        "event_id": a.event_id,
        "event_type": a.event_type,
        "attempt": a.number,
        "started_at": rfc3339(a.started_at),
        "url": a.url,
        "request_headers": header_map(&a.request_headers),
        "request_body": a.request_body,
        "response_status": a.response_status,
        "response_headers": header_map(&a.response_headers),
        "response_body": a.response_body,
        "response_truncated": a.response_truncated,
        "latency_ms": a.latency_ms,
        "error_kind": a.error_kind.map(ErrorKind::as_str),
        "error": a.error_message,
    })
}

fn parse_id(id: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(id).ok_or_else(|| ApiError::not_found("delivery"))
}

pub async fn list(
    State(state): State<AppState>,
    Authed(org): Authed,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let query = DeliveryQuery {
        destination: params.get("destination", |field, v| {
            DestinationId::parse(v).ok_or_else(|| {
                hookline_core::ValidationError::new(field, "is not a destination id (dst_…)")
            })
        })?,
        status: params.get("status", DeliveryState::parse)?,
        stream: params.get("stream", StreamName::parse)?,
        event_type: params.get("event_type", EventType::parse)?,
        since: params.get("since", parse_rfc3339)?,
        until: params.get("until", parse_rfc3339)?,
        page: params.page(|c| DeliveryId::parse(c).is_some())?,
    };
    params.no_others()?;
    let page = state.store.list_deliveries(&org, &query).await?;
    Ok(Json(json!({
        "data": page.data.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub async fn get(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let delivery = state
        .store
        .get_delivery(&org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    let attempts = state.store.list_attempts_of(&org, &id).await?;
    let mut body = view(&delivery);
    body["attempt_history"] = attempts.iter().map(attempt_view).collect();
    Ok(Json(body))
}

pub async fn redeliver(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = parse_id(&id)?;
    state.limits.admit_redelivery(&org)?;
    let delivery = state
        .store
        .redeliver(&org, &id, state.clock.now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(view(&delivery))))
}
