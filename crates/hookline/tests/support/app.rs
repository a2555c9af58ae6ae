//! The real Hookline server, started in-process on 127.0.0.1:0 with a fresh data
//! directory, and a thin client for its API.

use std::time::{Duration, Instant};

use hookline::configuration::ServeConfig;
use hookline::startup;
use hookline_dispatch::DispatcherConfig;
use hookline_store::sqlite::SqliteStore;
use hookline_store::{ApiKeyRecord, Org, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    /// The API key of the org the helpers act as.
    pub key: String,
    pub data_dir: tempfile::TempDir,
    client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Creates an org directly in the data directory, as `hookline org create` does.
pub async fn create_org(data_dir: &std::path::Path, name: &str) -> String {
    let store = SqliteStore::open_shared(data_dir).unwrap();
    let org = Org::new(name, 0);
    let (record, key) = ApiKeyRecord::issue(&org.id, 0);
    store.create_org(&org, &record).await.unwrap();
    key
}

impl TestApp {
    /// A server in `--dev` mode (so it may deliver to the loopback receiver).
    pub async fn spawn() -> Self {
        Self::spawn_with(true).await
    }

    pub async fn spawn_with(dev: bool) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let key = create_org(data_dir.path(), "test").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = ServeConfig {
            listen: listener.local_addr().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            dev,
            allow_http: false,
            allow_private_networks: false,
        };
        let dispatcher = DispatcherConfig {
            poll_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(2),
            ..DispatcherConfig::default()
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(startup::run(listener, config, dispatcher, shutdown.clone()));
        Self {
            base,
            key,
            data_dir,
            client: reqwest::Client::new(),
            shutdown,
            server: Some(server),
        }
    }

    /// A second org in the same server, for isolation checks.
    pub async fn other_org_key(&self) -> String {
        create_org(self.data_dir.path(), "other").await
    }

    /// Stops the server the way SIGTERM does, and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub async fn request_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path} answered non-JSON: {text}"))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request_as(&self.key, reqwest::Method::GET, path, None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request_as(&self.key, reqwest::Method::POST, path, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request_as(&self.key, reqwest::Method::PATCH, path, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request_as(&self.key, reqwest::Method::DELETE, path, None)
            .await
    }

    /// Sends raw bytes, for malformed-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates an org-wide destination to `url` with fast retries unless `extra` says otherwise.
    pub async fn destination(&self, url: &str, extra: Value) -> Value {
        let mut body = json!({"url": url, "retry_schedule_secs": [0, 0]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, created) = self.post("/v1/destinations", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    pub async fn publish(&self, body: Value) -> Value {
        let (status, published) = self.post("/v1/events", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{published}");
        published
    }

    /// The deliveries of an event (normally one per matching destination).
    pub async fn deliveries_of_destination(&self, destination_id: &str) -> Vec<Value> {
        let (status, page) = self
            .get(&format!(
                "/v1/deliveries?destination={destination_id}&limit=200"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    /// Polls a delivery until its status is `status`; panics after `within`.
    pub async fn wait_status(&self, delivery_id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, delivery) = self.get(&format!("/v1/deliveries/{delivery_id}")).await;
            assert_eq!(code, StatusCode::OK, "{delivery}");
            if delivery["status"] == status {
                return delivery;
            }
            assert!(
                Instant::now() < deadline,
                "delivery never reached {status}: {delivery:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The single delivery to `destination`, once it exists.
    pub async fn only_delivery(&self, destination_id: &str) -> Value {
        let deliveries = self.deliveries_of_destination(destination_id).await;
        assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
        deliveries[0].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
