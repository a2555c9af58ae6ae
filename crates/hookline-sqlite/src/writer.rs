//! Group commit. Every write is a job sent to one writer thread, which owns the only
//! writing connection. The thread takes whatever jobs are waiting, runs them in one
//! `BEGIN IMMEDIATE` transaction, commits once, and only then answers each caller. So
//! durability (`synchronous=FULL`) costs one fsync per batch, not one per request, and
//! no caller hears "ok" before its write is on disk.
//!
//! One job's failure must not undo the others. Jobs run without savepoints first: a
//! savepoint makes SQLite copy every page a job touches into a sub-journal before
//! changing it, which is costly on the writer's only thread, and jobs almost never fail. If one
//! does, the whole transaction is rolled back and every job of the batch runs again,
//! each in its own savepoint, so only the failing one is undone. So a job may run twice
//! and must be repeatable (`FnMut`), and what it changed in memory is rebuilt after the
//! rollback (`WriterState::forget_uncommitted`).
//!
//! The dispatcher's bookkeeping (claims, attempt results, released leases) is written
//! with `synchronous=NORMAL`: it survives a crash of the process, and what a power cut
//! might undo is only a claim or a result, which means a delivery is sent again
//! (at-least-once), never lost. So each batch is two transactions: the bookkeeping
//! first, committed without an fsync and answered at once (a claim waiting on the
//! publishes' fsync leaves the destination's slots idle), then the publishes and other
//! API writes with `synchronous=FULL`, which also makes every earlier commit durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::WriterState;
use crate::stream_index::{self, FlushTimer};
use hookline_store::{CommitTimes, StoreError, StoreResult};

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 1024;
/// Jobs waiting for the writer beyond which a publish is refused as busy.
const QUEUE_CAPACITY: usize = 8192;

struct Job {
    durability: Durability,
    task: Box<dyn Task>,
}

/// A caller's write as the writer sees it, whatever its result type.
trait Task: Send {
    /// Runs the work in the open transaction, inside a savepoint of its own when
    /// `isolated`; says whether it succeeded. The result is kept for `answer`.
    fn attempt(&mut self, conn: &Connection, state: &mut WriterState, isolated: bool) -> bool;
    /// Answers the caller with the last attempt's result, or with the commit's error.
    fn answer(self: Box<Self>, commit_error: Option<&str>);
}

struct Pending<T, F> {
    work: F,
    result: Option<StoreResult<T>>,
    caller: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Task for Pending<T, F>
where
    T: Send,
    F: FnMut(&Connection, &mut WriterState) -> StoreResult<T> + Send,
{
    fn attempt(&mut self, conn: &Connection, state: &mut WriterState, isolated: bool) -> bool {
        let result = if isolated {
            in_savepoint(conn, |conn| (self.work)(conn, state))
        } else {
            (self.work)(conn, state)
        };
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, commit_error: Option<&str>) {
        let Pending {
            work,
            result,
            caller,
        } = *self;
        // Before the caller wakes, so that what the work shares with it (see
        // `SqliteStore::complete`) is released last, and freed, by the caller's thread.
        drop(work);
        let answer = match (commit_error, result) {
            (Some(e), _) => Err(StoreError::Unavailable(e.to_owned())),
            (None, Some(result)) => result,
            (None, None) => Err(StoreError::Unavailable("the writer skipped a job".into())),
        };
        let _ = caller.send(answer);
    }
}

/// What a write must survive once its caller has been answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Power loss (`synchronous=FULL`): anything a user was told is stored.
    PowerLoss,
    /// A crash of this process (`synchronous=NORMAL`): the dispatcher's bookkeeping.
    ProcessCrash,
}

pub struct Writer {
    jobs: mpsc::Sender<Job>,
    commit_times: CommitTimes,
}

/// Whether a caller waits for room in the queue or is told the store is busy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    Wait,
    Refuse,
}

impl Writer {
    /// Starts the writer thread; it restarts the WAL when `restart_wanted` is raised.
    pub fn start(conn: Connection, state: WriterState, restart_wanted: Arc<AtomicBool>) -> Self {
        let (jobs, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let commit_times = CommitTimes::default();
        let times = commit_times.clone();
        std::thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || write_loop(conn, state, receiver, restart_wanted, times))
            .expect("spawning the writer thread");
        Self { jobs, commit_times }
    }

    /// How long its group commits take, from `BEGIN` to the end of `COMMIT`.
    pub fn commit_times(&self) -> CommitTimes {
        self.commit_times.clone()
    }

