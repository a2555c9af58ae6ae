//! The `hookline` command: `serve` runs the server; `migrate` and `org create` are
//! the administrative commands that work on the same data directory.

mod commands;

/// Every request allocates (JSON, headers, SQLite rows); mimalloc's per-thread free lists
/// beat glibc malloc's locking under this load (see docs/perf-history.md). Its `no_thp` feature
/// keeps it off transparent huge pages, which cost memory for no speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use hookline::configuration::{KeyedStoreConfig, ServeConfig, StoreConfig};
use hookline::startup;
use hookline::telemetry::{self, LogFormat};
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
    /// How log lines are written on stderr: text, or one JSON object per line.
    #[arg(long, global = true, env = "HOOKLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the dispatcher.
    #[command(after_help = "Example:\n  hookline serve --dev --listen 127.0.0.1:8080")]
    Serve(ServeConfig),
    /// Create or upgrade the database, then exit (serve does this on start too).
    #[command(
        after_help = "Example:\n  hookline migrate --data-dir ./hookline-data\n  hookline migrate --database-url postgres://hookline@db/hookline"
    )]
    Migrate(StoreConfig),
    /// Manage orgs (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Receive deliveries locally, verify and print them.
    Listen(commands::listen::ListenArgs),
    /// Verify one request's signature (body on stdin); exit 0 if valid, 1 if not, 2 if
    /// the secret is malformed.
    Verify(commands::verify::VerifyArgs),
    /// Publish one event to a running server.
    Publish(commands::publish::PublishArgs),
    /// Manage API keys from the shell (e.g. for an org whose keys were all revoked).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for an existing org and print it (shown only this once).
    #[command(
        after_help = "Example:\n  hookline key create --org org_01J…\n  hookline key create --org org_01J… --json"
    )]
    Create {
        /// The org's id (`hookline org list` shows them).
        #[arg(long)]
        org: String,
        #[command(flatten)]
        store: StoreConfig,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an org and print its id, first API key and signing secret (each shown
    /// only this once).
    #[command(
        after_help = "Example:\n  hookline org create acme\n  hookline org create acme --json\n  HOOKLINE_MASTER_KEY=… hookline org create acme --database-url postgres://…"
    )]
    Create {
        /// A name for people to recognise the org by.
        name: String,
        #[command(flatten)]
        keyed: KeyedStoreConfig,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the orgs, oldest first.
    #[command(after_help = "Example:\n  hookline org list\n  hookline org list --json")]
    List {
        #[command(flatten)]
        store: StoreConfig,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give an org a retention of its own (how many days its events, deliveries and
    /// attempts are kept; 0 keeps everything), or with --server the server's again.
    #[command(
        after_help = "Example:\n  hookline org retention org_01J… --days 7\n  hookline org retention org_01J… --server --json"
    )]
    Retention {
        /// The org's id.
        id: String,
        /// Days to keep (fractions allowed); 0 keeps everything.
        #[arg(long, required_unless_present = "server", conflicts_with = "server")]
        days: Option<f64>,
        /// Use the server's `--retention-days` for this org again.
        #[arg(long)]
        server: bool,
        #[command(flatten)]
        store: StoreConfig,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete an org: its keys stop working at once, its destinations are deleted and
    /// their pending deliveries canceled. With the embedded store, stop the server first.
    #[command(
        after_help = "Example:\n  hookline org delete org_01J… --yes\n  hookline org delete org_01J… --yes --json"
    )]
    Delete {
        /// The org's id.
        id: String,
        /// Really delete it (without this flag nothing is changed).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        store: StoreConfig,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let format = matches
        .get_one::<LogFormat>("log_format")
        .copied()
        .unwrap_or(LogFormat::Text);
    telemetry::init(format);
    match run(&matches).await {
        Ok(code) => code,
        Err(e) => {
            // The causes, one line, for people; never a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command `matches` names. The settings of `serve`, `migrate` and `org
/// create` take what the config file has where their own matches say that neither the
/// command line nor the environment gave a value.
async fn run(matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let command_matches = subcommand_of(matches).context("no command given")?;
    match Cli::from_arg_matches(matches)?.command {
        Command::Serve(config) => serve(config.with_file(command_matches)?).await?,
        Command::Migrate(config) => {
            let config = config.with_file(command_matches)?;
            startup::open_admin_store(&config).await?;
            println!("{} is up to date", config.description());
        }
        Command::Org(command) => {
            let matches = subcommand_of(command_matches).context("org names a subcommand")?;
            match command {
                OrgCommand::Create { name, keyed, json } => {
                    let keyed = keyed.with_file(matches)?;
                    let store = startup::open_admin_store(&keyed.store).await?;
                    let master_key =
                        startup::master_key(keyed.master_key.as_deref(), &keyed.store)?;
                    commands::org::create(name, store, &master_key, json).await?
                }
                OrgCommand::List { store, json } => {
                    let store = startup::open_admin_store(&store.with_file(matches)?).await?;
                    commands::org::list(store, json).await?
                }
                OrgCommand::Retention {
                    id,
                    days,
                    server: _,
                    store,
                    json,
                } => {
                    let store = startup::open_admin_store(&store.with_file(matches)?).await?;
                    commands::org::set_retention(&id, days, store, json).await?
                }
                OrgCommand::Delete {
                    id,
                    yes,
                    store,
                    json,
                } => {
                    // Only a deletion needs the store to itself; the question does not.
                    let store = store.with_file(matches)?;
                    let store = match yes {
                        true => startup::open_store_alone(&store).await?,
                        false => startup::open_admin_store(&store).await?,
                    };
                    commands::org::delete(&id, yes, store, json).await?
                }
            }
        }
        Command::Key(KeyCommand::Create { org, store, json }) => {
            let matches = subcommand_of(command_matches).context("key names a subcommand")?;
            let store = startup::open_admin_store(&store.with_file(matches)?).await?;
            commands::org::create_key(&org, store, json).await?
        }
        Command::Listen(args) => return commands::listen::run(args).await,
        Command::Verify(args) => return commands::verify::run(args),
        Command::Publish(args) => commands::publish::run(args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The matches of the subcommand `matches` names, if any.
fn subcommand_of(matches: &ArgMatches) -> Option<&ArgMatches> {
    matches.subcommand().map(|(_, subcommand)| subcommand)
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
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
