//! Two receivers side by side, the setup of the tests that compare what succeeded with
//! what failed: one answering 200 behind a destination for `ok.*` events, one answering
//! `failure` behind a destination for `bad.*` events, retried after the given delays.

use serde_json::{Value, json};

use super::app::TestApp;
use super::receiver::{Receiver, Reply};

pub struct Pair {
    pub healthy: Receiver,
    pub failing: Receiver,
    /// The destination of `ok.*` events, to `healthy`.
    pub good: Value,
    /// The destination of `bad.*` events, to `failing`.
    pub bad: Value,
}

impl Pair {
    pub async fn start(app: &TestApp, failure: Reply, retry_schedule_secs: &[u64]) -> Self {
        let healthy = Receiver::start().await;
        let failing = Receiver::start().await;
        failing.fallback(failure);
        let good = app
            .destination(&healthy.url, json!({"types": ["ok.*"]}))
            .await;
        let bad = app
            .destination(
                &failing.url,
                json!({"types": ["bad.*"], "retry_schedule_secs": retry_schedule_secs}),
            )
            .await;
        Self {
            healthy,
            failing,
            good,
            bad,
        }
    }
}
