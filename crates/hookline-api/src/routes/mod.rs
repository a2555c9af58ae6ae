//! The route table: one module per API resource. Every route is registered with its
//! `#[utoipa::path]` annotation, so the router and the OpenAPI document are built from
//! the same list and cannot drift apart.

mod api_keys;
mod attempts;
mod deliveries;
mod destinations;
mod events;
mod ops;
mod org;
mod replays;
mod sse;
mod stats;
mod test_mode;
mod test_ping;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// Pages for people, outside the API and its document.
pub const PAGES: &[&str] = &[
    "/docs",
    "/docs/redoc.standalone.js",
    "/",
    "/dashboard/app.js",
    "/dashboard/app.css",
];

/// The API's routes and pages, and the document that describes the API.
pub fn routes() -> (Router<AppState>, OpenApi) {
    let (router, document) = OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(crate::openapi::document))
        .routes(routes!(crate::metrics::scrape))
        .routes(routes!(events::publish, events::list))
        .routes(routes!(events::publish_batch))
        .routes(routes!(events::get))
        .routes(routes!(sse::stream))
        .routes(routes!(sse::org))
        .routes(routes!(destinations::create_org_wide, destinations::list))
        .routes(routes!(destinations::create_for_stream))
        .routes(routes!(
            destinations::get,
            destinations::update,
            destinations::delete
        ))
        .routes(routes!(destinations::rotate_secret))
        .routes(routes!(test_ping::send))
        .routes(routes!(replays::start))
        .routes(routes!(replays::list))
        .routes(routes!(replays::get, replays::cancel))
        .routes(routes!(stats::destination))
        .routes(routes!(stats::org))
        .routes(routes!(org::get))
        .routes(routes!(org::rotate))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::redeliver))
        .routes(routes!(attempts::list))
        .routes(routes!(attempts::get))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::delete))
        .routes(routes!(test_mode::enable))
        .routes(routes!(test_mode::disable))
        .routes(routes!(test_mode::get))
        .routes(routes!(test_mode::log, test_mode::clear))
        .split_for_parts();
    let router = router
        .route(PAGES[0], get(crate::openapi::page))
        .route(PAGES[1], get(crate::openapi::viewer))
        .route(PAGES[2], get(crate::dashboard::page))
        .route(PAGES[3], get(crate::dashboard::script))
        .route(PAGES[4], get(crate::dashboard::styles))
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// The router's own table, read from its debug form (axum has no other way to list
    /// its routes): each path with the methods it takes.
    fn router_table(router: &Router<AppState>) -> BTreeSet<(String, String)> {
        let text = format!("{router:?}");
        let mut methods = BTreeMap::new();
        for part in text.split("RouteId(").skip(1) {
            let (id, rest) = part.split_once(')').unwrap();
            if let Some(allowed) = rest
                .strip_prefix(": MethodRouter(")
                .and_then(|r| r.split_once("allow_header: Bytes(b\""))
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(allowed, _)| allowed)
            {
                methods.insert(id.to_owned(), allowed.to_owned());
            }
        }
        let paths = text
            .split("paths: {")
            .nth(1)
            .and_then(|rest| rest.split("fallback_router").next())
            .unwrap();
        let mut table = BTreeSet::new();
        for part in paths.split("RouteId(").skip(1) {
            let (id, rest) = part.split_once(')').unwrap();
            let path = rest.split('"').nth(1).unwrap();
            for method in methods[id].split(',').filter(|m| *m != "HEAD") {
                table.insert((path.to_owned(), method.to_lowercase()));
            }
        }
        table
    }

    #[test]
    fn every_route_is_in_the_document_and_every_documented_route_is_served() {
        let (router, document) = routes();
        let served: BTreeSet<_> = router_table(&router)
            .into_iter()
            .filter(|(path, _)| !PAGES.contains(&path.as_str()))
            .collect();
        let json = serde_json::to_value(&document).unwrap();
        let documented: BTreeSet<(String, String)> = json["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "post", "patch", "put", "delete"].contains(&k.as_str()))
                    .map(|method| (path.clone(), method.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(served.len() >= 20, "too few routes read: {served:?}");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the document: {undocumented:?}"
        );
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            unserved.is_empty(),
            "documented routes the router lacks: {unserved:?}"
        );
    }

    #[test]
    fn a_route_added_without_its_annotation_is_caught() {
        let (router, _) = routes();
        let router = router.route("/v1/stray", axum::routing::get(|| async { "" }));
        assert!(router_table(&router).contains(&("/v1/stray".to_owned(), "get".to_owned())));
    }
}
