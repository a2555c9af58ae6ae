//! One HTTP attempt: build the signed request exactly as DESIGN.md §3 says, send it with
//! the shared client, read at most the capture cap of the answer, and record it all.
//! The client never follows redirects, never resends a request by itself, and ignores
//! proxy settings from the environment: a webhook goes to the address the destination
//! names, or nowhere, and each request sent is one recorded attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, ErrorKind};
use hookline_core::envelope::Envelope;
use hookline_core::ids::AttemptId;
use hookline_core::retry::{AttemptResult, parse_retry_after};
use hookline_core::sealed::MasterKey;
use hookline_core::signing::signature_headers;
use hookline_core::url_policy::{DestinationUrl, UrlPolicy};
use hookline_store::ClaimedDelivery;
use reqwest::header::HeaderName;

use crate::DispatcherConfig;
use crate::key_cache::KeyCache;
use crate::resolver::{BLOCKED, GuardedResolver};

const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot read the CA bundle {path}: {source}")]
    CaFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The shared HTTP clients, with keep-alive pools reused across attempts.
pub(crate) struct Sender {
    client: reqwest::Client,
    /// Skips certificate checks; built only when the server allows `tls_verify: false`.
    unverified_client: Option<reqwest::Client>,
    capture_limit: usize,
    policy: Arc<UrlPolicy>,
    keys: KeyCache,
}

impl Sender {
    pub fn new(config: &DispatcherConfig, master: MasterKey) -> Result<Self, SenderError> {
        let policy = Arc::new(config.url_policy.clone());
        let extra_roots = match &config.tls_ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| SenderError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                reqwest::Certificate::from_pem_bundle(&pem)?
            }
        };
        let build = |verify: bool| {
            let mut builder = reqwest::Client::builder()
                .dns_resolver(Arc::new(GuardedResolver {
                    policy: policy.clone(),
                    lookup: config.lookup.clone(),
                }))
                .redirect(reqwest::redirect::Policy::none())
                // Every request sent is one recorded attempt: the client resends nothing
                // by itself (and so keeps no copy of each request for a resend).
                .retry(reqwest::retry::never().max_retries_per_request(0))
                .no_proxy()
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(USER_AGENT)
                .danger_accept_invalid_certs(!verify);
            for root in &extra_roots {
                builder = builder.add_root_certificate(root.clone());
            }
            builder.build()
        };
        Ok(Self {
            client: build(true)?,
            unverified_client: match policy.allow_tls_verify_off {
                true => Some(build(false)?),
                false => None,
            },
            capture_limit: config.capture_limit,
            policy,
            keys: KeyCache::new(master),
        })
    }

    /// The client for `destination`: the unverified one only if it asks and we allow it.
    fn client_for(&self, verify: bool) -> &reqwest::Client {
        match (&self.unverified_client, verify) {
            (Some(unverified), false) => unverified,
            _ => &self.client,
        }
    }

    /// Sends one attempt of `claimed`, signed at `now`, and says how it went.
    pub async fn attempt(
        &self,
        claimed: &ClaimedDelivery,
        now: Millis,
    ) -> (Attempt, AttemptResult) {
        let destination = &claimed.destination;
        let event = &claimed.event;
        let body = Envelope::of(event, destination.settings.include_raw).to_text();
        let timestamp = now.div_euclid(1000);
        let keys = self.keys.open(destination);
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), USER_AGENT.into()),
            ("webhook-id".into(), event.id.to_string()),
            ("webhook-timestamp".into(), timestamp.to_string()),
            (
                "hookline-delivery-id".into(),
                claimed.delivery_id.to_string(),
            ),
            ("hookline-stream".into(), event.stream.as_str().into()),
            (
                "hookline-event-type".into(),
                event.event_type.as_str().into(),
            ),
        ];
        if let Some(keys) = &keys {
            headers.extend(signature_headers(
                &destination.settings.signature,
                keys,
                event.id.as_str(),
                timestamp,
                body.as_bytes(),
                now,
            ));
        }
        headers.extend(destination.settings.headers.iter().cloned());

        let mut request = self
            .client_for(destination.settings.tls_verify)
            .post(destination.settings.url.as_url().clone())
            .timeout(Duration::from_secs(
                destination.settings.timeout_secs.into(),
            ))
            .body(body.clone());
        for (name, value) in &headers {
            request = match known_header_name(name) {
                Some(name) => request.header(name, value.as_str()),
                None => request.header(name.as_str(), value.as_str()),
            };
        }

        let started = Instant::now();
        let outcome = match (self.refusal(&destination.settings.url), &keys) {
            (Some(refusal), _) => Err((ErrorKind::BlockedAddress, refusal)),
            (None, None) => Err((
                ErrorKind::Signing,
                "the destination's signing keys do not open with this server's master key; \
                 nothing was sent"
                    .to_owned(),
            )),
            (None, Some(_)) => self.exchange(request, now).await,
        };
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

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        now: Millis,
    ) -> Result<Captured, (ErrorKind, String)> {
        let mut response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let retry_after_secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            let room = self.capture_limit - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Captured {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            truncated,
            retry_after_secs,
        })
    }
}

/// The headers every attempt carries (`webhook-signature` when it is signed).
const KNOWN_HEADERS: [&str; 8] = [
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "hookline-delivery-id",
    "hookline-stream",
    "hookline-event-type",
];

/// The name ready-made if it is one of `KNOWN_HEADERS`: parsing those again for each
/// request (and copying the ones HTTP does not define) showed in profiles.
fn known_header_name(name: &str) -> Option<HeaderName> {
    KNOWN_HEADERS
        .into_iter()
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

/// Names what went wrong from the error and its causes.
fn classify(error: &reqwest::Error) -> (ErrorKind, String) {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if lower.contains(BLOCKED) {
        ErrorKind::BlockedAddress
    } else if error.is_timeout() {
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
        for name in KNOWN_HEADERS {
            assert_eq!(known_header_name(name).unwrap().as_str(), name);
        }
        assert!(known_header_name("x-custom").is_none());
        assert!(known_header_name("Webhook-Id").is_none());
    }
}
