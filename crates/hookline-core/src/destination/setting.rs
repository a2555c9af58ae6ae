//! One destination field with a value of its type. The API's typed requests and the
//! store's JSON both arrive as a `Setting`, so the range and policy checks of each field
//! live in one place.

use serde_json::Value;

use super::{
    BodyShape, Concurrency, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_SECS, DestinationSettings,
};
use crate::ValidationError;
use crate::event::Level;
use crate::filter::{Filter, TypePattern};
use crate::retry::RetrySchedule;
use crate::signing::SignatureScheme;
use crate::url_policy::{DestinationUrl, UrlPolicy};

pub const MAX_IN_FLIGHT_LIMIT: i64 = 1_000;
pub const MAX_RATE_LIMIT: i64 = 10_000;
pub const MAX_TIMEOUT_SECS: i64 = 300;
pub const MAX_TEXT_LEN: usize = 1_024;

/// A field and its new value; `None` resets the field to its default.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Url(String),
    Name(Option<String>),
    Description(Option<String>),
    Types(Option<Vec<String>>),
    Filter(Option<Value>),
    Level(Option<String>),
    IncludeRaw(Option<bool>),
    /// `"envelope"` or `"data"`.
    Body(Option<String>),
    Enabled(Option<bool>),
    Ordered(Option<bool>),
    TlsVerify(Option<bool>),
    /// The scheme as its JSON object (`{"scheme": "standard"}`), which decides which
    /// other fields it takes.
    Signature(Option<Value>),
    RateLimitPerSec(Option<i64>),
    RetryOn4xx(Option<bool>),
    Headers(Option<Vec<(String, String)>>),
    SensitiveHeaders(Option<Vec<String>>),
    TimeoutSecs(Option<i64>),
    MaxInFlight(Option<i64>),
    /// `"adaptive"` or `"fixed"`.
    Concurrency(Option<String>),
    RetryScheduleSecs(Option<Vec<i64>>),
}

impl Setting {
    /// The setting named `field`, its value checked for type.
    pub fn from_json(field: &str, value: &Value) -> Result<Self, ValidationError> {
        let value = (!value.is_null()).then_some(value);
        let string = |v: &Value| expect_str(field, v).map(str::to_owned);
        let boolean = |v: &Value| {
            v.as_bool()
                .ok_or_else(|| ValidationError::new(field, "must be true or false"))
        };
        let integer = |v: &Value| {
            v.as_i64()
                .ok_or_else(|| ValidationError::new(field, "must be an integer"))
        };
        Ok(match field {
            "url" => Self::Url(string(value.unwrap_or(&Value::Null))?),
            "name" => Self::Name(value.map(string).transpose()?),
            "description" => Self::Description(value.map(string).transpose()?),
            "types" => Self::Types(value.map(|v| strings(field, v)).transpose()?),
            "filter" => Self::Filter(value.cloned()),
            "level" => Self::Level(value.map(string).transpose()?),
            "include_raw" => Self::IncludeRaw(value.map(boolean).transpose()?),
            "body" => Self::Body(value.map(string).transpose()?),
            "enabled" => Self::Enabled(value.map(boolean).transpose()?),
            "ordered" => Self::Ordered(value.map(boolean).transpose()?),
            "tls_verify" => Self::TlsVerify(value.map(boolean).transpose()?),
            "retry_on_4xx" => Self::RetryOn4xx(value.map(boolean).transpose()?),
            "signature" => Self::Signature(value.cloned()),
            "rate_limit_per_sec" => Self::RateLimitPerSec(value.map(integer).transpose()?),
            "timeout_secs" => Self::TimeoutSecs(value.map(integer).transpose()?),
            "max_in_flight" => Self::MaxInFlight(value.map(integer).transpose()?),
            "concurrency" => Self::Concurrency(value.map(string).transpose()?),
            "retry_schedule_secs" => Self::RetryScheduleSecs(
                value
                    .map(|v| {
                        v.as_array()
                            .and_then(|items| items.iter().map(Value::as_i64).collect())
                            .ok_or_else(|| {
                                ValidationError::new(field, "must be an array of seconds")
                            })
                    })
                    .transpose()?,
            ),
            "headers" => Self::Headers(value.map(|v| header_pairs(field, v)).transpose()?),
            "sensitive_headers" => {
                Self::SensitiveHeaders(value.map(|v| strings(field, v)).transpose()?)
            }
            _ => return Err(ValidationError::new(field, "is not a destination field")),
        })
    }
}

