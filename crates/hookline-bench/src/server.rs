//! The Hookline servers under test: one process on a fresh embedded store, or several
//! nodes on a fresh PostgreSQL database, plus what /proc says about their CPU time and
//! memory (the PostgreSQL server's own CPU is not counted).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// Where the bench makes its PostgreSQL databases: `HOOKLINE_BENCH_POSTGRES_URL`
/// (a server of your own, say with `pg_stat_statements` loaded), or the local one.
fn postgres_url() -> String {
    std::env::var("HOOKLINE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432".to_owned())
}
/// Every node of a run seals keys with the same master key (base64 of 32 bytes).
const BENCH_MASTER_KEY: &str = "YmVuY2gtb25seS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";
/// sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
const TICKS_PER_SECOND: f64 = 100.0;

pub struct Server {
    /// One base URL per node.
    pub bases: Vec<String>,
    pub api_key: String,
    children: Vec<Child>,
    /// The PostgreSQL database made for this run, dropped with it.
    database: Option<String>,
    data_dir: tempfile::TempDir,
}

/// The `hookline` binary built beside this one (`cargo build --release`).
pub fn default_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.with_file_name("hookline")
}

fn psql(sql: &str) -> anyhow::Result<()> {
    let status = Command::new("psql")
        .arg(format!("{}/postgres", postgres_url()))
        .args(["-qc", sql])
        .status()
        .context("running psql")?;
    if !status.success() {
        bail!("psql failed: {sql}");
    }
    Ok(())
}

/// A new database's name.
fn fresh_postgres_database() -> anyhow::Result<String> {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros();
    let name = format!("hl_bench_{micros}");
    psql(&format!("CREATE DATABASE {name}"))?;
    Ok(name)
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server at {base} never became ready")
}

/// Resources the server processes have used, read from /proc.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Bytes sent towards the disk (counted when a page is dirtied, so WAL appends and
    /// checkpoint copies, not reads; PostgreSQL's own writes are not the server's).
    pub disk_bytes: u64,
    /// The whole machine's CPU ticks (`/proc/stat`): all of them, and those the
    /// hypervisor gave to other guests (steal) while this one wanted to run.
    pub machine_ticks: u64,
    pub machine_steal_ticks: u64,
}

impl Usage {
    /// The machine's CPU ticks alone, for a run without a server (`loopback`).
    pub fn machine() -> Usage {
        let (machine_ticks, machine_steal_ticks) = machine_ticks();
        Usage {
            cpu_seconds: 0.0,
            disk_bytes: 0,
            machine_ticks,
            machine_steal_ticks,
        }
    }

    pub fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds - before.cpu_seconds,
            disk_bytes: self.disk_bytes.saturating_sub(before.disk_bytes),
            machine_ticks: self.machine_ticks.saturating_sub(before.machine_ticks),
            machine_steal_ticks: self
                .machine_steal_ticks
                .saturating_sub(before.machine_steal_ticks),
        }
    }

    /// Percent of the machine's CPU time stolen by the hypervisor: on a shared VM the
    /// same build's figures swing with it, so a run is only comparable beside its steal.
    pub fn steal_percent(&self) -> f64 {
        100.0 * self.machine_steal_ticks as f64 / self.machine_ticks.max(1) as f64
    }
}

/// All CPU ticks and steal ticks of the machine so far (the `cpu` line of /proc/stat:
/// user nice system idle iowait irq softirq steal …).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .unwrap_or("")
        .split_whitespace()
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    (ticks.iter().sum(), ticks.get(7).copied().unwrap_or(0))
}

impl Server {
    /// Starts `nodes` servers on a fresh store (several only with PostgreSQL), each with
    /// `settings` in its environment (`HOOKLINE_…` variables) besides the bench's own.
    pub async fn start(
        binary: &Path,
        store: &str,
        nodes: usize,
        settings: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let database = match (store, nodes) {
            ("sqlite", 1) => None,
            ("sqlite", _) => bail!("several nodes need --store postgres"),
            ("postgres", _) => Some(fresh_postgres_database()?),
            (other, _) => bail!("--store {other}: use sqlite or postgres"),
        };
        let store_args: Vec<String> = match &database {
            None => vec!["--data-dir".into(), data_dir.path().display().to_string()],
            Some(name) => vec![
                "--database-url".into(),
                format!("{}/{name}", postgres_url()),
            ],
        };
        let org = Command::new(binary)
            .args(["org", "create", "bench", "--json"])
            .args(&store_args)
            .env("HOOKLINE_MASTER_KEY", BENCH_MASTER_KEY)
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        if !org.status.success() {
            bail!(
                "org create failed: {}",
                String::from_utf8_lossy(&org.stderr)
            );
        }
        let org: Value = serde_json::from_slice(&org.stdout)?;
        let mut server = Self {
            bases: Vec::new(),
            api_key: org["api_key"].as_str().unwrap_or_default().to_owned(),
            children: Vec::new(),
            database,
            data_dir,
        };
        for _ in 0..nodes {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            server.children.push(
                Command::new(binary)
                    .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
                    .args(&store_args)
                    .env("HOOKLINE_MASTER_KEY", BENCH_MASTER_KEY)
                    // The bench loads a whole server from one org (10,000 destinations in
                    // fanout, tens of thousands of events a second): per-org limits off.
                    .env("HOOKLINE_MAX_DESTINATIONS_PER_ORG", "0")
                    .env("HOOKLINE_ORG_EVENTS_PER_SEC", "0")
                    .env("HOOKLINE_ORG_REDELIVERIES_PER_MIN", "0")
                    .env("RUST_LOG", "warn")
                    .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
            server.bases.push(format!("http://127.0.0.1:{port}"));
        }
        for base in &server.bases {
            wait_ready(base).await?;
        }
        Ok(server)
    }

    /// Runs `sql` on the run's store beside the server (`sqlite3` on the embedded
    /// file, `psql` on the database), for history a bench cannot wait for; returns what
    /// it printed, trimmed (one value per line).
    pub fn sql(&self, sql: &str) -> anyhow::Result<String> {
        let mut command = match &self.database {
            Some(name) => {
                let mut c = Command::new("psql");
                c.args(["-v", "ON_ERROR_STOP=1", "-Aqtc", sql])
                    .arg(format!("{}/{name}", postgres_url()));
                c
            }
            None => {
                let mut c = Command::new("sqlite3");
                c.args(["-bail", "-cmd", ".timeout 10000"])
                    .arg(self.data_dir.path().join("hookline.db"))
                    .arg(sql);
                c
            }
        };
        let output = command
            .output()
            .context("running the store's command-line client")?;
        if !output.status.success() {
            bail!(
                "the store refused the bench's SQL: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// What all nodes have used so far.
    pub fn usage(&self) -> Usage {
        Usage {
            cpu_seconds: self.children.iter().map(|c| cpu_seconds_of(c.id())).sum(),
            disk_bytes: self.children.iter().map(|c| written_bytes_of(c.id())).sum(),
            ..Usage::machine()
        }
    }

    /// Peak resident memory of the largest node so far, in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        self.largest("VmHWM:")
    }

    /// Resident memory of the largest node now, in MB.
    pub fn rss_mb(&self) -> f64 {
        self.largest("VmRSS:")
    }

    fn largest(&self, field: &str) -> f64 {
        self.children
            .iter()
            .map(|c| status_kib(c.id(), field) as f64 / 1024.0)
            .fold(0.0, f64::max)
    }
}

fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

fn written_bytes_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(name) = &self.database {
            let _ = psql(&format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}
