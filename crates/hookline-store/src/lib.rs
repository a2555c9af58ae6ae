//! Storage behind three traits: `Records` (orgs, keys, destinations, events, attempts),
//! `Queue` (publish, claim, complete, release) and `Replays` (bulk replay jobs). The queue is the database:
//! deliveries are rows that the dispatcher claims with a lease, so nothing is held only
//! in memory and a crash loses nothing. SQLite is the embedded default; a PostgreSQL
//! implementation of the same traits lets many nodes share one database.

mod admission;
mod commit_times;
mod error;
pub mod health;
mod local_leases;
mod model;
mod queue;
pub mod raw;
mod records;
pub mod replays;
pub mod request_note;
pub mod rollups;
#[cfg(feature = "test-support")]
pub mod test_admission;
#[cfg(feature = "test-support")]
pub mod testing;

pub use admission::{Admission, AttachedNode};
pub use commit_times::CommitTimes;
pub use error::StoreError;
pub use local_leases::{LocalLeases, PublishLease};
pub use model::*;
pub use queue::Queue;
pub use records::Records;
pub use replays::Replays;

pub type StoreResult<T> = Result<T, StoreError>;

/// A whole store: its records, its queue and its replay jobs, as the API and the
/// dispatcher share it.
pub trait Store: Records + Queue + Replays {}

impl<T: Records + Queue + Replays> Store for T {}
