//! The records and queries the Store trait speaks, beyond the core domain types.

use std::borrow::Cow;
use std::sync::Arc;

use hookline_core::api_key::NewApiKey;
use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, DeliveryState};
use hookline_core::destination::Destination;
use hookline_core::envelope::EVENT_HEADER_NAMES;
use hookline_core::event::{Event, EventType, StreamName};
use hookline_core::ids::{ApiKeyId, DeliveryId, DestinationId, OrgId};

use crate::InFlight;

pub const DEFAULT_PAGE_LIMIT: u32 = 50;
pub const MAX_PAGE_LIMIT: u32 = 200;

#[derive(Debug, Clone)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: Millis,
}

impl Org {
    pub fn new(name: impl Into<String>, now: Millis) -> Self {
        Self {
            id: OrgId::generate(),
            name: name.into(),
            created_at: now,
        }
    }
}

/// A stored API key: never the key itself, only its hash and a display prefix.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub key_hash: String,
    pub display_prefix: String,
    pub created_at: Millis,
}

impl ApiKeyRecord {
    /// A new key for `org`: the record to store, and the plaintext to show once.
    pub fn issue(org: &OrgId, now: Millis) -> (Self, String) {
        let key = NewApiKey::generate();
        let record = Self {
            id: ApiKeyId::generate(),
            org_id: org.clone(),
            key_hash: key.hash,
            display_prefix: key.display_prefix,
            created_at: now,
        };
        (record, key.plaintext)
    }
}

/// The answer to a publish: the event, how many deliveries it made, and whether it is
/// new (false when an idempotency key matched an earlier event).
#[derive(Debug, Clone)]
pub struct Published {
    pub event: Arc<Event>,
    pub deliveries: u32,
    /// Of `deliveries`, those waiting in the queue for a claim; the rest were leased at
    /// publish and handed to this node's dispatcher (see `Handoff`).
    pub queued: u32,
    pub created: bool,
}

/// `limit` and the opaque `cursor` of a list request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub stream: Option<StreamName>,
    pub event_type: Option<EventType>,
    pub after_seq: Option<i64>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, Default)]
pub struct DestinationQuery {
    pub stream: Option<StreamName>,
    pub page: PageRequest,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub destination: Option<DestinationId>,
    pub status: Option<DeliveryState>,
    pub stream: Option<StreamName>,
    pub event_type: Option<EventType>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub page: PageRequest,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Millis,
    pub limit: u32,
    /// A lease lasts the destination's timeout plus this margin, so it outlives any attempt.
    pub lease_margin_ms: Millis,
    pub node_id: String,
    /// Deliveries this node holds, per destination; the claim holds what it leases.
    pub in_flight: Arc<InFlight>,
}

/// A leased delivery given back untried, due again at `run_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handback {
    pub org_id: OrgId,
    pub delivery_id: DeliveryId,
    pub run_at: Millis,
}

impl Handback {
    pub fn of(delivery: &ClaimedDelivery, run_at: Millis) -> Self {
        Self {
            org_id: delivery.destination.org_id.clone(),
            delivery_id: delivery.delivery_id.clone(),
            run_at,
        }
    }
}

/// Where a store that can lease at publish sends fresh deliveries: straight to this
/// node's dispatcher, leased in the publish's own transaction, so they skip the queue
/// (and the claim's second write of each row). Only deliveries that would be claimed at
/// once go this way: to an enabled, unordered destination without a rate limit, with
/// nothing older due and a free place in `in_flight`; the rest wait in the queue.
#[derive(Debug, Clone)]
pub struct Handoff {
    pub node_id: String,
    pub lease_margin_ms: Millis,
    pub in_flight: Arc<InFlight>,
    /// Sent only once the publish has committed.
    pub deliveries: tokio::sync::mpsc::UnboundedSender<ClaimedDelivery>,
}

/// A leased delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: DeliveryId,
    /// The number of this attempt, counting from 1.
    pub attempt: u32,
    /// Shared: the deliveries of one event to many destinations are sent from one copy.
    pub event: Arc<Event>,
    pub destination: Arc<Destination>,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(Millis),
    DeadLetter,
    /// Dead-letter and disable the destination: the receiver answered 410 Gone.
    Gone,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub node_id: String,
    pub attempt: Attempt,
    /// The request headers a store keeps, as stored (`header_json`): all of them, or
    /// those after the event's own when `request_headers_from_event`. Made by `new`, in
    /// the caller's task: the embedded store has one writer thread, and serializing
    /// them there cost it a twentieth of its time.
    pub(crate) request_headers_json: String,
    /// The request began with `event_headers(event, delivery, started_at)`.
    pub(crate) request_headers_from_event: bool,
    pub(crate) response_headers_json: String,
    pub(crate) request_body: RequestBody,
    pub next: NextStep,
    pub now: Millis,
    pub auto_disable: AutoDisable,
}

/// How an attempt's request was made: a store may keep a note of what it can rebuild
/// from the event instead of a copy. An event of up to 1 MiB fanned out to ten
/// destinations, each retried, would otherwise be stored once per attempt, and the
/// headers the event gives were half of every attempt's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Only the attempt says what was sent.
    AsRecorded,
    /// The body is exactly `Envelope::of(event, include_raw).to_text()`, and the headers
    /// begin with `event_headers(event, delivery, started_at)`.
    FromEvent { include_raw: bool },
}

