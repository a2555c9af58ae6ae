//! Several nodes on one PostgreSQL database, as real `hookline serve` processes: every
//! event reaches every matching destination, no delivery is attempted twice while its
//! lease holds, `max_in_flight` and `ordered` hold across nodes, and `kill -9` of a node
//! loses nothing.

mod support;

use std::time::Duration;

use hookline_postgres::test_databases::fresh_postgres_database;
use serde_json::json;
use support::process::{KillOnDrop, create_org_with_binary, publish_many, start_pg_node};
use support::receiver::{Receiver, Reply};
use support::sse::SseClient;

const BIN: &str = env!("CARGO_BIN_EXE_hookline");

async fn start_node(database_url: &str) -> (String, KillOnDrop) {
    // Leases of 1 s timeout + 10 s: long enough that a busy machine does not expire
    // them in phase one, short enough that phase two's rescue comes soon.
    start_pg_node(BIN, database_url, &["--lease-margin-secs", "10"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_losing_one() {
    let database_url = fresh_postgres_database().await;
    let key = create_org_with_binary(BIN, &["--database-url", &database_url]);

    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(start_node(&database_url).await);
    }
    let bases: Vec<String> = nodes.iter().map(|(base, _)| base.clone()).collect();

    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    let limited = &receivers[2];
    limited.fallback(Reply::ok().delay(Duration::from_millis(5)));
    let client = reqwest::Client::new();
    for (receiver, extra) in receivers.iter().zip([
        json!({}),
        json!({"types": ["run.*"]}),
        json!({"max_in_flight": 3}),
        json!({"ordered": true}),
    ]) {
        let mut body =
            json!({"url": receiver.url, "timeout_secs": 1, "retry_schedule_secs": [0, 1, 1]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let created = client
            .post(format!("{}/v1/destinations", bases[0]))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }

    // Phase one: all nodes up. Every delivery is attempted exactly once.
    let first = publish_many(&bases, &key, 0..5_000).await;
    for receiver in &receivers {
        receiver
            .wait_for_events(&first, Duration::from_secs(90))
            .await;
    }
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
        .await
        .unwrap();
    let doubled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT delivery_id FROM attempts
                               GROUP BY delivery_id HAVING COUNT(*) > 1) twice",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "no delivery was attempted by two nodes");
    let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(attempts, 20_000);
    assert!(
        limited.max_concurrent() <= 3,
        "max_in_flight 3 held across three nodes (saw {})",
        limited.max_concurrent()
    );

    let mut last_seq_per_stream = std::collections::HashMap::new();
    for request in receivers[3].received() {
        let body = request.json();
        let (stream, seq) = (body["stream"].to_string(), body["seq"].as_i64().unwrap());
        let last = last_seq_per_stream.insert(stream.clone(), seq).unwrap_or(0);
        assert!(
            seq > last,
            "ordered stream {stream}: seq {seq} arrived after {last}"
        );
    }

    // Phase two: one node is killed mid-run; the others finish its work.
    let second = publish_many(&bases, &key, 5_000..7_000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = nodes.remove(1);
    drop(killed);
    for receiver in &receivers {
        receiver
            .wait_for_events(&second, Duration::from_secs(90))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_on_one_node_reaches_an_sse_client_of_another() {
    let database_url = fresh_postgres_database().await;
    let key = create_org_with_binary(BIN, &["--database-url", &database_url]);
    let (a, _node_a) = start_node(&database_url).await;
    let (b, _node_b) = start_node(&database_url).await;
    let mut stream = SseClient::connect(&a, &key, "/v1/streams/s/events/sse", None).await;
    let mut org = SseClient::connect(&a, &key, "/v1/events/sse", None).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        let published: serde_json::Value = client
            .post(format!("{b}/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"type": "a.b", "stream": "s", "data": {"n": n}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(published["id"].as_str().unwrap().to_owned());
    }
    let wait = Duration::from_secs(10);
    let seqs: Vec<String> = stream
        .take(3, wait)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(seqs, ["1", "2", "3"]);
    let from_org: Vec<String> = org.take(3, wait).await.into_iter().map(|e| e.0).collect();
    assert_eq!(from_org, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_runs_on_one_node_and_sends_each_dead_letter_once() {
    let database_url = fresh_postgres_database().await;
    let key = create_org_with_binary(BIN, &["--database-url", &database_url]);
    let (a, _node_a) = start_node(&database_url).await;
    let (b, _node_b) = start_node(&database_url).await;
    let receiver = Receiver::start().await;
    receiver.fallback(Reply::status(500));
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String, body: serde_json::Value| {
        let request = client.request(method, url).bearer_auth(&key).json(&body);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let destination = call(
        reqwest::Method::POST,
        format!("{a}/v1/destinations"),
        json!({"url": receiver.url, "retry_schedule_secs": []}),
    )
    .await;
    let mut events = std::collections::HashSet::new();
    for n in 0..10 {
        let published = call(
            reqwest::Method::POST,
            format!("{b}/v1/events"),
            json!({"type": "a.b", "data": {"n": n}}),
        )
        .await;
        events.insert(published["id"].as_str().unwrap().to_owned());
    }
    let dead_letters = format!(
        "{a}/v1/deliveries?destination={}&status=dead_letter",
        destination["id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while call(reqwest::Method::GET, dead_letters.clone(), json!(null)).await["data"]
        .as_array()
        .unwrap()
        .len()
        < 10
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not all dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    receiver.fallback(Reply::ok());
    let failed_requests = receiver.received().len();
    let replay = call(
        reqwest::Method::POST,
        format!(
            "{b}/v1/destinations/{}/replay",
            destination["id"].as_str().unwrap()
        ),
        json!({"rate_per_sec": 4}),
    )
    .await;
    let path = format!("{a}/v1/replays/{}", replay["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while call(reqwest::Method::GET, path.clone(), json!(null)).await["state"] != "done" {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    receiver
        .wait_for(failed_requests + 10, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut replayed = std::collections::HashMap::<String, usize>::new();
    for request in receiver.received().iter().skip(failed_requests) {
        *replayed
            .entry(request.header("webhook-id").to_owned())
            .or_default() += 1;
    }
    assert_eq!(replayed.len(), 10, "{replayed:?}");
    assert!(replayed.keys().all(|id| events.contains(id)));
    assert!(
        replayed.values().all(|n| *n == 1),
        "sent twice: {replayed:?}"
    );
}
