//! Records finished attempts: one task takes them from every delivery task and writes
//! them in batches, so a busy node pays for one store call per batch, not per attempt.
//! A delivery task hands its result over and ends; whoever needs every result so far
//! written (`Dispatcher::step`, shutdown) sends a flush, answered once all that was
//! handed over before it is written.

use std::sync::Arc;

use hookline_core::auto_disable::AutoDisable;
use hookline_core::retry::NextStep;
use hookline_store::{CompletedBatch, Completion, Store};
use tokio::sync::{Notify, mpsc, oneshot};

/// What the recorder is sent.
// Nearly every record is `Finished`: boxing it would cost an allocation per attempt to
// spare a rare flush some bytes of channel slot.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Record {
    Finished(Completion),
    /// Answered once everything sent before it has been written.
    Flush(oneshot::Sender<()>),
}

/// Completions written per store call, at most.
const COMPLETION_BATCH: usize = 512;

/// Writes finished attempts in batches: whatever has finished while the previous batch
/// was being written goes into the next one, as this node's (`node_id`) under its
/// `auto_disable` rule. Once a retry is written, `wake` tells the dispatcher's loop,
/// which then waits for it to fall due.
pub(crate) async fn record_completions(
    store: Arc<dyn Store>,
    node_id: String,
    auto_disable: AutoDisable,
    mut records: mpsc::UnboundedReceiver<Record>,
    wake: Arc<Notify>,
) {
    while let Some(first) = records.recv().await {
        // Sized once: growing it record by record copied every completion again at each
        // doubling, and its fresh memory cost page faults, on every delivery's path.
        let mut completions = Vec::with_capacity(records.len().min(COMPLETION_BATCH) + 1);
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(record) = next {
            match record {
                Record::Finished(completion) => completions.push(completion),
                Record::Flush(answer) => flushes.push(answer),
            }
            next = match completions.len() < COMPLETION_BATCH {
                true => records.try_recv().ok(),
                false => None,
            };
        }
        if !completions.is_empty() {
            let count = completions.len();
            let retries = completions
                .iter()
                .any(|c| matches!(c.next, NextStep::RetryAt(_)));
            let batch = CompletedBatch {
                node_id: node_id.clone(),
                auto_disable,
                completions,
            };
            if let Err(e) = store.complete(batch).await {
                tracing::warn!(
                    count,
                    error = %e,
                    "could not record attempts; their leases will expire and they will be retried"
                );
            }
            if retries {
                wake.notify_one();
            }
        }
        for answer in flushes {
            let _ = answer.send(());
        }
    }
}
