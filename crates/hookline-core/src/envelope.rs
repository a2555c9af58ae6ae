//! The envelope a receiver gets (and the SSE stream will carry): one shape, serialized
//! in one place, so the bytes that are signed are the bytes that are sent.

use serde::Serialize;

use crate::clock::{Millis, rfc3339};
use crate::event::Event;
use crate::ids::DeliveryId;

/// A request body made from its event alone, so that a stored attempt can keep a note
/// of which instead of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventBody {
    /// The webhook envelope, with the event's `raw` when asked.
    Envelope { include_raw: bool },
    /// The event's `data` alone, as compact JSON: a receiver's own payload shape.
    Data,
}

impl EventBody {
    pub fn text(self, event: &Event) -> String {
        match self {
            Self::Envelope { include_raw } => Envelope::of(event, include_raw).to_text(),
            Self::Data => {
                serde_json::to_string(&event.data).expect("a JSON value always serializes")
            }
        }
    }
}

/// The headers every attempt starts with, in this order. Each is the event's, the
/// delivery's or the second the attempt was sent (`event_headers`), so a stored attempt
/// can rebuild them instead of keeping a copy; the user agent, the signatures and a
/// destination's own headers follow them.
pub const EVENT_HEADER_NAMES: [&str; 6] = [
    "content-type",
    "webhook-id",
    "webhook-timestamp",
    "hookline-delivery-id",
    "hookline-stream",
    "hookline-event-type",
];

/// The `webhook-timestamp` of an attempt sent at `sent_at`, in whole seconds: the
/// header's value and the second every signature signs.
pub fn webhook_timestamp(sent_at: Millis) -> i64 {
    sent_at.div_euclid(1000)
}

/// The values of `EVENT_HEADER_NAMES` for an attempt of `delivery_id` sent at `sent_at`,
/// with room for the headers that follow them.
pub fn event_headers(
    event: &Event,
    delivery_id: &DeliveryId,
    sent_at: Millis,
) -> Vec<(String, String)> {
    let values = [
        "application/json".to_owned(),
        event.id.to_string(),
        webhook_timestamp(sent_at).to_string(),
        delivery_id.to_string(),
        event.stream.as_str().to_owned(),
        event.event_type.as_str().to_owned(),
    ];
    let mut headers = Vec::with_capacity(EVENT_HEADER_NAMES.len() + 4);
    headers.extend(
        EVENT_HEADER_NAMES
            .map(str::to_owned)
            .into_iter()
            .zip(values),
    );
    headers
}

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

    #[test]
    fn event_headers_are_the_documented_ones_in_order() {
        let e = event();
        let delivery = DeliveryId::generate();
        let headers = event_headers(&e, &delivery, 1_764_288_000_999);
        let expected = [
            ("content-type", "application/json"),
            ("webhook-id", e.id.as_str()),
            ("webhook-timestamp", "1764288000"),
            ("hookline-delivery-id", delivery.as_str()),
            ("hookline-stream", "sess_1"),
            ("hookline-event-type", "turn.completed"),
        ];
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(headers, expected);
    }
}
