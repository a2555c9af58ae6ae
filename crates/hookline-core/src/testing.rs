//! Values for the workspace's unit tests: a destination and an event that nothing
//! sends. Behind the `test-support` feature, which only dev-dependencies turn on.

use crate::destination::{Destination, DestinationHealth, DestinationSettings};
use crate::event::{Event, EventType, Level, NewEvent, StreamName};
use crate::ids::{DestinationId, OrgId};
use crate::sealed::SealedKeys;
use crate::url_policy::{DestinationUrl, UrlPolicy};

/// An org-wide destination of a fresh org, with the default settings.
pub fn destination() -> Destination {
    let url = DestinationUrl::parse("url", "https://example.com/h", &UrlPolicy::default()).unwrap();
    Destination {
        id: DestinationId::generate(),
        org_id: OrgId::generate(),
        stream: None,
        settings: DestinationSettings::new(url),
        keys: SealedKeys::from_stored("sealed elsewhere".into()),
        health: DestinationHealth::default(),
        created_at: 0,
        updated_at: 0,
    }
}

/// The first event of stream `s` in `destination`'s org.
pub fn event_for(destination: &Destination) -> Event {
    NewEvent {
        event_type: EventType::parse("type", "a.b").unwrap(),
        stream: StreamName::parse("stream", "s").unwrap(),
        level: Level::User,
        data: serde_json::json!({}),
        raw: None,
        idempotency_key: None,
        one_shot: None,
    }
    .into_event(destination.org_id.clone(), 1, 0)
}
