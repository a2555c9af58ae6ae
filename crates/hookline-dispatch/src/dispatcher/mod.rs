//! The dispatcher: its state, the loop that sends what is handed over at publish and
//! claims what is due, `step` for tests, and shutdown (drain, then hand back what is
//! unfinished). Claiming is in `claim`; one delivery's attempt in `delivery`.

mod claim;
mod delivery;

use std::sync::Arc;

use hookline_core::clock::{Clock, Millis};
use hookline_core::delivery::Attempt;
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::{DeliveryId, DestinationId};
use hookline_core::retry::AttemptResult;
use hookline_core::sealed::MasterKey;
use hookline_store::{ClaimedDelivery, Handback, Store, StoreError};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::activity::Activity;
use crate::admission::NodeAdmission;
use crate::client::ClientError;
use crate::config::DispatcherConfig;
use crate::places::{LimitNow, Places};
use crate::recorder::{Record, record_completions};
use crate::sender::Sender;
use crate::test_modes::TestModes;
use crate::throttle::RateLimiter;

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
    activity: Activity,
    test_modes: TestModes,
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
            activity: Activity::default(),
            test_modes: TestModes::default(),
            config,
        })
    }

    /// What this node has done so far (its API counts what it publishes here too).
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// How `destination`'s limit of attempts open at once stands on this node, if it
    /// has sent there.
    pub fn limit_now(&self, destination: &DestinationId) -> Option<LimitNow> {
        self.places.limit_now(destination)
    }

    /// The sum of the limits of the destinations this node has sent to, and how many of
    /// them are adaptive.
    pub fn concurrency_totals(&self) -> (u64, u64) {
        self.places.totals()
    }

    /// The orgs whose deliveries this node intercepts instead of sending.
    pub fn test_modes(&self) -> &TestModes {
        &self.test_modes
    }

    /// Reads which orgs are in test mode from the store (switches made on other nodes).
    pub async fn refresh_test_modes(&self) -> Result<(), StoreError> {
        let mark = self.test_modes.mark();
        let orgs = self.store.orgs_in_test_mode().await?;
        self.test_modes.replace(mark, orgs.into_iter().collect());
        Ok(())
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
        // Test pings are sent even in test mode: their owner asked for this one.
        let (attempt, result) = self.sender.attempt(&ping, self.clock.now_ms(), false).await;
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
}
