//! One HTTP attempt: build the signed request exactly as DESIGN.md §3 says, send it with
//! the shared client, read at most the capture cap of the answer, and record it all.
//! The client never follows redirects, never resends a request by itself, and ignores
//! proxy settings from the environment: a webhook goes to the address the destination
//! names, or nowhere, and each request sent is one recorded attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, ErrorKind};
use hookline_core::envelope::{EVENT_HEADER_NAMES, event_headers, webhook_timestamp};
use hookline_core::ids::AttemptId;
use hookline_core::retry::{AttemptResult, parse_retry_after};
use hookline_core::sealed::MasterKey;
use hookline_core::signing::signature_headers;
use hookline_core::url_policy::{DestinationUrl, UrlPolicy};
use hookline_store::ClaimedDelivery;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::client::{self, ClientError, HttpClient};
use crate::config::DispatcherConfig;
use crate::key_cache::KeyCache;
use crate::resolver::{BLOCKED, GuardedResolver};

const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// The shared HTTP clients, with keep-alive pools reused across attempts.
pub(crate) struct Sender {
    client: HttpClient,
    /// Skips certificate checks; built only when the server allows `tls_verify: false`.
    unverified_client: Option<HttpClient>,
    capture_limit: usize,
    policy: Arc<UrlPolicy>,
    keys: KeyCache,
}

impl Sender {
    pub fn new(config: &DispatcherConfig, master: MasterKey) -> Result<Self, ClientError> {
        let policy = Arc::new(config.url_policy.clone());
        let resolver = GuardedResolver {
            policy: policy.clone(),
            lookup: config.lookup.clone(),
        };
        let roots = Arc::new(client::trusted_roots(config.tls_ca_file.as_deref())?);
        Ok(Self {
            client: client::build(resolver.clone(), Some(roots))?,
            unverified_client: match policy.allow_tls_verify_off {
                true => Some(client::build(resolver, None)?),
                false => None,
            },
            capture_limit: config.capture_limit,
            policy,
            keys: KeyCache::new(master),
        })
    }

    /// The client for `destination`: the unverified one only if it asks and we allow it.
    fn client_for(&self, verify: bool) -> &HttpClient {
        match (&self.unverified_client, verify) {
            (Some(unverified), false) => unverified,
            _ => &self.client,
        }
    }

    /// Sends one attempt of `claimed`, signed at `now`, and says how it went; with
    /// `intercept` (test mode), builds and signs it alike but sends nothing.
    pub async fn attempt(
        &self,
        claimed: &ClaimedDelivery,
        now: Millis,
        intercept: bool,
    ) -> (Attempt, AttemptResult) {
        let destination = &claimed.destination;
        let event = &claimed.event;
        // Only ever made from the event (its envelope, or its data): the recorded attempt
        // keeps a note of which rather than a copy of the body (`Sent::FromEvent`).
        let body = destination.settings.event_body().text(event);
        let timestamp = webhook_timestamp(now);
        let opened = self.keys.open(destination);
        // The event's headers first, as the recorded attempt declares (`Sent::FromEvent`).
        let mut headers = event_headers(event, &claimed.delivery_id, now);
        headers.push(("user-agent".into(), USER_AGENT.into()));
        if let Some(opened) = &opened {
            headers.extend(signature_headers(
                &destination.settings.signature,
                &opened.keys,
                event.id.as_str(),
                timestamp,
                body.as_bytes(),
                now,
            ));
            headers.extend(opened.headers.iter().cloned());
        }

        let started = Instant::now();
        let outcome = match (self.refusal(&destination.settings.url), &opened) {
            _ if intercept => Err((
                ErrorKind::Intercepted,
                "test mode: built and signed as it would be sent, and not sent".to_owned(),
            )),
            (Some(refusal), _) => Err((ErrorKind::BlockedAddress, refusal)),
            (None, None) => Err((
                ErrorKind::Signing,
                "the destination's signing keys or sealed headers do not open with this \
                 server's master key; nothing was sent"
                    .to_owned(),
            )),
            (None, Some(_)) => {
                let client = self.client_for(destination.settings.tls_verify);
                let timeout = Duration::from_secs(destination.settings.timeout_secs.into());
                match request(&destination.settings.url, &headers, &body) {
                    Ok(request) => self.exchange(client, request, timeout, now).await,
                    Err(refusal) => Err((ErrorKind::Connect, refusal)),
                }
            }
        };
        // The record shows what was sent, but never a credential. The destination's own
        // headers come last.
        let own = opened.as_ref().map_or(0, |o| o.headers.len());
        let own_from = headers.len() - own;
        destination
            .settings
            .headers
            .mask_sent(&mut headers[own_from..]);
        let mut attempt = Attempt {
            id: AttemptId::generate(),
            org_id: event.org_id.clone(),
            delivery_id: claimed.delivery_id.clone(),
            destination_id: destination.id.clone(),
            event_id: event.id.clone(),
            event_type: event.event_type.as_str().to_owned(),
            number: claimed.attempt,
            started_at: now,
            url: destination.settings.url.as_str().to_owned(),
            request_headers: headers,
            request_body: body,
            response_status: None,
            response_headers: Vec::new(),
            response_body: None,
            response_truncated: false,
            latency_ms: started.elapsed().as_millis() as i64,
            error_kind: None,
            error_message: None,
        };
        let result = match outcome {
            Ok(response) => {
                attempt.response_status = Some(response.status);
                attempt.response_headers = response.headers;
                attempt.response_body = Some(response.body);
                attempt.response_truncated = response.truncated;
                if (200..300).contains(&response.status) {
                    AttemptResult::Success
                } else {
                    attempt.error_kind = Some(ErrorKind::HttpStatus);
                    AttemptResult::Status {
                        code: response.status,
                        retry_after_secs: response.retry_after_secs,
                    }
                }
            }
            Err((kind, message)) => {
                attempt.error_kind = Some(kind);
                attempt.error_message = Some(message);
                AttemptResult::NoResponse
            }
        };
        (attempt, result)
    }

