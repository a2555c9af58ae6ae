//! The dispatcher's settings, with the defaults a node starts from.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::auto_disable::AutoDisable;
use hookline_core::url_policy::UrlPolicy;

use crate::resolver::{Lookup, SystemLookup};

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
            // and free their places, so a busy node keeps well under its room open;
            // claims of 128 with room for 512 keep enough attempts open for fan-out to
            // use both cores (docs/perf-history.md). Each open attempt holds a socket.
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
