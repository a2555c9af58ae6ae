//! A destination: where events go and how. Its settings are set field by field, so
//! creating one (defaults, then each given field) and patching one (the current
//! settings, then each given field) are the same code, with the same 422s.

mod setting;

pub use setting::Setting;

use serde_json::Value;

use crate::ValidationError;
use crate::clock::Millis;
use crate::custom_headers::CustomHeaders;
use crate::envelope::{Envelope, EventBody};
use crate::event::{Event, Level, StreamName};
use crate::filter::{Filter, TypePattern};
use crate::ids::{DestinationId, OrgId};
use crate::retry::RetryPolicy;
use crate::sealed::SealedKeys;
use crate::signing::SignatureScheme;
use crate::url_policy::{DestinationUrl, UrlPolicy};

pub const DEFAULT_TIMEOUT_SECS: u32 = 30;

/// How many attempts to a destination may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Learned from the receiver's answers (`crate::concurrency`), up to `max_in_flight`.
    Adaptive,
    /// Exactly `max_in_flight`, for receivers that want a fixed number.
    Fixed,
}

impl Concurrency {
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        match text {
            "adaptive" => Ok(Self::Adaptive),
            "fixed" => Ok(Self::Fixed),
            _ => Err(ValidationError::new(
                field,
                "must be \"adaptive\" or \"fixed\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive",
            Self::Fixed => "fixed",
        }
    }
}

/// What a destination's requests carry as their body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// The webhook envelope (`id`, `type`, `timestamp`, `stream`, `seq`, `level`, `data`).
    Envelope,
    /// The event's `data` verbatim, for receivers with a payload convention of their own.
    Data,
}

impl BodyShape {
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        match text {
            "envelope" => Ok(Self::Envelope),
            "data" => Ok(Self::Data),
            _ => Err(ValidationError::new(
                field,
                "must be \"envelope\" or \"data\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Envelope => "envelope",
            Self::Data => "data",
        }
    }
}
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100;

/// Everything about a destination that its owner chooses and may change later.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationSettings {
    pub url: DestinationUrl,
    pub name: Option<String>,
    pub description: Option<String>,
    pub types: Option<Vec<TypePattern>>,
    pub filter: Option<Filter>,
    pub level: Level,
    pub include_raw: bool,
    /// What a request's body is: the envelope, or the event's data alone.
    pub body: BodyShape,
    pub headers: CustomHeaders,
    pub timeout_secs: u32,
    pub retry: RetryPolicy,
    /// The most attempts open at once: the limit itself when `concurrency` is fixed, the
    /// ceiling of the learned one when it is adaptive.
    pub max_in_flight: u32,
    pub concurrency: Concurrency,
    /// Deliveries of one stream go strictly in `seq` order; a failing head holds the rest.
    pub ordered: bool,
    /// Attempts started per second at most; `None` is unlimited.
    pub rate_limit_per_sec: Option<u32>,
    /// `false` skips certificate checks; accepted only when the server allows it.
    pub tls_verify: bool,
    pub signature: SignatureScheme,
    pub enabled: bool,
}

impl DestinationSettings {
    pub fn new(url: DestinationUrl) -> Self {
        Self {
            url,
            name: None,
            description: None,
            types: None,
            filter: None,
            level: Level::User,
            include_raw: false,
            body: BodyShape::Envelope,
            headers: CustomHeaders::default(),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            retry: RetryPolicy::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            concurrency: Concurrency::Adaptive,
            ordered: false,
            rate_limit_per_sec: None,
            tls_verify: true,
            signature: SignatureScheme::Standard,
            enabled: true,
        }
    }

