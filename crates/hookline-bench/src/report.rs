//! One scenario's figures, as JSON and as a row of a readable table.

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub events: u64,
    pub deliveries: u64,
    /// Every request the receiver saw, retries and duplicates included.
    pub receiver_requests: u64,
    pub events_per_sec: f64,
    pub deliveries_per_sec: f64,
    /// From the first publish to the last delivery (or the wait's limit).
    pub elapsed_s: f64,
    pub publish_p50_ms: f64,
    pub publish_p99_ms: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p95_ms: f64,
    pub e2e_p99_ms: f64,
    pub cpu_s_per_1000_deliveries: f64,
    /// KiB the server sent towards the disk per delivery (see `server::Usage`).
    pub disk_kb_per_delivery: f64,
    pub peak_rss_mb: f64,
    /// The server's RSS with the scenario's deliveries queued (`backlog` only).
    pub queued_rss_mb: Option<f64>,
    /// CPU time the hypervisor took from this machine during the run, in percent.
    pub steal_percent: f64,
    pub non_2xx: u64,
    pub server_errors: u64,
    /// Deliveries expected but not received when the scenario ended.
    pub missing: u64,
    pub notes: Vec<String>,
}

/// The p-th percentile (0–100) of `samples` in microseconds, as milliseconds.
pub fn percentile_ms(samples: &mut [u64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)] as f64 / 1000.0
}

pub fn print_table(reports: &[Report]) {
    println!(
        "{:<22} {:>8} {:>9} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8} {:>6} {:>6} {:>7}",
        "scenario",
        "events",
        "delivs",
        "events/s",
        "delivs/s",
        "pub p50",
        "pub p99",
        "e2e p50",
        "e2e p95",
        "e2e p99",
        "cpu/1k",
        "KB/dlv",
        "rss MB",
        "steal%",
        "non2xx",
        "missing"
    );
    for r in reports {
        println!(
            "{:<22} {:>8} {:>9} {:>10.0} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.3} {:>7.1} {:>8.1} {:>6.1} {:>6} {:>7}",
            r.scenario,
            r.events,
            r.deliveries,
            r.events_per_sec,
            r.deliveries_per_sec,
            r.publish_p50_ms,
            r.publish_p99_ms,
            r.e2e_p50_ms,
            r.e2e_p95_ms,
            r.e2e_p99_ms,
            r.cpu_s_per_1000_deliveries,
            r.disk_kb_per_delivery,
            r.peak_rss_mb,
            r.steal_percent,
            r.non_2xx,
            r.missing
        );
        for note in &r.notes {
            println!("    {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let mut s: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(percentile_ms(&mut s, 50.0), 51.0);
        assert_eq!(percentile_ms(&mut s, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut [], 99.0), 0.0);
    }
}
