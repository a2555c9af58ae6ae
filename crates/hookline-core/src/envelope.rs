//! The envelope a receiver gets (and the SSE stream will carry): one shape, serialized
//! in one place, so the bytes that are signed are the bytes that are sent.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::event::Event;

#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub timestamp: String,
    pub stream: &'a str,
    pub seq: i64,
    pub level: &'static str,
    pub data: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<&'a serde_json::Value>,
}

impl<'a> Envelope<'a> {
    /// The envelope of `event`; `raw` is kept only when the destination asked for it.
    pub fn of(event: &'a Event, include_raw: bool) -> Self {
        Self {
            id: event.id.as_str(),
            event_type: event.event_type.as_str(),
            timestamp: rfc3339(event.timestamp),
            stream: event.stream.as_str(),
            seq: event.seq,
            level: event.level.as_str(),
            data: &event.data,
            raw: if include_raw {
                event.raw.as_ref()
            } else {
                None
            },
        }
    }

    /// The envelope as the JSON text a delivery sends.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("an envelope of JSON values always serializes")
    }

    /// The envelope as a JSON value, for filters to look into.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("an envelope of JSON values always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, Level, StreamName};
    use crate::ids::{EventId, OrgId};
    use serde_json::json;

    fn event() -> Event {
        Event {
            id: EventId::generate(),
            org_id: OrgId::generate(),
            event_type: EventType::parse("type", "turn.completed").unwrap(),
            stream: StreamName::parse("stream", "sess_1").unwrap(),
            seq: 3,
            level: Level::Progress,
            timestamp: 1_764_288_000_000,
            data: json!({"tokens": 12}),
            raw: Some(json!({"huge": true})),
        }
    }

    #[test]
    fn raw_is_included_only_on_request() {
        let e = event();
        let without: serde_json::Value =
            serde_json::from_str(&Envelope::of(&e, false).to_text()).unwrap();
        assert!(without.get("raw").is_none());
        let with = Envelope::of(&e, true).to_value();
        assert_eq!(with["raw"], json!({"huge": true}));
    }

    #[test]
    fn envelope_has_the_documented_fields() {
        let e = event();
        let v = Envelope::of(&e, false).to_value();
        assert_eq!(v["id"], json!(e.id.as_str()));
        assert_eq!(v["type"], json!("turn.completed"));
        assert_eq!(v["timestamp"], json!("2025-11-28T00:00:00.000Z"));
        assert_eq!(v["stream"], json!("sess_1"));
        assert_eq!(v["seq"], json!(3));
        assert_eq!(v["level"], json!("progress"));
        assert_eq!(v["data"], json!({"tokens": 12}));
    }
}