    /// Runs `f` in the next group transaction and returns its result once committed.
    /// `f` may run more than once (see the module's doc); only its last run counts.
    pub async fn run<T, F>(
        &self,
        when_full: WhenFull,
        durability: Durability,
        f: F,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut WriterState) -> StoreResult<T> + Send + 'static,
    {
        let (caller, answered) = oneshot::channel();
        let task = Box::new(Pending {
            work: f,
            result: None,
            caller,
        });
        let job = Job { durability, task };
        let queued = match when_full {
            WhenFull::Wait => self.jobs.send(job).await.map_err(|_| ()),
            WhenFull::Refuse => self.jobs.try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => (),
                mpsc::error::TrySendError::Closed(_) => (),
            }),
        };
        if queued.is_err() {
            return Err(if self.jobs.is_closed() {
                StoreError::Unavailable("the writer has stopped".into())
            } else {
                StoreError::Busy
            });
        }
        answered
            .await
            .map_err(|_| StoreError::Unavailable("the writer dropped a job".into()))?
    }
}

/// Runs one of the writer's own fixed statements. Cached: they run for every job or every
/// transaction, so parsing them each time shows in profiles.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([]))?;
    Ok(())
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    run(conn, "SAVEPOINT job")?;
    match f(conn) {
        Ok(value) => {
            run(conn, "RELEASE job")?;
            Ok(value)
        }
        Err(e) => {
            run(conn, "ROLLBACK TO job")?;
            run(conn, "RELEASE job")?;
            Err(e)
        }
    }
}

fn write_loop(
    conn: Connection,
    mut state: WriterState,
    mut jobs: mpsc::Receiver<Job>,
    restart_wanted: Arc<AtomicBool>,
    commit_times: CommitTimes,
) {
    let mut group = Group {
        conn,
        synchronous: Durability::PowerLoss,
        stream_flush: FlushTimer::new(),
        commit_times,
    };
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Bookkeeping commits first, on its own and without an fsync: the dispatcher
        // waits on its claims, and should not also wait for the publishes' fsync.
        let (bookkeeping, durable): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|j| j.durability == Durability::ProcessCrash);
        group.commit(&mut state, bookkeeping, Durability::ProcessCrash);
        group.commit(&mut state, durable, Durability::PowerLoss);
        if restart_wanted.swap(false, Ordering::Relaxed) {
            // Between transactions the writer blocks nobody by waiting for itself; see
            // `start_checkpoints` for why the WAL must restart.
            if let Err(e) = group
                .conn
                .query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, "restarting the WAL failed; will retry");
            }
        }
    }
}

/// The writer's connection and what it remembers between transactions.
struct Group {
    conn: Connection,
    synchronous: Durability,
    stream_flush: FlushTimer,
    commit_times: CommitTimes,
}

