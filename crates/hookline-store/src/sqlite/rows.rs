//! Reading rows back into domain types. Every column list lives beside its mapper so a
//! SELECT and the code that reads it cannot drift apart.

use hookline_core::delivery::{Attempt, Delivery, DeliveryState, ErrorKind};
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::{Event, EventType, Level, StreamName};
use hookline_core::ids::{AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::secret::SigningSecret;
use hookline_core::url_policy::UrlPolicy;
use rusqlite::Row;
use rusqlite::types::Type;

fn corrupt(column: usize, message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, message.into().into())
}

fn json(row: &Row<'_>, column: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e.to_string()))
}

fn optional_json(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| corrupt(column, e.to_string())),
    }
}

fn header_list(row: &Row<'_>, column: usize) -> rusqlite::Result<Vec<(String, String)>> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e.to_string()))
}

pub const EVENT_COLUMNS: &str = "id, org_id, stream, seq, type, level, timestamp, data, raw";

pub fn event(row: &Row<'_>) -> rusqlite::Result<Event> {
    let level: String = row.get(5)?;
    Ok(Event {
        id: EventId::from_trusted(row.get(0)?),
        org_id: OrgId::from_trusted(row.get(1)?),
        stream: StreamName::from_trusted(row.get(2)?),
        seq: row.get(3)?,
        event_type: EventType::from_trusted(row.get(4)?),
        level: Level::parse("level", &level).map_err(|e| corrupt(5, e.to_string()))?,
        timestamp: row.get(6)?,
        data: json(row, 7)?,
        raw: optional_json(row, 8)?,
    })
}

pub const DESTINATION_COLUMNS: &str = "id, org_id, stream, settings, secret, disabled_reason, \
     last_attempt_at, last_success_at, consecutive_failures, created_at, updated_at, enabled";

pub fn destination(row: &Row<'_>) -> rusqlite::Result<Destination> {
    let mut settings = match json(row, 3)? {
        serde_json::Value::Object(map) => DestinationSettings::from_json(&map, UrlPolicy::DEV)
            .map_err(|e| corrupt(3, e.to_string()))?,
        _ => return Err(corrupt(3, "settings are not an object")),
    };
    // `enabled` lives in its own column, where claims and the dispatcher can flip it.
    settings.enabled = row.get(11)?;
    let secret: String = row.get(4)?;
    Ok(Destination {
        id: DestinationId::from_trusted(row.get(0)?),
        org_id: OrgId::from_trusted(row.get(1)?),
        stream: row
            .get::<_, Option<String>>(2)?
            .map(StreamName::from_trusted),
        settings,
        secret: SigningSecret::parse("secret", &secret)
            .map_err(|_| corrupt(4, "stored secret does not parse"))?,
        health: DestinationHealth {
            disabled_reason: row.get(5)?,
            last_attempt_at: row.get(6)?,
            last_success_at: row.get(7)?,
            consecutive_failures: row.get(8)?,
        },
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

pub const DELIVERY_COLUMNS: &str = "id, org_id, event_id, destination_id, stream, event_seq, \
     event_type, state, run_at, attempts, last_attempt_at, response_code, error, created_at, updated_at";

pub fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let state_text: String = row.get(7)?;
    let state =
        DeliveryState::parse("state", &state_text).map_err(|e| corrupt(7, e.to_string()))?;
    let run_at: Option<i64> = row.get(8)?;
    Ok(Delivery {
        id: DeliveryId::from_trusted(row.get(0)?),
        org_id: OrgId::from_trusted(row.get(1)?),
        event_id: EventId::from_trusted(row.get(2)?),
        destination_id: DestinationId::from_trusted(row.get(3)?),
        stream: row.get(4)?,
        event_seq: row.get(5)?,
        event_type: row.get(6)?,
        state,
        next_attempt_at: matches!(state, DeliveryState::Pending | DeliveryState::Failed)
            .then_some(run_at)
            .flatten(),
        attempts: row.get(9)?,
        last_attempt_at: row.get(10)?,
        response_code: row.get(11)?,
        error: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

pub const ATTEMPT_COLUMNS: &str = "id, org_id, delivery_id, destination_id, event_id, event_type, \
     number, started_at, url, request_headers, request_body, response_status, response_headers, \
     response_body, response_truncated, latency_ms, error_kind, error_message";

pub fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    let error_kind: Option<String> = row.get(16)?;
    Ok(Attempt {
        id: AttemptId::from_trusted(row.get(0)?),
        org_id: OrgId::from_trusted(row.get(1)?),
        delivery_id: DeliveryId::from_trusted(row.get(2)?),
        destination_id: DestinationId::from_trusted(row.get(3)?),
        event_id: EventId::from_trusted(row.get(4)?),
        event_type: row.get(5)?,
        number: row.get(6)?,
        started_at: row.get(7)?,
        url: row.get(8)?,
        request_headers: header_list(row, 9)?,
        request_body: row.get(10)?,
        response_status: row.get(11)?,
        response_headers: header_list(row, 12)?,
        response_body: row.get(13)?,
        response_truncated: row.get(14)?,
        latency_ms: row.get(15)?,
        error_kind: error_kind
            .map(|k| ErrorKind::from_trusted(&k).ok_or_else(|| corrupt(16, "unknown error kind")))
            .transpose()?,
        error_message: row.get(17)?,
    })
}
