//! The records and queries the Store trait speaks, beyond the core domain types.

use std::sync::Arc;

use hookline_core::api_key::NewApiKey;
use hookline_core::auto_disable::AutoDisable;
use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, DeliveryState, ErrorKind};
use hookline_core::destination::Destination;
use hookline_core::event::{Event, EventType, StreamName};
use hookline_core::ids::{ApiKeyId, DeliveryId, DestinationId, OrgId};
use hookline_core::retry::NextStep;

use crate::Admission;
use crate::request_note::{RequestBody, RequestNote};

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

/// What waits to be sent at one moment (`Queue::due_now`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueNow {
    pub count: u64,
    /// When the oldest of them fell due.
    pub oldest: Option<Millis>,
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

/// What deleting an API key came to. An org always keeps at least one key (nobody could
/// create another without one), and the store keeps that true when two deletions race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDeletion {
    Deleted,
    NotFound,
    /// Refused: it is the org's last key.
    LastKey,
}

impl KeyDeletion {
    /// What deleting `id` does to an org whose keys are `keys`.
    pub fn of(keys: &[String], id: &ApiKeyId) -> Self {
        match keys.iter().any(|k| k == id.as_str()) {
            false => Self::NotFound,
            true if keys.len() == 1 => Self::LastKey,
            true => Self::Deleted,
        }
    }
}

/// The answer to a publish: the event, how many deliveries it made, and whether it is
/// new (false when an idempotency key matched an earlier event).
#[derive(Debug, Clone)]
pub struct Published {
    pub event: Arc<Event>,
    pub deliveries: u32,
    /// Of `deliveries`, those waiting in the queue for a claim; the rest were leased at
    /// publish and handed to this node's dispatcher (see `Admission::lease_at_publish`).
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
    /// Lists newest first instead of oldest first.
    pub newest_first: bool,
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

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Rows removed one by one.
    pub deliveries: u64,
    pub attempts: u64,
    pub events: u64,
    /// Days of deliveries and attempts dropped whole (PostgreSQL's partitions), not
    /// counted above.
    pub days: u64,
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Self) {
        self.deliveries += other.deliveries;
        self.attempts += other.attempts;
        self.events += other.events;
        self.days += other.days;
    }
}

/// Deliveries that have not ended yet, by status, as they stand now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unfinished {
    /// Waiting for a first attempt.
    pub pending: i64,
    /// An attempt is under way.
    pub delivering: i64,
    /// Failed at least once; waiting for a retry.
    pub failed: i64,
}

impl Unfinished {
    /// Adds `count` deliveries in `state` as a store spells it; the states that end a
    /// delivery are not counted here, and an unknown one is a corrupt row.
    pub fn add(&mut self, state: &str, count: i64) -> crate::StoreResult<()> {
        match DeliveryState::parse("state", state)
            .map_err(|e| crate::StoreError::Corrupt(format!("delivery state: {}", e.message)))?
        {
            DeliveryState::Pending => self.pending += count,
            DeliveryState::Delivering => self.delivering += count,
            DeliveryState::Failed => self.failed += count,
            _ => {}
        }
        Ok(())
    }
}

/// Where an org's retention cuts at `now`: its own retention in days if it has one, else
/// the server's `window`; `None` (keep everything) for a retention of 0 or none at all.
pub fn retention_cut(now: Millis, own_days: Option<f64>, window: Option<Millis>) -> Option<Millis> {
    let window = match own_days {
        Some(days) => (days * 86_400_000.0) as Millis,
        None => window?,
    };
    (window > 0).then(|| now - window)
}

/// The dispatch inspector's filters; lists newest first.
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    pub destination: Option<DestinationId>,
    pub delivery: Option<DeliveryId>,
    pub event_type: Option<EventType>,
    pub status_code: Option<u16>,
    pub error: Option<ErrorKind>,
    /// Started at or after.
    pub since: Option<Millis>,
    /// Started before.
    pub until: Option<Millis>,
    pub page: PageRequest,
}

