//! Destination bodies: create, patch, the destination as shown, and secret rotation.

use std::collections::BTreeMap;

use hookline_core::ValidationError;
use hookline_core::destination::{BodyShape, Concurrency, Destination, DestinationHealth, Setting};
use hookline_core::event::StreamName;
use hookline_core::ids::DestinationId;
use hookline_core::sealed::MasterKey;
use hookline_core::signing::SignatureScheme;
use hookline_store::DestinationQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::concurrency::ConcurrencyNowOut;
use super::replays::BackfillOut;
use super::{LevelName, page_request, present, time};

/// `POST /v1/destinations` and `POST /v1/streams/{stream}/destinations`. Only `url` is
/// required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "http://127.0.0.1:9000/",
    "types": ["turn.*"]
}))]
pub struct DestinationIn {
    /// Where requests go (http or https; private addresses only in `--dev`).
    #[schema(pattern = r"^https?://[^\s]+$")]
    pub url: String,
    /// A signing secret of your own (`whsec_` + base64 of 24–64 bytes); generated if absent.
    #[schema(pattern = r"^whsec_([A-Za-z0-9+/]{4}){8,21}([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")]
    pub secret: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Event type patterns (`run.*`); absent: every type.
    pub types: Option<Vec<String>>,
    /// A filter on the envelope, e.g. `{"data.cost": {"$gt": 1}}`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// The lowest level received (default `user`).
    pub level: Option<LevelName>,
    /// Whether the envelope carries the event's `raw` (default false).
    pub include_raw: Option<bool>,
    /// The request body: `envelope` (default) or `data`, the event's data alone.
    pub body: Option<BodyName>,
    /// Headers added to every request; values under sensitive names are sealed at rest.
    pub headers: Option<BTreeMap<String, String>>,
    /// Further header names whose values are sealed and masked.
    pub sensitive_headers: Option<Vec<String>>,
    /// Per attempt, 1–300 (default 30).
    #[schema(minimum = 1, maximum = 300)]
    pub timeout_secs: Option<i64>,
    /// Delays between attempts (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
    pub retry_schedule_secs: Option<Vec<i64>>,
    /// Whether 4xx answers other than 408 and 429 are retried (default false).
    pub retry_on_4xx: Option<bool>,
    /// Requests in flight at once, 1–1000 (default 100): the ceiling of the adaptive
    /// limit, or the limit itself when `concurrency` is `fixed`.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_in_flight: Option<i64>,
    /// `adaptive` (default): as many at once as the receiver shows it can take, up to
    /// `max_in_flight`; `fixed`: exactly `max_in_flight`.
    pub concurrency: Option<ConcurrencyName>,
    /// Deliver each stream strictly in `seq` order (default false).
    pub ordered: Option<bool>,
    /// Attempts started per second, 1–10000; absent: unlimited.
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<i64>,
    /// `false` only when the server allows it.
    pub tls_verify: Option<bool>,
    pub signature: Option<SignatureIn>,
    /// `false` pauses deliveries (default true).
    pub enabled: Option<bool>,
    /// A stream's destination only: also send the stream's earlier events from this seq
    /// on (in seq order), at 100 a second.
    #[schema(minimum = 1)]
    pub backfill_from_seq: Option<i64>,
    /// An org-wide destination only: also send the org's earlier events published since
    /// this time (RFC 3339), at 100 a second.
    #[schema(format = DateTime)]
    pub backfill_since: Option<String>,
}

