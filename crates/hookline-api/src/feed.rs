//! What the SSE streams of a node listen to: a signal that events were published
//! through this node, so a stream reads the store at once rather than at its next poll
//! (events published on other nodes are found by that poll), and the server's shutdown,
//! which ends every stream so the server can stop.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct EventFeed {
    published: Arc<watch::Sender<u64>>,
    closing: CancellationToken,
}

impl EventFeed {
    pub fn new(closing: CancellationToken) -> Self {
        Self {
            published: Arc::new(watch::Sender::new(0)),
            closing,
        }
    }

    /// Says that events were just stored (committed) through this node.
    pub fn published(&self) {
        self.published.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes with each `published`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// Canceled when the server shuts down.
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }
}
