//! `hookline-chaos`: real Hookline nodes, misbehaving receivers, and faults on purpose.
//! Publishers send events while nodes are killed with SIGKILL and restarted and, on
//! PostgreSQL, the run's own database is stopped and started; then the run drains and
//! checks, from what the receivers recorded and the dead letters the API lists, that no
//! acknowledged event was lost. Loopback only; bounded by `--secs` and `--max-events`.

mod audit;
mod cluster;
mod load;
mod receivers;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use audit::{Destination, EventsByDestination};
use cluster::Cluster;
use receivers::{Behaviour, Receivers};

#[derive(Parser)]
#[command(
    about = "Run Hookline under crashes, database outages and misbehaving receivers, and check that nothing acknowledged was lost.",
    after_help = "Examples:\n  cargo build -p hookline -p hookline-chaos\n  target/debug/hookline-chaos --secs 20\n  target/debug/hookline-chaos --store postgres --nodes 3 --secs 600 --max-events 100000"
)]
struct Cli {
    /// `sqlite` (one node, restarted on its data directory) or `postgres` (a server of
    /// the run's own, initdb'd into a temp dir; several nodes).
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    store: String,
    /// Nodes (more than one needs postgres).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// How long events are published and faults made.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// At most this many events.
    #[arg(long, default_value_t = 5_000)]
    max_events: usize,
    /// Seed of the fault schedule (which node, when, how long).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long the run may take to drain after the faults stop. The flaky receivers
    /// answer a third of their requests with 429 (`Retry-After: 1`), 503 or a hang past
    /// the timeout, so their destinations' adaptive limits keep them near one at a time
    /// and paused: their backlog drains slowly, by design.
    #[arg(long, default_value_t = 300)]
    drain_secs: u64,
    /// The hookline binary (default: the one beside this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

const RETRY_EVERY_SECOND: [u32; 20] = [1; 20];

/// The destinations of every run: one per receiver behaviour, some with type filters,
/// one ordered. Fast retries (1 s, 20 times) so a flaky receiver is delivered to within
/// the run, and a 1 s timeout that the hanging receiver outlasts.
fn plan() -> Vec<(Behaviour, Option<Vec<&'static str>>, Value)> {
    let fast = json!({"timeout_secs": 1, "retry_schedule_secs": RETRY_EVERY_SECOND});
    vec![
        (Behaviour::Steady, None, json!({})),
        (Behaviour::Flaky, None, fast.clone()),
        (Behaviour::Flaky, Some(vec!["run.*"]), fast.clone()),
        (Behaviour::Rejecting, Some(vec!["agent.message"]), json!({})),
        (
            Behaviour::Stuttering,
            Some(vec!["turn.completed", "agent.message"]),
            json!({"ordered": true, "retry_schedule_secs": RETRY_EVERY_SECOND}),
        ),
        (
            Behaviour::Dribbling,
            Some(vec!["turn.completed"]),
            json!({"timeout_secs": 5}),
        ),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let postgres = cli.store == "postgres";
    if cli.nodes == 0 || (cli.nodes > 1 && !postgres) {
        bail!("--nodes: one on sqlite, one or more on postgres");
    }
    let binary = cli.server_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("hookline")
    });
    let receivers = Receivers::start().await?;
    let mut cluster = Cluster::start(binary, postgres, cli.nodes).await?;
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        bases: cluster.bases(),
        key: cluster.api_key.clone(),
    };
    let destinations = create_destinations(&api, &receivers).await?;
    println!(
        "chaos: {} on {}, {} node(s), {} s, up to {} events, seed {}",
        cli.store,
        if postgres {
            "its own PostgreSQL"
        } else {
            "a temp dir"
        },
        cli.nodes,
        cli.secs,
        cli.max_events,
        cli.seed
    );

    let started = Instant::now();
    let until = started + Duration::from_secs(cli.secs);
    let load = tokio::spawn(load::publish(
        api.bases.clone(),
        api.key.clone(),
        4,
        cli.max_events,
        until,
    ));
    let faults = make_faults(&mut cluster, cli.seed, started, until).await?;
    let published = load.await.context("the publishers")?;
    println!(
        "faults over: {} acknowledged, {} never acknowledged; draining",
        published.acknowledged.len(),
        published.unacknowledged
    );

    let expected = audit::expected(&destinations, &published.acknowledged);
    let drain_until = Instant::now() + Duration::from_secs(cli.drain_secs);
    // A dead letter stays one, so each round asks only about destinations still owed.
    let mut dead = EventsByDestination::new();
    let mut owed: Vec<&Destination> = destinations.iter().collect();
    loop {
        for destination in &owed {
            let (ids, _) = api.with_status(destination, "dead_letter").await?;
            dead.insert(destination.id.clone(), ids);
        }
        let left = audit::unsettled(&destinations, &expected, &receivers.records(), &dead);
        let total: usize = left.iter().sum();
        if total == 0 || Instant::now() > drain_until {
            break;
        }
        let per_destination: Vec<String> = left
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| format!("destination {d}: {n}"))
            .collect();
        println!(
            "  {total} deliveries neither received nor dead-lettered yet ({})",
            per_destination.join(", ")
        );
        owed = destinations
            .iter()
            .zip(&left)
            .filter(|(_, n)| **n > 0)
            .map(|(d, _)| d)
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut dead_deliveries = Vec::new();
    let mut queued = EventsByDestination::new();
    for destination in &destinations {
        let (ids, deliveries) = api.with_status(destination, "dead_letter").await?;
        dead.insert(destination.id.clone(), ids);
        dead_deliveries.extend(deliveries);
        for status in ["pending", "failed", "delivering"] {
            let (ids, _) = api.with_status(destination, status).await?;
            queued
                .entry(destination.id.clone())
                .or_default()
                .extend(ids);
        }
    }
    let without_attempts = api.dead_letters_without_attempts(&dead_deliveries).await?;
    let records = receivers.records();
    let reckoning = audit::reckon(
        &destinations,
        &published.acknowledged,
        &records,
        &dead,
        &queued,
        without_attempts,
    );
    let lines = [
        (
            "events acknowledged",
            published.acknowledged.len().to_string(),
        ),
        (
            "events never acknowledged",
            published.unacknowledged.to_string(),
        ),
        (
            "5xx answers to publishes (503 aside)",
            published.server_errors.to_string(),
        ),
        ("deliveries expected", reckoning.expected.to_string()),
        ("delivered (2xx)", reckoning.delivered.to_string()),
        ("dead-lettered", reckoning.dead_lettered.to_string()),
        (
            "dead letters missing attempts",
            reckoning.dead_letters_without_attempts.to_string(),
        ),
        (
            "still queued when the drain ended",
            reckoning.still_queued.to_string(),
        ),
        ("LOST", reckoning.lost.to_string()),
        (
            "duplicates (same webhook-id)",
            reckoning.duplicates.to_string(),
        ),
        (
            "forged or mismatched requests",
            reckoning.forged.to_string(),
        ),
        ("misrouted", reckoning.misrouted.to_string()),
        (
            "out of order (ordered destination)",
            reckoning.reordered.to_string(),
        ),
        ("requests received", records.len().to_string()),
        (
            "worst delay, acknowledged to delivered",
            format!("{:.1} s", reckoning.worst_delay.as_secs_f64()),
        ),
        ("node crashes survived", faults.crashes.to_string()),
        ("database outages survived", faults.outages.to_string()),
        (
            "run took",
            format!("{:.0} s", started.elapsed().as_secs_f64()),
        ),
    ];
    for (what, figure) in lines {
        println!("  {what:<40} {figure:>10}");
    }
    let passed = reckoning.passed() && published.server_errors == 0;
    println!("{}", if passed { "PASSED" } else { "FAILED" });
    Ok(match passed {
        true => std::process::ExitCode::SUCCESS,
        false => std::process::ExitCode::FAILURE,
    })
}

