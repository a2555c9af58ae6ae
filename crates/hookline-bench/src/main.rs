//! `hookline-bench`: measures a real Hookline server process end to end on 127.0.0.1,
//! and says which of BENCHMARKS.md's targets the run met. Build both binaries first:
//! `cargo build --release -p hookline -p hookline-bench`.

/// The bench shares the machine's two cores with the server it measures, so its own
/// work is kept light: the same allocator as the server, whose per-thread free lists
/// cost the bench less time than glibc malloc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod clock;
mod loopback;
mod publisher;
mod receiver;
mod report;
mod scenarios;
mod server;
mod targets;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use scenarios::{Bench, Scale};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Bare HTTP POSTs between two processes, no server: the host's ceiling.
    Loopback,
    Throughput,
    Fanout,
    Latency,
    Backlog,
    Isolation,
    Overload,
    /// Publish latency while retention purges a large history (not part of `all`).
    Retention,
    /// How fast statistics answer over a million attempts (not part of `all`).
    Stats,
    /// Publishing in batches of 100 beside one by one (not part of `all`).
    Batch,
    /// 1,000 Server-Sent Events clients on one stream (not part of `all`).
    Sse,
    /// Issue 29's receivers: one answering at once, one shedding load beyond 50 at a
    /// time, one slowing down halfway (not part of `all`).
    Adaptive,
    All,
    /// The receiver alone, in its own process, for `loopback`.
    #[value(name = loopback::RECEIVER_ONLY, hide = true)]
    ReceiverOnly,
}

#[derive(Parser)]
#[command(
    about = "Benchmark a Hookline server process: publish, deliver, report.",
    after_help = "Example:\n  cargo build --release -p hookline -p hookline-bench\n  target/release/hookline-bench all\n  target/release/hookline-bench loopback   # the host's ceiling, no server\n  target/release/hookline-bench throughput --smoke --json out.json\n  target/release/hookline-bench throughput --max-in-flight 256\n  target/release/hookline-bench throughput --publishers 128\n  target/release/hookline-bench adaptive --max-in-flight 0   # default destination settings"
)]
struct Cli {
    /// Which scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Which store the server uses: sqlite or postgres (a fresh database on 127.0.0.1).
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Hookline nodes sharing the store (more than one needs postgres).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Tiny counts (seconds): checks the harness and correctness, not speed.
    #[arg(long)]
    smoke: bool,
    /// `max_in_flight` of every destination the scenarios create: how many attempts to
    /// one destination may be open at once, so the ceiling of a one-destination run;
    /// 0 leaves it to the server's default.
    #[arg(long, default_value_t = 64)]
    max_in_flight: u32,
    /// `concurrency` of every destination the scenarios create: `adaptive` or `fixed`
    /// (default: the server's default, adaptive).
    #[arg(long)]
    concurrency: Option<String>,
    /// Concurrent publishers (HTTP keep-alive, each waiting for its answer) of the
    /// full-speed scenarios: throughput, fanout 1→10 and backlog's fill; overload uses
    /// four times as many.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    publishers: u16,
    /// The hookline binary (default: the one beside this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Also write the reports as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    if cli.scenario == Scenario::ReceiverOnly {
        loopback::receiver_only().await?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let bench = Bench {
        binary: cli.server_bin.unwrap_or_else(server::default_binary),
        store: cli.store.clone(),
        nodes: cli.nodes,
        scale: Scale { smoke: cli.smoke },
        max_in_flight: cli.max_in_flight,
        concurrency: cli.concurrency.clone(),
        publishers: cli.publishers.into(),
    };
    let wanted = |s: Scenario| cli.scenario == s || cli.scenario == Scenario::All;
    let mut reports = Vec::new();
    if wanted(Scenario::Loopback) {
        reports.push(loopback::loopback(&bench).await?);
    }
    if wanted(Scenario::Throughput) {
        reports.push(scenarios::throughput(&bench).await?);
    }
    if wanted(Scenario::Fanout) {
        reports.extend(scenarios::fanout(&bench).await?);
    }
    if wanted(Scenario::Latency) {
        reports.push(scenarios::latency(&bench).await?);
    }
    if wanted(Scenario::Backlog) {
        reports.push(scenarios::backlog(&bench).await?);
    }
    if wanted(Scenario::Isolation) {
        reports.push(scenarios::isolation(&bench).await?);
    }
    if wanted(Scenario::Overload) {
        reports.push(scenarios::overload(&bench).await?);
    }
    if cli.scenario == Scenario::Retention {
        reports.extend(scenarios::retention(&bench).await?);
    }
    if cli.scenario == Scenario::Batch {
        reports.extend(scenarios::batch(&bench).await?);
    }
    if cli.scenario == Scenario::Sse {
        reports.extend(scenarios::sse(&bench).await?);
    }
    if cli.scenario == Scenario::Adaptive {
        reports.extend(scenarios::adaptive(&bench).await?);
    }
    if cli.scenario == Scenario::Stats {
        reports.extend(scenarios::stats(&bench).await?);
    }
    report::print_table(&reports);
    if cli.smoke || cli.store != "sqlite" || cli.nodes != 1 {
        println!(
            "\n(no verdicts: the targets are for full-size runs on the embedded store, one node)"
        );
    } else {
        targets::print(&targets::verdicts(&reports));
    }
    if let Some(path) = cli.json {
        std::fs::write(&path, serde_json::to_string_pretty(&reports)?)?;
    }
    // Correctness, not speed: everything acknowledged arrived and no publish got a 500.
    let broken = reports.iter().any(|r| r.missing > 0 || r.server_errors > 0);
    Ok(if broken {
        eprintln!("FAILED: deliveries missing or 5xx answers to publishers");
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
