//! Wiring: open the store and the master key the configuration names, start the
//! dispatcher, serve the API on a bound listener, and shut both down in order when the
//! token is canceled.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hookline_api::{AppState, EventFeed, Metrics, OrgLimits};
use hookline_core::clock::{Clock, SystemClock};
use hookline_core::sealed::MasterKey;
use hookline_dispatch::{Dispatcher, DispatcherConfig};
use hookline_postgres::PgStore;
use hookline_sqlite::SqliteStore;
use hookline_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::configuration::{ServeConfig, StoreConfig};
use crate::http_server;

/// The master key file in an embedded data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Open files kept for what is not an API connection: the store's files and
/// connections, the dispatcher's attempts (up to `max_concurrency`), the log.
const OTHER_OPEN_FILES: u64 = 1024;

/// Runs the server on `listener` until `shutdown` is canceled. In-flight attempts get
/// the dispatcher's grace period to finish; unfinished ones are handed back.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    dispatcher_config: DispatcherConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = open_store(&config.store, &dispatcher_config.node_id, &shutdown).await?;
    let node_id = dispatcher_config.node_id.clone();
    let master_key = master_key(config.master_key.as_deref(), &config.store)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = config.url_policy();
    if policy.allow_private || policy.allow_http {
        tracing::warn!(
            allow_http = policy.allow_http,
            allow_private_networks = policy.allow_private,
            "DEVELOPMENT MODE: destinations may use plain http and loopback/private addresses; never run this way in production"
        );
    }
    if !policy.allowed_cidrs.is_empty() {
        tracing::warn!(allowed_cidrs = ?policy.allowed_cidrs, "destinations may use these private ranges");
    }
    if policy.allow_tls_verify_off {
        tracing::warn!("destinations may turn off TLS certificate checks (allow_tls_verify_off)");
    }
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        clock.clone(),
        master_key.clone(),
        dispatcher_config,
    )?);
    anyhow::ensure!(
        config.retention_days.is_finite() && config.retention_days >= 0.0,
        "--retention-days must be a number of days, 0 or more"
    );
    // It runs even when the server keeps everything: an org may have a retention of its own.
    tokio::spawn(crate::retention::run(
        store.clone(),
        clock.clone(),
        (config.retention_days > 0.0)
            .then(|| std::time::Duration::from_secs_f64(config.retention_days * 86_400.0)),
        std::time::Duration::from_secs(config.retention_interval_secs.max(1)),
        shutdown.clone(),
    ));
    tokio::spawn(crate::replays::run(
        store.clone(),
        clock.clone(),
        node_id,
        shutdown.clone(),
    ));
    // Before anything is sent: an org in test mode stays in it across a restart.
    dispatcher.refresh_test_modes().await?;
    tokio::spawn(refresh_test_modes(dispatcher.clone(), shutdown.clone()));
    if config.log_summary_secs > 0 {
        tokio::spawn(crate::summary::run(
            dispatcher.clone(),
            store.clone(),
            clock.clone(),
            std::time::Duration::from_secs(config.log_summary_secs),
            shutdown.clone(),
        ));
    }
    let metrics = Metrics::new(
        dispatcher.activity(),
        &store.commit_times(),
        config.metrics_token.clone(),
    );
    let state = AppState {
        store,
        clock,
        url_policy: Arc::new(policy),
        master_key,
        dispatcher: dispatcher.clone(),
        limits: Arc::new(OrgLimits::new(config.org_limits())),
        metrics: Arc::new(metrics),
        feed: EventFeed::new(shutdown.clone()),
    };
    let mut http_limits = config.http_limits();
    match http_server::raise_open_files_limit() {
        // The store, the dispatcher's sends and the logs need descriptors of their own.
        Ok(limit) if limit < http_limits.max_connections as u64 + OTHER_OPEN_FILES => {
            let max_connections = limit.saturating_sub(OTHER_OPEN_FILES).max(1) as usize;
            tracing::warn!(
                open_files_limit = limit,
                max_connections,
                "max_connections lowered to fit the open files limit; raise the limit (ulimit -Hn) to allow more"
            );
            http_limits.max_connections = max_connections;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let dispatching = tokio::spawn(dispatcher.run(shutdown.clone()));
    tracing::info!(
        address = %listener.local_addr()?,
        store = if config.store.database_url.is_some() { "postgres" } else { "sqlite" },
        "Hookline is listening"
    );
    http_server::serve(
        listener,
        hookline_api::router(state),
        http_limits,
        shutdown.clone(),
    )
    .await;
    dispatching.await.context("the dispatcher task failed")?;
    tracing::info!("Hookline stopped");
    Ok(())
}

/// Opens the store a server runs on: PostgreSQL when a URL is set, joined as node
/// `node_id` until `shutdown`, else the embedded one, which this process then owns alone.
async fn open_store(
    config: &StoreConfig,
    node_id: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database_url {
        Some(url) => {
            let store = PgStore::connect(url, config.pg_max_connections)
                .await
                .context("connecting to PostgreSQL")?;
            store
                .join(node_id, shutdown.clone())
                .await
                .context("joining the nodes on PostgreSQL")?;
            Arc::new(store)
        }
        None => Arc::new(
            SqliteStore::open(&config.data_dir)
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
        ),
    })
}

/// The store for an administrative command that must not run beside a server on the
/// same embedded store, whose caches would not see its change (PostgreSQL nodes read
/// what it changes, so there it may).
pub async fn open_store_alone(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database_url {
        Some(_) => open_admin_store(config).await?,
        None => Arc::new(SqliteStore::open(&config.data_dir).with_context(|| {
            format!(
                "opening the store in {}; stop the server that uses it first",
                config.data_dir.display()
            )
        })?),
    })
}

/// The store for a short administrative command that may run beside a server.
pub async fn open_admin_store(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database_url {
        Some(url) => Arc::new(
            PgStore::connect(url, 2)
                .await
                .context("connecting to PostgreSQL")?,
        ),
        None => Arc::new(SqliteStore::open_shared(&config.data_dir)?),
    })
}

/// The configured master key; with the embedded store and none configured, the one in
/// the data directory, generated (mode 0600) on first use.
pub fn master_key(given: Option<&str>, store: &StoreConfig) -> anyhow::Result<MasterKey> {
    if let Some(text) = given {
        return MasterKey::parse(text).context("master_key (HOOKLINE_MASTER_KEY)");
    }
    anyhow::ensure!(
        store.database_url.is_none(),
        "HOOKLINE_MASTER_KEY is required with PostgreSQL (every node must use the same key; \
         make one with: openssl rand -base64 32)"
    );
    let path = store.data_dir.join(MASTER_KEY_FILE);
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

/// Creates `path` readable and writable by its owner only, failing if it exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// Each second, which orgs are in test mode (a switch made through another node).
async fn refresh_test_modes(dispatcher: Arc<Dispatcher>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = dispatcher.refresh_test_modes().await {
            tracing::warn!(error = %e, "could not read which orgs are in test mode; will retry");
        }
    }
}
