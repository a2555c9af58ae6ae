//! API keys: a deleted key stops working, the org's last key cannot be deleted, and two
//! deletions racing each other (each org key deleting the other) never leave the org
//! with none. Runs on both stores.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::app::{TestApp, id};

/// A second key for the org, made with `key`: its id and the key itself.
async fn second_key(app: &TestApp, key: &str) -> (String, String) {
    let (status, body) = app
        .request_as(key, Method::POST, "/v1/api-keys", None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        id(&body).to_owned(),
        body["key"].as_str().unwrap().to_owned(),
    )
}

/// The ids of the org's keys, as `key` sees them.
async fn key_ids(app: &TestApp, key: &str) -> Vec<String> {
    let (status, body) = app.request_as(key, Method::GET, "/v1/api-keys", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k: &Value| id(k).to_owned())
        .collect()
}

#[tokio::test]
async fn a_deleted_key_stops_working_and_the_last_one_stays() {
    let app = TestApp::spawn().await;
    let first = key_ids(&app, &app.key).await;
    let (second_id, second) = second_key(&app, &app.key).await;

    let (status, _) = app
        .request_as(
            &second,
            Method::DELETE,
            &format!("/v1/api-keys/{}", first[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .request_as(&app.key, Method::GET, "/v1/api-keys", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the deleted key is refused"
    );

    let path = format!("/v1/api-keys/{second_id}");
    let (status, body) = app.request_as(&second, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app
        .request_as(
            &second,
            Method::DELETE,
            &format!("/v1/api-keys/key_{}", "0".repeat(26)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(key_ids(&app, &second).await, [second_id]);
}

#[tokio::test]
async fn two_keys_deleting_each_other_at_once_leave_one() {
    let app = TestApp::spawn().await;
    let mut survivor = (key_ids(&app, &app.key).await.remove(0), app.key.clone());
    // Each round gives the race another chance to interleave.
    for round in 0..20 {
        let (other_id, other) = second_key(&app, &survivor.1).await;
        let (delete_other, delete_survivor) = (
            format!("/v1/api-keys/{other_id}"),
            format!("/v1/api-keys/{}", survivor.0),
        );
        let (a, b) = tokio::join!(
            app.request_as(&survivor.1, Method::DELETE, &delete_other, None),
            app.request_as(&other, Method::DELETE, &delete_survivor, None),
        );
        let deleted = [a.0, b.0]
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count();
        assert_eq!(deleted, 1, "round {round}: {a:?} {b:?}");
        for (status, body) in [&a, &b] {
            assert!(
                [
                    StatusCode::NO_CONTENT,
                    StatusCode::CONFLICT,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(status),
                "round {round}: {status} {body}"
            );
        }
        if b.0 == StatusCode::NO_CONTENT {
            survivor = (other_id, other);
        }
        assert_eq!(key_ids(&app, &survivor.1).await, [survivor.0.clone()]);
    }
}