/// `PATCH /v1/destinations/{id}`: the fields given change, `null` resets one to its
/// default, absent fields stay. The secret is changed by `rotate-secret` instead.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": false}))]
pub struct DestinationPatch {
    /// Not patchable: present, it is refused with a pointer to `rotate-secret`.
    #[serde(default)]
    #[schema(ignore)]
    pub secret: Option<serde::de::IgnoredAny>,
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub level: Option<Option<LevelName>>,
    #[serde(default, deserialize_with = "present")]
    pub include_raw: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub body: Option<Option<BodyName>>,
    #[serde(default, deserialize_with = "present")]
    pub headers: Option<Option<BTreeMap<String, String>>>,
    #[serde(default, deserialize_with = "present")]
    pub sensitive_headers: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 300)]
    pub timeout_secs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub retry_schedule_secs: Option<Option<Vec<i64>>>,
    #[serde(default, deserialize_with = "present")]
    pub retry_on_4xx: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_in_flight: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub concurrency: Option<Option<ConcurrencyName>>,
    #[serde(default, deserialize_with = "present")]
    pub ordered: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit_per_sec: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub tls_verify: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    pub signature: Option<Option<SignatureIn>>,
    #[serde(default, deserialize_with = "present")]
    pub enabled: Option<Option<bool>>,
}

impl From<DestinationIn> for (Option<String>, DestinationPatch) {
    /// The chosen secret, and the settings as a patch of the defaults.
    fn from(d: DestinationIn) -> Self {
        let patch = DestinationPatch {
            secret: None,
            url: Some(d.url),
            name: d.name.map(Some),
            description: d.description.map(Some),
            types: d.types.map(Some),
            filter: d.filter.map(Some),
            level: d.level.map(Some),
            include_raw: d.include_raw.map(Some),
            body: d.body.map(Some),
            headers: d.headers.map(Some),
            sensitive_headers: d.sensitive_headers.map(Some),
            timeout_secs: d.timeout_secs.map(Some),
            retry_schedule_secs: d.retry_schedule_secs.map(Some),
            retry_on_4xx: d.retry_on_4xx.map(Some),
            max_in_flight: d.max_in_flight.map(Some),
            concurrency: d.concurrency.map(Some),
            ordered: d.ordered.map(Some),
            rate_limit_per_sec: d.rate_limit_per_sec.map(Some),
            tls_verify: d.tls_verify.map(Some),
            signature: d.signature.map(Some),
            enabled: d.enabled.map(Some),
        };
        (d.secret, patch)
    }
}

impl From<DestinationPatch> for Vec<Setting> {
    /// The fields given, as core settings (which check each value's rules).
    fn from(p: DestinationPatch) -> Self {
        let level = |l: Option<LevelName>| {
            l.map(|l| hookline_core::event::Level::from(l).as_str().to_owned())
        };
        let signature = |s: Option<SignatureIn>| s.map(Value::from);
        let headers = |h: Option<BTreeMap<String, String>>| h.map(|h| h.into_iter().collect());
        [
            p.url.map(Setting::Url),
            p.name.map(Setting::Name),
            p.description.map(Setting::Description),
            p.types.map(Setting::Types),
            p.filter.map(Setting::Filter),
            p.level.map(|l| Setting::Level(level(l))),
            p.include_raw.map(Setting::IncludeRaw),
            p.body
                .map(|b| Setting::Body(b.map(|b| BodyShape::from(b).as_str().to_owned()))),
            p.headers.map(|h| Setting::Headers(headers(h))),
            p.sensitive_headers.map(Setting::SensitiveHeaders),
            p.timeout_secs.map(Setting::TimeoutSecs),
            p.retry_schedule_secs.map(Setting::RetryScheduleSecs),
            p.retry_on_4xx.map(Setting::RetryOn4xx),
            p.max_in_flight.map(Setting::MaxInFlight),
            p.concurrency
                .map(|c| Setting::Concurrency(c.map(|c| Concurrency::from(c).as_str().to_owned()))),
            p.ordered.map(Setting::Ordered),
            p.rate_limit_per_sec.map(Setting::RateLimitPerSec),
            p.tls_verify.map(Setting::TlsVerify),
            p.signature.map(|s| Setting::Signature(signature(s))),
            p.enabled.map(Setting::Enabled),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// How many attempts may be open at once: learned from the receiver's answers up to
/// `max_in_flight` (`adaptive`), or exactly `max_in_flight` (`fixed`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyName {
    Adaptive,
    Fixed,
}

impl From<ConcurrencyName> for Concurrency {
    fn from(mode: ConcurrencyName) -> Self {
        match mode {
            ConcurrencyName::Adaptive => Self::Adaptive,
            ConcurrencyName::Fixed => Self::Fixed,
        }
    }
}

impl From<Concurrency> for ConcurrencyName {
    fn from(mode: Concurrency) -> Self {
        match mode {
            Concurrency::Adaptive => Self::Adaptive,
            Concurrency::Fixed => Self::Fixed,
        }
    }
}

/// What a request's body is: the webhook envelope, or the event's `data` alone (as
/// compact JSON), for receivers with a payload convention of their own.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyName {
    Envelope,
    Data,
}

impl From<BodyName> for BodyShape {
    fn from(body: BodyName) -> Self {
        match body {
            BodyName::Envelope => Self::Envelope,
            BodyName::Data => Self::Data,
        }
    }
}

impl From<BodyShape> for BodyName {
    fn from(body: BodyShape) -> Self {
        match body {
            BodyShape::Envelope => Self::Envelope,
            BodyShape::Data => Self::Data,
        }
    }
}

/// How requests are signed. `standard` (Standard Webhooks HMAC, the default) and
/// `ed25519` take no other field; `hmac_sha256_hex` adds a hex HMAC header in another
/// sender's convention and needs `header`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scheme": "standard"}))]
pub struct SignatureIn {
    pub scheme: SchemeName,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "X-Acme-Signature")]
    pub header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "sha256=")]
    pub prefix: Option<String>,
    /// `{timestamp}.{body}` (default) or `{body}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchemeName {
    Standard,
    Ed25519,
    HmacSha256Hex,
}

