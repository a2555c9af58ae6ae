//! Hookline's HTTP API. Handlers are thin: parse the request into core types, call the
//! store, and render the answer; every error leaves through `ApiError`.

mod dashboard;
mod error;
mod extract;
mod feed;
mod limits;
mod metrics;
mod openapi;
mod routes;
mod types;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use hookline_core::clock::Clock;
use hookline_core::sealed::MasterKey;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::Dispatcher;
use hookline_store::Store;

pub use error::ApiError;
pub use feed::EventFeed;
pub use limits::{OrgLimits, OrgLimitsConfig};
pub use metrics::Metrics;

/// Published events may be at most this large (DESIGN.md §4).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub url_policy: Arc<UrlPolicy>,
    /// Seals destination keys before they are stored, and opens them for hints.
    pub master_key: MasterKey,
    /// Sends test pings.
    pub dispatcher: Arc<Dispatcher>,
    pub limits: Arc<OrgLimits>,
    pub metrics: Arc<Metrics>,
    /// Wakes the SSE streams when events are published here, and ends them at shutdown.
    pub feed: EventFeed,
}

pub fn router(state: AppState) -> Router {
    let (api, document) = routes::routes();
    let json = serde_json::to_vec(&document).expect("the OpenAPI document always serializes");
    api.layer(Extension(openapi::DocumentJson(json.into())))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The OpenAPI document of the API, as `GET /v1/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes::routes().1
}
