//! The `hookline` command: `serve` runs the server; `migrate` and `org create` are
//! the administrative commands that work on the same data directory.

mod commands;

/// Every request allocates (JSON, headers, SQLite rows); mimalloc's per-thread free lists
/// beat glibc malloc's locking under this load (see BENCHMARKS.md). Its `no_thp` feature
/// keeps it off transparent huge pages, which cost a third more memory for no speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hookline::configuration::{self, FileConfig, Overrides};
use hookline::{startup, telemetry};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "hookline",
    version,
    about = "Hookline: webhook delivery that is signed, retried and never lost.",
    after_help = "Example:\n  hookline serve --dev\n  hookline org create acme\n  hookline listen --port 9000 --secret whsec_…"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the dispatcher.
    #[command(after_help = "Example:\n  hookline serve --dev --listen 127.0.0.1:8080")]
    Serve(ServeArgs),
    /// Create or upgrade the database, then exit (serve does this on start too).
    #[command(
        after_help = "Example:\n  hookline migrate --data-dir ./hookline-data\n  hookline migrate --database-url postgres://hookline@db/hookline"
    )]
    Migrate(StoreArgs),
    /// Manage orgs (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Receive deliveries locally, verify and print them.
    Listen(commands::listen::ListenArgs),
    /// Verify one request's signature (body on stdin); exit 0 if valid, 1 if not.
    Verify(commands::verify::VerifyArgs),
    /// Publish one event to a running server.
    Publish(commands::publish::PublishArgs),
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an org and print its id and first API key (shown only this once).
    #[command(
        after_help = "Example:\n  hookline org create acme\n  hookline org create acme --json"
    )]
    Create {
        /// A name for people to recognise the org by.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct StoreArgs {
    /// Where the embedded database lives.
    #[arg(long, env = "HOOKLINE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of the embedded store (postgres://user@host/db).
    #[arg(
        long,
        env = "HOOKLINE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Connections per node to PostgreSQL.
    #[arg(long, env = "HOOKLINE_PG_MAX_CONNECTIONS", value_name = "N")]
    pg_max_connections: Option<u32>,
    /// A config file (default: ./hookline.toml when it exists).
    #[arg(long, env = "HOOKLINE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// Development mode: allows http and loopback/private destinations. Never in production.
    #[arg(long, env = "HOOKLINE_DEV")]
    dev: bool,
    /// Address to listen on.
    #[arg(long, env = "HOOKLINE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Allow plain-http destination URLs.
    #[arg(long, env = "HOOKLINE_ALLOW_HTTP")]
    allow_http: Option<bool>,
    /// Allow destinations on loopback and private networks.
    #[arg(long, env = "HOOKLINE_ALLOW_PRIVATE_NETWORKS")]
    allow_private_networks: Option<bool>,
    /// Private ranges destinations may use anyway (comma-separated CIDRs).
    #[arg(
        long,
        env = "HOOKLINE_ALLOWED_CIDRS",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    /// Ranges destinations may never use, even public ones (comma-separated CIDRs).
    #[arg(
        long,
        env = "HOOKLINE_DENIED_CIDRS",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    denied_cidrs: Option<Vec<ipnet::IpNet>>,
    /// Destination ports allowed (comma-separated; default any).
    #[arg(
        long,
        env = "HOOKLINE_ALLOWED_PORTS",
        value_name = "PORTS",
        value_delimiter = ','
    )]
    allowed_ports: Option<Vec<u16>>,
    /// Extra CA certificates (a PEM bundle) to trust for destinations.
    #[arg(long, env = "HOOKLINE_TLS_CA_FILE", value_name = "FILE")]
    tls_ca_file: Option<PathBuf>,
    /// Let destinations set `tls_verify: false` (skips certificate checks).
    #[arg(long, env = "HOOKLINE_ALLOW_TLS_VERIFY_OFF")]
    allow_tls_verify_off: Option<bool>,
    /// The key (base64 of 32 bytes) destination secrets are sealed with at rest.
    /// Required with PostgreSQL; embedded mode generates one in the data directory.
    #[arg(
        long,
        env = "HOOKLINE_MASTER_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    master_key: Option<String>,
    /// A lease lasts the destination's timeout plus this many seconds.
    #[arg(long, env = "HOOKLINE_LEASE_MARGIN_SECS", value_name = "SECS")]
    lease_margin_secs: Option<u64>,
    /// Deliveries claimed per round.
    #[arg(long, env = "HOOKLINE_CLAIM_BATCH", value_name = "N")]
    claim_batch: Option<u32>,
    /// Attempts in flight on this node, across all destinations.
    #[arg(long, env = "HOOKLINE_MAX_CONCURRENCY", value_name = "N")]
    max_concurrency: Option<usize>,
    /// Disable a destination that has only failed for this long (default 5 days)…
    #[arg(long, env = "HOOKLINE_AUTO_DISABLE_AFTER_SECS", value_name = "SECS")]
    auto_disable_after_secs: Option<u64>,
    /// …and at least this many times in a row (default 20).
    #[arg(long, env = "HOOKLINE_AUTO_DISABLE_MIN_FAILURES", value_name = "N")]
    auto_disable_min_failures: Option<u32>,
    #[command(flatten)]
    store: StoreArgs,
}

impl StoreArgs {
    /// The configuration with these store settings and everything else as given.
    fn resolve(self, rest: Overrides) -> anyhow::Result<configuration::ServeConfig> {
        let file = FileConfig::load(self.config.as_deref())?;
        configuration::resolve(
            Overrides {
                data_dir: self.data_dir,
                database_url: self.database_url,
                pg_max_connections: self.pg_max_connections,
                ..rest
            },
            file,
        )
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    match run(Cli::parse().command).await {
        Ok(code) => code,
        Err(e) => {
            // The causes, one line, for people; never a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args).await?,
        Command::Migrate(args) => {
            let config = args.resolve(Overrides::default())?;
            config.open_admin_store().await?;
            println!("{} is up to date", config.store_description());
        }
        Command::Org(OrgCommand::Create { name, store, json }) => {
            let store = store
                .resolve(Overrides::default())?
                .open_admin_store()
                .await?;
            commands::org::create(name, store, json).await?
        }
        Command::Listen(args) => commands::listen::run(args).await?,
        Command::Verify(args) => return commands::verify::run(args),
        Command::Publish(args) => commands::publish::run(args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.store.resolve(Overrides {
        listen: args.listen,
        dev: args.dev.then_some(true),
        allow_http: args.allow_http,
        allow_private_networks: args.allow_private_networks,
        allowed_cidrs: args.allowed_cidrs,
        denied_cidrs: args.denied_cidrs,
        allowed_ports: args.allowed_ports,
        tls_ca_file: args.tls_ca_file,
        allow_tls_verify_off: args.allow_tls_verify_off,
        master_key: args.master_key,
        lease_margin_secs: args.lease_margin_secs,
        claim_batch: args.claim_batch,
        max_concurrency: args.max_concurrency,
        auto_disable_after_secs: args.auto_disable_after_secs,
        auto_disable_min_failures: args.auto_disable_min_failures,
        ..Default::default()
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let dispatcher = config.dispatcher_config();
    startup::run(listener, config, dispatcher, shutdown).await
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new claims; finishing attempts in flight");
    shutdown.cancel();
}