#[derive(Clone)]
pub struct ClaimRequest {
    pub now: Millis,
    pub limit: u32,
    /// The node the claim leases to: what it holds, and how long its leases last.
    pub node: Arc<dyn Admission>,
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

/// A leased delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: DeliveryId,
    /// The number of this attempt, counting from 1.
    pub attempt: u32,
    /// Shared: the deliveries of one event to many destinations are sent from one copy.
    pub event: Arc<Event>,
    pub destination: Arc<Destination>,
    /// The store's own handle on the delivery's row (SQLite's rowid), which the
    /// completion hands back (`Completion::at_row`) so that recording the attempt need
    /// not search for the row by id. None from a store without one, or for a delivery
    /// that is not stored (a test ping).
    pub row_hint: Option<i64>,
    /// When the lease ends and the delivery may be claimed again: an attempt that could
    /// not end before then must not start (the dispatcher hands it back instead).
    pub lease_until: Millis,
}

/// A batch of finished attempts, as one node's recorder hands them to the store.
#[derive(Debug, Clone)]
pub struct CompletedBatch {
    /// The node whose leases the attempts ran under: a delivery now leased to another
    /// keeps its state (the attempt is still recorded).
    pub node_id: String,
    /// When a destination with no success in the batch is disabled.
    pub auto_disable: AutoDisable,
    pub completions: Vec<Completion>,
}

/// One finished attempt and where its delivery goes next. Made with `new`, which
/// prepares what a store writes; the fields are public for the backends that write it.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The attempt less what the fields below hold for it: its headers, and its body
    /// when the note stands for it. `new` frees those in the sender's task, on the
    /// thread that made them and while they are still in its cache, rather than when the
    /// recorder drops the written batch, later and often on another worker thread.
    pub attempt: Attempt,
    /// The request headers a store keeps, as stored (`header_json`): all of them, or
    /// those after the event's own when `note.headers_from_event`. Made by `new`, in
    /// the caller's task: the embedded store has one writer thread, and serializing
    /// them there would take that thread's time.
    pub request_headers_json: String,
    pub response_headers_json: String,
    pub note: RequestNote,
    /// `ClaimedDelivery::row_hint` of the delivery, when the caller passes it on.
    pub row_hint: Option<i64>,
    pub next: NextStep,
    pub now: Millis,
}

/// How an attempt's request was made: a store keeps a note of what it can rebuild from
/// the event instead of a copy (see `request_note`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Only the attempt says what was sent.
    AsRecorded,
    /// The body is exactly `body.text(event)`, and the headers begin with
    /// `event_headers(event, delivery, started_at)`.
    FromEvent {
        body: hookline_core::envelope::EventBody,
    },
}

impl Completion {
    pub fn new(mut attempt: Attempt, next: NextStep, now: Millis, sent: Sent) -> Self {
        let note = RequestNote::of(sent, &attempt);
        let request_headers = std::mem::take(&mut attempt.request_headers);
        let request_headers_json =
            crate::raw::header_json(&request_headers[note.headers_left_out()..]);
        let response_headers_json =
            crate::raw::header_json(&std::mem::take(&mut attempt.response_headers));
        if note.body != RequestBody::AsSent {
            attempt.request_body = String::new();
        }
        Self {
            attempt,
            request_headers_json,
            response_headers_json,
            note,
            row_hint: None,
            next,
            now,
        }
    }

    /// The delivery's state after this attempt, as stored, and when it is due again.
    pub fn next_state(&self) -> (&'static str, Option<Millis>) {
        match self.next {
            NextStep::Delivered => ("delivered", None),
            NextStep::RetryAt(at) => ("failed", Some(at)),
            NextStep::DeadLetter | NextStep::Gone => ("dead_letter", None),
            NextStep::Intercepted => ("intercepted", None),
        }
    }

    /// The delivery's `error` after this attempt: the status for an HTTP error, else
    /// what the attempt says went wrong.
    pub fn delivery_error(&self) -> Option<String> {
        match (self.attempt.error_kind, self.attempt.response_status) {
            (Some(ErrorKind::HttpStatus), Some(status)) => Some(format!("HTTP {status}")),
            _ => self.attempt.error_message.clone(),
        }
    }

    /// Passes on the claimed delivery's `row_hint`; a store checks it against the id.
    pub fn at_row(mut self, row_hint: Option<i64>) -> Self {
        self.row_hint = row_hint;
        self
    }
}
