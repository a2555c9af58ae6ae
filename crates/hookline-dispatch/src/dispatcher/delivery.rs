//! One delivery's task: wait for its start time and a place to send from, make the
//! attempt, ask the retry policy what next, and hand the result to the recorder.

use std::sync::Arc;
use std::time::Duration;

use hookline_core::clock::{Millis, rfc3339};
use hookline_core::concurrency::Signal;
use hookline_core::delivery::{Attempt, ErrorKind};
use hookline_core::ids::DeliveryId;
use hookline_core::retry::{AttemptResult, MAX_RETRY_AFTER_SECS, NextStep};
use hookline_store::{ClaimedDelivery, Completion, Handback, Sent};
use rand::Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Dispatcher;
use crate::admission;
use crate::places::Place;
use crate::recorder::Record;

impl Dispatcher {
    /// Starts `deliver` as one of `tasks`. Boxed first: its future is about 1.5 KB, and
    /// spawning it unboxed copied all of it several times for every delivery.
    pub(super) fn start(
        self: &Arc<Self>,
        tasks: &mut JoinSet<()>,
        claimed: ClaimedDelivery,
        start_at: Millis,
        shutdown: &CancellationToken,
    ) {
        let delivering = self.clone().deliver(claimed, start_at, shutdown.clone());
        tasks.spawn(Box::pin(delivering));
    }

    /// A place to send `claimed` from, once one is free (a delivery held at publish
    /// beyond the free places waits here); or None, once it is back in the queue unsent:
    /// at shutdown, as in `run`, or when what it was leased under no longer stands (its
    /// destination changed while it waited, or its lease could end before its attempt),
    /// to be claimed afresh under what stands now.
    async fn place_for(
        &self,
        claimed: &ClaimedDelivery,
        shutdown: &CancellationToken,
    ) -> Option<Place<'_>> {
        let place = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            place = self.places.take(&claimed.destination) => Some(place),
        };
        let now = self.clock.now_ms();
        match place {
            Some(place)
                if self.admission.in_flight().is_current(&claimed.delivery_id)
                    && admission::lease_outlasts_attempt(claimed, now) =>
            {
                Some(place)
            }
            unsent => {
                drop(unsent);
                // The store wakes the loop to claim it afresh.
                self.hand_back(&[Handback::of(claimed, now)]).await;
                None
            }
        }
    }

    /// Makes one attempt of a claimed delivery, no earlier than `start_at`, and records it;
    /// or, if `shutdown` comes while it waits for a place, hands it back unsent.
    async fn deliver(
        self: Arc<Self>,
        claimed: ClaimedDelivery,
        start_at: Millis,
        shutdown: CancellationToken,
    ) {
        let slot = InFlightSlot {
            dispatcher: &self,
            id: claimed.delivery_id.clone(),
        };
        let wait = start_at - self.clock.now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let Some(place) = self.place_for(&claimed, &shutdown).await else {
            return;
        };
        let now = self.clock.now_ms();
        let intercept = self.test_modes.contains(&claimed.event.org_id);
        let flying = self.activity.attempt_started();
        let (attempt, result) = self.sender.attempt(&claimed, now, intercept).await;
        drop(flying);
        let now = self.clock.now_ms();
        let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
        let next = match intercept {
            true => NextStep::Intercepted,
            false => {
                claimed
                    .destination
                    .settings
                    .retry
                    .decide(claimed.attempt, result, jitter, now)
            }
        };
        if next == NextStep::Gone {
            // The receiver wants no more: what waits for this destination must not go
            // out before the store has recorded that and disabled it.
            self.admission.in_flight().changed(&claimed.destination.id);
        }
        if !intercept {
            let (signal, retry_after) = load_signal(&attempt, result);
            place.observe(signal, retry_after, now);
        }
        // The receiver is done with us: free the destination's place now. The delivery
        // stays leased until its result is recorded, so no claim can take it meanwhile.
        drop(place);
        drop(slot);
        log_outcome(&claimed, &attempt, next);
        self.activity
            .attempt_ended(attempt.error_kind, attempt.latency_ms, next);
        // `Sender::attempt` sends a body and headers made from the event, so the store need not
        // keep a copy of them.
        let completion = Completion::new(
            attempt,
            next,
            now,
            Sent::FromEvent {
                body: claimed.destination.settings.event_body(),
            },
        )
        .at_row(claimed.row_hint);
        // The recorder writes it, and wakes the loop if it is a retry; `step` and
        // shutdown flush the recorder before they count on it being stored.
        let _ = self.records.send(Record::Finished(completion));
    }
}

/// What an attempt says about the receiver's load, and how long it asked to be left
/// alone (`Retry-After` on a 429 or 503, capped as the retry policy caps it).
fn load_signal(attempt: &Attempt, result: AttemptResult) -> (Signal, Option<Duration>) {
    let refused = matches!(
        attempt.error_kind,
        Some(ErrorKind::Timeout | ErrorKind::Connect)
    );
    let latency_ms = u64::try_from(attempt.latency_ms).unwrap_or(0);
    let signal = Signal::of(attempt.response_status, latency_ms, refused);
    let retry_after = match result {
        AttemptResult::Status {
            code: 429 | 503,
            retry_after_secs: Some(secs),
        } => Some(Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS))),
        _ => None,
    };
    (signal, retry_after)
}

/// Says what an attempt came to: successes at debug, every failure at warn with what
/// happens next. Never the error's text, which may quote the destination's URL (and a
/// token in its query); the recorded attempt has it.
fn log_outcome(claimed: &ClaimedDelivery, attempt: &Attempt, next: NextStep) {
    let (destination, delivery, number) = (
        &claimed.destination.id,
        &claimed.delivery_id,
        claimed.attempt,
    );
    let (status, error) = (attempt.response_status, attempt.error_kind);
    match next {
        NextStep::Delivered => tracing::debug!(
            %destination, %delivery, attempt = number, ?status, "delivered"
        ),
        NextStep::RetryAt(at) => tracing::warn!(
            %destination, %delivery, attempt = number, ?status, ?error,
            next_attempt_at = %rfc3339(at),
            "attempt failed; it will be retried"
        ),
        NextStep::DeadLetter => tracing::warn!(
            %destination, %delivery, attempt = number, ?status, ?error,
            "attempt failed and no retry is left: dead-lettered"
        ),
        NextStep::Intercepted => tracing::debug!(
            %destination, %delivery, attempt = number, "intercepted: the org is in test mode"
        ),
        NextStep::Gone => tracing::warn!(
            %destination, %delivery, attempt = number,
            "the receiver answered 410 Gone: dead-lettered, and the destination is disabled"
        ),
    }
}

/// Frees a delivery's place in the in-flight table when its attempt ends, however it ends.
struct InFlightSlot<'a> {
    dispatcher: &'a Dispatcher,
    id: DeliveryId,
}

impl Drop for InFlightSlot<'_> {
    fn drop(&mut self) {
        self.dispatcher.admission.in_flight().release(&self.id);
    }
}
