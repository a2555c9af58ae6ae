//! `rate_limit_per_sec`: a destination's attempts start at least `1/rate` apart. Each
//! claimed delivery takes the destination's next free start slot if it falls within
//! a short horizon (the attempt waits for it, holding its lease); otherwise the delivery
//! goes back to the store, due when a slot is free, so nothing sits leased for long.
//! The slots are kept per node: with several nodes a destination may get up to
//! `nodes × rate` attempts a second.

use foldhash::{HashMap, HashMapExt};
use std::sync::Mutex;

use hookline_core::clock::Millis;
use hookline_core::ids::DestinationId;
use hookline_store::{ClaimedDelivery, Handback};

/// How long an attempt may wait for its slot while holding its lease.
pub const HOLD_HORIZON_MS: f64 = 1_000.0;
/// Forget the slots of destinations idle for longer than this, to bound the table.
const FORGET_AFTER_MS: f64 = 60_000.0;

/// What to do with one claimed batch.
#[derive(Debug, Default)]
pub struct Plan {
    /// Send each of these at (or after) its start time.
    pub send: Vec<(ClaimedDelivery, Millis)>,
    /// Hand these back to the store, each due again at its time.
    pub defer: Vec<Handback>,
}

/// The next free start time of every rate-limited destination, in milliseconds.
#[derive(Debug, Default)]
pub struct RateLimiter {
    next_free: Mutex<HashMap<DestinationId, f64>>,
}

impl RateLimiter {
    pub fn plan(&self, claimed: Vec<ClaimedDelivery>, now: Millis) -> Plan {
        let now_ms = now as f64;
        let mut next_free = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        next_free.retain(|_, free| *free > now_ms - FORGET_AFTER_MS);
        // Deferred deliveries are spread over the slots after the reserved ones, without
        // reserving them: they take a slot for real when they are claimed again.
        let mut deferred_per_destination: HashMap<DestinationId, u32> = HashMap::new();
        let mut plan = Plan::default();
        for delivery in claimed {
            let Some(rate) = delivery.destination.settings.rate_limit_per_sec else {
                plan.send.push((delivery, now));
                continue;
            };
            let interval = 1_000.0 / f64::from(rate);
            let free = next_free
                .get(&delivery.destination.id)
                .copied()
                .unwrap_or(now_ms)
                .max(now_ms);
            if free - now_ms <= HOLD_HORIZON_MS {
                next_free.insert(delivery.destination.id.clone(), free + interval);
                plan.send.push((delivery, free.ceil() as Millis));
            } else {
                let k = deferred_per_destination
                    .entry(delivery.destination.id.clone())
                    .or_default();
                let run_at = free + f64::from(*k) * interval;
                *k += 1;
                plan.defer
                    .push(Handback::of(&delivery, run_at.ceil() as Millis));
            }
        }
        plan
    }
}
