//! The delivery engine. It owns the loop that claims due deliveries from the store
//! under a lease, sends them concurrently (never more than a destination's
//! `max_in_flight`), records each attempt and reschedules by the retry policy.
//! `step` runs one claim-and-send round to completion so tests can drain the queue
//! deterministically; `run` is the long-lived loop with back-pressure and shutdown.

mod admission;
mod client;
mod in_flight;
mod key_cache;
mod places;
mod recorder;
mod resolver;
mod sender;
mod throttle;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::auto_disable::AutoDisable;
use hookline_core::clock::{Clock, Millis};
use hookline_core::delivery::Attempt;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::DeliveryId;
use hookline_core::retry::{AttemptResult, NextStep};
use hookline_core::sealed::MasterKey;
use hookline_core::url_policy::UrlPolicy;
use hookline_store::{
    ClaimRequest, ClaimedDelivery, Completion, Handback, Sent, Store, StoreError,
};
use rand::Rng;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use admission::{HELD_ROUNDS, InFlight, NodeAdmission};
pub use client::ClientError;
use places::{Place, Places};
use recorder::{Record, record_completions};
pub use resolver::{Lookup, LookupFuture, SystemLookup};
use sender::Sender;
use throttle::RateLimiter;

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Identifies this process's leases; a restarted process gets a new one.
    pub node_id: String,
    /// Deliveries claimed per round.
    pub batch_size: u32,
    /// Attempts in flight on this node, across all destinations.
    pub max_concurrency: usize,
    pub lease_margin: Duration,
    /// How long to sleep when nothing is due and nobody wakes us.
    pub poll_interval: Duration,
    /// How long shutdown waits for attempts in flight before handing them back.
    pub shutdown_grace: Duration,
    /// Response bodies are kept up to this many bytes.
    pub capture_limit: usize,
    /// Which addresses attempts may connect to (checked on every connection).
    pub url_policy: UrlPolicy,
    /// How destination host names are resolved (before the policy checks the answer).
    pub lookup: Arc<dyn Lookup>,
    /// Extra trusted CA certificates (PEM), besides the built-in web roots.
    pub tls_ca_file: Option<PathBuf>,
    /// When a destination that only fails is disabled.
    pub auto_disable: AutoDisable,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            node_id: format!("node_{}", ulid::Ulid::new()),
            // A claim waits a millisecond or two for the store while attempts finish
            // and free their places. With claims of 64 and room for 256, a busy node
            // kept about 130 attempts open on average; with these, about 300, and
            // fan-out ran 10% faster (BENCHMARKS.md). Each open attempt holds a socket.
            batch_size: 128,
            max_concurrency: 512,
            lease_margin: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            capture_limit: 64 * 1024,
            url_policy: UrlPolicy::default(),
            lookup: Arc::new(SystemLookup),
            tls_ca_file: None,
            auto_disable: AutoDisable::default(),
        }
    }
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Finished attempts on their way to the store, and flushes (see `recorder`).
    records: mpsc::UnboundedSender<Record>,
    clock: Arc<dyn Clock>,
    sender: Sender,
    config: DispatcherConfig,
    /// Notified by the store when it commits due work, and by the recorder.
    wake: Arc<Notify>,
    /// What this node holds; the store adds what it leases to us, attempts free it.
    admission: Arc<NodeAdmission>,
    /// Fresh deliveries the store leased to us at publish (`NodeAdmission`); the loop
    /// that takes them holds the lock.
    handed: Mutex<mpsc::UnboundedReceiver<ClaimedDelivery>>,
    rate_limiter: RateLimiter,
    places: Places,
}

/// A claimed delivery and when its attempt may start (later only under a rate limit).
type Due = (ClaimedDelivery, Millis);

/// What one claim took: what to send, how many were leased (a rate limit may have
/// handed some straight back), and whether the batch came back full.
struct ClaimRound {
    send: Vec<Due>,
    claimed: usize,
    full: bool,
}

