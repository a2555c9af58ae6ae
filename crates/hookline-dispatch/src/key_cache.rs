//! Destination keys, opened once. Keys are stored sealed under the master key; opening
//! them (an AEAD decryption, and for ed25519 destinations a key expansion on first use)
//! on every attempt would cost more than signing, so the sender keeps them open per
//! destination.

use foldhash::HashMap;
use std::sync::Arc;

use hookline_core::destination::Destination;
use hookline_core::ids::DestinationId;
use hookline_core::keys::SigningKeys;
use hookline_core::sealed::{MasterKey, SealedKeys};

/// Opened keys by destination, so a busy destination's keys are opened once, not per
/// attempt. An entry is used only while the sealed value it came from is unchanged.
pub(crate) struct KeyCache {
    master: MasterKey,
    opened: std::sync::Mutex<HashMap<DestinationId, (SealedKeys, Arc<SigningKeys>)>>,
}

const KEY_CACHE_LIMIT: usize = 10_000;

impl KeyCache {
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            opened: Default::default(),
        }
    }

    pub fn open(&self, destination: &Destination) -> Option<Arc<SigningKeys>> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((sealed, keys)) = opened.get(&destination.id)
            && *sealed == destination.keys
        {
            return Some(keys.clone());
        }
        let keys = match self.master.open(&destination.keys, destination.id.as_str()) {
            Ok(keys) => Arc::new(keys),
            Err(e) => {
                tracing::error!(destination = %destination.id, error = %e, "cannot sign");
                return None;
            }
        };
        if opened.len() >= KEY_CACHE_LIMIT {
            opened.clear();
        }
        opened.insert(
            destination.id.clone(),
            (destination.keys.clone(), keys.clone()),
        );
        Some(keys)
    }
}
