//! Server settings from `hookline.toml`, `HOOKLINE_*` environment variables and flags.
//! Flags and environment are read by clap (flag wins over env); the file fills in what
//! neither gave; then the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context;
use hookline_core::auto_disable::AutoDisable;
use hookline_core::sealed::MasterKey;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::DispatcherConfig;
use hookline_postgres::PgStore;
use hookline_sqlite::SqliteStore;
use hookline_store::Store;
use ipnet::IpNet;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./hookline-data";
pub const DEFAULT_CONFIG_FILE: &str = "hookline.toml";
/// Enough for the API and the dispatcher on a 2-core node.
pub const DEFAULT_PG_MAX_CONNECTIONS: u32 = 10;

/// Everything `serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the embedded store, when set.
    pub database_url: Option<String>,
    /// Connections per node to PostgreSQL.
    pub pg_max_connections: u32,
    /// A claimed delivery's lease lasts its destination's timeout plus this.
    pub lease_margin_secs: u64,
    /// Deliveries claimed per round.
    pub claim_batch: u32,
    /// Attempts in flight on this node, across all destinations.
    pub max_concurrency: usize,
    /// A destination that has only failed this long (and `auto_disable_min_failures`
    /// times in a row) is disabled.
    pub auto_disable_after_secs: u64,
    pub auto_disable_min_failures: u32,
    /// Opens loopback and plain http for local work.
    pub dev: bool,
    pub allow_http: bool,
    pub allow_private_networks: bool,
    /// Private ranges destinations may use anyway (e.g. an internal receiver).
    pub allowed_cidrs: Vec<IpNet>,
    /// Ranges destinations may never use; these win over everything else.
    pub denied_cidrs: Vec<IpNet>,
    /// Destination ports allowed; empty means any.
    pub allowed_ports: Vec<u16>,
    /// Extra CA certificates (PEM) to trust for destinations, besides the web roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Whether destinations may set `tls_verify: false`.
    pub allow_tls_verify_off: bool,
    /// Seals destination keys at rest; with the embedded store it defaults to a key file
    /// generated in the data directory.
    pub master_key: Option<MasterKey>,
}

/// The master key file in an embedded data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

impl ServeConfig {
    /// The dispatcher's settings from this configuration.
    pub fn dispatcher_config(&self) -> DispatcherConfig {
        DispatcherConfig {
            batch_size: self.claim_batch,
            max_concurrency: self.max_concurrency,
            lease_margin: std::time::Duration::from_secs(self.lease_margin_secs),
            url_policy: self.url_policy(),
            tls_ca_file: self.tls_ca_file.clone(),
            auto_disable: AutoDisable {
                after_ms: self.auto_disable_after_secs as i64 * 1000,
                min_failures: i64::from(self.auto_disable_min_failures),
            },
            ..DispatcherConfig::default()
        }
    }

    /// The store for a short administrative command that may run beside a server.
    pub async fn open_admin_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match &self.database_url {
            Some(url) => Arc::new(
                PgStore::connect(url, 2)
                    .await
                    .context("connecting to PostgreSQL")?,
            ),
            None => Arc::new(SqliteStore::open_shared(&self.data_dir)?),
        })
    }

    /// Where the data lives, for people (never the URL, which may hold a password).
    pub fn store_description(&self) -> String {
        match &self.database_url {
            Some(_) => "the PostgreSQL database".to_owned(),
            None => format!("the embedded database in {}", self.data_dir.display()),
        }
    }

    /// Opens the configured store: PostgreSQL when a URL is set, else the embedded one.
    pub async fn open_store(&self) -> anyhow::Result<OpenedStore> {
        Ok(match &self.database_url {
            Some(url) => OpenedStore::Postgres(Arc::new(
                PgStore::connect(url, self.pg_max_connections)
                    .await
                    .context("connecting to PostgreSQL")?,
            )),
            None => OpenedStore::Sqlite(Arc::new(
                SqliteStore::open(&self.data_dir)
                    .with_context(|| format!("opening the store in {}", self.data_dir.display()))?,
            )),
        })
    }

    /// The configured master key; with the embedded store and none configured, the one
    /// in the data directory, generated (mode 0600) on first start.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(key) = &self.master_key {
            return Ok(key.clone());
        }
        anyhow::ensure!(
            self.database_url.is_none(),
            "HOOKLINE_MASTER_KEY is required with PostgreSQL (every node must use the same key; \
             make one with: openssl rand -base64 32)"
        );
        let path = self.data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::parse(&text)
                .with_context(|| format!("{} is not a master key", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                write_private(&path, key.to_text().as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(path = %path.display(), "generated a master key; back it up with the data");
                Ok(key)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy {
            allow_http: self.dev || self.allow_http,
            allow_private: self.dev || self.allow_private_networks,
            allowed_cidrs: self.allowed_cidrs.clone(),
            denied_cidrs: self.denied_cidrs.clone(),
            allowed_ports: self.allowed_ports.clone(),
            allow_tls_verify_off: self.allow_tls_verify_off,
        }
    }
}

/// Creates `path` readable and writable by its owner only, failing if it exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// The store a server runs on; PostgreSQL also carries wake-ups between nodes.
pub enum OpenedStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl OpenedStore {
    pub fn as_store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Postgres(s) => s.clone(),
        }
    }
}

