//! The targets the embedded store is held to (BENCHMARKS.md), and the verdict a run's
//! reports give on each: met or not met, with the figure it was judged on. A verdict is
//! printed, never asserted: speed depends on the host.

use crate::report::Report;

/// One target and how a run did against it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    pub target: &'static str,
    pub measured: String,
    pub met: bool,
}

/// The verdict on every target whose scenario is among `reports`.
pub fn verdicts(reports: &[Report]) -> Vec<Verdict> {
    let find = |name: &str| reports.iter().find(|r| r.scenario == name);
    let mut verdicts = Vec::new();
    let mut judge = |target, measured, met| {
        verdicts.push(Verdict {
            target,
            measured,
            met,
        })
    };
    for (scenario, target, at_least) in [
        ("throughput", "throughput ≥ 20,000 deliveries/s", 20_000.0),
        ("fanout 1→10", "fanout 1→10 ≥ 40,000 deliveries/s", 40_000.0),
    ] {
        if let Some(r) = find(scenario) {
            let rate = r.deliveries_per_sec;
            judge(target, per_sec(rate), rate >= at_least);
        }
    }
    if let Some(r) = find("fanout 1→10000") {
        let secs = r.elapsed_s;
        judge(
            "fanout 1→10,000 delivered < 1 s",
            format!("{secs:.3} s"),
            secs < 1.0,
        );
    }
    let latency = find("latency 200/s");
    if let Some(r) = latency {
        judge(
            "latency e2e p50 ≤ 5 ms, p99 ≤ 15 ms",
            format!("{:.2} / {:.2} ms", r.e2e_p50_ms, r.e2e_p99_ms),
            r.e2e_p50_ms <= 5.0 && r.e2e_p99_ms <= 15.0,
        );
    }
    if let Some(r) = find("backlog") {
        let rss = r.queued_rss_mb.unwrap_or(f64::INFINITY);
        let rate = r.deliveries_per_sec;
        judge(
            "backlog RSS queued ≤ 100 MB, drain ≥ 20,000/s",
            format!("{rss:.1} MB / {}", per_sec(rate)),
            rss <= 100.0 && rate >= 20_000.0,
        );
    }
    if let (Some(r), Some(latency)) = (find("isolation"), latency) {
        let bound = 2.0 * latency.e2e_p99_ms;
        judge(
            "isolation: healthy e2e p99 within 2× latency's p99",
            format!("{:.2} ms (bound {bound:.2} ms)", r.e2e_p99_ms),
            r.e2e_p99_ms <= bound,
        );
    }
    if let Some(r) = find("overload") {
        judge(
            "overload: no 5xx, nothing lost",
            format!("{} 5xx, {} lost", r.server_errors, r.missing),
            r.server_errors == 0 && r.missing == 0,
        );
    }
    verdicts
}

fn per_sec(rate: f64) -> String {
    let whole = rate.round() as u64;
    let (thousands, rest) = (whole / 1000, whole % 1000);
    match thousands {
        0 => format!("{rest}/s"),
        _ => format!("{thousands},{rest:03}/s"),
    }
}

/// The verdicts, if the run measured anything with a target (retention and stats have
/// none).
pub fn print(verdicts: &[Verdict]) {
    if verdicts.is_empty() {
        return;
    }
    println!();
    for v in verdicts {
        let word = if v.met { "met" } else { "NOT MET" };
        println!("{word:>8}  {:<52} {}", v.target, v.measured);
    }
    let met = verdicts.iter().filter(|v| v.met).count();
    println!("{met} of {} targets met", verdicts.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: &str) -> Report {
        Report {
            scenario: scenario.into(),
            ..Report::default()
        }
    }

    #[test]
    fn each_target_is_judged_on_its_own_figure() {
        let mut throughput = report("throughput");
        throughput.deliveries_per_sec = 19_999.4;
        let mut wide = report("fanout 1→10000");
        wide.elapsed_s = 0.35;
        let mut latency = report("latency 200/s");
        (latency.e2e_p50_ms, latency.e2e_p99_ms) = (0.4, 1.0);
        let mut isolation = report("isolation");
        isolation.e2e_p99_ms = 2.5;
        let mut backlog = report("backlog");
        (backlog.queued_rss_mb, backlog.deliveries_per_sec) = (Some(26.0), 45_000.0);
        let verdicts = verdicts(&[throughput, wide, latency, isolation, backlog]);
        let met: Vec<(&str, bool)> = verdicts.iter().map(|v| (v.target, v.met)).collect();
        assert_eq!(
            met,
            [
                ("throughput ≥ 20,000 deliveries/s", false),
                ("fanout 1→10,000 delivered < 1 s", true),
                ("latency e2e p50 ≤ 5 ms, p99 ≤ 15 ms", true),
                ("backlog RSS queued ≤ 100 MB, drain ≥ 20,000/s", true),
                ("isolation: healthy e2e p99 within 2× latency's p99", false),
            ]
        );
        assert_eq!(verdicts[0].measured, "19,999/s");
    }

    #[test]
    fn a_backlog_without_its_queued_rss_or_an_overload_that_lost_one_is_not_met() {
        let mut backlog = report("backlog");
        backlog.deliveries_per_sec = 45_000.0;
        let mut overload = report("overload");
        overload.missing = 1;
        let verdicts = verdicts(&[backlog, overload]);
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts.iter().all(|v| !v.met));
    }
}
