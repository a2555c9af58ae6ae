//! Deliveries (one event for one destination) and their attempts (one HTTP request each):
//! the records an operator inspects, and the state machine they move through.

use crate::ValidationError;
use crate::clock::Millis;
use crate::ids::{AttemptId, DeliveryId, DestinationId, EventId, OrgId};

/// `pending → delivering → delivered`, or `→ failed (will retry) → … → dead_letter`;
/// `canceled` when the destination is deleted; `intercepted` when its org was in test
/// mode at its attempt (built and signed, not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivering,
    Delivered,
    Failed,
    DeadLetter,
    Canceled,
    Intercepted,
}

impl DeliveryState {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Delivering,
        Self::Delivered,
        Self::Failed,
        Self::DeadLetter,
        Self::Canceled,
        Self::Intercepted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::DeadLetter => "dead_letter",
            Self::Canceled => "canceled",
            Self::Intercepted => "intercepted",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                ValidationError::new(
                    field,
                    "must be one of pending, delivering, delivered, failed, dead_letter, \
                     canceled, intercepted",
                )
            })
    }
}

/// Why an attempt got no successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    Connect,
    Dns,
    Tls,
    /// The destination's address is one Hookline refuses to connect to (SSRF guard).
    BlockedAddress,
    HttpStatus,
    /// The destination's keys did not open with this server's master key.
    Signing,
    /// Built and signed but not sent: the org was in test mode.
    Intercepted,
}

impl ErrorKind {
    pub const ALL: [Self; 8] = [
        Self::Timeout,
        Self::Connect,
        Self::Dns,
        Self::Tls,
        Self::BlockedAddress,
        Self::HttpStatus,
        Self::Signing,
        Self::Intercepted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::BlockedAddress => "blocked_address",
            Self::HttpStatus => "http_status",
            Self::Signing => "signing",
            Self::Intercepted => "intercepted",
        }
    }

    pub fn from_trusted(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub org_id: OrgId,
    pub event_id: EventId,
    pub destination_id: DestinationId,
    pub stream: String,
    pub event_seq: i64,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_attempt_at: Option<Millis>,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One HTTP request of a delivery, exactly as sent, and what came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: AttemptId,
    pub org_id: OrgId,
    pub delivery_id: DeliveryId,
    pub destination_id: DestinationId,
    pub event_id: EventId,
    pub event_type: String,
    pub number: u32,
    pub started_at: Millis,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub latency_ms: i64,
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_text() {
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse("status", s.as_str()).unwrap(), s);
        }
        assert!(DeliveryState::parse("status", "done").is_err());
    }

    #[test]
    fn error_kinds_round_trip_through_text() {
        for k in [
            ErrorKind::Timeout,
            ErrorKind::Dns,
            ErrorKind::BlockedAddress,
            ErrorKind::HttpStatus,
        ] {
            assert_eq!(ErrorKind::from_trusted(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::from_trusted("gremlins"), None);
    }
}
