//! Which orgs are in test mode, as this node knows it. This node's API switches an org
//! here as soon as the store has the switch; every other node reads the store's list each
//! second (`refresh`), so on PostgreSQL a switch made through another node takes effect
//! here within about a second. Read once per attempt: a relaxed flag says whether any
//! org is in test mode at all, so the usual answer costs no lock.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hookline_core::ids::OrgId;

#[derive(Debug, Default)]
pub struct TestModes {
    orgs: RwLock<HashSet<OrgId>>,
    any: AtomicBool,
    /// Bumped by every switch made here, so a refresh read before it cannot undo it.
    switches: AtomicU64,
}

impl TestModes {
    pub fn contains(&self, org: &OrgId) -> bool {
        self.any.load(Ordering::Relaxed) && self.read().contains(org)
    }

    /// This node's API switched `org` (after the store has it).
    pub fn set(&self, org: &OrgId, on: bool) {
        let mut orgs = self.write();
        self.switches.fetch_add(1, Ordering::SeqCst);
        if on {
            orgs.insert(org.clone());
        } else {
            orgs.remove(org);
        }
        self.any.store(!orgs.is_empty(), Ordering::Relaxed);
    }

    /// A mark to take before reading the store's list for `replace`.
    pub fn mark(&self) -> u64 {
        self.switches.load(Ordering::SeqCst)
    }

    /// Takes the store's list, read after `mark`, unless this node switched an org since.
    pub fn replace(&self, mark: u64, orgs: HashSet<OrgId>) {
        let mut held = self.write();
        if self.switches.load(Ordering::SeqCst) != mark {
            return;
        }
        self.any.store(!orgs.is_empty(), Ordering::Relaxed);
        *held = orgs;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<OrgId>> {
        self.orgs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<OrgId>> {
        self.orgs.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_read_before_a_switch_does_not_undo_it() {
        let modes = TestModes::default();
        let (a, b) = (OrgId::generate(), OrgId::generate());
        assert!(!modes.contains(&a));
        let stale = modes.mark();
        modes.set(&a, true);
        modes.replace(stale, HashSet::new());
        assert!(modes.contains(&a), "the stale list was taken");
        let fresh = modes.mark();
        modes.replace(fresh, HashSet::from([b.clone()]));
        assert!(!modes.contains(&a) && modes.contains(&b));
        modes.set(&b, false);
        assert!(!modes.contains(&b));
    }
}
