//! The system under chaos: Hookline nodes as real processes on one store, either the
//! embedded one (one node, killed and restarted on its data directory) or a PostgreSQL
//! server of the run's own (several nodes, and the database itself stopped and started).
//! The machine's shared PostgreSQL is never used.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hookline_postgres::own_instance::OwnPostgres;

/// Every node seals keys with the same master key (base64 of 32 bytes).
const MASTER_KEY: &str = "Y2hhb3Mtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";

enum Store {
    Embedded(tempfile::TempDir),
    Postgres(OwnPostgres),
}

struct Node {
    name: String,
    port: u16,
    process: Option<Child>,
}

pub struct Cluster {
    binary: PathBuf,
    store: Store,
    nodes: Vec<Node>,
    pub api_key: String,
}

impl Cluster {
    /// A fresh store, an org, and `nodes` running nodes.
    pub async fn start(binary: PathBuf, postgres: bool, nodes: usize) -> anyhow::Result<Self> {
        let store = match postgres {
            true => Store::Postgres(OwnPostgres::start()),
            false => Store::Embedded(tempfile::tempdir()?),
        };
        let mut cluster = Self {
            binary,
            store,
            nodes: Vec::new(),
            api_key: String::new(),
        };
        let org = Command::new(&cluster.binary)
            .args(["org", "create", "chaos", "--json"])
            .args(cluster.store_args())
            .env("HOOKLINE_MASTER_KEY", MASTER_KEY)
            .output()
            .context("running `hookline org create`")?;
        if !org.status.success() {
            bail!("org create: {}", String::from_utf8_lossy(&org.stderr));
        }
        let org: serde_json::Value = serde_json::from_slice(&org.stdout)?;
        cluster.api_key = org["api_key"].as_str().unwrap_or_default().to_owned();
        for n in 0..nodes {
            cluster.nodes.push(Node {
                name: format!("chaos-{n}"),
                port: free_port()?,
                process: None,
            });
            cluster.restart(n).await?;
        }
        Ok(cluster)
    }

    fn store_args(&self) -> Vec<String> {
        match &self.store {
            Store::Embedded(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
            Store::Postgres(pg) => vec!["--database-url".into(), pg.url()],
        }
    }

    pub fn has_database(&self) -> bool {
        matches!(self.store, Store::Postgres(_))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every node's base URL, running or not.
    pub fn bases(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("http://127.0.0.1:{}", n.port))
            .collect()
    }

    /// `kill -9`.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut process) = self.nodes[n].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts node `n` under its name and port again and waits until it is ready; a
    /// start that fails (its killed predecessor's database session still holding the
    /// name, or the database down) is tried again for up to a minute.
    pub async fn restart(&mut self, n: usize) -> anyhow::Result<()> {
        self.kill(n);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let node = &self.nodes[n];
            let mut process = Command::new(&self.binary)
                .args([
                    "serve",
                    "--dev",
                    "--listen",
                    &format!("127.0.0.1:{}", node.port),
                ])
                .args(["--node-id", &node.name, "--lease-margin-secs", "5"])
                .args(self.store_args())
                .env("HOOKLINE_MASTER_KEY", MASTER_KEY)
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting a node")?;
            let base = format!("http://127.0.0.1:{}", node.port);
            if wait_ready(&base, &mut process).await {
                self.nodes[n].process = Some(process);
                return Ok(());
            }
            let _ = process.kill();
            let _ = process.wait();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("node {n} did not start again within a minute")
    }

    /// Stops the database at once (its clients' connections break); PostgreSQL only.
    pub fn stop_database(&self) {
        if let Store::Postgres(pg) = &self.store {
            pg.stop();
        }
    }

    pub fn start_database(&self) {
        if let Store::Postgres(pg) = &self.store {
            pg.resume();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 0..self.nodes.len() {
            self.kill(n);
        }
    }
}

/// Whether the node answers `/readyz` within 20 s (false at once if it exited).
async fn wait_ready(base: &str, process: &mut Child) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if matches!(process.try_wait(), Ok(Some(_))) {
            return false;
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
