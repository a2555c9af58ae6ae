//! How long the store's commits take, as a histogram for `/metrics`: each backend times
//! its group commits (the embedded writer's, PostgreSQL's publish batches) into its own.

use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Debug, Clone)]
pub struct CommitTimes(Histogram);

impl Default for CommitTimes {
    /// Buckets from 0.1 ms to about 3.3 s, doubling.
    fn default() -> Self {
        Self(Histogram::new(exponential_buckets(0.0001, 2.0, 16)))
    }
}

impl CommitTimes {
    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }

    pub fn histogram(&self) -> Histogram {
        self.0.clone()
    }
}
