//! The reckoning: from the receivers' records and the API's dead letters, did every
//! acknowledged event reach every destination it matches at least once, or end as a
//! dead letter with its attempts recorded? Duplicates are allowed (at-least-once) and
//! counted; an ordered destination must first receive a stream's events in `seq` order.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::load::Acknowledged;
use crate::receivers::{Answer, Record};

/// A destination of the run, as the audit needs it.
pub struct Destination {
    /// Its receiver's index (`Record::destination`).
    pub receiver: usize,
    pub id: String,
    /// `None`: every type; else exact types or `prefix.*`.
    pub types: Option<Vec<&'static str>>,
    pub ordered: bool,
}

impl Destination {
    pub fn wants(&self, event_type: &str) -> bool {
        self.types.as_ref().is_none_or(|types| {
            types.iter().any(|t| match t.strip_suffix('*') {
                Some(prefix) => event_type.starts_with(prefix),
                None => *t == event_type,
            })
        })
    }
}

/// The figures a run ends with.
#[derive(Debug, Default)]
pub struct Reckoning {
    pub expected: usize,
    pub delivered: usize,
    pub dead_lettered: usize,
    pub lost: usize,
    /// Neither delivered nor dead-lettered when the drain ended, but still queued: not
    /// lost, not delivered in time either.
    pub still_queued: usize,
    pub duplicates: usize,
    /// Requests whose signature did not verify or whose body was not their event.
    pub forged: usize,
    /// Events a destination received that it does not match.
    pub misrouted: usize,
    /// Ordered destinations' first receipts that came before an earlier `seq`.
    pub reordered: usize,
    /// Dead letters whose attempts are not all recorded.
    pub dead_letters_without_attempts: usize,
    pub worst_delay: Duration,
}

impl Reckoning {
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.still_queued == 0
            && self.forged == 0
            && self.misrouted == 0
            && self.reordered == 0
            && self.dead_letters_without_attempts == 0
    }
}

/// Event ids by destination id, as the API lists deliveries of one status.
pub type EventsByDestination = HashMap<String, HashSet<String>>;

/// The (destination index, event id) pairs that must arrive or be dead-lettered.
pub fn expected(destinations: &[Destination], acked: &[Acknowledged]) -> Vec<(usize, String)> {
    acked
        .iter()
        .flat_map(|event| {
            destinations
                .iter()
                .enumerate()
                .filter(|(_, d)| d.wants(&event.event_type))
                .map(|(i, _)| (i, event.id.clone()))
        })
        .collect()
}

/// The first 2xx receipt of each (receiver, event).
fn first_successes(records: &[Record]) -> HashMap<(usize, &str), Instant> {
    let mut first = HashMap::new();
    for r in records {
        if matches!(r.answer, Answer::Status(200..=299)) {
            first
                .entry((r.destination, r.webhook_id.as_str()))
                .or_insert(r.at);
        }
    }
    first
}

/// Pairs neither delivered nor dead-lettered yet, per destination.
pub fn unsettled(
    destinations: &[Destination],
    expected: &[(usize, String)],
    records: &[Record],
    dead: &EventsByDestination,
) -> Vec<usize> {
    let first = first_successes(records);
    let mut left = vec![0; destinations.len()];
    for (d, event) in expected {
        let destination = &destinations[*d];
        if !first.contains_key(&(destination.receiver, event.as_str()))
            && !dead
                .get(&destination.id)
                .is_some_and(|ids| ids.contains(event))
        {
            left[*d] += 1;
        }
    }
    left
}

pub fn reckon(
    destinations: &[Destination],
    acked: &[Acknowledged],
    records: &[Record],
    dead: &EventsByDestination,
    queued: &EventsByDestination,
    dead_letters_without_attempts: usize,
) -> Reckoning {
    let expected = expected(destinations, acked);
    let first = first_successes(records);
    let acked_at: HashMap<&str, &Acknowledged> = acked.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut reckoning = Reckoning {
        expected: expected.len(),
        dead_letters_without_attempts,
        ..Reckoning::default()
    };
    for (d, event) in &expected {
        let destination = &destinations[*d];
        match first.get(&(destination.receiver, event.as_str())) {
            Some(at) => {
                reckoning.delivered += 1;
                let delay = at.saturating_duration_since(acked_at[event.as_str()].at);
                reckoning.worst_delay = reckoning.worst_delay.max(delay);
            }
            None if dead
                .get(&destination.id)
                .is_some_and(|ids| ids.contains(event)) =>
            {
                reckoning.dead_lettered += 1;
            }
            None if queued
                .get(&destination.id)
                .is_some_and(|ids| ids.contains(event)) =>
            {
                reckoning.still_queued += 1;
            }
            None => reckoning.lost += 1,
        }
    }
    let successes = records
        .iter()
        .filter(|r| matches!(r.answer, Answer::Status(200..=299)))
        .count();
    reckoning.duplicates = successes.saturating_sub(first.len());
    reckoning.forged = records.iter().filter(|r| !r.genuine).count();
    reckoning.misrouted = records
        .iter()
        .filter(|r| {
            let destination = destinations.iter().find(|d| d.receiver == r.destination);
            let acked = acked_at.get(r.webhook_id.as_str());
            matches!((destination, acked), (Some(d), Some(a)) if !d.wants(&a.event_type))
        })
        .count();
    reckoning.reordered = reordered(destinations, records);
    reckoning
}

/// For each ordered destination and stream: a first 2xx receipt of a `seq` lower than
/// one already received is out of order. Receipts are taken in the order they arrived
/// (records are kept as answers finish, which may be later).
fn reordered(destinations: &[Destination], records: &[Record]) -> usize {
    let mut by_arrival: Vec<&Record> = records.iter().collect();
    by_arrival.sort_by_key(|r| r.at);
    let mut highest: HashMap<(usize, &str), u64> = HashMap::new();
    let mut seen: HashSet<(usize, &str)> = HashSet::new();
    let mut out_of_order = 0;
    for r in by_arrival {
        let ordered = destinations
            .iter()
            .any(|d| d.receiver == r.destination && d.ordered);
        if !ordered || !matches!(r.answer, Answer::Status(200..=299)) {
            continue;
        }
        if !seen.insert((r.destination, r.webhook_id.as_str())) {
            continue;
        }
        let top = highest
            .entry((r.destination, r.stream.as_str()))
            .or_default();
        if r.seq < *top {
            out_of_order += 1;
        }
        *top = (*top).max(r.seq);
    }
    out_of_order
}
