//! Server-Sent Events: a stream's events (or the whole org's) in the webhook envelope,
//! as they are published, resumable after the last one a client saw. Each connection
//! has a task that reads the store after what it last sent (at once when this node
//! publishes, else every second, which finds what other nodes published) and hands each
//! matching event on through a small channel, so a slow client holds back its own task
//! and nothing else. Every stream ends when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use hookline_core::ValidationError;
use hookline_core::clock::Millis;
use hookline_core::envelope::Envelope;
use hookline_core::event::{Event, Level, StreamName};
use hookline_core::filter::TypePattern;
use hookline_core::ids::{EventId, OrgId};
use hookline_store::{EventQuery, PageRequest, Store, StoreResult};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authed};
use crate::types::LevelName;
use crate::types::sse::{OrgSseQuery, StreamSseQuery};

/// How often a stream reads the store when nothing is published through this node.
const POLL: Duration = Duration::from_secs(1);
/// A comment line this often keeps proxies from closing an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Between two reads of one connection at least: a burst of publishes wakes it once.
const COALESCE: Duration = Duration::from_millis(50);
const READ_BATCH: u32 = 100;
/// Events handed to a connection and not yet written to it, at most.
const BUFFERED: usize = 64;
/// A hole in a stream's seqs behind an event older than this was left by retention;
/// a younger one may be a commit under way, so the stream waits for it.
const SETTLED_MS: Millis = 10_000;
/// The org-wide stream sends an event once it is this old: ids are given before the
/// commit, so one committed late could otherwise fall behind the cursor.
const ORG_SETTLE_MS: Millis = 500;

/// Events of a stream, live
///
/// `text/event-stream` of the stream's events in the webhook envelope; each event's
/// `id:` is its seq. Resumes after `Last-Event-ID` (or `after_seq`) with no gap and no
/// repeat; a comment line every 15 s while idle.
#[utoipa::path(get, operation_id = "stream_events_sse", path = "/v1/streams/{stream}/events/sse", tag = "events",
    params(("stream" = String, Path, description = "A stream name"),
           ("Last-Event-ID" = Option<String>, Header, description = "The last seq received"),
           StreamSseQuery),
    responses((status = 200, description = "Server-Sent Events, one per event", content_type = "text/event-stream", body = String)),
    security(("api_key" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    Authed(org): Authed,
    Path(stream): Path<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamSseQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let stream = StreamName::parse("stream", &stream)?;
    let wanted = Wanted::parse(query.types.as_deref(), query.level)?;
    let after = match last_event_id(&headers)? {
        Some(id) => id.parse().map_err(|_| {
            ValidationError::new("Last-Event-ID", "must be a seq of the stream (an integer)")
        })?,
        None => query.after_seq.unwrap_or(0),
    };
    Ok(serve(state, org, Cursor::Stream { stream, after }, wanted))
}

/// Events of the org, live
///
/// `text/event-stream` of every stream's events in the webhook envelope; each event's
/// `id:` is its event id. Resumes after `Last-Event-ID` (or `after`); without either,
/// starts with the events published from now on.
#[utoipa::path(get, operation_id = "org_events_sse", path = "/v1/events/sse", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last event id received"),
           OrgSseQuery),
    responses((status = 200, description = "Server-Sent Events, one per event", content_type = "text/event-stream", body = String)),
    security(("api_key" = [])))]
pub async fn org(
    State(state): State<AppState>,
    Authed(org): Authed,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<OrgSseQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let wanted = Wanted::parse(query.types.as_deref(), query.level)?;
    let given = match (last_event_id(&headers)?, query.after) {
        (Some(id), _) => Some(("Last-Event-ID", id)),
        (None, after) => after.map(|id| ("after", id)),
    };
    let after = match given {
        Some((field, id)) => EventId::parse(&id)
            .ok_or_else(|| ValidationError::new(field, "must be an event id (evt_…)"))?,
        None => EventId::lowest_at(state.clock.now_ms()),
    };
    Ok(serve(state, org, Cursor::Org { after }, wanted))
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<String>, ValidationError> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ValidationError::new("Last-Event-ID", "must be visible ASCII"))
        })
        .transpose()
}

