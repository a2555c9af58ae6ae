//! The real Hookline server, started in-process on 127.0.0.1:0 with a fresh store,
//! and a thin client for its API. The store is the embedded one, or, when
//! `HOOKLINE_TEST_STORE=postgres`, a fresh PostgreSQL database per test (at
//! `HOOKLINE_TEST_POSTGRES_URL`, default `postgres://root@127.0.0.1:5432`), so the
//! same tests run against both backends.

use std::time::{Duration, Instant};

use hookline::configuration::{ServeConfig, StoreConfig};
use hookline::startup;
use hookline_dispatch::DispatcherConfig;
use hookline_postgres::test_databases::fresh_postgres_database;
use hookline_store::{ApiKeyRecord, Org};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub config: ServeConfig,
    /// The API key of the org the helpers act as.
    pub key: String,
    pub org_id: hookline_core::ids::OrgId,
    pub data_dir: tempfile::TempDir,
    client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The `id` of an API object.
pub fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

/// Creates an org directly in the store, as `hookline org create` does: its id and key.
pub async fn create_org(config: &ServeConfig, name: &str) -> (hookline_core::ids::OrgId, String) {
    let store = startup::open_admin_store(&config.store).await.unwrap();
    let org = Org::new(name, 0);
    let (record, key) = ApiKeyRecord::issue(&org.id, 0);
    store.create_org(&org, &record).await.unwrap();
    (org.id, key)
}

/// The server on `listener`, with a dispatcher that polls often and stops soon.
fn serve(
    listener: tokio::net::TcpListener,
    config: &ServeConfig,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let dispatcher = DispatcherConfig {
        poll_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(2),
        ..config.dispatcher_config()
    };
    tokio::spawn(startup::run(
        listener,
        config.clone(),
        dispatcher,
        shutdown.clone(),
    ))
}

impl TestApp {
    /// A server in `--dev` mode (so it may deliver to the loopback receiver).
    pub async fn spawn() -> Self {
        Self::spawn_with(true, false).await
    }

    /// `dev` opens http and private addresses; `allow_http` opens http alone.
    pub async fn spawn_with(dev: bool, allow_http: bool) -> Self {
        Self::spawn_tuned(dev, allow_http, |_| {}).await
    }

    /// Like `spawn_with`, with a last word on the configuration.
    pub async fn spawn_tuned(
        dev: bool,
        allow_http: bool,
        tune: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let database_url = match std::env::var("HOOKLINE_TEST_STORE").as_deref() {
            Ok("postgres") => Some(fresh_postgres_database().await),
            _ => None,
        };
        let database_url_needs_key = database_url.is_some();
        let defaults = ServeConfig::defaults();
        let mut config = ServeConfig {
            listen: listener.local_addr().unwrap(),
            store: StoreConfig {
                data_dir: data_dir.path().to_path_buf(),
                database_url,
                pg_max_connections: 5,
                ..defaults.store.clone()
            },
            lease_margin_secs: 30,
            claim_batch: 64,
            max_concurrency: 256,
            dev,
            allow_http,
            // PostgreSQL needs one configured; the embedded store makes its own file.
            master_key: database_url_needs_key
                .then(|| hookline_core::sealed::MasterKey::generate().to_text()),
            ..defaults
        };
        tune(&mut config);
        let (org_id, key) = create_org(&config, "test").await;
        let shutdown = CancellationToken::new();
        let server = serve(listener, &config, &shutdown);
        Self {
            base,
            config,
            key,
            org_id,
            data_dir,
            client: reqwest::Client::new(),
            shutdown,
            server: Some(server),
        }
    }

    /// Stops the server and starts it again on the same store, as after a restart under
    /// the same node name (on a new port: `base` changes).
    pub async fn restart(&mut self) {
        self.config.node_id = Some(self.config.dispatcher_config().node_id);
        self.stop().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.config.listen = listener.local_addr().unwrap();
        self.base = format!("http://{}", self.config.listen);
        self.shutdown = CancellationToken::new();
        self.server = Some(serve(listener, &self.config, &self.shutdown));
    }

    /// A second org in the same server, for isolation checks.
    pub async fn other_org_key(&self) -> String {
        create_org(&self.config, "other").await.1
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

    /// Everything the store holds at rest, as bytes to search: the data directory's files
    /// on the embedded store; on PostgreSQL, every row of the tables that hold settings
    /// and attempts, as text.
    pub async fn stored_bytes(&self) -> Vec<u8> {
        let Some(url) = &self.config.store.database_url else {
            return super::secrets::all_bytes(self.data_dir.path());
        };
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let mut bytes = Vec::new();
        for table in ["destinations", "attempts", "deliveries", "events"] {
            let text: Option<String> =
                sqlx::query_scalar(&format!("SELECT string_agg(t::text, ' ') FROM {table} t"))
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
            bytes.extend(text.unwrap_or_default().into_bytes());
        }
        bytes
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