impl From<SignatureIn> for Value {
    fn from(s: SignatureIn) -> Self {
        serde_json::to_value(s).expect("a signature of strings always serializes")
    }
}

impl From<&SignatureScheme> for SignatureIn {
    fn from(scheme: &SignatureScheme) -> Self {
        let named = |scheme| Self {
            scheme,
            header: None,
            prefix: None,
            signed: None,
            timestamp_header: None,
        };
        match scheme {
            SignatureScheme::Standard => named(SchemeName::Standard),
            SignatureScheme::Ed25519 => named(SchemeName::Ed25519),
            SignatureScheme::HmacSha256Hex(hex) => Self {
                header: Some(hex.header.clone()),
                prefix: Some(hex.prefix.clone()),
                signed: Some(hex.signed.as_str().to_owned()),
                timestamp_header: hex.timestamp_header.clone(),
                ..named(SchemeName::HmacSha256Hex)
            },
        }
    }
}

/// A destination as shown: never its secret, only a hint of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationOut {
    #[schema(example = "dst_01JD3V6Q2W8T7Y4N5K9H0B1C2D")]
    pub id: String,
    /// The one stream it takes; `null` for an org-wide subscription.
    pub stream: Option<String>,
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub types: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    pub level: LevelName,
    pub include_raw: bool,
    pub body: BodyName,
    /// Values under sensitive names show as `********`.
    pub headers: BTreeMap<String, String>,
    pub sensitive_headers: Vec<String>,
    pub timeout_secs: u32,
    pub retry_schedule_secs: Vec<u32>,
    pub retry_on_4xx: bool,
    pub max_in_flight: u32,
    pub concurrency: ConcurrencyName,
    pub ordered: bool,
    pub rate_limit_per_sec: Option<u32>,
    pub tls_verify: bool,
    pub signature: SignatureIn,
    pub enabled: bool,
    /// The secret's last characters; `null` for an ed25519 destination, or when the keys
    /// cannot be opened.
    #[schema(example = "…x4Q=")]
    pub secret_hint: Option<String>,
    /// The ed25519 public key (`whpk_…`), for destinations that sign with ed25519.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Why deliveries stopped (auto-disabled, or the receiver answered 410 Gone).
    pub disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    pub consecutive_failures: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The backfill the destination was created with, and how far it has got (in a
    /// single destination's answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillOut>,
    /// How the limit of attempts open at once stands on the node that answered; `null`
    /// until that node has sent to the destination.
    pub concurrency_now: Option<ConcurrencyNowOut>,
}

