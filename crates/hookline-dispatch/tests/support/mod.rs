//! A real embedded store in a temp dir with one org, a manual clock, and helpers to
//! add destinations and publish, for tests that drive `Dispatcher::step` themselves.

use hookline_store::{Queue, Records};
use std::sync::Arc;

use hookline_core::clock::{Clock, ManualClock};
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::{Destination, DestinationHealth, DestinationSettings};
use hookline_core::event::{EventType, Level, NewEvent, StreamName};
use hookline_core::ids::DestinationId;
use hookline_core::keys::SigningKeys;
use hookline_core::sealed::MasterKey;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::{Dispatcher, DispatcherConfig};
use hookline_sqlite::SqliteStore;
use hookline_store::{ApiKeyRecord, DeliveryQuery, Org, PageRequest};
use serde_json::{Value, json};

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub clock: ManualClock,
    pub org: Org,
    pub master: MasterKey,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let clock = ManualClock::new(1_800_000_000_000);
        let org = Org::new("o", clock.now_ms());
        let (record, _) = ApiKeyRecord::issue(&org.id, clock.now_ms());
        store.create_org(&org, &record).await.unwrap();
        Self {
            _dir: dir,
            store,
            clock,
            org,
            master: MasterKey::generate(),
        }
    }

    /// Adds an org-wide destination with these settings (checked under the dev policy).
    pub async fn destination(&self, settings: Value) -> DestinationId {
        let settings =
            DestinationSettings::from_json(settings.as_object().unwrap(), &UrlPolicy::dev())
                .unwrap();
        let id = DestinationId::generate();
        let destination = Destination {
            keys: self.master.seal(&SigningKeys::new(None), id.as_str()),
            id,
            org_id: self.org.id.clone(),
            stream: None,
            settings,
            health: DestinationHealth::default(),
            created_at: self.clock.now_ms(),
            updated_at: self.clock.now_ms(),
        };
        self.store
            .insert_destination(&destination, u32::MAX)
            .await
            .unwrap();
        destination.id
    }

    pub async fn publish(&self) {
        let event = NewEvent {
            event_type: EventType::parse("type", "run.failed").unwrap(),
            stream: StreamName::parse("stream", "s").unwrap(),
            level: Level::User,
            data: json!({}),
            raw: None,
            idempotency_key: None,
            one_shot: None,
        };
        self.store
            .publish(&self.org.id, event, self.clock.now_ms())
            .await
            .unwrap();
    }

    pub fn dispatcher(&self, config: DispatcherConfig) -> Arc<Dispatcher> {
        Arc::new(
            Dispatcher::new(
                self.store.clone(),
                Arc::new(self.clock.clone()),
                self.master.clone(),
                config,
            )
            .unwrap(),
        )
    }

    /// The org's deliveries, newest first.
    pub async fn deliveries(&self) -> Vec<Delivery> {
        let query = DeliveryQuery {
            page: PageRequest {
                limit: 100,
                cursor: None,
            },
            ..Default::default()
        };
        self.store
            .list_deliveries(&self.org.id, &query)
            .await
            .unwrap()
            .data
    }

    pub async fn attempts_of(&self, delivery: &Delivery) -> Vec<Attempt> {
        self.store
            .list_attempts_of(&self.org.id, &delivery.id)
            .await
            .unwrap()
    }
}
