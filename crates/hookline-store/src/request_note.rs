//! What a store keeps of an attempt's request when its event can rebuild it: a note in
//! place of a copy. An event of up to 1 MiB fanned out to ten destinations, each
//! retried, would otherwise be stored once per attempt, and the headers the event gives
//! were a large part of every attempt's row. Both stores keep the same note in the same two
//! columns (the last two of `raw::ATTEMPT_COLUMNS`) and rebuild the request with
//! `rebuild` when it is read.

use hookline_core::delivery::Attempt;
use hookline_core::envelope::{EVENT_HEADER_NAMES, EventBody, event_headers, webhook_timestamp};
use hookline_core::event::Event;
use hookline_core::ids::EventId;

use crate::{Sent, StoreError, StoreResult};

/// What an attempt's request body was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// Only `Attempt::request_body` says what was sent.
    AsSent,
    /// Made from the attempt's event alone (its envelope, or its data).
    FromEvent(EventBody),
}

impl RequestBody {
    /// As stored in `request_body_from_event`.
    pub fn code(self) -> i64 {
        match self {
            Self::AsSent => 0,
            Self::FromEvent(EventBody::Envelope { include_raw: false }) => 1,
            Self::FromEvent(EventBody::Envelope { include_raw: true }) => 2,
            Self::FromEvent(EventBody::Data) => 3,
        }
    }

    /// The inverse of `code`; an unknown code is a corrupt row.
    pub fn from_code(code: i64) -> StoreResult<Self> {
        match code {
            0 => Ok(Self::AsSent),
            1 => Ok(Self::FromEvent(EventBody::Envelope { include_raw: false })),
            2 => Ok(Self::FromEvent(EventBody::Envelope { include_raw: true })),
            3 => Ok(Self::FromEvent(EventBody::Data)),
            other => Err(StoreError::Corrupt(format!(
                "attempt request body source {other}"
            ))),
        }
    }
}

/// Which parts of an attempt's request its event gives, and so are not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestNote {
    pub body: RequestBody,
    /// The request began with `event_headers(event, delivery, started_at)`, and only
    /// the headers after those are stored.
    pub headers_from_event: bool,
}

impl RequestNote {
    /// Everything was stored as sent: nothing to rebuild.
    pub const WHOLE: Self = Self {
        body: RequestBody::AsSent,
        headers_from_event: false,
    };

    /// What `attempt` as sent lets a store leave out, given what its sender declares.
    pub fn of(sent: Sent, attempt: &Attempt) -> Self {
        match sent {
            Sent::AsRecorded => Self::WHOLE,
            Sent::FromEvent { body } => Self {
                body: RequestBody::FromEvent(body),
                headers_from_event: begins_with_event_headers(attempt),
            },
        }
    }

    /// How many of the request's headers the note stands for: the stored ones follow.
    pub fn headers_left_out(self) -> usize {
        match self.headers_from_event {
            true => EVENT_HEADER_NAMES.len(),
            false => 0,
        }
    }
}

