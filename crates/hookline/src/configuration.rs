//! The server's settings: one struct, each field declared once with its flag, its
//! `HOOKLINE_*` variable and its default, read once by `hookline serve`. A flag wins
//! over the environment, which wins over `hookline.toml`, which wins over the default.
//! Nothing here touches a database or a key file: `startup` opens what this names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use hookline_core::auto_disable::AutoDisable;
use hookline_core::url_policy::UrlPolicy;
use hookline_dispatch::DispatcherConfig;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Read when `--config` names no file and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "hookline.toml";

/// Where the data lives: all that `migrate` and `org create` need.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Where the embedded database lives.
    #[arg(
        long,
        env = "HOOKLINE_DATA_DIR",
        value_name = "DIR",
        default_value = "./hookline-data"
    )]
    pub data_dir: PathBuf,
    /// Use PostgreSQL instead of the embedded store (postgres://user@host/db; default:
    /// unset, the embedded store).
    #[arg(
        long,
        env = "HOOKLINE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Connections per node to PostgreSQL (enough for the API and the dispatcher on a
    /// 2-core node).
    #[arg(
        long,
        env = "HOOKLINE_PG_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10
    )]
    pub pg_max_connections: u32,
    /// A config file (default: ./hookline.toml when it exists).
    #[arg(long = "config", env = "HOOKLINE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

/// What `org create` needs: the store, and the master key the org's signing secret is
/// sealed with (the one `serve` uses).
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct KeyedStoreConfig {
    #[command(flatten)]
    #[serde(flatten)]
    pub store: StoreConfig,
    /// The key (base64 of 32 bytes) secrets are sealed with at rest: the same as
    /// `serve`'s. Required with PostgreSQL; embedded mode keeps one in the data directory.
    #[arg(
        long,
        env = "HOOKLINE_MASTER_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub master_key: Option<String>,
}

impl KeyedStoreConfig {
    /// These settings as clap read them, with the config file filling in the rest.
    pub fn with_file(self, matches: &ArgMatches) -> anyhow::Result<Self> {
        let file = file_settings(self.store.config_file.as_deref())?;
        layered(self, matches, &file)
    }
}

