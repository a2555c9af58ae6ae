//! Claiming: how much this node asks the store for, when it asks again, and what a
//! rate limit sends straight back.

use std::time::Duration;

use hookline_core::clock::Millis;
use hookline_store::{ClaimRequest, ClaimedDelivery, StoreError};

use super::Dispatcher;

/// A claimed delivery and when its attempt may start (later only under a rate limit).
pub(super) type Due = (ClaimedDelivery, Millis);

/// What one claim took: what to send, how many were leased (a rate limit may have
/// handed some straight back), and whether the batch came back full.
pub(super) struct ClaimRound {
    pub send: Vec<Due>,
    pub claimed: usize,
    pub full: bool,
}

impl Dispatcher {
    /// Claims as much as this node has room for.
    pub(super) async fn claim_round(&self) -> ClaimRound {
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
    pub(super) async fn idle_pause(&self, claimed_any: bool) -> (Duration, bool) {
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

    /// Claims up to `limit` deliveries; returns those to send now and how many were
    /// claimed (the rest went straight back under their destination's rate limit).
    pub(super) async fn claim(&self, limit: u32) -> Result<(Vec<Due>, usize), StoreError> {
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
}
