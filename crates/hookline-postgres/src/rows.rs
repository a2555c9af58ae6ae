//! Reading PostgreSQL rows: columns are copied into the shared raw rows (`crate::raw`),
//! which parse them, in the order of the `*_COLUMNS` lists beside those types.

use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use sqlx::Row;
use sqlx::postgres::PgRow;

use hookline_store::StoreResult;
use hookline_store::raw_row;
use hookline_store::request_note::RequestNote;

pub fn event(row: &PgRow) -> StoreResult<Event> {
    raw_row!(RawEvent, row.try_get).parse()
}

pub fn destination(row: &PgRow) -> StoreResult<Destination> {
    raw_row!(RawDestination, row.try_get).parse()
}

pub fn delivery(row: &PgRow) -> StoreResult<Delivery> {
    raw_row!(RawDelivery, row.try_get).parse()
}

/// The attempt as stored and its note (`request_note`).
pub fn attempt(row: &PgRow) -> StoreResult<(Attempt, RequestNote)> {
    raw_row!(RawAttempt, row.try_get).parse()
}
