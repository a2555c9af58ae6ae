//! Which destinations have deliveries waiting, and from when. Claims walk this map
//! round-robin and read each destination's due rows through its own index, so a
//! destination with a million queued (or paused, or at its in-flight limit) costs a
//! claim nothing, and a fresh event for another destination is claimed at once.
//! The writer thread updates it on every write that makes a delivery due; it is
//! rebuilt from the table when the store opens.

use std::collections::BTreeMap;

use hookline_core::clock::Millis;
use rusqlite::{Connection, params};

/// A destination whose rows must wait until it is enabled again.
pub const PARKED: Millis = Millis::MAX;

#[derive(Debug, Default)]
pub struct DueIndex {
    /// Destination id → the earliest `run_at` among its due rows (or `PARKED`).
    earliest: BTreeMap<String, Millis>,
    /// Where the next claim starts its round, for fairness.
    cursor: Option<String>,
}

impl DueIndex {
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare(
            "SELECT destination_id, MIN(run_at) FROM deliveries
             WHERE state IN ('pending', 'failed') GROUP BY destination_id",
        )?;
        let earliest = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self {
            earliest,
            cursor: None,
        })
    }

    /// A delivery of `destination` is due at `at`.
    pub fn mark(&mut self, destination: &str, at: Millis) {
        self.earliest
            .entry(destination.to_owned())
            .and_modify(|e| *e = (*e).min(at))
            .or_insert(at);
    }

    /// The destination's rows wait until `unpark`.
    pub fn park(&mut self, destination: &str) {
        if let Some(e) = self.earliest.get_mut(destination) {
            *e = PARKED;
        }
    }

    /// Re-reads when the destination's next row is due (after a claim took rows, or
    /// when it is enabled again).
    pub fn refresh(&mut self, conn: &Connection, destination: &str) -> rusqlite::Result<()> {
        let next: Option<Millis> = conn
            .prepare_cached(
                "SELECT MIN(run_at) FROM deliveries
                 WHERE destination_id = ?1 AND state IN ('pending', 'failed')",
            )?
            .query_row(params![destination], |r| r.get(0))?;
        match next {
            Some(at) => {
                self.earliest.insert(destination.to_owned(), at);
            }
            None => {
                self.earliest.remove(destination);
            }
        }
        Ok(())
    }

    /// Whether `destination` has rows due at `now` (a parked one has none).
    pub fn is_due(&self, destination: &str, now: Millis) -> bool {
        self.earliest.get(destination).is_some_and(|at| *at <= now)
    }

    pub fn forget(&mut self, destination: &str) {
        self.earliest.remove(destination);
    }

    /// Destinations with rows due at `now`, starting after the last claim's first one.
    pub fn due_round(&mut self, now: Millis) -> Vec<String> {
        let due = |(id, at): (&String, &Millis)| (*at <= now).then(|| id.clone());
        let round: Vec<String> = match &self.cursor {
            Some(cursor) => self
                .earliest
                .range::<String, _>((
                    std::ops::Bound::Excluded(cursor),
                    std::ops::Bound::Unbounded,
                ))
                .chain(self.earliest.range::<String, _>(..=cursor))
                .filter_map(due)
                .collect(),
            None => self.earliest.iter().filter_map(due).collect(),
        };
        self.cursor = round.first().cloned();
        round
    }

    /// When the earliest waiting row falls due, ignoring parked destinations.
    pub fn next_due(&self) -> Option<Millis> {
        self.earliest
            .values()
            .copied()
            .filter(|at| *at != PARKED)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_so_every_destination_gets_a_turn_first() {
        let mut due = DueIndex::default();
        for d in ["a", "b", "c"] {
            due.mark(d, 10);
        }
        due.mark("later", 100);
        assert_eq!(due.due_round(50), ["a", "b", "c"]);
        assert_eq!(due.due_round(50), ["b", "c", "a"]);
        assert_eq!(due.due_round(50), ["c", "a", "b"]);
        assert_eq!(due.due_round(100).len(), 4);
    }

    #[test]
    fn marks_keep_the_earliest_and_parked_destinations_are_not_due() {
        let mut due = DueIndex::default();
        due.mark("a", 50);
        due.mark("a", 70);
        assert_eq!(due.next_due(), Some(50));
        due.mark("b", 20);
        due.park("b");
        assert_eq!(due.next_due(), Some(50));
        assert_eq!(due.due_round(1_000), ["a"]);
        due.forget("a");
        assert_eq!(due.next_due(), None);
    }
}
