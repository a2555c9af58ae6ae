//! A real HTTP receiver on 127.0.0.1 that answers from a script and records every
//! request, including how many were in flight at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("request has no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    received: Mutex<Vec<Received>>,
    concurrent: AtomicUsize,
    max_concurrent: AtomicUsize,
    /// Requests beyond this many at once are answered 503 at once (0: no limit).
    capacity: AtomicUsize,
    shed: AtomicUsize,
    served_ok: AtomicUsize,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

struct Answered<'a>(&'a AtomicUsize);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = inner.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
    let capacity = inner.capacity.load(Ordering::SeqCst);
    if capacity > 0 && now > capacity {
        inner.concurrent.fetch_sub(1, Ordering::SeqCst);
        inner.shed.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    inner.max_concurrent.fetch_max(now, Ordering::SeqCst);
    inner.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.fallback.lock().unwrap().clone())
        .unwrap_or_else(Reply::ok);
    // Counted out however the request ends, including a client that gives up waiting.
    let _answered = Answered(&inner.concurrent);
    tokio::time::sleep(reply.delay).await;
    if (200..300).contains(&reply.status) {
        inner.served_ok.fetch_add(1, Ordering::SeqCst);
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        reply.body.clone(),
    )
        .into_response();
    for (name, value) in &reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hook"),
            inner,
        }
    }

    /// An HTTPS receiver at `https://localhost:<port>/hook` with a certificate from a
    /// fresh CA; returns it and that CA's certificate (PEM) for the server to trust.
    pub async fn start_tls() -> (Self, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let tls = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
                    leaf_key.serialize_der().into(),
                ),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends the handshake: fine.
                    let Ok(stream) = acceptor.accept(socket).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper_util::service::TowerToHyperService::new(app),
                    )
                    .await;
                });
            }
        });
        let receiver = Self {
            url: format!("https://localhost:{port}/hook"),
            inner,
        };
        (receiver, ca.pem())
    }

    /// Requests that have arrived and not been answered yet.
    pub fn in_flight(&self) -> usize {
        self.inner.concurrent.load(Ordering::SeqCst)
    }

    /// Answers the next requests with `replies`, in order; then the fallback.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// What to answer once the script is used up (default 200).
    pub fn fallback(&self, reply: Reply) {
        *self.inner.fallback.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Serves at most `capacity` requests at once and answers the rest 503 at once, as
    /// a receiver shedding load does (0: serves every request).
    pub fn shed_beyond(&self, capacity: usize) {
        self.inner.capacity.store(capacity, Ordering::SeqCst);
    }

    /// Requests answered 503 for being beyond the capacity.
    pub fn shed(&self) -> usize {
        self.inner.shed.load(Ordering::SeqCst)
    }

    /// Requests answered with a 2xx (the script's or fallback's).
    pub fn served_ok(&self) -> usize {
        self.inner.served_ok.load(Ordering::SeqCst)
    }

    pub fn max_concurrent(&self) -> usize {
        self.inner.max_concurrent.load(Ordering::SeqCst)
    }

    /// Waits until every event id in `expected` arrived (as `webhook-id`); panics after `within`.
    pub async fn wait_for_events(
        &self,
        expected: &std::collections::HashSet<String>,
        within: Duration,
    ) {
        let deadline = Instant::now() + within;
        loop {
            let got: std::collections::HashSet<String> = self
                .received()
                .iter()
                .map(|r| r.header("webhook-id").to_owned())
                .collect();
            if expected.is_subset(&got) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} events arrived",
                expected.intersection(&got).count(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until at least `n` requests arrived; panics after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests within {within:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
