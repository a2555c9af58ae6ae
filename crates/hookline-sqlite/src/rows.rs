//! Reading SQLite rows: columns are copied into the shared raw rows (`crate::raw`),
//! which parse them, in the order of the `*_COLUMNS` lists beside those types.

use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use rusqlite::Row;
use rusqlite::types::Type;

pub use hookline_store::raw::{
    ATTEMPT_COLUMNS, DELIVERY_COLUMNS, DESTINATION_COLUMNS, EVENT_COLUMNS,
};
use hookline_store::raw_row;
use hookline_store::request_note::RequestNote;

fn parsed<T>(result: Result<T, hookline_store::StoreError>) -> rusqlite::Result<T> {
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

/// The attempt as stored and its note (`request_note`).
pub fn attempt(row: &Row<'_>) -> rusqlite::Result<(Attempt, RequestNote)> {
    parsed(raw_row!(RawAttempt, row.get).parse())
}
