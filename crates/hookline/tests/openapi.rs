//! The OpenAPI document at `/v1/openapi.json` and the reference page at `/docs`: the
//! document describes what the server really answers, and the page works with nothing
//! fetched from elsewhere.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::app::TestApp;

async fn document(app: &TestApp) -> Value {
    let response = reqwest::get(format!("{}/v1/openapi.json", app.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_bearer_scheme_errors_and_examples() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let scheme = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{method} {path}");
            if path.starts_with("/v1/") && path != "/v1/openapi.json" {
                assert_eq!(op["security"], json!([{"api_key": []}]), "{method} {path}");
                let unauthorized = &responses["401"]["content"]["application/json"]["schema"];
                assert_eq!(unauthorized["$ref"], "#/components/schemas/ErrorBody");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{status} {method} {path}");
                }
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["EventIn"]["example"]["type"], "turn.completed");
    assert!(schemas["DestinationIn"]["example"]["url"].is_string());
    assert_eq!(schemas["DestinationIn"]["required"], json!(["url"]));
    assert_eq!(schemas["EventIn"]["required"], json!(["type"]));
    assert_eq!(
        schemas["LevelName"]["enum"],
        json!(["user", "progress", "debug"])
    );
}

/// Each documented operation, called with made-up ids and an empty body, answers with a
/// status its document lists (an error is fine; an undocumented status is not).
#[tokio::test]
async fn every_documented_operation_answers_with_a_documented_status() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let client = reqwest::Client::new();
    let mut called = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "dst_01JD3V6Q2W8T7Y4N5K9H0B1C2D")
            .replace("{stream}", "sess_1");
        for (method, op) in item.as_object().unwrap() {
            if method == "delete" && path == "/v1/api-keys/{id}" {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = client
                .request(method.clone(), format!("{}{concrete}", app.base))
                .bearer_auth(&app.key);
            if op.get("requestBody").is_some() {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16().to_string();
            assert!(
                op["responses"].get(&status).is_some(),
                "{method} {path} answered {status}, which its document does not list"
            );
            called += 1;
        }
    }
    assert!(called >= 20, "only {called} operations");
}

#[tokio::test]
async fn the_reference_page_and_its_viewer_are_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = reqwest::get(format!("{}/docs", app.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/redoc.standalone.js"), "{html}");
    assert!(html.contains("/v1/openapi.json"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page fetches nothing from elsewhere: {html}"
    );
    let script = reqwest::get(format!("{}/docs/redoc.standalone.js", app.base))
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let body = script.bytes().await.unwrap();
    assert!(body.len() > 500_000, "{} bytes", body.len());
}

#[tokio::test]
async fn events_list_oldest_first_and_order_desc_flips_it() {
    let app = TestApp::spawn().await;
    for n in 1..=3 {
        app.publish(json!({"type": "a.b", "stream": "s1", "data": {"n": n}}))
            .await;
    }
    let seqs = |body: &Value| -> Vec<i64> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    let (_, asc) = app.get("/v1/events?stream=s1").await;
    assert_eq!(seqs(&asc), [1, 2, 3]);
    let (_, desc) = app.get("/v1/events?stream=s1&order=desc").await;
    assert_eq!(seqs(&desc), [3, 2, 1]);
    let (_, page) = app.get("/v1/events?stream=s1&order=desc&limit=2").await;
    assert_eq!(seqs(&page), [3, 2]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!(
            "/v1/events?stream=s1&order=desc&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(seqs(&rest), [1]);
    let (s, b) = app.get("/v1/events?order=sideways").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "order");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.contains("must be asc or desc"), "{message}");
}

#[tokio::test]
async fn every_operation_has_its_own_id_and_a_summary() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "{id} twice ({method} {path})");
            let summary = op["summary"].as_str().unwrap();
            assert!(
                !summary.is_empty() && !summary.contains('`'),
                "{method} {path}: {summary}"
            );
        }
    }
}