/// Everything `hookline serve` runs with.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Development mode: allows http and loopback/private destinations. Never in production.
    #[arg(long, env = "HOOKLINE_DEV")]
    pub dev: bool,
    /// Address to listen on.
    #[arg(
        long,
        env = "HOOKLINE_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Allow plain-http destination URLs.
    #[arg(long, env = "HOOKLINE_ALLOW_HTTP", value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = false)]
    pub allow_http: bool,
    /// Allow destinations on loopback and private networks.
    #[arg(long, env = "HOOKLINE_ALLOW_PRIVATE_NETWORKS", value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = false)]
    pub allow_private_networks: bool,
    /// Private ranges destinations may use anyway (comma-separated CIDRs; default none).
    #[arg(
        long,
        env = "HOOKLINE_ALLOWED_CIDRS",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub allowed_cidrs: Vec<IpNet>,
    /// Ranges destinations may never use, even public ones (comma-separated CIDRs;
    /// default none).
    #[arg(
        long,
        env = "HOOKLINE_DENIED_CIDRS",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub denied_cidrs: Vec<IpNet>,
    /// Destination ports allowed (comma-separated; default any).
    #[arg(
        long,
        env = "HOOKLINE_ALLOWED_PORTS",
        value_name = "PORTS",
        value_delimiter = ','
    )]
    pub allowed_ports: Vec<u16>,
    /// Extra CA certificates (a PEM bundle) to trust for destinations (default: the
    /// web's roots only).
    #[arg(long, env = "HOOKLINE_TLS_CA_FILE", value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Let destinations set `tls_verify: false` (skips certificate checks).
    #[arg(long, env = "HOOKLINE_ALLOW_TLS_VERIFY_OFF", value_name = "BOOL", action = clap::ArgAction::Set, default_value_t = false)]
    pub allow_tls_verify_off: bool,
    /// The key (base64 of 32 bytes) destination secrets are sealed with at rest.
    /// Required with PostgreSQL; embedded mode generates one in the data directory.
    #[arg(
        long,
        env = "HOOKLINE_MASTER_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub master_key: Option<String>,
    /// A bearer token `GET /metrics` asks for; unset, the metrics are open to anyone who
    /// can reach the server.
    #[arg(
        long,
        env = "HOOKLINE_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// This node's name among the nodes sharing a PostgreSQL database: each running node
    /// needs its own, and a node restarted under the same name takes back its leases at
    /// once. Default: the host name and the listen port.
    #[arg(long, env = "HOOKLINE_NODE_ID", value_name = "NAME")]
    pub node_id: Option<String>,
    /// A lease lasts the destination's timeout plus this many seconds.
    #[arg(long, env = "HOOKLINE_LEASE_MARGIN_SECS", value_name = "SECS",
          default_value_t = DispatcherConfig::default().lease_margin.as_secs())]
    pub lease_margin_secs: u64,
    /// Deliveries claimed per round.
    #[arg(long, env = "HOOKLINE_CLAIM_BATCH", value_name = "N",
          default_value_t = DispatcherConfig::default().batch_size)]
    pub claim_batch: u32,
    /// Attempts in flight on this node, across all destinations.
    #[arg(long, env = "HOOKLINE_MAX_CONCURRENCY", value_name = "N",
          default_value_t = DispatcherConfig::default().max_concurrency)]
    pub max_concurrency: usize,
    /// Disable a destination that has only failed for this long…
    #[arg(long, env = "HOOKLINE_AUTO_DISABLE_AFTER_SECS", value_name = "SECS",
          default_value_t = AutoDisable::default().after_ms as u64 / 1000)]
    pub auto_disable_after_secs: u64,
    /// …and at least this many times in a row.
    #[arg(long, env = "HOOKLINE_AUTO_DISABLE_MIN_FAILURES", value_name = "N",
          default_value_t = AutoDisable::default().min_failures as u32)]
    pub auto_disable_min_failures: u32,
    /// Seconds a client has to send a request's head; also how long an idle
    /// keep-alive connection is kept.
    #[arg(
        long,
        env = "HOOKLINE_HEADER_READ_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's body.
    #[arg(
        long,
        env = "HOOKLINE_BODY_READ_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 30
    )]
    pub body_read_timeout_secs: u64,
    /// API connections open at once; one more gets a 503 and is closed.
    #[arg(
        long,
        env = "HOOKLINE_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 4096
    )]
    pub max_connections: usize,
    /// Days events, deliveries and attempts are kept (fractions allowed); 0 keeps
    /// everything. Unfinished deliveries and their events are kept however old.
    #[arg(
        long,
        env = "HOOKLINE_RETENTION_DAYS",
        value_name = "DAYS",
        default_value_t = 30.0
    )]
    pub retention_days: f64,
    /// Seconds between retention passes; each removes what fell out of the window, in
    /// batches of its own short transactions.
    #[arg(
        long,
        env = "HOOKLINE_RETENTION_INTERVAL_SECS",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub retention_interval_secs: u64,
    /// Seconds between the log's summary lines (published, delivered, failed, due,
    /// oldest due); 0 for none.
    #[arg(
        long,
        env = "HOOKLINE_LOG_SUMMARY_SECS",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub log_summary_secs: u64,
    /// Destinations one org may hold; 0 for no limit.
    #[arg(
        long,
        env = "HOOKLINE_MAX_DESTINATIONS_PER_ORG",
        value_name = "N",
        default_value_t = 1_000
    )]
    pub max_destinations_per_org: u32,
    /// Events one org may publish per second on this node (a second's worth may come
    /// at once); beyond it, 429 with Retry-After. 0 for no limit.
    #[arg(
        long,
        env = "HOOKLINE_ORG_EVENTS_PER_SEC",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub org_events_per_sec: u32,
    /// Redeliveries one org may ask for per minute on this node; beyond it, 429 with
    /// Retry-After. 0 for no limit.
    #[arg(
        long,
        env = "HOOKLINE_ORG_REDELIVERIES_PER_MIN",
        value_name = "N",
        default_value_t = 600
    )]
    pub org_redeliveries_per_min: u32,
    #[command(flatten)]
    #[serde(flatten)]
    pub store: StoreConfig,
}

