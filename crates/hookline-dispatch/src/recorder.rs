//! Records finished attempts: one task takes them from every delivery task and writes
//! them in batches, so a busy node pays for one store call per batch, not per attempt.
//! Each delivery task waits for its own result to be written (shutdown and `step` count
//! on it) but holds no place in flight meanwhile.

use std::sync::Arc;

use hookline_store::{Completion, Store};
use tokio::sync::{mpsc, oneshot};

/// A finished attempt on its way to the store, and who to tell once it is written.
pub(crate) type Finished = (Completion, oneshot::Sender<()>);

/// Completions written per store call, at most.
const COMPLETION_BATCH: usize = 512;

/// Writes finished attempts in batches: whatever has finished while the previous batch
/// was being written goes into the next one.
pub(crate) async fn record_completions(
    store: Arc<dyn Store>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
) {
    while let Some(first) = finished.recv().await {
        let mut batch = vec![first];
        while batch.len() < COMPLETION_BATCH {
            match finished.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let (completions, acks): (Vec<Completion>, Vec<_>) = batch.into_iter().unzip();
        let count = completions.len();
        if let Err(e) = store.complete(completions).await {
            tracing::warn!(
                count,
                error = %e,
                "could not record attempts; their leases will expire and they will be retried"
            );
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}
