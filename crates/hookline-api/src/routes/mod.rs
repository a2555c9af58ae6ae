//! The route table: one module per API resource.

mod api_keys;
mod deliveries;
mod destinations;
mod events;
mod ops;
mod org;
mod test_ping;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/v1/events", post(events::publish).get(events::list))
        .route("/v1/events/{id}", get(events::get))
        .route(
            "/v1/destinations",
            post(destinations::create_org_wide).get(destinations::list),
        )
        .route(
            "/v1/streams/{stream}/destinations",
            post(destinations::create_for_stream),
        )
        .route(
            "/v1/destinations/{id}",
            get(destinations::get)
                .patch(destinations::update)
                .delete(destinations::delete),
        )
        .route(
            "/v1/destinations/{id}/rotate-secret",
            post(destinations::rotate_secret),
        )
        .route("/v1/destinations/{id}/test", post(test_ping::send))
        .route("/v1/org/signing-secret", get(org::get))
        .route("/v1/org/signing-secret/rotate", post(org::rotate))
        .route("/v1/deliveries", get(deliveries::list))
        .route("/v1/deliveries/{id}", get(deliveries::get))
        .route("/v1/deliveries/{id}/redeliver", post(deliveries::redeliver))
        .route("/v1/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/v1/api-keys/{id}", axum::routing::delete(api_keys::delete))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        })
}