    /// Builds settings from typed fields: `url` is required, the rest default.
    pub fn create(
        settings: impl IntoIterator<Item = Setting>,
        policy: &UrlPolicy,
    ) -> Result<Self, ValidationError> {
        let (urls, rest): (Vec<Setting>, Vec<Setting>) = settings
            .into_iter()
            .partition(|s| matches!(s, Setting::Url(_)));
        let Some(Setting::Url(url)) = urls.into_iter().next() else {
            return Err(ValidationError::new("url", "is required"));
        };
        let mut created = Self::new(DestinationUrl::parse("url", &url, policy)?);
        for setting in rest {
            created.set(setting, policy)?;
        }
        Ok(created)
    }

    /// Builds settings from a JSON object of fields, as `to_json` writes them.
    pub fn from_json(
        fields: &serde_json::Map<String, Value>,
        policy: &UrlPolicy,
    ) -> Result<Self, ValidationError> {
        let settings = fields
            .iter()
            .map(|(field, value)| Setting::from_json(field, value))
            .collect::<Result<Vec<_>, _>>()?;
        Self::create(settings, policy)
    }

    /// The settings as the JSON fields they are set with: kept by the store.
    pub fn to_json(&self) -> serde_json::Map<String, Value> {
        let json = serde_json::json!({
            "url": self.url.as_str(),
            "name": self.name,
            "description": self.description,
            "types": self.types.as_ref().map(|t| t.iter().map(TypePattern::to_text).collect::<Vec<_>>()),
            "filter": self.filter.as_ref().map(Filter::source),
            "level": self.level.as_str(),
            "include_raw": self.include_raw,
            "headers": self.headers.shown(),
            "sensitive_headers": self.headers.flagged(),
            "timeout_secs": self.timeout_secs,
            "retry_schedule_secs": self.retry.schedule.secs(),
            "retry_on_4xx": self.retry.retry_on_4xx,
            "max_in_flight": self.max_in_flight,
            "ordered": self.ordered,
            "rate_limit_per_sec": self.rate_limit_per_sec,
            "tls_verify": self.tls_verify,
            "signature": self.signature.to_json(),
            "enabled": self.enabled,
        });
        let Value::Object(mut map) = json else {
            unreachable!("json! of an object literal is an object")
        };
        // Only when not the default, so nodes from before `body` and `concurrency` read
        // the rest.
        if self.body != BodyShape::Envelope {
            map.insert("body".into(), self.body.as_str().into());
        }
        if self.concurrency != Concurrency::Adaptive {
            map.insert("concurrency".into(), self.concurrency.as_str().into());
        }
        map
    }

    /// What this destination's requests carry as their body.
    pub fn event_body(&self) -> EventBody {
        match self.body {
            BodyShape::Envelope => EventBody::Envelope {
                include_raw: self.include_raw,
            },
            BodyShape::Data => EventBody::Data,
        }
    }

    /// Sets one field from its JSON value; `null` resets an optional field to its default.
    pub fn apply(
        &mut self,
        field: &str,
        value: &Value,
        policy: &UrlPolicy,
    ) -> Result<(), ValidationError> {
        self.set(Setting::from_json(field, value)?, policy)
    }

    /// Whether an event of this org should be delivered here, given the envelope as sent.
    pub fn wants(&self, event: &Event) -> bool {
        if event.level > self.level {
            return false;
        }
        if let Some(types) = &self.types
            && !types.iter().any(|t| t.matches(event.event_type.as_str()))
        {
            return false;
        }
        match &self.filter {
            None => true,
            Some(filter) => filter.matches(&Envelope::of(event, self.include_raw).to_value()),
        }
    }
}

/// How a destination has been doing, kept up to date by the dispatcher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationHealth {
    pub disabled_reason: Option<String>,
    pub last_attempt_at: Option<Millis>,
    pub last_success_at: Option<Millis>,
    pub consecutive_failures: i64,
}

