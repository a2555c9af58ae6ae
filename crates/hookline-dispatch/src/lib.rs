//! The delivery engine. It owns the loop that claims due deliveries from the store
//! under a lease, sends them concurrently (never more than a destination's
//! `max_in_flight`), records each attempt and reschedules by the retry policy.
//! `Dispatcher::step` runs one claim-and-send round to completion so tests can drain
//! the queue deterministically; `Dispatcher::run` is the long-lived loop with
//! back-pressure and shutdown.

mod activity;
mod admission;
mod client;
mod config;
mod dispatcher;
mod in_flight;
mod key_cache;
mod places;
mod recorder;
mod resolver;
mod sender;
mod test_modes;
mod throttle;

pub use activity::{Activity, ActivityCounts};
pub use admission::{HELD_ROUNDS, InFlight, NodeAdmission};
pub use client::ClientError;
pub use config::DispatcherConfig;
pub use dispatcher::Dispatcher;
pub use places::{LimitChange, LimitNow};
pub use resolver::{Lookup, LookupFuture, SystemLookup};
pub use test_modes::TestModes;
