//! The `hookline` command: `serve` runs the server; `migrate` and `org create` are
//! the administrative commands that work on the same data directory.

mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hookline::configuration::{self, FileConfig, Overrides};
use hookline::{startup, telemetry};
use hookline_dispatch::DispatcherConfig;
use hookline_store::sqlite::SqliteStore;
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
    #[command(after_help = "Example:\n  hookline migrate --data-dir ./hookline-data")]
    Migrate(StoreArgs),
    /// Manage orgs (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Receive deliveries locally, verify and print them.
    Listen(commands::listen::ListenArgs),
    /// Verify one request's signature (body on stdin); exit 0 if valid, 1 if not.
    Verify(commands::verify::VerifyArgs),
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
    #[command(flatten)]
    store: StoreArgs,
}

impl StoreArgs {
    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let file = FileConfig::load(self.config.as_deref())?;
        Ok(configuration::resolve(
            Overrides {
                data_dir: self.data_dir.clone(),
                ..Default::default()
            },
            file,
        )?
        .data_dir)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    telemetry::init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await?,
        Command::Migrate(args) => {
            let dir = args.data_dir()?;
            SqliteStore::open_shared(&dir)?;
            println!("database in {} is up to date", dir.display());
        }
        Command::Org(OrgCommand::Create { name, store, json }) => {
            commands::org::create(name, store.data_dir()?, json).await?
        }
        Command::Listen(args) => commands::listen::run(args).await?,
        Command::Verify(args) => return commands::verify::run(args),
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = FileConfig::load(args.store.config.as_deref())?;
    let config = configuration::resolve(
        Overrides {
            listen: args.listen,
            data_dir: args.store.data_dir,
            dev: args.dev,
            allow_http: args.allow_http,
            allow_private_networks: args.allow_private_networks,
        },
        file,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    startup::run(listener, config, DispatcherConfig::default(), shutdown).await
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
