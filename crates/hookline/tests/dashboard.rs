//! The dashboard at `/`: the page and every file it names are served from the binary,
//! under a policy that lets it load and call nothing but this server. What it does in a
//! browser is tested in `tests/browser/dashboard.test.js` (headless Chromium).

mod support;

use reqwest::StatusCode;
use support::app::TestApp;

#[tokio::test]
async fn the_page_and_the_files_it_names_are_served_with_a_same_origin_policy() {
    let app = TestApp::spawn().await;
    let page = reqwest::get(format!("{}/", app.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();

    // Every address the page names is this server's or inline data; the scripts and
    // stylesheets are served with the types a browser insists on.
    let addresses: Vec<&str> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| html.split(attribute).skip(1))
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(
        addresses
            .iter()
            .all(|a| a.starts_with("/dashboard/") || a.starts_with("data:")),
        "{addresses:?}"
    );
    let named: Vec<&str> = addresses
        .into_iter()
        .filter(|a| a.starts_with("/dashboard/"))
        .collect();
    assert_eq!(named.len(), 2, "{html}");
    for path in named {
        let file = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
        assert_eq!(file.status(), StatusCode::OK, "{path}");
        let kind = file.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(kind.starts_with(expected), "{path}: {kind}");
        assert!(file.bytes().await.unwrap().len() > 1000, "{path} is empty");
    }
}

#[tokio::test]
async fn an_unknown_page_is_still_the_api_s_404() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(format!("{}/dashboard/missing.js", app.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
