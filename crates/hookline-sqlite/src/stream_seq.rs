//! Each stream's last `seq`, remembered by the writer so that a publish writes it without
//! reading it back. The upsert that returned it (`… RETURNING last_seq`) made SQLite
//! build and drop a temporary table for every publish, to buffer the returned row.
//! Only the writer thread writes `streams` (administrative commands never publish), so
//! what it remembers stays true; what an undone transaction counted is forgotten with it.

use foldhash::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// Streams remembered at most; past this the memory starts over (a read per stream).
const REMEMBERED: usize = 65_536;

#[derive(Default)]
pub struct StreamSeqs {
    /// Org → stream → the last `seq` stored.
    last: HashMap<String, HashMap<String, i64>>,
    remembered: usize,
}

impl StreamSeqs {
    /// Takes the stream's next `seq` and stores it as the last, in the open transaction.
    pub fn next(&mut self, conn: &Connection, org: &str, stream: &str) -> rusqlite::Result<i64> {
        let known = self.last.get(org).and_then(|s| s.get(stream)).copied();
        let stored = match known {
            Some(last) => Some(last),
            None => conn
                .prepare_cached("SELECT last_seq FROM streams WHERE org_id = ?1 AND name = ?2")?
                .query_row(params![org, stream], |r| r.get(0))
                .optional()?,
        };
        let seq = stored.map_or(1, |last| last + 1);
        let sql = match stored {
            Some(_) => "UPDATE streams SET last_seq = ?3 WHERE org_id = ?1 AND name = ?2",
            None => "INSERT INTO streams (org_id, name, last_seq) VALUES (?1, ?2, ?3)",
        };
        conn.prepare_cached(sql)?
            .execute(params![org, stream, seq])?;
        self.remember(org, stream, seq, known.is_none());
        Ok(seq)
    }

    fn remember(&mut self, org: &str, stream: &str, seq: i64, new: bool) {
        if new {
            if self.remembered >= REMEMBERED {
                self.forget();
            }
            self.remembered += 1;
        }
        match self.last.get_mut(org) {
            Some(streams) => match streams.get_mut(stream) {
                Some(last) => *last = seq,
                None => {
                    streams.insert(stream.to_owned(), seq);
                }
            },
            None => {
                let streams = HashMap::from_iter([(stream.to_owned(), seq)]);
                self.last.insert(org.to_owned(), streams);
            }
        }
    }

    pub fn forget(&mut self) {
        self.last.clear();
        self.remembered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams_table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE streams (org_id TEXT NOT NULL, name TEXT NOT NULL,
                 last_seq INTEGER NOT NULL, PRIMARY KEY (org_id, name)) WITHOUT ROWID",
        )
        .unwrap();
        conn
    }

    fn stored(conn: &Connection, stream: &str) -> i64 {
        conn.query_row(
            "SELECT last_seq FROM streams WHERE org_id = 'o' AND name = ?1",
            [stream],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn each_stream_counts_from_one_and_every_seq_is_stored() {
        let conn = streams_table();
        let mut seqs = StreamSeqs::default();
        assert_eq!(seqs.next(&conn, "o", "a").unwrap(), 1);
        assert_eq!(seqs.next(&conn, "o", "a").unwrap(), 2);
        assert_eq!(seqs.next(&conn, "o", "b").unwrap(), 1);
        assert_eq!(seqs.next(&conn, "p", "a").unwrap(), 1);
        assert_eq!((stored(&conn, "a"), stored(&conn, "b")), (2, 1));
    }

    #[test]
    fn after_forgetting_it_carries_on_from_what_is_stored() {
        let conn = streams_table();
        conn.execute(
            "INSERT INTO streams (org_id, name, last_seq) VALUES ('o', 'a', 41)",
            [],
        )
        .unwrap();
        let mut seqs = StreamSeqs::default();
        assert_eq!(seqs.next(&conn, "o", "a").unwrap(), 42);
        seqs.forget();
        conn.execute("UPDATE streams SET last_seq = 7", []).unwrap();
        assert_eq!(seqs.next(&conn, "o", "a").unwrap(), 8);
        assert_eq!(stored(&conn, "a"), 8);
    }
}
