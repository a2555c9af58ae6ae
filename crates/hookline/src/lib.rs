//! The Hookline server as a library, so tests start the very same application on a
//! random port (`startup::run` takes a bound listener) that `hookline serve` runs.

pub mod configuration;
pub mod http_server;
mod replays;
mod retention;
pub mod startup;
mod summary;
pub mod telemetry;