impl ServeConfig {
    /// Every setting at its default, whatever the environment says.
    pub fn defaults() -> Self {
        let command = Self::augment_args(clap::Command::new("hookline"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches = command.get_matches_from(["hookline"]);
        Self::from_arg_matches(&matches).expect("every setting has a default or is optional")
    }

    /// These settings as clap read them from the command line and environment
    /// (`matches` says which it gave), with the config file filling in the rest; checked.
    pub fn with_file(self, matches: &ArgMatches) -> anyhow::Result<Self> {
        let file = file_settings(self.store.config_file.as_deref())?;
        let config = layered(self, matches, &file)?;
        anyhow::ensure!(
            config.claim_batch > 0 && config.max_concurrency > 0 && config.max_connections > 0,
            "claim_batch, max_concurrency and max_connections must be at least 1"
        );
        anyhow::ensure!(
            config.header_read_timeout_secs > 0 && config.body_read_timeout_secs > 0,
            "header_read_timeout_secs and body_read_timeout_secs must be at least 1"
        );
        Ok(config)
    }

    /// The API server's limits from this configuration.
    pub fn http_limits(&self) -> crate::http_server::HttpLimits {
        crate::http_server::HttpLimits {
            header_read: std::time::Duration::from_secs(self.header_read_timeout_secs),
            body_read: std::time::Duration::from_secs(self.body_read_timeout_secs),
            max_connections: self.max_connections,
        }
    }

    /// The limits every org is held to.
    pub fn org_limits(&self) -> hookline_api::OrgLimitsConfig {
        hookline_api::OrgLimitsConfig {
            max_destinations: self.max_destinations_per_org,
            events_per_sec: self.org_events_per_sec,
            redeliveries_per_min: self.org_redeliveries_per_min,
        }
    }

    /// The dispatcher's settings from this configuration.
    pub fn dispatcher_config(&self) -> DispatcherConfig {
        DispatcherConfig {
            node_id: self.node_id.clone().unwrap_or_else(|| {
                let host = gethostname::gethostname();
                format!("{}:{}", host.to_string_lossy(), self.listen.port())
            }),
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

impl StoreConfig {
    /// These settings as clap read them (`matches` says which it gave), with the
    /// config file filling in the rest.
    pub fn with_file(self, matches: &ArgMatches) -> anyhow::Result<Self> {
        let file = file_settings(self.config_file.as_deref())?;
        layered(self, matches, &file)
    }

    /// Where the data lives, for people (never the URL, which may hold a password).
    pub fn description(&self) -> String {
        match &self.database_url {
            Some(_) => "the PostgreSQL database".to_owned(),
            None => format!("the embedded database in {}", self.data_dir.display()),
        }
    }
}

/// The settings in the config file at `path` (or the default file, if it exists), by
/// name; a name that is not a setting of `serve` is an error.
fn file_settings(path: Option<&Path>) -> anyhow::Result<BTreeMap<String, Value>> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(BTreeMap::new());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let settings = parse_file(&text)
        .with_context(|| format!("{} is not a valid Hookline config", path.display()))?;
    Ok(settings)
}

/// The settings of a config file's text, each checked to be a setting of `serve`.
fn parse_file(text: &str) -> anyhow::Result<BTreeMap<String, Value>> {
    let settings: BTreeMap<String, Value> = toml::from_str(text)?;
    let known = serde_json::to_value(ServeConfig::defaults())?;
    if let Some(unknown) = settings
        .keys()
        .find(|key| known.get(key.as_str()).is_none())
    {
        anyhow::bail!("unknown setting `{unknown}`");
    }
    Ok(settings)
}

/// `given` as clap read it, except that a setting neither the command line nor the
/// environment gave takes the file's value, if the file has one.
fn layered<T: Serialize + DeserializeOwned>(
    given: T,
    matches: &ArgMatches,
    file: &BTreeMap<String, Value>,
) -> anyhow::Result<T> {
    let mut merged = serde_json::to_value(given)?;
    let fields = merged
        .as_object_mut()
        .context("settings are a table of named values")?;
    for (name, value) in fields.iter_mut() {
        let stated = matches!(
            matches.value_source(name),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if let (false, Some(from_file)) = (stated, file.get(name)) {
            *value = from_file.clone();
        }
    }
    serde_json::from_value(merged).map_err(|e| anyhow::anyhow!("in the config file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve` with `args`, as read with `file` for the config file.
    fn serve(args: &[&str], file: &str) -> anyhow::Result<ServeConfig> {
        let command = ServeConfig::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches = command.try_get_matches_from([&["serve"], args].concat())?;
        let given = ServeConfig::from_arg_matches(&matches)?;
        layered(given, &matches, &parse_file(file)?)
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/hookline\"\nclaim_batch = 7";
        let config = serve(&["--data-dir", "/tmp/x", "--claim-batch", "9"], file).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.store.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.claim_batch, 9);
        assert!(!config.dev);
        assert_eq!(config.url_policy(), UrlPolicy::default());
    }

    #[test]
    fn the_defaults_are_the_dispatchers_and_the_contracts() {
        let config = ServeConfig::defaults();
        let dispatcher = DispatcherConfig::default();
        assert_eq!(config.claim_batch, dispatcher.batch_size);
        assert_eq!(config.max_concurrency, dispatcher.max_concurrency);
        assert_eq!(
            config.dispatcher_config().auto_disable,
            AutoDisable::default()
        );
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.store.data_dir, PathBuf::from("./hookline-data"));
    }

    #[test]
    fn dev_opens_the_url_policy() {
        let config = serve(&["--dev"], "").unwrap();
        assert_eq!(config.url_policy(), UrlPolicy::dev());
    }

    #[test]
    fn address_lists_come_from_the_file() {
        let file = "allowed_cidrs = [\"10.1.0.0/16\"]\ndenied_cidrs = [\"203.0.113.0/24\", \"2001:db8::/32\"]\nallowed_ports = [443]";
        let policy = serve(&[], file).unwrap().url_policy();
        assert_eq!(
            policy.allowed_cidrs,
            ["10.1.0.0/16".parse::<IpNet>().unwrap()]
        );
        assert_eq!(policy.denied_cidrs.len(), 2);
        assert_eq!(policy.allowed_ports, [443]);
        assert!(serve(&[], "allowed_cidrs = [\"10.1.0.0/99\"]").is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let error = serve(&[], "lisen = \"x\"").unwrap_err();
        assert!(error.to_string().contains("`lisen`"), "{error}");
        assert!(serve(&[], "config_file = \"x.toml\"").is_err());
    }
}