impl Completion {
    pub fn new(
        node_id: String,
        attempt: Attempt,
        next: NextStep,
        now: Millis,
        auto_disable: AutoDisable,
        sent: Sent,
    ) -> Self {
        let (request_body, request_headers_from_event) = match sent {
            Sent::AsRecorded => (RequestBody::AsSent, false),
            Sent::FromEvent { include_raw } => (
                RequestBody::EventEnvelope { include_raw },
                begins_with_event_headers(&attempt),
            ),
        };
        let kept_from = match request_headers_from_event {
            true => EVENT_HEADER_NAMES.len(),
            false => 0,
        };
        Self {
            node_id,
            request_headers_json: crate::raw::header_json(&attempt.request_headers[kept_from..]),
            request_headers_from_event,
            response_headers_json: crate::raw::header_json(&attempt.response_headers),
            request_body,
            attempt,
            next,
            now,
            auto_disable,
        }
    }

    /// All the request headers as stored (`header_json`), for a store that keeps them all.
    pub(crate) fn all_request_headers_json(&self) -> Cow<'_, str> {
        match self.request_headers_from_event {
            true => Cow::Owned(crate::raw::header_json(&self.attempt.request_headers)),
            false => Cow::Borrowed(&self.request_headers_json),
        }
    }
}

/// Whether the attempt's headers begin with its event's (`event_headers`), as far as the
/// attempt alone can tell: the stream is the event's and not in the attempt. A sender
/// that declared `Sent::FromEvent` but sent otherwise has every header kept.
fn begins_with_event_headers(attempt: &Attempt) -> bool {
    let Some(first) = attempt.request_headers.get(..EVENT_HEADER_NAMES.len()) else {
        return false;
    };
    let known = [
        Some("application/json"),
        Some(attempt.event_id.as_str()),
        None,
        Some(attempt.delivery_id.as_str()),
        None,
        Some(attempt.event_type.as_str()),
    ];
    // Compared as text, as `event_headers` writes it: "+17…" or "017…" would parse to
    // the same second and yet not be rebuilt as sent.
    let timestamp = attempt.started_at.div_euclid(1000).to_string();
    first.iter().zip(EVENT_HEADER_NAMES).zip(known).all(
        |(((name, value), expected_name), expected)| {
            name == expected_name && expected.is_none_or(|e| value == e)
        },
    ) && first[2].1 == timestamp
}

/// What an attempt's request body was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestBody {
    /// Only `Attempt::request_body` says what was sent.
    AsSent,
    /// The envelope of the attempt's event, as `Envelope::of(event, include_raw)` makes it.
    EventEnvelope { include_raw: bool },
}

/// When a destination that only fails is disabled: after `after_ms` without a success
/// (counted from its creation if it never had one) and at least `min_failures` failed
/// attempts in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoDisable {
    pub after_ms: Millis,
    pub min_failures: i64,
}

impl Default for AutoDisable {
    fn default() -> Self {
        Self {
            after_ms: 5 * 24 * 3600 * 1000,
            min_failures: 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use hookline_core::delivery::Attempt;
    use hookline_core::envelope::event_headers;
    use hookline_core::ids::{AttemptId, DeliveryId, EventId};

    use super::*;
    use crate::test_support;

    /// An attempt sent at `at` whose headers are the event's, then a signature.
    fn attempt_from_event(at: Millis) -> Attempt {
        let destination = Arc::new(test_support::destination());
        let event = test_support::event_for(&destination);
        let delivery_id = DeliveryId::generate();
        let mut request_headers = event_headers(&event, &delivery_id, at);
        request_headers.push(("webhook-signature".into(), "v1,c2ln".into()));
        Attempt {
            id: AttemptId::generate(),
            org_id: event.org_id.clone(),
            delivery_id,
            destination_id: destination.id.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.as_str().into(),
            number: 1,
            started_at: at,
            url: destination.settings.url.as_str().into(),
            request_headers,
            request_body: String::new(),
            response_status: Some(200),
            response_headers: Vec::new(),
            response_body: None,
            response_truncated: false,
            latency_ms: 1,
            error_kind: None,
            error_message: None,
        }
    }

    #[test]
    fn only_headers_that_begin_exactly_as_the_event_gives_them_are_left_out() {
        let at = 1_800_000_000_500;
        assert!(begins_with_event_headers(&attempt_from_event(at)));

        let mut swapped = attempt_from_event(at);
        swapped.request_headers.swap(1, 3);
        let mut other_event = attempt_from_event(at);
        other_event.event_id = EventId::generate();
        let mut later = attempt_from_event(at);
        later.started_at += 1_000;
        let mut short = attempt_from_event(at);
        short.request_headers.truncate(5);
        let mut padded = attempt_from_event(at);
        padded.request_headers[2].1.insert(0, '0');
        for attempt in [swapped, other_event, later, short, padded] {
            assert!(!begins_with_event_headers(&attempt));
            let completion = Completion::new(
                "node".into(),
                attempt.clone(),
                NextStep::Delivered,
                at,
                AutoDisable::default(),
                Sent::FromEvent { include_raw: false },
            );
            assert!(!completion.request_headers_from_event);
            assert_eq!(
                completion.request_headers_json,
                crate::raw::header_json(&attempt.request_headers)
            );
        }
    }
}
