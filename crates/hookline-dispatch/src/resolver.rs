//! The SSRF guard at connect time. Hookline resolves each destination's host itself,
//! checks every address it gets, and hands the HTTP client only checked addresses, so
//! the socket connects to exactly what was checked: a name that resolves to a private
//! address, or re-resolves to one later (DNS rebinding), is refused.

use std::net::SocketAddr;

use hookline_core::url_policy::{UrlPolicy, forbidden_reason};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Marks the refusal so the attempt is recorded as `blocked_address`.
pub const BLOCKED: &str = "blocked_address";

#[derive(Debug, thiserror::Error)]
#[error("{BLOCKED}: {host} resolves to {address}, a {rule} address, which is refused")]
struct Blocked {
    host: String,
    address: std::net::IpAddr,
    rule: &'static str,
}

/// Resolves names for the HTTP client, refusing any answer with a forbidden address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub policy: UrlPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.policy.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                // One bad address refuses the name: a mixed answer is a rebinding attempt.
                if let Some((address, rule)) = addresses
                    .iter()
                    .find_map(|a| forbidden_reason(a.ip()).map(|rule| (a.ip(), rule)))
                {
                    return Err(Box::new(Blocked {
                        host,
                        address,
                        rule,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
