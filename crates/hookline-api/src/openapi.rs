//! The OpenAPI document and the reference page that shows it. The document is generated
//! from the typed requests and responses and the routes' annotations; what every
//! operation shares (the bearer key, the error answers any request can get) is added
//! here once, so no route can forget it.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{OpenApi as _, PartialSchema, ToSchema};

use crate::types::ErrorBody;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Hookline",
        description = "Webhook delivery: publish events, and Hookline fans each one out to every \
matching destination, signed with Standard Webhooks, delivered at least once with retries, \
dead-lettered when it never succeeds, and recorded attempt by attempt.\n\n\
Authenticate with `Authorization: Bearer <api key>` (`hookline org create` prints one).\n\n\
Errors always have the shape `{\"error\": {\"code\", \"message\", \"field\"?}}`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "events", description = "Publish events and read them back"),
        (name = "destinations", description = "Where events go, and how"),
        (name = "deliveries", description = "What happened to each event at each destination"),
        (name = "replays", description = "Bulk replays of a destination's deliveries, and their progress"),
        (name = "test-mode", description = "Intercept the org's deliveries: built and signed, recorded, not sent"),
        (name = "org", description = "The org's signing secret for one-shot `webhook_url` deliveries"),
        (name = "api-keys", description = "The org's API keys"),
        (name = "ops", description = "Health checks, without auth"),
    ),
)]
struct Base;

/// The document's fixed parts, before the routes add theirs.
pub fn base() -> OpenApi {
    Base::openapi()
}

/// Adds what every operation shares: the bearer scheme and the error answers.
pub fn complete(mut document: OpenApi) -> OpenApi {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API key: `Authorization: Bearer hk_…`"))
                .build(),
        ),
    );
    components
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    for (name, schema) in error_schemas() {
        components.schemas.insert(name, schema);
    }
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_error_answers(operation);
        }
    }
    document
}

fn error_schemas() -> Vec<(String, RefOr<utoipa::openapi::schema::Schema>)> {
    let mut schemas = Vec::new();
    <ErrorBody as ToSchema>::schemas(&mut schemas);
    schemas
}

/// The errors an operation can answer besides its own: by what it takes.
fn add_error_answers(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let takes = |place: ParameterIn| {
        operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let has_path_id = operation.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => p.parameter_in == ParameterIn::Path && p.name == "id",
        RefOr::Ref(_) => false,
    });
    let has_query = takes(ParameterIn::Query);
    let mut answers: Vec<(&str, &str)> = vec![(
        "503",
        "The store is unavailable or busy; nothing was changed, retry (`store_unavailable`, `busy`)",
    )];
    if secured {
        answers.push((
            "401",
            "Missing, malformed or revoked API key (`unauthorized`)",
        ));
    }
    if has_path_id {
        answers.push(("404", "No such resource in this org (`not_found`)"));
    }
    if has_body || has_query || has_path_id {
        answers.push((
            "422",
            "A field or parameter is invalid; `field` names it (`invalid_field`, `invalid_body`)",
        ));
    }
    if has_body {
        answers.push(("400", "The body is not valid JSON (`invalid_json`)"));
        answers.push(("408", "The body did not arrive in time (`request_timeout`)"));
        answers.push(("413", "The body is larger than 1 MiB (`payload_too_large`)"));
        answers.push((
            "415",
            "The body is not sent as JSON (`unsupported_media_type`)",
        ));
    }
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
}

/// The document as served, made once when the router is built.
#[derive(Clone)]
pub struct DocumentJson(pub Arc<[u8]>);

/// This document
///
/// OpenAPI 3.1, generated from the API's own types.
#[utoipa::path(get, operation_id = "openapi", path = "/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn document(Extension(DocumentJson(json)): Extension<DocumentJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Bytes::from_owner(json),
    )
}

const REDOC: &[u8] = include_bytes!("../assets/redoc.standalone.js");

/// What the reference page may load: only this server's own files (Redoc would fetch
/// its logo from a CDN), so it works offline and leaks nothing.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data: blob:; \
style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; worker-src 'self' blob:";

/// `GET /docs`: the API reference, drawn by Redoc from the document.
pub async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_SECURITY_POLICY, DOCS_CSP)],
        Html(include_str!("../assets/docs.html")),
    )
}

/// The viewer's script, served from the binary.
pub async fn viewer() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC,
    )
}