impl DestinationOut {
    pub fn of(master: &MasterKey, d: &Destination) -> Self {
        let keys = master.open(&d.keys, d.id.as_str()).ok();
        let s = &d.settings;
        let DestinationHealth {
            disabled_reason,
            last_attempt_at,
            last_success_at,
            consecutive_failures,
        } = &d.health;
        Self {
            id: d.id.to_string(),
            stream: d.stream.as_ref().map(|s| s.as_str().to_owned()),
            url: s.url.as_str().to_owned(),
            name: s.name.clone(),
            description: s.description.clone(),
            types: s
                .types
                .as_ref()
                .map(|t| t.iter().map(|p| p.to_text()).collect()),
            filter: s.filter.as_ref().map(|f| f.source().clone()),
            level: s.level.into(),
            include_raw: s.include_raw,
            body: s.body.into(),
            headers: s
                .headers
                .shown()
                .into_iter()
                .map(|(name, v)| (name, v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            sensitive_headers: s.headers.flagged().to_vec(),
            timeout_secs: s.timeout_secs,
            retry_schedule_secs: s.retry.schedule.secs().to_vec(),
            retry_on_4xx: s.retry.retry_on_4xx,
            max_in_flight: s.max_in_flight,
            concurrency: s.concurrency.into(),
            ordered: s.ordered,
            rate_limit_per_sec: s.rate_limit_per_sec,
            tls_verify: s.tls_verify,
            signature: (&s.signature).into(),
            enabled: s.enabled,
            secret_hint: (s.signature != SignatureScheme::Ed25519)
                .then(|| keys.as_ref().map(|k| k.secret.hint()))
                .flatten(),
            public_key: (s.signature == SignatureScheme::Ed25519)
                .then(|| keys.as_ref().map(|k| k.ed25519.public_key()))
                .flatten(),
            disabled_reason: disabled_reason.clone(),
            last_attempt_at: last_attempt_at.map(time),
            last_success_at: last_success_at.map(time),
            consecutive_failures: *consecutive_failures,
            created_at: time(d.created_at),
            updated_at: time(d.updated_at),
            backfill: None,
            concurrency_now: None,
        }
    }
}

/// A destination just created: its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationCreated {
    #[serde(flatten)]
    pub destination: DestinationOut,
    /// Keep it: it is not shown again. Absent for an ed25519 destination, which signs
    /// with its key pair (`public_key`).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `POST /v1/destinations/{id}/rotate-secret`; every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretIn {
    /// The new secret; generated if absent.
    #[schema(pattern = r"^whsec_([A-Za-z0-9+/]{4}){8,21}([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")]
    pub secret: Option<String>,
    /// How long the old secret keeps signing too, 0–604800 (default 86400).
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_secs: Option<i64>,
}

/// A destination after rotation: its new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationRotated {
    #[serde(flatten)]
    pub destination: DestinationOut,
    /// The new secret, shown this once; absent for an ed25519 destination (its new
    /// `public_key` is in the destination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the old secret (or key pair) signs too.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: String,
}

/// `GET /v1/destinations`, oldest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DestinationListQuery {
    /// Only the destinations of this stream.
    #[param(pattern = r"^[A-Za-z0-9_.:-]{1,128}$")]
    pub stream: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl TryFrom<DestinationListQuery> for DestinationQuery {
    type Error = ValidationError;

    fn try_from(q: DestinationListQuery) -> Result<Self, Self::Error> {
        Ok(Self {
            stream: q
                .stream
                .map(|s| StreamName::parse("stream", &s))
                .transpose()?,
            page: page_request(q.limit, q.cursor, |c| DestinationId::parse(c).is_some())?,
        })
    }
}
