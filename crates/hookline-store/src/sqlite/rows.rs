//! Reading SQLite rows: columns are copied into the shared raw rows (`crate::raw`),
//! which parse them, in the order of the `*_COLUMNS` lists beside those types.

use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use rusqlite::Row;
use rusqlite::types::Type;

use crate::RequestBody;
use crate::raw::raw_row;
pub use crate::raw::{ATTEMPT_COLUMNS, DELIVERY_COLUMNS, DESTINATION_COLUMNS, EVENT_COLUMNS};

fn parsed<T>(result: Result<T, crate::StoreError>) -> rusqlite::Result<T> {
    result.map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, e.into()))
}

pub fn event(row: &Row<'_>) -> rusqlite::Result<Event> {
    parsed(raw_row!(RawEvent, row.get).parse())
}

pub fn destination(row: &Row<'_>) -> rusqlite::Result<Destination> {
    parsed(raw_row!(RawDestination, row.get).parse())
}

pub fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    parsed(raw_row!(RawDelivery, row.get).parse())
}

pub fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    parsed(raw_row!(RawAttempt, row.get).parse())
}

/// How `attempts.request_body_from_event` records where a body came from.
pub fn request_body_from_event(body: RequestBody) -> i64 {
    match body {
        RequestBody::AsSent => 0,
        RequestBody::EventEnvelope { include_raw: false } => 1,
        RequestBody::EventEnvelope { include_raw: true } => 2,
    }
}

/// The inverse of `request_body_from_event`; an unknown code is a corrupt row.
pub fn request_body_of(code: i64) -> rusqlite::Result<RequestBody> {
    match code {
        0 => Ok(RequestBody::AsSent),
        1 => Ok(RequestBody::EventEnvelope { include_raw: false }),
        2 => Ok(RequestBody::EventEnvelope { include_raw: true }),
        other => parsed(Err(crate::StoreError::Corrupt(format!(
            "attempt request body source {other}"
        )))),
    }
}