async fn create_destinations(api: &Api, receivers: &Receivers) -> anyhow::Result<Vec<Destination>> {
    let mut destinations = Vec::new();
    for (behaviour, types, settings) in plan() {
        let receiver = receivers.add(behaviour);
        let mut body = settings.clone();
        body["url"] = json!(receivers.url(receiver));
        if let Some(types) = &types {
            body["types"] = json!(types);
        }
        let created = api
            .call(reqwest::Method::POST, "/v1/destinations", Some(body))
            .await?;
        let secret = created["secret"]
            .as_str()
            .context("a destination's secret")?;
        receivers.set_secret(receiver, secret.to_owned());
        destinations.push(Destination {
            receiver,
            id: created["id"]
                .as_str()
                .context("a destination's id")?
                .to_owned(),
            ordered: settings["ordered"] == true,
            types,
        });
    }
    Ok(destinations)
}

#[derive(Default)]
struct Faults {
    crashes: usize,
    outages: usize,
}

/// Kills and restarts nodes and, on PostgreSQL, stops and starts the database, at
/// random moments until `until`; every fault is over when this returns.
async fn make_faults(
    cluster: &mut Cluster,
    seed: u64,
    started: Instant,
    until: Instant,
) -> anyhow::Result<Faults> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Faults::default();
    loop {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1_500..4_000))).await;
        if Instant::now() >= until {
            return Ok(faults);
        }
        let at = started.elapsed().as_secs();
        if cluster.has_database() && rng.gen_bool(0.3) {
            let down = Duration::from_millis(rng.gen_range(1_000..3_000));
            println!(
                "  {at:>4} s: database stopped for {:.1} s",
                down.as_secs_f64()
            );
            cluster.stop_database();
            tokio::time::sleep(down).await;
            cluster.start_database();
            faults.outages += 1;
        } else {
            let node = rng.gen_range(0..cluster.node_count());
            println!("  {at:>4} s: node {node} killed (SIGKILL)");
            cluster.kill(node);
            tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1_500))).await;
            cluster.restart(node).await?;
            faults.crashes += 1;
        }
    }
}