/// A stored destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub id: DestinationId,
    pub org_id: OrgId,
    /// `None` for an org-wide subscription; `Some` for one stream only.
    pub stream: Option<StreamName>,
    pub settings: DestinationSettings,
    /// Its signing keys, sealed under the master key.
    pub keys: SealedKeys,
    pub health: DestinationHealth,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Destination {
    /// Org-wide destinations take every stream; stream-scoped ones only their own.
    pub fn wants(&self, event: &Event) -> bool {
        self.stream.as_ref().is_none_or(|s| *s == event.stream) && self.settings.wants(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::ids::EventId;
    use serde_json::json;

    fn settings() -> DestinationSettings {
        DestinationSettings::new(
            DestinationUrl::parse("url", "https://example.com/h", &UrlPolicy::default()).unwrap(),
        )
    }

    fn event(event_type: &str, level: Level, data: Value) -> Event {
        Event {
            id: EventId::generate(),
            org_id: OrgId::generate(),
            event_type: EventType::parse("type", event_type).unwrap(),
            stream: StreamName::parse("stream", "sess_1").unwrap(),
            seq: 1,
            level,
            timestamp: 0,
            data,
            raw: Some(json!({"secret_sauce": 1})),
        }
    }

    #[test]
    fn level_threshold_decides_visibility() {
        let mut s = settings();
        assert!(s.wants(&event("a.b", Level::User, json!({}))));
        assert!(!s.wants(&event("a.b", Level::Progress, json!({}))));
        s.apply("level", &json!("progress"), &UrlPolicy::default())
            .unwrap();
        assert!(s.wants(&event("a.b", Level::Progress, json!({}))));
        assert!(!s.wants(&event("a.b", Level::Debug, json!({}))));
    }

    #[test]
    fn types_and_filter_both_apply() {
        let mut s = settings();
        let p = &UrlPolicy::default();
        s.apply("types", &json!(["run.*", "turn.completed"]), p)
            .unwrap();
        s.apply("filter", &json!({"data.cost": {"$gt": 1}}), p)
            .unwrap();
        assert!(s.wants(&event("run.failed", Level::User, json!({"cost": 2}))));
        assert!(!s.wants(&event("run.failed", Level::User, json!({"cost": 0}))));
        assert!(!s.wants(&event("agent.message", Level::User, json!({"cost": 2}))));
        s.apply("types", &Value::Null, p).unwrap();
        assert!(s.wants(&event("agent.message", Level::User, json!({"cost": 2}))));
    }

    #[test]
    fn filter_sees_raw_only_when_it_is_delivered() {
        let mut s = settings();
        let p = &UrlPolicy::default();
        s.apply("filter", &json!({"raw.secret_sauce": {"$exists": true}}), p)
            .unwrap();
        assert!(!s.wants(&event("a", Level::User, json!({}))));
        s.apply("include_raw", &json!(true), p).unwrap();
        assert!(s.wants(&event("a", Level::User, json!({}))));
    }

    #[test]
    fn concurrency_is_adaptive_unless_fixed_is_chosen_and_is_stored_only_then() {
        let mut s = settings();
        let p = &UrlPolicy::default();
        assert_eq!(s.concurrency, Concurrency::Adaptive);
        assert!(!s.to_json().contains_key("concurrency"));
        s.apply("concurrency", &json!("fixed"), p).unwrap();
        assert_eq!(s.concurrency, Concurrency::Fixed);
        assert_eq!(s.to_json()["concurrency"], "fixed");
        let err = s.apply("concurrency", &json!("fast"), p).unwrap_err();
        assert_eq!(err.field, "concurrency");
        s.apply("concurrency", &Value::Null, p).unwrap();
        assert_eq!(s.concurrency, Concurrency::Adaptive);
    }

    #[test]
    fn a_data_body_is_the_events_data_alone_and_is_stored_only_when_chosen() {
        let mut s = settings();
        let p = &UrlPolicy::default();
        let e = event(
            "run.completed",
            Level::User,
            json!({"run_id": "r1", "ok": true}),
        );
        assert_eq!(s.event_body().text(&e), Envelope::of(&e, false).to_text());
        assert!(!s.to_json().contains_key("body"));
        s.apply("body", &json!("data"), p).unwrap();
        assert_eq!(s.event_body().text(&e), r#"{"ok":true,"run_id":"r1"}"#);
        assert_eq!(DestinationSettings::from_json(&s.to_json(), p).unwrap(), s);
        assert_eq!(s.apply("body", &json!("raw"), p).unwrap_err().field, "body");
        s.apply("body", &Value::Null, p).unwrap();
        assert_eq!(s.body, BodyShape::Envelope);
    }

    #[test]
    fn bounds_and_unknown_fields_give_field_errors() {
        let mut s = settings();
        let p = &UrlPolicy::default();
        assert_eq!(
            s.apply("timeout_secs", &json!(0), p).unwrap_err().field,
            "timeout_secs"
        );
        assert!(s.apply("timeout_secs", &json!(301), p).is_err());
        assert!(s.apply("timeout_secs", &json!("5"), p).is_err());
        s.apply("timeout_secs", &json!(300), p).unwrap();
        assert!(s.apply("max_in_flight", &json!(0), p).is_err());
        assert!(s.apply("retry_schedule_secs", &json!([1, "x"]), p).is_err());
        assert!(s.apply("types", &json!([]), p).is_err());
        assert!(
            s.apply("colour", &json!("red"), p)
                .unwrap_err()
                .message
                .contains("not a destination field")
        );
        s.apply("rate_limit_per_sec", &json!(5), p).unwrap();
        assert_eq!(s.rate_limit_per_sec, Some(5));
        assert!(s.apply("rate_limit_per_sec", &json!(0), p).is_err());
        s.apply("rate_limit_per_sec", &Value::Null, p).unwrap();
        assert_eq!(s.rate_limit_per_sec, None);
        let tls = s.apply("tls_verify", &json!(false), p).unwrap_err();
        assert!(
            tls.message.contains("allow_tls_verify_off"),
            "{}",
            tls.message
        );
        let lax = UrlPolicy {
            allow_tls_verify_off: true,
            ..UrlPolicy::default()
        };
        s.apply("tls_verify", &json!(false), &lax).unwrap();
        assert!(!s.tls_verify);
        s.apply("ordered", &json!(true), p).unwrap();
        assert!(s.ordered);
        assert!(s.apply("ordered", &json!("yes"), p).is_err());
        s.apply("signature", &json!({"scheme": "ed25519"}), p)
            .unwrap();
        assert_eq!(s.signature, SignatureScheme::Ed25519);
        assert!(s.apply("signature", &json!({"scheme": "rsa"}), p).is_err());
    }

    #[test]
    fn settings_round_trip_through_json() {
        let p = &UrlPolicy::default();
        let mut s = settings();
        s.apply("types", &json!(["run.*"]), p).unwrap();
        s.apply("filter", &json!({"data.x": {"$in": [1, 2]}}), p)
            .unwrap();
        s.apply("headers", &json!({"X-A": "b"}), p).unwrap();
        s.apply("retry_schedule_secs", &json!([1, 2, 3]), p)
            .unwrap();
        s.apply("enabled", &json!(false), p).unwrap();
        let json = s.to_json();
        assert_eq!(json["headers"], json!({"x-a": "b"}));
        assert_eq!(DestinationSettings::from_json(&json, p).unwrap(), s);
        let missing = DestinationSettings::from_json(&serde_json::Map::new(), p).unwrap_err();
        assert_eq!(missing.field, "url");
    }

    #[test]
    fn stream_scoped_destinations_take_only_their_stream() {
        let d = Destination {
            id: DestinationId::generate(),
            org_id: OrgId::generate(),
            stream: Some(StreamName::parse("stream", "other").unwrap()),
            settings: settings(),
            keys: SealedKeys::from_stored("sealed".into()),
            health: DestinationHealth::default(),
            created_at: 0,
            updated_at: 0,
        };
        assert!(!d.wants(&event("a", Level::User, json!({}))));
        let org_wide = Destination { stream: None, ..d };
        assert!(org_wide.wants(&event("a", Level::User, json!({}))));
    }
}
