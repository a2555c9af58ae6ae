//! Hookline's domain: the types every other crate speaks, parsed once at the edge
//! ("parse, don't validate"), plus the pure rules of delivery: which destinations an
//! event matches, how a request is signed, and when a failed attempt is retried.
//! Nothing here does I/O, so all of it is unit-tested without a database or a network.

pub mod api_key;
pub mod auto_disable;
pub mod clock;
pub mod concurrency;
pub mod custom_headers;
pub mod delivery;
pub mod destination;
pub mod envelope;
pub mod error;
pub mod event;
pub mod filter;
pub mod ids;
pub mod keys;
pub mod partition;
pub mod replay;
pub mod retry;
pub mod rollup;
pub mod sealed;
pub mod secret;
pub mod signing;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod url_policy;

pub use error::ValidationError;
