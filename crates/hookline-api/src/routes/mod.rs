//! The route table: one module per API resource. Every route is registered with its
//! `#[utoipa::path]` annotation, so the router and the OpenAPI document are built from
//! the same list and cannot drift apart.

mod api_keys;
mod deliveries;
mod destinations;
mod events;
mod ops;
mod org;
mod test_ping;

use axum::Router;
use axum::http::StatusCode;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// The API's routes and the document that describes them.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let (router, document) = OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(crate::openapi::document))
        .routes(routes!(events::publish, events::list))
        .routes(routes!(events::get))
        .routes(routes!(destinations::create_org_wide, destinations::list))
        .routes(routes!(destinations::create_for_stream))
        .routes(routes!(
            destinations::get,
            destinations::update,
            destinations::delete
        ))
        .routes(routes!(destinations::rotate_secret))
        .routes(routes!(test_ping::send))
        .routes(routes!(org::get))
        .routes(routes!(org::rotate))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::redeliver))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::delete))
        .split_for_parts();
    let router = router
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        });
    (router, crate::openapi::complete(document))
}
