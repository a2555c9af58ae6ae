//! Destination secrets, opened once. Signing keys and sensitive header values are stored
//! sealed under the master key; opening them (AEAD decryptions, and for ed25519
//! destinations a key expansion on first use) on every attempt would cost more than
//! signing, so the sender keeps them open per destination.

use foldhash::HashMap;
use std::sync::Arc;

use hookline_core::custom_headers::CustomHeaders;
use hookline_core::destination::Destination;
use hookline_core::ids::DestinationId;
use hookline_core::keys::SigningKeys;
use hookline_core::sealed::{MasterKey, SealedKeys};

/// What the sender needs of a destination's sealed values, opened.
pub(crate) struct Opened {
    pub keys: SigningKeys,
    /// The destination's own headers with their real values.
    pub headers: Vec<(String, String)>,
}

/// The sealed values an entry was opened from: it is used only while they are unchanged.
type Source = (SealedKeys, CustomHeaders);

/// Opened secrets by destination, so a busy destination's are opened once, not per
/// attempt.
pub(crate) struct KeyCache {
    master: MasterKey,
    opened: std::sync::Mutex<HashMap<DestinationId, (Source, Arc<Opened>)>>,
}

const KEY_CACHE_LIMIT: usize = 10_000;

impl KeyCache {
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            opened: Default::default(),
        }
    }

    /// `None` (logged) when a sealed value does not open with this server's master key.
    pub fn open(&self, destination: &Destination) -> Option<Arc<Opened>> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(((keys, headers), open)) = opened.get(&destination.id)
            && *keys == destination.keys
            && *headers == destination.settings.headers
        {
            return Some(open.clone());
        }
        let owner = destination.id.as_str();
        let open = self.master.open(&destination.keys, owner).and_then(|keys| {
            let headers = destination.settings.headers.open(&self.master, owner)?;
            Ok(Arc::new(Opened { keys, headers }))
        });
        let open = match open {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(destination = %destination.id, error = %e, "cannot sign");
                return None;
            }
        };
        if opened.len() >= KEY_CACHE_LIMIT {
            opened.clear();
        }
        let source = (
            destination.keys.clone(),
            destination.settings.headers.clone(),
        );
        opened.insert(destination.id.clone(), (source, open.clone()));
        Some(open)
    }
}