impl DestinationSettings {
    /// Sets one field, checking its value against the field's bounds and the policy.
    pub fn set(&mut self, setting: Setting, policy: &UrlPolicy) -> Result<(), ValidationError> {
        match setting {
            Setting::Url(url) => self.url = DestinationUrl::parse("url", &url, policy)?,
            Setting::Name(name) => self.name = text("name", name)?,
            Setting::Description(text_) => self.description = text("description", text_)?,
            Setting::Types(types) => self.types = types.map(|t| parse_types(&t)).transpose()?,
            Setting::Filter(filter) => {
                self.filter = filter.map(|f| Filter::parse("filter", &f)).transpose()?
            }
            Setting::Level(level) => {
                self.level = level
                    .map(|l| Level::parse("level", &l))
                    .transpose()?
                    .unwrap_or(Level::User)
            }
            Setting::IncludeRaw(v) => self.include_raw = v.unwrap_or(false),
            Setting::Body(shape) => {
                self.body = shape
                    .map(|b| BodyShape::parse("body", &b))
                    .transpose()?
                    .unwrap_or(BodyShape::Envelope)
            }
            Setting::Enabled(v) => self.enabled = v.unwrap_or(true),
            Setting::Ordered(v) => self.ordered = v.unwrap_or(false),
            Setting::RetryOn4xx(v) => self.retry.retry_on_4xx = v.unwrap_or(false),
            Setting::TlsVerify(v) => {
                let verify = v.unwrap_or(true);
                if !verify && !policy.allow_tls_verify_off {
                    return Err(ValidationError::new(
                        "tls_verify",
                        "may be false only when the server sets allow_tls_verify_off",
                    ));
                }
                self.tls_verify = verify;
            }
            Setting::Signature(scheme) => {
                self.signature = scheme
                    .map(|s| SignatureScheme::parse("signature", &s))
                    .transpose()?
                    .unwrap_or(SignatureScheme::Standard)
            }
            Setting::RateLimitPerSec(rate) => {
                self.rate_limit_per_sec = rate
                    .map(|r| int_in("rate_limit_per_sec", r, 1, MAX_RATE_LIMIT))
                    .transpose()?
            }
            Setting::TimeoutSecs(secs) => {
                self.timeout_secs = secs
                    .map(|s| int_in("timeout_secs", s, 1, MAX_TIMEOUT_SECS))
                    .transpose()?
                    .unwrap_or(DEFAULT_TIMEOUT_SECS)
            }
            Setting::MaxInFlight(n) => {
                self.max_in_flight = n
                    .map(|n| int_in("max_in_flight", n, 1, MAX_IN_FLIGHT_LIMIT))
                    .transpose()?
                    .unwrap_or(DEFAULT_MAX_IN_FLIGHT)
            }
            Setting::Concurrency(mode) => {
                self.concurrency = mode
                    .map(|m| Concurrency::parse("concurrency", &m))
                    .transpose()?
                    .unwrap_or(Concurrency::Adaptive)
            }
            Setting::RetryScheduleSecs(delays) => {
                self.retry.schedule = match delays {
                    None => RetrySchedule::default(),
                    Some(delays) => RetrySchedule::parse("retry_schedule_secs", &delays)?,
                }
            }
            Setting::Headers(headers) => self.headers.set("headers", headers)?,
            Setting::SensitiveHeaders(names) => {
                self.headers.set_flagged("sensitive_headers", names)?
            }
        }
        Ok(())
    }
}

fn expect_str<'v>(field: &str, value: &'v Value) -> Result<&'v str, ValidationError> {
    value
        .as_str()
        .ok_or_else(|| ValidationError::new(field, "must be a string"))
}

fn strings(field: &str, value: &Value) -> Result<Vec<String>, ValidationError> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| ValidationError::new(field, "must be an array of strings"))
}

fn header_pairs(field: &str, value: &Value) -> Result<Vec<(String, String)>, ValidationError> {
    value
        .as_object()
        .and_then(|map| {
            map.iter()
                .map(|(name, v)| Some((name.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .ok_or_else(|| ValidationError::new(field, "must be an object of strings"))
}

fn text(field: &str, value: Option<String>) -> Result<Option<String>, ValidationError> {
    match value {
        Some(text) if text.len() > MAX_TEXT_LEN => Err(ValidationError::new(
            field,
            format!("must be at most {MAX_TEXT_LEN} bytes"),
        )),
        value => Ok(value),
    }
}

fn int_in<T: TryFrom<i64>>(
    field: &str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<T, ValidationError> {
    (min..=max)
        .contains(&value)
        .then(|| T::try_from(value).ok())
        .flatten()
        .ok_or_else(|| {
            ValidationError::new(field, format!("must be an integer from {min} to {max}"))
        })
}

fn parse_types(types: &[String]) -> Result<Vec<TypePattern>, ValidationError> {
    if types.is_empty() {
        return Err(ValidationError::new(
            "types",
            "must list at least one type; leave it out to receive every type",
        ));
    }
    types
        .iter()
        .map(|t| TypePattern::parse("types", t))
        .collect()
}
