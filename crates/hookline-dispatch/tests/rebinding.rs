//! DNS rebinding: a resolver under the test's control answers an allowed address for
//! the first lookup of a name and a forbidden one afterwards (or both at once). Hookline
//! must connect only to addresses it has checked, so the forbidden receiver never hears
//! from it. 127.0.0.2 stands in for a public address (allowed by `allowed_cidrs`);
//! 127.0.0.1 is the internal service an attacker wants to reach. A name that does not
//! resolve at all is recorded as a DNS failure.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookline_core::delivery::{DeliveryState, ErrorKind};
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::{DispatcherConfig, Lookup, LookupFuture};
use serde_json::json;
use support::Fixture;

const ALLOWED: &str = "127.0.0.2";
const FORBIDDEN: &str = "127.0.0.1";

/// Answers `first` to the first lookup and `later` to every one after it.
#[derive(Debug)]
struct RebindingDns {
    first: Vec<IpAddr>,
    later: Vec<IpAddr>,
    lookups: AtomicUsize,
}

impl RebindingDns {
    fn new(first: &[&str], later: &[&str]) -> Arc<Self> {
        let parse = |ips: &[&str]| ips.iter().map(|ip| ip.parse().unwrap()).collect();
        Arc::new(Self {
            first: parse(first),
            later: parse(later),
            lookups: AtomicUsize::new(0),
        })
    }
}

impl Lookup for RebindingDns {
    fn lookup(&self, _host: &str) -> LookupFuture {
        let answer = match self.lookups.fetch_add(1, Ordering::SeqCst) {
            0 => self.first.clone(),
            _ => self.later.clone(),
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// A receiver on `ip:port` that counts requests and closes every connection, so each
/// attempt needs a fresh connection (and so a fresh lookup).
async fn counting_receiver(ip: &str, port: u16) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { ([("connection", "close")], "ok") }
    });
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    count
}

/// The forbidden and the allowed receiver on one port (the URL names one port).
async fn receivers() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    loop {
        let probe = tokio::net::TcpListener::bind((FORBIDDEN, 0)).await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        if tokio::net::TcpListener::bind((ALLOWED, port)).await.is_ok() {
            let forbidden = counting_receiver(FORBIDDEN, port).await;
            let allowed = counting_receiver(ALLOWED, port).await;
            return (port, forbidden, allowed);
        }
    }
}

fn config(dns: Arc<RebindingDns>) -> DispatcherConfig {
    DispatcherConfig {
        url_policy: UrlPolicy {
            allow_http: true,
            allowed_cidrs: vec![format!("{ALLOWED}/32").parse().unwrap()],
            ..UrlPolicy::default()
        },
        lookup: dns,
        ..DispatcherConfig::default()
    }
}

#[tokio::test]
async fn a_name_that_rebinds_to_a_forbidden_address_is_refused_at_connect() {
    let (port, forbidden, allowed) = receivers().await;
    let fixture = Fixture::new().await;
    fixture
        .destination(
            json!({"url": format!("http://rebind.test:{port}/hook"), "retry_schedule_secs": []}),
        )
        .await;
    let dns = RebindingDns::new(&[ALLOWED], &[FORBIDDEN]);
    let dispatcher = fixture.dispatcher(config(dns.clone()));

    fixture.publish().await;
    assert_eq!(dispatcher.step().await.unwrap(), 1);
    fixture.publish().await;
    assert_eq!(dispatcher.step().await.unwrap(), 1);

    assert_eq!(
        allowed.load(Ordering::SeqCst),
        1,
        "the first answer was used"
    );
    assert_eq!(
        forbidden.load(Ordering::SeqCst),
        0,
        "nothing reached the forbidden address"
    );
    assert_eq!(
        dns.lookups.load(Ordering::SeqCst),
        2,
        "one lookup per connection: the checked answer is the one connected to"
    );
    let deliveries = fixture.deliveries().await;
    let (newest, first) = (&deliveries[0], &deliveries[1]);
    assert_eq!(first.state, DeliveryState::Delivered);
    assert_eq!(newest.state, DeliveryState::DeadLetter);
    let attempt = &fixture.attempts_of(newest).await[0];
    assert_eq!(attempt.error_kind, Some(ErrorKind::BlockedAddress));
    assert!(
        attempt
            .error_message
            .as_deref()
            .unwrap()
            .contains(FORBIDDEN),
        "{attempt:?}"
    );
}

#[tokio::test]
async fn a_name_with_an_allowed_and_a_forbidden_address_is_refused() {
    let (port, forbidden, allowed) = receivers().await;
    let fixture = Fixture::new().await;
    fixture
        .destination(
            json!({"url": format!("http://both.test:{port}/hook"), "retry_schedule_secs": []}),
        )
        .await;
    let both = [ALLOWED, FORBIDDEN];
    let dispatcher = fixture.dispatcher(config(RebindingDns::new(&both, &both)));

    fixture.publish().await;
    assert_eq!(dispatcher.step().await.unwrap(), 1);

    assert_eq!(forbidden.load(Ordering::SeqCst), 0);
    assert_eq!(
        allowed.load(Ordering::SeqCst),
        0,
        "the whole answer is refused"
    );
    let delivery = &fixture.deliveries().await[0];
    let attempt = &fixture.attempts_of(delivery).await[0];
    assert_eq!(attempt.error_kind, Some(ErrorKind::BlockedAddress));
}

/// A resolver that knows no name, as for a typo in a destination's host.
#[derive(Debug)]
struct NoSuchHost;

impl Lookup for NoSuchHost {
    fn lookup(&self, host: &str) -> LookupFuture {
        let message = format!("failed to lookup address information: {host} is unknown");
        Box::pin(async move { Err(std::io::Error::other(message)) })
    }
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_recorded_as_a_dns_failure() {
    let fixture = Fixture::new().await;
    fixture
        .destination(json!({"url": "http://typo.test:9/hook", "retry_schedule_secs": []}))
        .await;
    let dispatcher = fixture.dispatcher(DispatcherConfig {
        lookup: Arc::new(NoSuchHost),
        ..config(RebindingDns::new(&[], &[]))
    });

    fixture.publish().await;
    assert_eq!(dispatcher.step().await.unwrap(), 1);

    let delivery = &fixture.deliveries().await[0];
    let attempt = &fixture.attempts_of(delivery).await[0];
    assert_eq!(attempt.error_kind, Some(ErrorKind::Dns), "{attempt:?}");
    assert!(
        attempt
            .error_message
            .as_deref()
            .unwrap()
            .contains("typo.test is unknown"),
        "{attempt:?}"
    );
}
