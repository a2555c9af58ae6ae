//! The Hookline server under test, as a separate process with a fresh data directory,
//! plus what /proc says about its CPU time and memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

pub struct Server {
    pub base: String,
    pub api_key: String,
    child: Child,
    _data_dir: tempfile::TempDir,
}

/// The `hookline` binary built beside this one (`cargo build --release`).
pub fn default_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    me.with_file_name("hookline")
}

fn ticks_per_second() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

impl Server {
    pub async fn start(binary: &Path, store: &str) -> anyhow::Result<Self> {
        if store != "sqlite" {
            bail!("--store {store}: only the embedded sqlite store exists so far");
        }
        let data_dir = tempfile::tempdir()?;
        let org = Command::new(binary)
            .args(["org", "create", "bench", "--json", "--data-dir"])
            .arg(data_dir.path())
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        if !org.status.success() {
            bail!(
                "org create failed: {}",
                String::from_utf8_lossy(&org.stderr)
            );
        }
        let org: Value = serde_json::from_slice(&org.stdout)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(binary)
            .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            api_key: org["api_key"].as_str().unwrap_or_default().to_owned(),
            child,
            _data_dir: data_dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server never became ready")
    }

    /// User plus system CPU seconds the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / ticks_per_second()
    }

    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Peak resident memory so far, in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        self.status_kib("VmHWM:") as f64 / 1024.0
    }

    /// Resident memory now, in MB.
    pub fn rss_mb(&self) -> f64 {
        self.status_kib("VmRSS:") as f64 / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
