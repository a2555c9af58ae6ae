//! Cursor pages stay sound while new rows arrive: paging through events and deliveries
//! at several page sizes while publishes run alongside never shows a row twice and
//! never skips a row that existed before the first page was read.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use support::app::TestApp;
use support::process::publish_many;
use support::receiver::Receiver;

const BEFORE: usize = 40;

/// Every id on every page of `path`, following `next_cursor` from the first page.
async fn all_pages(app: &TestApp, path: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, page) = app.get(&url).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        ids.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_neither_repeat_nor_skip_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.destination(&receiver.url, json!({})).await;
    for n in 0..BEFORE {
        app.publish(json!({"type": "a.b", "stream": format!("s{}", n % 3), "data": {"n": n}}))
            .await;
    }
    receiver.wait_for(BEFORE, Duration::from_secs(10)).await;
    let existing_events: HashSet<String> = all_pages(&app, "/v1/events", 200)
        .await
        .into_iter()
        .collect();
    let existing_deliveries: HashSet<String> = all_pages(&app, "/v1/deliveries", 200)
        .await
        .into_iter()
        .collect();
    assert_eq!(existing_events.len(), BEFORE);
    assert_eq!(existing_deliveries.len(), BEFORE);

    for limit in [1, 3, 7, 50] {
        let (nodes, key) = ([app.base.clone()], app.key.clone());
        let publishing = tokio::spawn(async move { publish_many(&nodes, &key, 0..30).await });
        for (path, existing) in [
            ("/v1/events", &existing_events),
            ("/v1/deliveries", &existing_deliveries),
        ] {
            let seen = all_pages(&app, path, limit).await;
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{path} at limit {limit} repeated a row"
            );
            let missed: Vec<_> = existing.iter().filter(|id| !unique.contains(id)).collect();
            assert!(
                missed.is_empty(),
                "{path} at limit {limit} skipped {missed:?}"
            );
        }
        publishing.await.unwrap();
    }
}
