//! What a publisher sends: the event type, the stream it belongs to, its level, and the
//! stored event with its per-stream sequence number.

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::clock::Millis;
use crate::ids::{EventId, OrgId};

const MAX_NAME_LEN: usize = 128;

/// A dotted event type such as `turn.completed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EventType(String);

impl EventType {
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        let valid_segment = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if text.is_empty() || text.len() > MAX_NAME_LEN || !text.split('.').all(valid_segment) {
            return Err(ValidationError::new(
                field,
                "must be 1-128 characters of dot-separated segments of letters, digits, '_' or '-' (e.g. turn.completed)",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a stream, chosen by the caller (`sess_123`, `run_01HX…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StreamName(String);

impl StreamName {
    /// Where events published without a stream go.
    pub const DEFAULT: &'static str = "default";
    /// The org's own stream, where Hookline publishes events about itself.
    pub const SYSTEM: &'static str = "hookline";

    /// Parses a caller-chosen name; the system stream is Hookline's to write.
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_NAME_LEN
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if !valid {
            return Err(ValidationError::new(
                field,
                "must be 1-128 characters of letters, digits, '_', '-', '.' or ':'",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// Parses a name to publish to: like [`StreamName::parse`] but the system stream is refused.
    pub fn parse_for_publish(field: &str, text: &str) -> Result<Self, ValidationError> {
        let name = Self::parse(field, text)?;
        if name.0 == Self::SYSTEM {
            return Err(ValidationError::new(
                field,
                "the stream 'hookline' is reserved for Hookline's own events",
            ));
        }
        Ok(name)
    }

    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How chatty an event is. Ordered: a destination at level L receives events at or below L.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    User,
    Progress,
    Debug,
}

impl Level {
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        match text {
            "user" => Ok(Self::User),
            "progress" => Ok(Self::Progress),
            "debug" => Ok(Self::Debug),
            _ => Err(ValidationError::new(
                field,
                "must be one of user, progress, debug",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Progress => "progress",
            Self::Debug => "debug",
        }
    }
}

/// The caller-chosen key that makes publishing idempotent (`id` or `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        if text.is_empty() || text.len() > 255 || text.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                "must be 1-255 characters without control characters",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parsed publish request, ready to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    pub stream: StreamName,
    pub level: Level,
    pub data: serde_json::Value,
    pub raw: Option<serde_json::Value>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// A destination for this event alone (`webhook_url`), stored with it.
    pub one_shot: Option<crate::destination::Destination>,
}

impl NewEvent {
    /// The event as stored: `seq` is the stream's next number, `now` its timestamp.
    pub fn into_event(self, org_id: OrgId, seq: i64, now: Millis) -> Event {
        Event {
            id: EventId::generate(),
            org_id,
            event_type: self.event_type,
            stream: self.stream,
            seq,
            level: self.level,
            timestamp: now,
            data: self.data,
            raw: self.raw,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub org_id: OrgId,
    pub event_type: EventType,
    pub stream: StreamName,
    pub seq: i64,
    pub level: Level,
    pub timestamp: Millis,
    pub data: serde_json::Value,
    pub raw: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_dotted_names() {
        assert!(EventType::parse("type", "turn.completed").is_ok());
        assert!(EventType::parse("type", "run").is_ok());
        for bad in ["", "turn..completed", ".x", "x.", "has space", "a/b"] {
            assert!(EventType::parse("type", bad).is_err(), "{bad}");
        }
        assert!(EventType::parse("type", &"a".repeat(129)).is_err());
    }

    #[test]
    fn stream_names_refuse_odd_characters_and_the_system_stream() {
        assert!(StreamName::parse("stream", "sess_123").is_ok());
        assert!(StreamName::parse("stream", "run:01HX.a-b").is_ok());
        assert!(StreamName::parse("stream", "a b").is_err());
        assert!(StreamName::parse("stream", "").is_err());
        assert!(StreamName::parse("stream", "hookline").is_ok());
        let err = StreamName::parse_for_publish("stream", "hookline").unwrap_err();
        assert!(err.message.contains("reserved"));
    }

    #[test]
    fn levels_order_from_quiet_to_chatty() {
        assert!(Level::User < Level::Progress && Level::Progress < Level::Debug);
        assert_eq!(Level::parse("level", "progress").unwrap(), Level::Progress);
        assert!(Level::parse("level", "verbose").is_err());
    }

    #[test]
    fn idempotency_keys_refuse_control_characters() {
        assert!(IdempotencyKey::parse("id", "order-42").is_ok());
        assert!(IdempotencyKey::parse("id", "a\nb").is_err());
        assert!(IdempotencyKey::parse("id", "").is_err());
    }
}
