//! Event bodies: what is published, what publishing answers, and the envelope shown.

use hookline_core::ValidationError;
use hookline_core::event::{Event, EventType, StreamName};
use hookline_core::ids::EventId;
use hookline_store::EventQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{LevelName, page_request, time};

/// `POST /v1/events`. Only `type` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "type": "turn.completed",
    "stream": "sess_123",
    "data": {"tokens": 812}
}))]
pub struct EventIn {
    /// Dotted lowercase, e.g. `turn.completed`.
    #[serde(rename = "type")]
    #[schema(example = "turn.completed")]
    #[schema(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length = 128)]
    pub event_type: String,
    /// The stream it belongs to (a session, run or agent id); default `default`.
    #[schema(example = "sess_123")]
    #[schema(pattern = r"^[A-Za-z0-9_.:-]{1,128}$")]
    pub stream: Option<String>,
    /// Default `user`.
    pub level: Option<LevelName>,
    /// The payload receivers get: any JSON value, usually an object; absent: `{}`.
    #[serde(default = "empty_object")]
    pub data: Value,
    /// The provider's original, delivered only to destinations with `include_raw`.
    pub raw: Option<Value>,
    /// An idempotency key: publishing the same `id` again returns the first event.
    #[schema(min_length = 1, max_length = 255)]
    pub id: Option<String>,
    /// Also deliver this event once to this URL, signed with the org's keys.
    #[schema(pattern = r"^https?://[^\s]+$")]
    pub webhook_url: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// What publishing stored: 202 when new, 200 when the idempotency key was seen before.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    #[schema(example = "evt_01JD3V6Q2W8T7Y4N5K9H0B1C2D")]
    pub id: String,
    pub stream: String,
    /// The event's place in its stream, from 1.
    pub seq: i64,
    /// Deliveries created, one per matching destination.
    pub deliveries: u32,
}

impl Published {
    pub fn of(published: &hookline_store::Published) -> Self {
        Self {
            id: published.event.id.to_string(),
            stream: published.event.stream.as_str().to_owned(),
            seq: published.event.seq,
            deliveries: published.deliveries,
        }
    }
}

/// Events a batch holds at most.
pub const MAX_BATCH: usize = 1_000;

/// `POST /v1/events/batch`: up to 1,000 events, stored together or not at all.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatchIn {
    /// Each as `POST /v1/events` takes it; an `id` makes that item idempotent.
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<EventIn>,
}

/// What a batch stored, one answer per event in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchPublished {
    pub events: Vec<BatchItemOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemOut {
    #[serde(flatten)]
    pub published: Published,
    /// False when the item's `id` was published before: the answer is that first event.
    pub created: bool,
}

/// An event in the webhook envelope, as receivers get it (with `raw` when stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub stream: String,
    pub seq: i64,
    pub level: LevelName,
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
}

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.to_string(),
            event_type: e.event_type.as_str().to_owned(),
            timestamp: time(e.timestamp),
            stream: e.stream.as_str().to_owned(),
            seq: e.seq,
            level: e.level.into(),
            data: e.data,
            raw: e.raw,
        }
    }
}

/// `GET /v1/events`: oldest first (`order=desc` for newest first).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    /// Only the events of this stream.
    #[param(pattern = r"^[A-Za-z0-9_.:-]{1,128}$")]
    pub stream: Option<String>,
    /// Only events of this exact type.
    #[serde(rename = "type")]
    #[param(
        rename = "type",
        pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        max_length = 128
    )]
    pub event_type: Option<String>,
    /// Only events whose `seq` is greater (with `stream`: the events after one you have).
    pub after_seq: Option<i64>,
    /// `asc` (default: oldest first) or `desc`.
    #[param(inline)]
    pub order: Option<ListOrder>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    Asc,
    Desc,
}

impl TryFrom<EventListQuery> for EventQuery {
    type Error = ValidationError;

    fn try_from(q: EventListQuery) -> Result<Self, Self::Error> {
        Ok(Self {
            stream: q
                .stream
                .map(|s| StreamName::parse("stream", &s))
                .transpose()?,
            event_type: q
                .event_type
                .map(|t| EventType::parse("type", &t))
                .transpose()?,
            after_seq: q.after_seq,
            newest_first: matches!(q.order, Some(ListOrder::Desc)),
            page: page_request(q.limit, q.cursor, |c| EventId::parse(c).is_some())?,
        })
    }
}