/// The settings as they may appear in `hookline.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub pg_max_connections: Option<u32>,
    pub lease_margin_secs: Option<u64>,
    pub claim_batch: Option<u32>,
    pub max_concurrency: Option<usize>,
    pub auto_disable_after_secs: Option<u64>,
    pub auto_disable_min_failures: Option<u32>,
    pub dev: Option<bool>,
    pub allow_http: Option<bool>,
    pub allow_private_networks: Option<bool>,
    pub allowed_cidrs: Option<Vec<IpNet>>,
    pub denied_cidrs: Option<Vec<IpNet>>,
    pub allowed_ports: Option<Vec<u16>>,
    pub tls_ca_file: Option<PathBuf>,
    pub allow_tls_verify_off: Option<bool>,
    pub master_key: Option<String>,
}

impl FileConfig {
    /// Reads `path`; a missing file is fine only when it is the default one.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not a valid Hookline config", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// What flags and environment gave, before the file and defaults fill the gaps: the
/// same settings as the file, each either given or not.
pub type Overrides = FileConfig;

pub fn resolve(overrides: Overrides, file: FileConfig) -> anyhow::Result<ServeConfig> {
    let defaults = DispatcherConfig::default();
    anyhow::ensure!(
        overrides.claim_batch.or(file.claim_batch) != Some(0)
            && overrides.max_concurrency.or(file.max_concurrency) != Some(0),
        "claim_batch and max_concurrency must be at least 1"
    );
    Ok(ServeConfig {
        listen: match overrides.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse()?,
        },
        data_dir: overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        database_url: overrides.database_url.or(file.database_url),
        pg_max_connections: overrides
            .pg_max_connections
            .or(file.pg_max_connections)
            .unwrap_or(DEFAULT_PG_MAX_CONNECTIONS),
        lease_margin_secs: overrides
            .lease_margin_secs
            .or(file.lease_margin_secs)
            .unwrap_or(defaults.lease_margin.as_secs()),
        claim_batch: overrides
            .claim_batch
            .or(file.claim_batch)
            .unwrap_or(defaults.batch_size),
        max_concurrency: overrides
            .max_concurrency
            .or(file.max_concurrency)
            .unwrap_or(defaults.max_concurrency),
        auto_disable_after_secs: overrides
            .auto_disable_after_secs
            .or(file.auto_disable_after_secs)
            .unwrap_or(defaults.auto_disable.after_ms as u64 / 1000),
        auto_disable_min_failures: overrides
            .auto_disable_min_failures
            .or(file.auto_disable_min_failures)
            .unwrap_or(defaults.auto_disable.min_failures as u32),
        dev: overrides.dev.or(file.dev).unwrap_or(false),
        allow_http: overrides.allow_http.or(file.allow_http).unwrap_or(false),
        allow_private_networks: overrides
            .allow_private_networks
            .or(file.allow_private_networks)
            .unwrap_or(false),
        allowed_cidrs: overrides
            .allowed_cidrs
            .or(file.allowed_cidrs)
            .unwrap_or_default(),
        denied_cidrs: overrides
            .denied_cidrs
            .or(file.denied_cidrs)
            .unwrap_or_default(),
        allowed_ports: overrides
            .allowed_ports
            .or(file.allowed_ports)
            .unwrap_or_default(),
        tls_ca_file: overrides.tls_ca_file.or(file.tls_ca_file),
        allow_tls_verify_off: overrides
            .allow_tls_verify_off
            .or(file.allow_tls_verify_off)
            .unwrap_or(false),
        master_key: overrides
            .master_key
            .or(file.master_key)
            .map(|text| MasterKey::parse(&text))
            .transpose()
            .context("master_key (HOOKLINE_MASTER_KEY)")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/hookline\"").unwrap();
        let config = resolve(
            Overrides {
                data_dir: Some("/tmp/x".into()),
                ..Default::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert!(!config.dev);
        assert_eq!(config.url_policy(), UrlPolicy::default());
    }

    #[test]
    fn dev_opens_the_url_policy() {
        let config = resolve(
            Overrides {
                dev: Some(true),
                ..Default::default()
            },
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(config.url_policy(), UrlPolicy::dev());
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn address_lists_come_from_the_file() {
        let file: FileConfig = toml::from_str(
            "allowed_cidrs = [\"10.1.0.0/16\"]\ndenied_cidrs = [\"203.0.113.0/24\", \"2001:db8::/32\"]\nallowed_ports = [443]",
        )
        .unwrap();
        let policy = resolve(Overrides::default(), file).unwrap().url_policy();
        assert_eq!(
            policy.allowed_cidrs,
            ["10.1.0.0/16".parse::<IpNet>().unwrap()]
        );
        assert_eq!(policy.denied_cidrs.len(), 2);
        assert_eq!(policy.allowed_ports, [443]);
        assert!(toml::from_str::<FileConfig>("allowed_cidrs = [\"10.1.0.0/99\"]").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }
}
