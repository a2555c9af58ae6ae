//! The API's HTTP server: the router behind an accept loop of our own, because
//! `axum::serve` keeps every connection for as long as its client likes, so a few
//! thousand silent or slow sockets could use up the process's file descriptors and
//! take `/healthz` and publishes down with them. Here:
//! - a client has `header_read` to send a request's head; hyper starts that clock again
//!   whenever it waits for the next request, so it also closes idle keep-alive
//!   connections;
//! - it has `body_read` to send a request's body;
//! - at most `max_connections` are open at once: one more gets a short 503 and is
//!   closed, and those already open are not touched.
//!
//! Plain HTTP/1.1 only: an HTTP/2 connection with no stream open is idle without
//! waiting for a request head, so no header timeout would close it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long the server waits on a client, and how many it serves at once.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub max_connections: usize,
}

/// The body a connection beyond `max_connections` gets before it is closed.
const OVER_CAPACITY: &str = r#"{"error":{"code":"too_many_connections","message":"the server has too many open connections; retry in a second"}}"#;

/// Serves `router` on `listener` until `shutdown` is canceled, then lets the requests
/// in flight finish and closes idle connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_read));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let open = GracefulShutdown::new();
    let mut accept_errors = AcceptErrors::default();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_errors.wait_after(e).await;
                    continue;
                }
            },
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = open.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that hangs up or times out ends its connection; nothing to report.
            let _ = connection.await;
            drop(place);
        });
    }
    drop(listener);
    open.shutdown().await;
}

/// Answers 503 and closes, without waiting long on a client that does not read.
async fn refuse(mut stream: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{OVER_CAPACITY}",
        OVER_CAPACITY.len()
    );
    let refusing = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), refusing).await;
}

/// Accept errors (most often: out of file descriptors) are logged at most once a
/// second, and each is followed by a short pause, so the loop neither spins nor floods
/// the log while they last.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    since_logged: u64,
}

impl AcceptErrors {
    async fn wait_after(&mut self, error: std::io::Error) {
        self.since_logged += 1;
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(%error, count = self.since_logged, "cannot accept connections");
            self.last_logged = Some(Instant::now());
            self.since_logged = 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Raises this process's soft limit on open files to its hard limit, so the
/// connection cap, not the limit, decides when connections are refused. Returns the
/// limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
