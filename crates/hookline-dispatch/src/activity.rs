//! What this node has done since it started, counted as it happens: events published
//! through its API, attempts that delivered, attempts that failed, deliveries that were
//! dead-lettered. Read by the server's once-a-minute log line; plain relaxed atomics, so
//! counting costs the delivery path next to nothing.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Activity {
    published: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead_lettered: AtomicU64,
}

/// The counts at one moment; `since` gives what happened between two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    pub published: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

impl Activity {
    pub fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, dead_lettered: bool) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if dead_lettered {
            self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> ActivityCounts {
        ActivityCounts {
            published: self.published.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}

impl ActivityCounts {
    /// What happened after `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            published: self.published - earlier.published,
            delivered: self.delivered - earlier.delivered,
            failed: self.failed - earlier.failed,
            dead_lettered: self.dead_lettered - earlier.dead_lettered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_differences() {
        let activity = Activity::default();
        activity.published();
        let before = activity.counts();
        activity.published();
        activity.delivered();
        activity.failed(false);
        activity.failed(true);
        let minute = activity.counts().since(before);
        assert_eq!(
            minute,
            ActivityCounts {
                published: 1,
                delivered: 1,
                failed: 2,
                dead_lettered: 1
            }
        );
    }
}
