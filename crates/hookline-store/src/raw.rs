//! Rows as the databases hand them over (text, integers, JSON as text), and the one
//! place they become domain types. Each backend only copies columns into these; the
//! parsing, and what counts as a corrupt row, is shared.

use hookline_core::delivery::{Attempt, Delivery, DeliveryState, ErrorKind};
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::{Event, EventType, Level, StreamName};
use hookline_core::ids::{AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::sealed::SealedKeys;
use hookline_core::url_policy::UrlPolicy;

use crate::StoreError;
use crate::request_note::{RequestBody, RequestNote};

/// Builds a raw row from any backend's row: `raw_row!(RawEvent, row.get)` reads
/// column 0, 1, 2 … into the fields in order, with the backend's own getter.
#[macro_export]
macro_rules! raw_row {
    (RawEvent, $row:ident . $get:ident) => {
        $crate::raw::RawEvent {
            id: $row.$get(0)?,
            org_id: $row.$get(1)?,
            stream: $row.$get(2)?,
            seq: $row.$get(3)?,
            event_type: $row.$get(4)?,
            level: $row.$get(5)?,
            timestamp: $row.$get(6)?,
            data: $row.$get(7)?,
            raw: $row.$get(8)?,
        }
    };
    (RawDestination, $row:ident . $get:ident) => {
        $crate::raw::RawDestination {
            id: $row.$get(0)?,
            org_id: $row.$get(1)?,
            stream: $row.$get(2)?,
            settings: $row.$get(3)?,
            secret: $row.$get(4)?,
            disabled_reason: $row.$get(5)?,
            last_attempt_at: $row.$get(6)?,
            last_success_at: $row.$get(7)?,
            consecutive_failures: $row.$get(8)?,
            created_at: $row.$get(9)?,
            updated_at: $row.$get(10)?,
            enabled: $row.$get(11)?,
        }
    };
    (RawDelivery, $row:ident . $get:ident) => {
        $crate::raw::RawDelivery {
            id: $row.$get(0)?,
            org_id: $row.$get(1)?,
            event_id: $row.$get(2)?,
            destination_id: $row.$get(3)?,
            stream: $row.$get(4)?,
            event_seq: $row.$get(5)?,
            event_type: $row.$get(6)?,
            state: $row.$get(7)?,
            run_at: $row.$get(8)?,
            attempts: $row.$get(9)?,
            last_attempt_at: $row.$get(10)?,
            response_code: $row.$get(11)?,
            error: $row.$get(12)?,
            created_at: $row.$get(13)?,
            updated_at: $row.$get(14)?,
        }
    };
    (RawAttempt, $row:ident . $get:ident) => {
        $crate::raw::RawAttempt {
            id: $row.$get(0)?,
            org_id: $row.$get(1)?,
            delivery_id: $row.$get(2)?,
            destination_id: $row.$get(3)?,
            event_id: $row.$get(4)?,
            event_type: $row.$get(5)?,
            number: $row.$get(6)?,
            started_at: $row.$get(7)?,
            url: $row.$get(8)?,
            request_headers: $row.$get(9)?,
            request_body: $row.$get(10)?,
            response_status: $row.$get(11)?,
            response_headers: $row.$get(12)?,
            response_body: $row.$get(13)?,
            response_truncated: $row.$get(14)?,
            latency_ms: $row.$get(15)?,
            error_kind: $row.$get(16)?,
            error_message: $row.$get(17)?,
            request_body_from_event: $row.$get(18)?,
            request_headers_from_event: $row.$get(19)?,
        }
    };
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub const EVENT_COLUMNS: &str = "id, org_id, stream, seq, type, level, timestamp, data, raw";

pub struct RawEvent {
    pub id: String,
    pub org_id: String,
    pub stream: String,
    pub seq: i64,
    pub event_type: String,
    pub level: String,
    pub timestamp: i64,
    pub data: String,
    pub raw: Option<String>,
}

impl RawEvent {
    pub fn parse(self) -> Result<Event, StoreError> {
        Ok(Event {
            id: EventId::from_trusted(self.id),
            org_id: OrgId::from_trusted(self.org_id),
            stream: StreamName::from_trusted(self.stream),
            seq: self.seq,
            event_type: EventType::from_trusted(self.event_type),
            level: Level::parse("level", &self.level).map_err(|e| corrupt("event level", e))?,
            timestamp: self.timestamp,
            data: json("event data", &self.data)?,
            raw: self
                .raw
                .as_deref()
                .map(|r| json("event raw", r))
                .transpose()?,
        })
    }
}

pub const DESTINATION_COLUMNS: &str = "id, org_id, stream, settings, secret, disabled_reason, \
     last_attempt_at, last_success_at, consecutive_failures, created_at, updated_at, enabled";

pub struct RawDestination {
    pub id: String,
    pub org_id: String,
    pub stream: Option<String>,
    pub settings: String,
    pub secret: String,
    pub disabled_reason: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub consecutive_failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub enabled: bool,
}

impl RawDestination {
    pub fn parse(self) -> Result<Destination, StoreError> {
        let mut fields: serde_json::Map<String, serde_json::Value> =
            json("destination settings", &self.settings)?;
        // Headers are stored in their own shape, sealed values kept sealed (`settings_json`).
        let headers = fields.remove("headers").unwrap_or_default();
        // Stored URLs passed the policy when they were written; DEV only skips re-checking.
        let mut settings = DestinationSettings::from_json(&fields, &UrlPolicy::permissive())
            .map_err(|e| corrupt("destination settings", e))?;
        settings
            .headers
            .restore(&headers)
            .ok_or_else(|| corrupt("destination headers", "not as `to_stored` writes them"))?;
        // `enabled` lives in its own column, where claims and the dispatcher can flip it.
        settings.enabled = self.enabled;
        Ok(Destination {
            id: DestinationId::from_trusted(self.id),
            org_id: OrgId::from_trusted(self.org_id),
            stream: self.stream.map(StreamName::from_trusted),
            settings,
            keys: SealedKeys::from_stored(self.secret),
            health: DestinationHealth {
                disabled_reason: self.disabled_reason,
                last_attempt_at: self.last_attempt_at,
                last_success_at: self.last_success_at,
                consecutive_failures: self.consecutive_failures,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The settings as stored: `enabled` is left out because its column is the truth, and
/// headers are kept as `CustomHeaders::to_stored` writes them, not masked as shown.
pub fn settings_json(settings: &DestinationSettings) -> String {
    let mut json = settings.to_json();
    json.remove("enabled");
    json.insert("headers".into(), settings.headers.to_stored());
    serde_json::Value::Object(json).to_string()
}

pub const DELIVERY_COLUMNS: &str = "id, org_id, event_id, destination_id, stream, event_seq, \
     event_type, state, run_at, attempts, last_attempt_at, response_code, error, created_at, updated_at";

pub struct RawDelivery {
    pub id: String,
    pub org_id: String,
    pub event_id: String,
    pub destination_id: String,
    pub stream: String,
    pub event_seq: i64,
    pub event_type: String,
    pub state: String,
    pub run_at: Option<i64>,
    pub attempts: i64,
    pub last_attempt_at: Option<i64>,
    pub response_code: Option<i64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RawDelivery {
    pub fn parse(self) -> Result<Delivery, StoreError> {
        let state =
            DeliveryState::parse("state", &self.state).map_err(|e| corrupt("delivery state", e))?;
        Ok(Delivery {
            id: DeliveryId::from_trusted(self.id),
            org_id: OrgId::from_trusted(self.org_id),
            event_id: EventId::from_trusted(self.event_id),
            destination_id: DestinationId::from_trusted(self.destination_id),
            stream: self.stream,
            event_seq: self.event_seq,
            event_type: self.event_type,
            state,
            next_attempt_at: matches!(state, DeliveryState::Pending | DeliveryState::Failed)
                .then_some(self.run_at)
                .flatten(),
            attempts: self.attempts as u32,
            last_attempt_at: self.last_attempt_at,
            response_code: self.response_code.map(|c| c as u16),
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The last two are the note of what the event gives (`request_note`): the body's code
/// and whether the headers began with the event's.
pub const ATTEMPT_COLUMNS: &str = "id, org_id, delivery_id, destination_id, event_id, event_type, \
     number, started_at, url, request_headers, request_body, response_status, response_headers, \
     response_body, response_truncated, latency_ms, error_kind, error_message, \
     request_body_from_event, request_headers_from_event";

pub struct RawAttempt {
    pub id: String,
    pub org_id: String,
    pub delivery_id: String,
    pub destination_id: String,
    pub event_id: String,
    pub event_type: String,
    pub number: i64,
    pub started_at: i64,
    pub url: String,
    pub request_headers: String,
    pub request_body: String,
    pub response_status: Option<i64>,
    pub response_headers: String,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub latency_ms: i64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub request_body_from_event: i64,
    pub request_headers_from_event: bool,
}

impl RawAttempt {
    /// The attempt as stored, and the note of what its event gives (`request_note`).
    pub fn parse(self) -> Result<(Attempt, RequestNote), StoreError> {
        let note = RequestNote {
            body: RequestBody::from_code(self.request_body_from_event)?,
            headers_from_event: self.request_headers_from_event,
        };
        let attempt = Attempt {
            id: AttemptId::from_trusted(self.id),
            org_id: OrgId::from_trusted(self.org_id),
            delivery_id: DeliveryId::from_trusted(self.delivery_id),
            destination_id: DestinationId::from_trusted(self.destination_id),
            event_id: EventId::from_trusted(self.event_id),
            event_type: self.event_type,
            number: self.number as u32,
            started_at: self.started_at,
            url: self.url,
            request_headers: json("attempt request headers", &self.request_headers)?,
            request_body: self.request_body,
            response_status: self.response_status.map(|s| s as u16),
            response_headers: json("attempt response headers", &self.response_headers)?,
            response_body: self.response_body,
            response_truncated: self.response_truncated,
            latency_ms: self.latency_ms,
            error_kind: self
                .error_kind
                .map(|k| ErrorKind::from_trusted(&k).ok_or_else(|| corrupt("error kind", k)))
                .transpose()?,
            error_message: self.error_message,
        };
        Ok((attempt, note))
    }
}

/// Headers as stored: a JSON list of `[name, value]` pairs, order kept.
pub fn header_json(headers: &[(String, String)]) -> String {
    // Sized for the usual case (nothing to escape): growing from serde_json's default
    // buffer cost a copy or two per attempt, on the path of every delivery.
    let text: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 8).sum();
    let mut json = Vec::with_capacity(text + 2);
    serde_json::to_writer(&mut json, headers).expect("strings serialize");
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_headers_read_back_exactly_whatever_they_hold() {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-quote".to_owned(), "say \"hi\"\\ \n\t\u{1}".to_owned()),
            ("x-wide".to_owned(), "héllo ✓ 🦀".to_owned()),
            ("x-empty".to_owned(), String::new()),
        ];
        let stored = header_json(&headers);
        let read: Vec<(String, String)> = json("headers", &stored).unwrap();
        assert_eq!(read, headers);
        assert_eq!(header_json(&[]), "[]");
    }
}