/// The `types=` and `level=` filters, as a destination's.
struct Wanted {
    types: Option<Vec<TypePattern>>,
    level: Level,
}

impl Wanted {
    fn parse(types: Option<&str>, level: Option<LevelName>) -> Result<Self, ValidationError> {
        let types = types
            .map(|t| {
                t.split(',')
                    .map(|p| TypePattern::parse("types", p.trim()))
                    .collect()
            })
            .transpose()?;
        Ok(Self {
            types,
            level: level.map(Level::from).unwrap_or_default(),
        })
    }

    fn wants(&self, event: &Event) -> bool {
        event.level <= self.level
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t.matches(event.event_type.as_str())))
    }
}

/// Where a connection has got to.
enum Cursor {
    /// The last seq sent of one stream.
    Stream { stream: StreamName, after: i64 },
    /// The last event id sent, over every stream.
    Org { after: EventId },
}

impl Cursor {
    /// The next events to send, in order, each with its SSE id, and when to read again
    /// without waiting for a publish (`Some(ZERO)`: more are there now). Advances past
    /// what it returns.
    async fn read(
        &mut self,
        store: &dyn Store,
        org: &OrgId,
        now: Millis,
    ) -> StoreResult<(Vec<(String, Event)>, Option<Duration>)> {
        let page = PageRequest {
            limit: READ_BATCH,
            cursor: None,
        };
        match self {
            Self::Stream { stream, after } => {
                let query = EventQuery {
                    stream: Some(stream.clone()),
                    after_seq: Some(*after),
                    page,
                    ..EventQuery::default()
                };
                let read = store.list_events(org, &query).await?;
                let mut again = read.next_cursor.is_some().then_some(Duration::ZERO);
                let mut events = read.data;
                events.sort_by_key(|e| e.seq);
                let mut next = Vec::new();
                for event in events {
                    if event.seq != *after + 1 && now - event.timestamp < SETTLED_MS {
                        // The seq before it is being committed (or was purged): look again.
                        again = Some(COALESCE);
                        break;
                    }
                    *after = event.seq;
                    next.push((event.seq.to_string(), event));
                }
                Ok((next, again))
            }
            Self::Org { after } => {
                let query = EventQuery {
                    page: PageRequest {
                        cursor: Some(after.to_string()),
                        ..page
                    },
                    ..EventQuery::default()
                };
                let read = store.list_events(org, &query).await?;
                let full = read.next_cursor.is_some();
                let mut next = Vec::new();
                for event in read.data {
                    let age = now - event.timestamp;
                    if age < ORG_SETTLE_MS {
                        let settles = Duration::from_millis((ORG_SETTLE_MS - age) as u64);
                        return Ok((next, Some(settles)));
                    }
                    *after = event.id.clone();
                    next.push((event.id.to_string(), event));
                }
                Ok((next, full.then_some(Duration::ZERO)))
            }
        }
    }
}

/// The connection's task and its end of the channel, as an SSE response.
fn serve(
    state: AppState,
    org: OrgId,
    mut cursor: Cursor,
    wanted: Wanted,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (sender, receiver) = mpsc::channel(BUFFERED);
    tokio::spawn(async move {
        let mut published = state.feed.subscribe();
        let closing = state.feed.closing().clone();
        loop {
            let now = state.clock.now_ms();
            let (events, again) = match cursor.read(state.store.as_ref(), &org, now).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(error = %e, "an SSE stream could not read events; will retry");
                    (Vec::new(), None)
                }
            };
            for (id, event) in events.iter().filter(|(_, e)| wanted.wants(e)) {
                let sse = SseEvent::default()
                    .id(id)
                    .data(Envelope::of(event, false).to_text());
                tokio::select! {
                    sent = sender.send(sse) => if sent.is_err() { return },
                    _ = closing.cancelled() => return,
                }
            }
            let wait = match again {
                Some(Duration::ZERO) => continue,
                Some(soon) => soon,
                None => POLL,
            };
            tokio::select! {
                _ = closing.cancelled() => return,
                _ = sender.closed() => return,
                _ = published.changed() => tokio::time::sleep(COALESCE).await,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
    Sse::new(ReceiverStream::new(receiver).map(Ok))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}