impl Dispatcher {
    /// Must be called inside a Tokio runtime: it starts the task that records attempts.
    /// `master` opens the destinations' sealed signing keys. Attaches itself to `store`,
    /// which then wakes it when work is committed and may hand it fresh deliveries as
    /// they are published.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: MasterKey,
        config: DispatcherConfig,
    ) -> Result<Self, ClientError> {
        let (records, received) = mpsc::unbounded_channel();
        let sender = Sender::new(&config, master)?;
        let wake = Arc::new(Notify::new());
        tokio::spawn(record_completions(
            store.clone(),
            config.node_id.clone(),
            config.auto_disable,
            received,
            wake.clone(),
        ));
        let (admission, handed) = NodeAdmission::new(
            config.node_id.clone(),
            config.lease_margin.as_millis() as Millis,
            config.max_concurrency,
            wake.clone(),
        );
        store.attach(admission.clone());
        Ok(Self {
            records,
            sender,
            store,
            clock,
            wake,
            admission,
            handed: Mutex::new(handed),
            rate_limiter: RateLimiter::default(),
            places: Places::new(config.max_concurrency),
            config,
        })
    }

    /// Sends `event` to `destination` once, now, exactly as a delivery would be sent,
    /// whether the destination is paused or not, and records nothing: the attempt, and
    /// whether the receiver answered 2xx.
    pub async fn send_test(&self, destination: Destination, event: Event) -> (Attempt, bool) {
        let ping = ClaimedDelivery {
            delivery_id: DeliveryId::generate(),
            attempt: 1,
            event: Arc::new(event),
            destination: Arc::new(destination),
            row_hint: None,
            // Never stored, so never claimed by anyone else.
            lease_until: Millis::MAX,
        };
        let (attempt, result) = self.sender.attempt(&ping, self.clock.now_ms()).await;
        (attempt, matches!(result, AttemptResult::Success))
    }

    /// Takes what was handed over at publish, claims one batch, and sends all of it;
    /// returns how many deliveries it took.
    pub async fn step(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut tasks = JoinSet::new();
        let shutdown = CancellationToken::new();
        let mut taken = 0;
        {
            let mut handed = self.handed.lock().await;
            while let Ok(delivery) = handed.try_recv() {
                self.start(&mut tasks, delivery, 0, &shutdown);
                taken += 1;
            }
        }
        let (due, count) = self.claim(self.config.batch_size).await?;
        for (delivery, start_at) in due {
            self.start(&mut tasks, delivery, start_at, &shutdown);
        }
        while tasks.join_next().await.is_some() {}
        self.flush_records().await;
        Ok(taken + count)
    }

    /// Returns once every attempt finished so far has been written to the store.
    async fn flush_records(&self) {
        let (answer, written) = oneshot::channel();
        if self.records.send(Record::Flush(answer)).is_ok() {
            let _ = written.await;
        }
    }

    /// Sends what is handed over at publish and claims what is due, until `shutdown` is
    /// canceled; then waits up to the grace period for attempts in flight and hands
    /// back the leases of any still unfinished.
    ///
    /// A claim is a write, so the loop claims only when there may be something to take:
    /// after a wake-up (work queued or a retry scheduled), when the next delivery falls
    /// due, when an attempt ends while due work waits for a free place, and at least
    /// once per poll interval (for leases of a node that died).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        let mut handed = self.handed.lock().await;
        let mut claim_wanted = true;
        let mut last_claim = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            while let Ok(delivery) = handed.try_recv() {
                self.start(&mut tasks, delivery, 0, &shutdown);
            }
            let mut claimed_any = false;
            let claiming = claim_wanted || last_claim.elapsed() >= self.config.poll_interval;
            if claiming {
                last_claim = tokio::time::Instant::now();
                let round = self.claim_round().await;
                claimed_any = round.claimed > 0;
                for (delivery, start_at) in round.send {
                    self.start(&mut tasks, delivery, start_at, &shutdown);
                }
                if round.full {
                    continue;
                }
            }
            let (pause, waiting) = self.idle_pause(claimed_any).await;
            // Due work this round did not try to claim (it woke for a hand-over): try now.
            if waiting && !claiming {
                claim_wanted = true;
                continue;
            }
            claim_wanted = false;
            tokio::select! {
                _ = self.wake.notified() => claim_wanted = true,
                _ = tokio::time::sleep(pause) => claim_wanted = true,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => claim_wanted = waiting,
                Some(delivery) = handed.recv() => {
                    self.start(&mut tasks, delivery, 0, &shutdown);
                }
                _ = shutdown.cancelled() => {}
            }
        }
        // Handed over but never started: back to the queue at once.
        handed.close();
        let mut unstarted = Vec::new();
        while let Ok(delivery) = handed.try_recv() {
            unstarted.push(Handback::of(&delivery, self.clock.now_ms()));
        }
        if !unstarted.is_empty() {
            self.hand_back(&unstarted).await;
        }
        self.drain(tasks).await;
    }

    /// Claims as much as this node has room for.
    async fn claim_round(&self) -> ClaimRound {
        // Attempts still being sent count, not tasks waiting for their result to be
        // written: those hold no connection, and the writer bounds them by itself.
        let limit = (self.config.batch_size as usize).min(self.admission.in_flight().room()) as u32;
        let (send, claimed) = match limit {
            0 => (Vec::new(), 0),
            _ => self.claim(limit).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "claiming deliveries failed; retrying shortly");
                (Vec::new(), 0)
            }),
        };
        ClaimRound {
            send,
            claimed,
            full: limit > 0 && claimed == limit as usize,
        }
    }

    /// How long to wait before the next claim: until the next delivery falls due, but
    /// never longer than the poll interval; and whether due work is waiting for a free
    /// place. When something is due yet nothing could be claimed (every due destination
    /// is at its limit), the wait is for a completion instead.
    async fn idle_pause(&self, claimed_any: bool) -> (Duration, bool) {
        let poll = self.config.poll_interval;
        match self.store.next_due_at().await {
            Ok(Some(due)) => {
                let wait = due - self.clock.now_ms();
                if wait <= 0 && !claimed_any {
                    (poll, true)
                } else {
                    (
                        Duration::from_millis(wait.max(0) as u64).min(poll),
                        wait <= 0,
                    )
                }
            }
            Ok(None) => (poll, false),
            Err(e) => {
                tracing::warn!(error = %e, "reading the queue failed");
                (poll, true)
            }
        }
    }

    async fn drain(&self, mut tasks: JoinSet<()>) {
        let grace = self.config.shutdown_grace;
        let finished = tokio::time::timeout(grace, async {
            while tasks.join_next().await.is_some() {}
            self.flush_records().await;
        })
        .await;
        if finished.is_ok() {
            return;
        }
        let unfinished = self.admission.in_flight().handbacks(self.clock.now_ms());
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        // Attempts that ended before the abort are recorded, not handed back; a store
        // that cannot take them in time leaves their leases to expire.
        let _ = tokio::time::timeout(grace, self.flush_records()).await;
        tracing::info!(
            count = unfinished.len(),
            "handing unfinished deliveries back"
        );
        self.hand_back(&unfinished).await;
    }

    /// Gives the leases back to the store and frees their places on this node.
    async fn hand_back(&self, handbacks: &[Handback]) {
        for handback in handbacks {
            self.admission.in_flight().release(&handback.delivery_id);
        }
        let released = self
            .store
            .release(&self.config.node_id, handbacks, self.clock.now_ms())
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not hand leases back; they will expire instead");
        }
    }

    /// Claims up to `limit` deliveries; returns those to send now and how many were
    /// claimed (the rest went straight back under their destination's rate limit).
    async fn claim(&self, limit: u32) -> Result<(Vec<Due>, usize), StoreError> {
        let claimed = self
            .store
            .claim_due(&ClaimRequest {
                now: self.clock.now_ms(),
                limit,
                node: self.admission.clone(),
            })
            .await?;
        let count = claimed.len();
        let plan = self.rate_limiter.plan(claimed, self.clock.now_ms());
        if !plan.defer.is_empty() {
            self.hand_back(&plan.defer).await;
        }
        Ok((plan.send, count))
    }

    /// Starts `deliver` as one of `tasks`. Boxed first: its future is about 1.5 KB, and
    /// spawning it unboxed copied all of it several times for every delivery.
    fn start(
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
        let (attempt, result) = self.sender.attempt(&claimed, now).await;
        let now = self.clock.now_ms();
        let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
        let next = claimed
            .destination
            .settings
            .retry
            .decide(claimed.attempt, result, jitter, now);
        if next == NextStep::Gone {
            // The receiver wants no more: what waits for this destination must not go
            // out before the store has recorded that and disabled it.
            self.admission.in_flight().changed(&claimed.destination.id);
        }
        // The receiver is done with us: free the destination's place now. The delivery
        // stays leased until its result is recorded, so no claim can take it meanwhile.
        drop(place);
        drop(slot);
        tracing::debug!(
            delivery = %claimed.delivery_id,
            attempt = claimed.attempt,
            status = ?attempt.response_status,
            error = ?attempt.error_kind,
            ?next,
            "attempt finished"
        );
        // `Sender::attempt` sends the event's envelope and headers, so the store need not
        // keep a copy of them.
        let completion = Completion::new(
            attempt,
            next,
            now,
            Sent::FromEvent {
                include_raw: claimed.destination.settings.include_raw,
            },
        )
        .at_row(claimed.row_hint);
        // The recorder writes it, and wakes the loop if it is a retry; `step` and
        // shutdown flush the recorder before they count on it being stored.
        let _ = self.records.send(Record::Finished(completion));
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
