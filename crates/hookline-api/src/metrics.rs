//! `GET /metrics`: this node's metrics in the Prometheus text format, behind a bearer
//! token when `metrics_token` is set. The counters and histograms are kept where things
//! happen (the dispatcher's `Activity`, the store's commit times); what waits in the
//! queue is read from the store at each scrape, for every node on PostgreSQL.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use hookline_dispatch::Activity;
use hookline_store::CommitTimes;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiError;

pub struct Metrics {
    registry: Registry,
    due: Gauge,
    oldest_due_seconds: Gauge<f64, AtomicU64>,
    concurrency_limit: Gauge,
    adaptive_destinations: Gauge,
    token: Option<String>,
}

impl Metrics {
    pub fn new(activity: &Activity, commit_times: &CommitTimes, token: Option<String>) -> Self {
        let mut registry = Registry::with_prefix("hookline");
        activity.register(&mut registry);
        registry.register(
            "store_commit_duration_seconds",
            "From the start of one of the store's group commits to its end",
            commit_times.histogram(),
        );
        let due = Gauge::default();
        registry.register(
            "due_deliveries",
            "Deliveries of enabled destinations whose time has come (every node's, on PostgreSQL)",
            due.clone(),
        );
        let oldest_due_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_due_age_seconds",
            "How long the oldest due delivery has waited",
            oldest_due_seconds.clone(),
        );
        let concurrency_limit = Gauge::default();
        registry.register(
            "concurrency_limit",
            "The sum of the limits of attempts open at once of the destinations this node has sent to (learned ones as they stand)",
            concurrency_limit.clone(),
        );
        let adaptive_destinations = Gauge::default();
        registry.register(
            "adaptive_destinations",
            "Destinations whose limit this node is learning (concurrency: adaptive)",
            adaptive_destinations.clone(),
        );
        Self {
            registry,
            due,
            oldest_due_seconds,
            concurrency_limit,
            adaptive_destinations,
            token: token.filter(|t| !t.is_empty()),
        }
    }
}

/// Metrics in the Prometheus text format
///
/// Counters and histograms of this node since it started, and what is due now. Labels
/// are bounded (outcomes, error kinds); per-destination figures are not here. With
/// `metrics_token` set, it needs `Authorization: Bearer <metrics_token>`.
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "`metrics_token` is set and was not sent (`unauthorized`)", body = crate::types::ErrorBody),
    ))]
pub async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let metrics = &state.metrics;
    if let Some(token) = &metrics.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(token.as_str()) {
            return Err(ApiError::unauthorized(
                "this server's metrics need Authorization: Bearer <metrics_token>",
            ));
        }
    }
    let now = state.clock.now_ms();
    let due = state.store.due_now(now).await?;
    metrics
        .due
        .set(i64::try_from(due.count).unwrap_or(i64::MAX));
    metrics.oldest_due_seconds.set(
        due.oldest
            .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0),
    );
    let (limits, adaptive) = state.dispatcher.concurrency_totals();
    metrics
        .concurrency_limit
        .set(i64::try_from(limits).unwrap_or(i64::MAX));
    metrics
        .adaptive_destinations
        .set(i64::try_from(adaptive).unwrap_or(i64::MAX));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics.registry)
        .expect("writing to a String cannot fail");
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