impl Group {
    /// Runs `jobs` in one transaction committed with `durability`, then answers each.
    fn commit(&mut self, state: &mut WriterState, jobs: Vec<Job>, durability: Durability) {
        if jobs.is_empty() {
            return;
        }
        let conn = &self.conn;
        if durability != self.synchronous {
            let pragma = match durability {
                Durability::PowerLoss => "PRAGMA synchronous = FULL",
                Durability::ProcessCrash => "PRAGMA synchronous = NORMAL",
            };
            match run(conn, pragma) {
                Ok(()) => self.synchronous = durability,
                Err(e) => {
                    // Dropping the jobs answers each caller that the store is unavailable.
                    drop(jobs);
                    tracing::error!(error = %e, "cannot set the commit durability");
                    return;
                }
            }
        }
        let mut tasks: Vec<Box<dyn Task>> = jobs.into_iter().map(|j| j.task).collect();
        let began = Instant::now();
        if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
            drop(tasks);
            tracing::error!(error = %e, "cannot begin a write transaction");
            return;
        }
        if !tasks.iter_mut().all(|t| t.attempt(conn, state, false)) {
            // Undo the batch and run it again with each job in a savepoint.
            let again = run(conn, "ROLLBACK").and_then(|()| run(conn, "BEGIN IMMEDIATE"));
            state.forget_uncommitted(conn);
            if let Err(e) = again {
                drop(tasks);
                tracing::error!(error = %e, "cannot run a failed batch again");
                return;
            }
            for task in &mut tasks {
                task.attempt(conn, state, true);
            }
        }
        // Its own savepoint: if it fails the rows stay recent, readers still see them,
        // and the next pass tries again; the batch commits either way.
        if self.stream_flush.due()
            && let Err(e) = in_savepoint(conn, |conn| Ok(stream_index::flush(conn)?))
        {
            tracing::warn!(error = %e, "moving recent stream rows failed; will retry");
        }
        let outcome = run(conn, "COMMIT").map_err(|e| e.to_string());
        self.commit_times.observe(began.elapsed());
        match outcome {
            Ok(()) => state.leases.committed(),
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK");
                state.forget_uncommitted(conn);
            }
        }
        for task in tasks {
            task.answer(outcome.as_ref().err().map(String::as_str));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let state = WriterState::default();
        let writer = Writer::start(conn, state, Arc::new(AtomicBool::new(false)));
        (writer, dir)
    }

    /// What `PRAGMA synchronous` was while the job ran: 1 is NORMAL, 2 is FULL.
    async fn synchronous_seen_by(writer: &Writer, durability: Durability) -> StoreResult<i64> {
        writer
            .run(WhenFull::Wait, durability, |conn, _| {
                Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
            })
            .await
    }

    /// Keeps the writer busy for 50 ms, so that jobs sent meanwhile make one batch.
    async fn hold(writer: &Writer) {
        writer
            .run(WhenFull::Wait, Durability::PowerLoss, |_, _| {
                std::thread::sleep(Duration::from_millis(50));
                Ok(())
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn bookkeeping_queued_beside_publishes_commits_apart_without_fsync() {
        let (writer, _dir) = writer();
        let (_, bookkeeping, durable) = tokio::join!(
            hold(&writer),
            synchronous_seen_by(&writer, Durability::ProcessCrash),
            synchronous_seen_by(&writer, Durability::PowerLoss),
        );
        assert_eq!(bookkeeping.unwrap(), 1, "bookkeeping commits with NORMAL");
        assert_eq!(durable.unwrap(), 2, "an API write commits with FULL");
    }

    #[tokio::test]
    async fn a_failing_job_is_undone_alone() {
        let (writer, _dir) = writer();
        let insert = |id: &'static str, fail: bool| {
            writer.run(WhenFull::Wait, Durability::PowerLoss, move |conn, _| {
                conn.execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?1, 0)",
                    [id],
                )?;
                match fail {
                    true => Err(StoreError::Busy),
                    false => Ok(()),
                }
            })
        };
        let (_, kept, failed) = tokio::join!(
            hold(&writer),
            insert("org_kept", false),
            insert("org_failed", true)
        );
        kept.unwrap();
        assert!(matches!(failed, Err(StoreError::Busy)));
        let orgs: Vec<String> = writer
            .run(WhenFull::Wait, Durability::PowerLoss, |conn, _| {
                let mut stmt = conn.prepare("SELECT id FROM orgs ORDER BY id")?;
                let ids = stmt.query_map([], |r| r.get(0))?;
                Ok(ids.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(orgs, ["org_kept"]);
    }

    /// A job that fails, sent beside others, so they run once, are undone and run again.
    async fn failing(writer: &Writer) -> StoreResult<()> {
        writer
            .run(WhenFull::Wait, Durability::PowerLoss, |_, _| {
                Err::<(), _>(StoreError::Busy)
            })
            .await
    }

    #[tokio::test]
    async fn jobs_run_again_after_a_failure_count_once() {
        let (writer, _dir) = writer();
        // The stream counter a publish uses: in the table, and remembered by the writer.
        let next_seq = writer.run(WhenFull::Wait, Durability::PowerLoss, |conn, state| {
            Ok(state.seqs.next(conn, "org_1", "s")?)
        });
        let (_, seq, failed) = tokio::join!(hold(&writer), next_seq, failing(&writer));
        assert!(failed.is_err());
        assert_eq!(
            seq.unwrap(),
            1,
            "the answer comes from the run that was kept"
        );
        let stored: i64 = writer
            .run(WhenFull::Wait, Durability::PowerLoss, |conn, _| {
                Ok(conn.query_row("SELECT last_seq FROM streams", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(stored, 1, "the undone run left nothing behind");
    }

    #[tokio::test]
    async fn what_an_undone_run_changed_in_memory_is_rebuilt() {
        let (writer, _dir) = writer();
        writer
            .run(WhenFull::Wait, Durability::PowerLoss, |conn, state| {
                conn.execute(
                    "INSERT INTO deliveries (id, org_id, event_id, destination_id, stream,
                         event_seq, event_type, state, run_at, created_at, updated_at)
                     VALUES ('dlv_1', 'org_1', 'evt_1', 'dst_1', 's', 1, 't', 'pending', 5,
                             0, 0)",
                    [],
                )?;
                state.due().mark("dst_1", 5);
                Ok(())
            })
            .await
            .unwrap();
        // Runs once, drops the destination from the index, and is undone with its batch;
        // runs again and leaves the index alone.
        let mut first_run = true;
        let forget_once = writer.run(WhenFull::Wait, Durability::PowerLoss, move |_, state| {
            if std::mem::take(&mut first_run) {
                state.due().forget("dst_1");
            }
            Ok(())
        });
        let (_, forgot, failed) = tokio::join!(hold(&writer), forget_once, failing(&writer));
        forgot.unwrap();
        assert!(failed.is_err());
        let next_due = writer
            .run(WhenFull::Wait, Durability::PowerLoss, |_, state| {
                Ok(state.due().next_due())
            })
            .await
            .unwrap();
        assert_eq!(next_due, Some(5));
    }
}