    /// What the resolver cannot see: IP-literal hosts (never resolved) and the port,
    /// checked again here because the policy may have changed since the URL was saved.
    fn refusal(&self, url: &DestinationUrl) -> Option<String> {
        let refusal = url
            .host_ip()
            .and_then(|ip| self.policy.refusal(ip))
            .or_else(|| self.policy.port_refusal(url.port()))?;
        Some(format!("{BLOCKED}: {refusal}, which is refused"))
    }

    /// Sends `request` and reads the answer, all within `timeout`.
    async fn exchange(
        &self,
        client: &HttpClient,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
        now: Millis,
    ) -> Result<Captured, (ErrorKind, String)> {
        let exchange = async {
            let response = client.request(request).await.map_err(|e| classify(&e))?;
            let (head, mut body) = response.into_parts();
            let mut captured = Captured {
                status: head.status.as_u16(),
                headers: head
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                        (k.as_str().to_owned(), value)
                    })
                    .collect(),
                body: String::new(),
                truncated: false,
                retry_after_secs: head
                    .headers
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, now)),
            };
            let mut kept = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| classify(&e))?;
                let Some(chunk) = frame.data_ref() else {
                    continue;
                };
                let room = self.capture_limit - kept.len();
                if chunk.len() > room {
                    kept.extend_from_slice(&chunk[..room]);
                    captured.truncated = true;
                    break;
                }
                kept.extend_from_slice(chunk);
            }
            captured.body = String::from_utf8_lossy(&kept).into_owned();
            Ok(captured)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err((
                    ErrorKind::Timeout,
                    format!("no complete answer within {} s", timeout.as_secs()),
                ))
            })
    }
}

/// The POST of one attempt. Every value was checked when the destination was saved,
/// so an error here means a stored value no longer passes: nothing is sent.
fn request(
    url: &DestinationUrl,
    headers: &[(String, String)],
    body: &str,
) -> Result<http::Request<Full<Bytes>>, String> {
    let uri = http::Uri::try_from(url.as_str()).map_err(|e| format!("the URL: {e}"))?;
    let mut request = http::Request::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    let map = request.headers_mut();
    map.reserve(headers.len());
    for (name, value) in headers {
        let name = match known_header_name(name) {
            Some(name) => name,
            None => HeaderName::try_from(name.as_str())
                .map_err(|e| format!("the header name {name:?}: {e}"))?,
        };
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| format!("the value of header {name}: {e}"))?;
        map.append(name, value);
    }
    Ok(request)
}

/// The headers every attempt carries besides its event's (`webhook-signature` when it
/// is signed).
const SENDER_HEADERS: [&str; 2] = ["user-agent", "webhook-signature"];

/// Every header name an attempt itself sets: its event's, then the sender's.
fn known_headers() -> impl Iterator<Item = &'static str> {
    EVENT_HEADER_NAMES.into_iter().chain(SENDER_HEADERS)
}

/// The name ready-made if it is one of `known_headers`: parsing those again for each
/// request (and copying the ones HTTP does not define) showed in profiles.
fn known_header_name(name: &str) -> Option<HeaderName> {
    known_headers()
        .find(|known| *known == name)
        .map(HeaderName::from_static)
}

struct Captured {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    truncated: bool,
    retry_after_secs: Option<u64>,
}

/// Names what went wrong from the error and its causes (the resolver's refusal, the
/// connector's "dns error", rustls's certificate errors, a connect timeout).
fn classify(error: &(dyn std::error::Error + 'static)) -> (ErrorKind, String) {
    let mut chain = error.to_string();
    let mut timed_out = false;
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        timed_out |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if lower.contains(BLOCKED) {
        ErrorKind::BlockedAddress
    } else if timed_out {
        ErrorKind::Timeout
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        ErrorKind::Dns
    } else if lower.contains("certificate") || lower.contains("tls") {
        ErrorKind::Tls
    } else {
        ErrorKind::Connect
    };
    (kind, chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_header_name_is_valid_and_others_are_left_to_parse() {
        // `from_static` panics on a name HTTP would refuse, so this runs each once.
        for name in known_headers() {
            assert_eq!(known_header_name(name).unwrap().as_str(), name);
        }
        assert!(known_header_name("x-custom").is_none());
        assert!(known_header_name("Webhook-Id").is_none());
    }
}
