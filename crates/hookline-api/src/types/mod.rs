//! The API's request and response bodies as typed structs, one module per resource.
//! They are what the OpenAPI document is generated from; requests convert into core
//! types (where the rules of each field live) and responses are built from them, so no
//! body is assembled by hand.

pub mod api_keys;
pub mod attempts;
pub mod concurrency;
pub mod deliveries;
pub mod destinations;
pub mod events;
pub mod org;
pub mod replays;
pub mod sse;
pub mod stats;
pub mod test_mode;

use hookline_core::ValidationError;
use hookline_store::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, PageRequest};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// A page of a list, newest first unless the list says otherwise.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn of<S>(page: hookline_store::Page<S>, view: impl FnMut(S) -> T) -> Self {
        Self {
            data: page.data.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Every error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `invalid_field`, `not_found`, `rate_limited`.
    #[schema(example = "invalid_field")]
    pub code: &'static str,
    /// A sentence for people.
    #[schema(example = "url is required")]
    pub message: String,
    /// The request field or parameter the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "url")]
    pub field: Option<String>,
}

/// `{"status": "ok"}` from the health checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// An event's level: a destination receives its own level and those above it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelName {
    User,
    Progress,
    Debug,
}

impl From<LevelName> for hookline_core::event::Level {
    fn from(level: LevelName) -> Self {
        match level {
            LevelName::User => Self::User,
            LevelName::Progress => Self::Progress,
            LevelName::Debug => Self::Debug,
        }
    }
}

impl From<hookline_core::event::Level> for LevelName {
    fn from(level: hookline_core::event::Level) -> Self {
        use hookline_core::event::Level;
        match level {
            Level::User => Self::User,
            Level::Progress => Self::Progress,
            Level::Debug => Self::Debug,
        }
    }
}

/// A time as RFC 3339 in UTC, as every response shows times.
pub fn time(ms: hookline_core::clock::Millis) -> String {
    hookline_core::clock::rfc3339(ms)
}

/// For patch fields: present (even as `null`) is `Some`, absent is `None` (by `default`).
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A list's `limit` (1–200, default 50) and `cursor` (an id of the listed kind), checked.
pub fn page_request(
    limit: Option<u32>,
    cursor: Option<String>,
    is_cursor: fn(&str) -> bool,
) -> Result<PageRequest, ValidationError> {
    let limit = match limit {
        None => DEFAULT_PAGE_LIMIT,
        Some(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(ValidationError::new(
                "limit",
                format!("must be an integer from 1 to {MAX_PAGE_LIMIT}"),
            ));
        }
    };
    if let Some(c) = &cursor
        && !is_cursor(c)
    {
        return Err(ValidationError::new(
            "cursor",
            "is not a cursor from this list's next_cursor",
        ));
    }
    Ok(PageRequest { limit, cursor })
}

/// An id given as a query parameter: `parse` says whether it is one of its kind.
pub fn id_param<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, ValidationError> {
    parse(text).ok_or_else(|| {
        let prefix = text.split('_').next().unwrap_or_default();
        ValidationError::new(
            field,
            format!("is not an id of this kind ('{prefix}_…' given)"),
        )
    })
}