/// The events to read for `rebuild`: those of the attempts whose note stands for part
/// of their request, each once.
pub fn events_to_read(noted: &[(Attempt, RequestNote)]) -> Vec<&EventId> {
    let mut ids: Vec<&EventId> = noted
        .iter()
        .filter(|(_, note)| *note != RequestNote::WHOLE)
        .map(|(attempt, _)| &attempt.event_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Each attempt's request as it was sent, rebuilt from `events` (read as
/// `events_to_read` says) where a note stands for part of it.
pub fn rebuild(noted: Vec<(Attempt, RequestNote)>, events: &[Event]) -> StoreResult<Vec<Attempt>> {
    noted
        .into_iter()
        .map(|(mut attempt, note)| {
            if note == RequestNote::WHOLE {
                return Ok(attempt);
            }
            let event = events
                .iter()
                .find(|e| e.id == attempt.event_id)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("attempt {} names no stored event", attempt.id))
                })?;
            if let RequestBody::FromEvent(body) = note.body {
                attempt.request_body = body.text(event);
            }
            if note.headers_from_event {
                let mut headers = event_headers(event, &attempt.delivery_id, attempt.started_at);
                headers.append(&mut attempt.request_headers);
                attempt.request_headers = headers;
            }
            Ok(attempt)
        })
        .collect()
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
    let timestamp = webhook_timestamp(attempt.started_at).to_string();
    first.iter().zip(EVENT_HEADER_NAMES).zip(known).all(
        |(((name, value), expected_name), expected)| {
            name == expected_name && expected.is_none_or(|e| value == e)
        },
    ) && first[2].1 == timestamp
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hookline_core::clock::Millis;
    use hookline_core::ids::{AttemptId, DeliveryId, EventId};

    use super::*;
    use crate::Completion;
    use hookline_core::retry::NextStep;
    use hookline_core::testing;

    /// An attempt of `event` sent at `at` whose headers are the event's, then a signature.
    fn attempt_from_event(event: &Event, at: Millis) -> Attempt {
        let delivery_id = DeliveryId::generate();
        let mut request_headers = event_headers(event, &delivery_id, at);
        request_headers.push(("webhook-signature".into(), "v1,c2ln".into()));
        Attempt {
            id: AttemptId::generate(),
            org_id: event.org_id.clone(),
            delivery_id,
            destination_id: testing::destination().id,
            event_id: event.id.clone(),
            event_type: event.event_type.as_str().into(),
            number: 1,
            started_at: at,
            url: "https://example.com/h".into(),
            request_headers,
            request_body: EventBody::Envelope { include_raw: false }.text(event),
            response_status: Some(200),
            response_headers: Vec::new(),
            response_body: None,
            response_truncated: false,
            latency_ms: 1,
            error_kind: None,
            error_message: None,
        }
    }

    fn event() -> Event {
        testing::event_for(&Arc::new(testing::destination()))
    }

    #[test]
    fn only_headers_that_begin_exactly_as_the_event_gives_them_are_left_out() {
        let (event, at) = (event(), 1_800_000_000_500);
        assert!(begins_with_event_headers(&attempt_from_event(&event, at)));

        let mut swapped = attempt_from_event(&event, at);
        swapped.request_headers.swap(1, 3);
        let mut other_event = attempt_from_event(&event, at);
        other_event.event_id = EventId::generate();
        let mut later = attempt_from_event(&event, at);
        later.started_at += 1_000;
        let mut short = attempt_from_event(&event, at);
        short.request_headers.truncate(5);
        let mut padded = attempt_from_event(&event, at);
        padded.request_headers[2].1.insert(0, '0');
        for attempt in [swapped, other_event, later, short, padded] {
            assert!(!begins_with_event_headers(&attempt));
            let completion = Completion::new(
                attempt.clone(),
                NextStep::Delivered,
                at,
                Sent::FromEvent {
                    body: EventBody::Envelope { include_raw: false },
                },
            );
            assert!(!completion.note.headers_from_event);
            assert_eq!(
                completion.request_headers_json,
                crate::raw::header_json(&attempt.request_headers)
            );
        }
    }

    #[test]
    fn a_noted_request_is_rebuilt_as_sent_and_only_from_its_own_event() {
        let (event, at) = (event(), 1_800_000_000_500);
        let sent = attempt_from_event(&event, at);
        let note = RequestNote::of(
            Sent::FromEvent {
                body: EventBody::Envelope { include_raw: false },
            },
            &sent,
        );
        assert_eq!(note.headers_left_out(), EVENT_HEADER_NAMES.len());
        let mut stored = sent.clone();
        stored.request_body.clear();
        stored.request_headers.drain(..note.headers_left_out());
        let whole = attempt_from_event(&event, at);

        let noted = vec![(whole.clone(), RequestNote::WHOLE), (stored.clone(), note)];
        assert_eq!(events_to_read(&noted), vec![&event.id]);
        let rebuilt = rebuild(noted, std::slice::from_ref(&event)).unwrap();
        assert_eq!(rebuilt[0].request_headers, whole.request_headers);
        assert_eq!(rebuilt[1].request_headers, sent.request_headers);
        assert_eq!(rebuilt[1].request_body, sent.request_body);

        assert!(events_to_read(&[(whole.clone(), RequestNote::WHOLE)]).is_empty());
        let another = self::event();
        assert!(matches!(
            rebuild(vec![(stored.clone(), note)], &[another]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            rebuild(vec![(stored, note)], &[]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn body_codes_read_back_and_unknown_ones_are_corrupt() {
        for body in [
            RequestBody::AsSent,
            RequestBody::FromEvent(EventBody::Envelope { include_raw: false }),
            RequestBody::FromEvent(EventBody::Envelope { include_raw: true }),
            RequestBody::FromEvent(EventBody::Data),
        ] {
            assert_eq!(RequestBody::from_code(body.code()).unwrap(), body);
        }
        assert!(matches!(
            RequestBody::from_code(4),
            Err(StoreError::Corrupt(_))
        ));
    }
}
