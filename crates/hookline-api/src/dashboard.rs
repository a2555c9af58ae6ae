//! The dashboard at `/`: a page built by Vite from `web/dashboard` into
//! `assets/dashboard` and embedded here, so the binary serves it offline, from the API's
//! own origin, over the public API alone. The built files are committed, so `cargo build`
//! needs no Node.js; `scripts/build-dashboard --check` proves they match the sources.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// What the page may load and where it may send: this server only. The page has no inline
/// script or style, so neither is allowed; charts draw on a canvas.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: [(header::HeaderName, &str); 3] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// `GET /`: the page. It holds the API key in the tab's session storage only.
pub async fn page() -> impl IntoResponse {
    (
        SECURITY_HEADERS,
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../assets/dashboard/index.html")),
    )
}

/// `GET /dashboard/app.js`: the page's script. Its name carries no hash, so browsers ask
/// again each time (`no-cache`) and an upgraded binary is never paired with a stale script.
pub async fn script() -> impl IntoResponse {
    (
        SECURITY_HEADERS,
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/dashboard/app.js"),
    )
}

/// `GET /dashboard/app.css`: the page's styles, the chart library's among them.
pub async fn styles() -> impl IntoResponse {
    (
        SECURITY_HEADERS,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/dashboard/app.css"),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The dashboard's TypeScript types are generated from `web/dashboard/openapi.json`, so
    /// that copy must be the document the API serves: a change to the API's types then
    /// fails the dashboard's type check instead of a user's click. `HOOKLINE_BLESS=1`
    /// rewrites the copy (then rebuild the dashboard with `scripts/build-dashboard`).
    #[test]
    fn the_dashboards_copy_of_the_openapi_document_is_current() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/dashboard/openapi.json");
        let current = serde_json::to_string_pretty(&crate::openapi_document()).unwrap() + "\n";
        if std::env::var_os("HOOKLINE_BLESS").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let copy = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            copy == current,
            "web/dashboard/openapi.json is not the API's document: run \
             `HOOKLINE_BLESS=1 cargo test -p hookline-api dashboard`, then `scripts/build-dashboard`"
        );
    }
}
