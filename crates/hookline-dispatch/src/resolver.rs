//! The SSRF guard at connect time. Hookline resolves each destination's host itself,
//! checks every address it gets, and hands the HTTP client only checked addresses, so
//! the socket connects to exactly what was checked: a name that resolves to a private
//! address, or re-resolves to one later (DNS rebinding), is refused.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hookline_core::url_policy::UrlPolicy;
use hyper_util::client::legacy::connect::dns::Name;

/// Marks the refusal so the attempt is recorded as `blocked_address`.
pub const BLOCKED: &str = "blocked_address";

/// A name's addresses, on their way.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses: the system resolver in production; tests put a
/// scripted one here to play a rebinding DNS server.
pub trait Lookup: Debug + Send + Sync + 'static {
    fn lookup(&self, host: &str) -> LookupFuture;
}

/// The operating system's resolver (getaddrinfo, on a blocking thread).
#[derive(Debug)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{BLOCKED}: {host} resolves to {refusal}, which is refused")]
struct Blocked {
    host: String,
    refusal: String,
}

/// Resolves names for the HTTP client, refusing any answer with a forbidden address.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<UrlPolicy>,
    pub lookup: Arc<dyn Lookup>,
}

/// Checked addresses (port 0: the connector puts the URL's port in).
type Resolving = Pin<Box<dyn Future<Output = Result<Addrs, BoxError>> + Send>>;
type Addrs = std::vec::IntoIter<SocketAddr>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = Addrs;
    type Error = BoxError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let answer = self.lookup.lookup(name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = answer.await?;
            // One bad address refuses the name: a mixed answer is a rebinding attempt.
            if let Some(refusal) = addresses.iter().find_map(|ip| policy.refusal(*ip)) {
                return Err(Box::new(Blocked { host, refusal }) as BoxError);
            }
            let checked: Vec<SocketAddr> = addresses
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            Ok(checked.into_iter())
        })
    }
}