/// The run's view of the API, through whichever node answers.
struct Api {
    client: reqwest::Client,
    bases: Vec<String>,
    key: String,
}

impl Api {
    /// One call, tried on each node in turn until one answers 2xx.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut last = String::new();
        for base in &self.bases {
            let mut request = self
                .client
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(&self.key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(r.json().await?),
                Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
        }
        bail!("{method} {path} failed on every node: {last}")
    }

    /// The event ids of a destination's deliveries in `status`, and those deliveries' ids.
    async fn with_status(
        &self,
        destination: &Destination,
        status: &str,
    ) -> anyhow::Result<(HashSet<String>, Vec<String>)> {
        let mut events = HashSet::new();
        let mut deliveries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!(
                "/v1/deliveries?destination={}&status={status}&limit=200",
                destination.id
            );
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.call(reqwest::Method::GET, &path, None).await?;
            for d in page["data"].as_array().into_iter().flatten() {
                events.insert(d["event_id"].as_str().unwrap_or_default().to_owned());
                deliveries.push(d["id"].as_str().unwrap_or_default().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok((events, deliveries)),
            }
        }
    }

    /// Dead letters whose deciding attempt is not recorded. (An attempt cut off by a
    /// crash counts towards `attempts` but has no record: its node died sending it.)
    async fn dead_letters_without_attempts(&self, deliveries: &[String]) -> anyhow::Result<usize> {
        let mut short = 0;
        for id in deliveries {
            let delivery = self
                .call(reqwest::Method::GET, &format!("/v1/deliveries/{id}"), None)
                .await?;
            let attempts = delivery["attempts"].as_u64().unwrap_or(0);
            let last_recorded = delivery["attempt_history"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["attempt"].as_u64())
                .max();
            if attempts == 0 || last_recorded != Some(attempts) {
                short += 1;
            }
        }
        Ok(short)
    }
}
