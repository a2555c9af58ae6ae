//! The embedded store: one SQLite file in the data directory, in WAL mode with
//! `synchronous=FULL` so a commit survives power loss. All writes go through one
//! writer thread that group-commits them (see `writer`); reads go through a small pool
//! of connections on the blocking pool, so the async runtime never waits on disk.
//!
//! One process owns a data directory at a time (an exclusive lock file), which is what
//! lets start-up hand the leases of a crashed predecessor straight back to the queue.

mod backfill;
mod cache;
mod data_dir;
mod due;
mod event_cache;
mod publish;
mod queue;
mod reads;
mod replays;
mod retention;
mod rollup_fold;
mod rows;
mod schema;
mod store_impl;
mod stream_index;
mod stream_seq;
mod writer;
mod writes;

use foldhash::{HashMap, HashMapExt};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hookline_core::ids::OrgId;
use rusqlite::{Connection, OpenFlags};

use self::cache::DestinationCache;
use self::due::DueIndex;
use self::event_cache::EventCache;
use self::stream_seq::StreamSeqs;
use self::writer::{Durability, WhenFull, Writer};
use hookline_store::LocalLeases;
use hookline_store::{AttachedNode, StoreError, StoreResult};

const READERS: usize = 4;

/// What the writer thread keeps between jobs.
#[cfg_attr(test, derive(Default))]
pub(crate) struct WriterState {
    destinations: DestinationCache,
    due: Arc<Mutex<DueIndex>>,
    events: EventCache,
    leases: LocalLeases,
    seqs: StreamSeqs,
}

impl WriterState {
    fn due(&self) -> std::sync::MutexGuard<'_, DueIndex> {
        self.due.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Destination `id` of `org` changes in the open transaction (settings, keys,
    /// deletion, disabling): the cache forgets the org's, and what the dispatcher holds
    /// of it must not be sent under the old settings (`Admission::destination_changed`).
    fn destination_changed(&mut self, org: &str, id: &str) {
        self.destinations.forget_org(org);
        self.leases.destination_changed(id);
    }

    /// After a rollback: what the undone writes put in memory (a destination read back,
    /// a destination dropped from the due index because a claim had leased its last
    /// due row) must not outlive them, or a due row could wait unseen until a restart.
    fn forget_uncommitted(&mut self, conn: &Connection) {
        self.leases.undone();
        self.seqs.forget();
        self.destinations.clear();
        self.events.clear();
        match DueIndex::load(conn) {
            Ok(due) => *self.due() = due,
            Err(e) => tracing::error!(error = %e, "cannot reload the due index after a rollback"),
        }
    }
}

struct Shared {
    writer: Writer,
    /// Tells the checkpoint thread to stop when the store is dropped.
    stopping: Arc<AtomicBool>,
    /// Shared with the writer, which updates it; read for `next_due_at`.
    due: Arc<Mutex<DueIndex>>,
    /// The attached dispatcher, shared with the writer, which leases fresh deliveries
    /// to it at publish.
    node: AttachedNode,
    /// API key hash → org, for keys seen before; cleared when any key is deleted.
    known_keys: Mutex<HashMap<String, OrgId>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Held for the life of the store (locked when the store is a server's).
    _lock: File,
}

#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

/// Statements each connection keeps prepared. rusqlite keeps 16 by default, fewer than
/// the writer uses in one publish-claim-complete cycle, so its least recently used
/// statements were evicted and parsed again on every cycle.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// The writer's page cache, in KiB. Every commit drops cached pages beyond the end of
/// the database, and when a b-tree balance has just renumbered a page through SQLite's
/// scratch page number (the lock-byte page, 262,145 with 4 KiB pages: far beyond the end)
/// that means a scan of the whole cache, which grows with its size; 4 MiB still holds
/// the pages a commit touches (the trees' right edges, the due rows), so the writer
/// seldom reads from disk.
const WRITER_CACHE_KIB: i64 = 4 * 1024;
/// The checkpointer's page cache, in KiB: the size every connection had before the
/// writer's was cut; a checkpoint commits nothing, so it never pays that scan.
const CHECKPOINT_CACHE_KIB: i64 = 16 * 1024;

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Multi-row statements, and every job of a batch replayed after a failure (see
    // `writer`), journal the pages they touch; in memory, not in a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Page cache, in KiB (a negative size means KiB).
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    // Checkpoints run on their own thread (see `start_checkpoints`), never inside a
    // commit, where they would stall every caller waiting on the writer.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(())
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// When a PASSIVE checkpoint finds more WAL frames than this (64 MiB of 4 KiB pages), it
/// asks the writer to restart the WAL.
const WAL_RESTART_FRAMES: i64 = 16 * 1024;

/// Starts the thread that copies the WAL into the database file. PASSIVE checkpoints
/// never block the writer or readers; they copy what is committed and not in use.
///
/// Under constant writes PASSIVE never quite catches up, so the WAL never restarts and
/// only grows (to 1.8 GB beside a 140 MB database in the throughput benchmark): every
/// commit appends, which costs the kernel a fresh zeroed page per frame. So once the WAL
/// is large this thread raises `restart_wanted`, and the writer, between two of its own
/// transactions, runs a RESTART checkpoint: it copies the few frames committed since
/// this PASSIVE one, and the next commit writes from the start of the WAL again.
fn start_checkpoints(path: &Path, restart_wanted: Arc<AtomicBool>) -> StoreResult<Arc<AtomicBool>> {
    let conn = Connection::open(path)?;
    configure(&conn, CHECKPOINT_CACHE_KIB)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = stopping.clone();
    std::thread::Builder::new()
        .name("hookline-sqlite-checkpoint".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                // The row is (busy, frames in the WAL, frames copied).
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                    Ok(frames) if frames > WAL_RESTART_FRAMES => {
                        restart_wanted.store(true, Ordering::Relaxed)
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(stopping)
}

impl SqliteStore {
    /// Opens the store in `data_dir` for a server: creates and migrates it as needed,
    /// takes the directory's exclusive lock, and returns the deliveries a crashed
    /// predecessor had leased to the queue.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        Self::open_with(data_dir, true)
    }

    /// Opens the store for a short administrative command (`org create`) that may run
    /// beside a server: no lock, and the server's leases are left alone.
    pub fn open_shared(data_dir: &Path) -> StoreResult<Self> {
        Self::open_with(data_dir, false)
    }

    fn open_with(data_dir: &Path, exclusive: bool) -> StoreResult<Self> {
        let unavailable = |what: &str, e: std::io::Error| {
            StoreError::Unavailable(format!("{what} {}: {e}", data_dir.display()))
        };
        data_dir::create_private(data_dir).map_err(|e| unavailable("cannot create", e))?;
        let lock = data_dir::lock_file(data_dir)
            .map_err(|e| unavailable("cannot create the lock file in", e))?;
        if exclusive {
            lock.try_lock().map_err(|_| {
                StoreError::Unavailable(format!(
                    "{} is in use by another Hookline server",
                    data_dir.display()
                ))
            })?;
        }
        let path: PathBuf = data_dir.join("hookline.db");
        let mut writer = Connection::open(&path)?;
        configure(&writer, WRITER_CACHE_KIB)?;
        data_dir::restrict_store_files(data_dir)
            .map_err(|e| unavailable("cannot make the store's files private in", e))?;
        schema::migrate(&mut writer)?;
        if exclusive {
            let expired = queue::expire_all_leases(&writer)?;
            if expired > 0 {
                tracing::info!(expired, "leases of a previous run handed back to the queue");
            }
        }
        let due = Arc::new(Mutex::new(DueIndex::load(&writer)?));
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let node = AttachedNode::default();
        Ok(Self {
            shared: Arc::new(Shared {
                stopping: start_checkpoints(&path, restart_wanted.clone())?,
                writer: Writer::start(
                    writer,
                    WriterState {
                        destinations: DestinationCache::default(),
                        due: due.clone(),
                        events: EventCache::default(),
                        leases: LocalLeases::new(node.clone()),
                        seqs: StreamSeqs::default(),
                    },
                    restart_wanted,
                ),
                due,
                node,
                known_keys: Mutex::new(HashMap::new()),
                readers,
                next_reader: AtomicUsize::new(0),
                _lock: lock,
            }),
        })
    }

    /// Runs `f` in the writer's next group transaction; returns once it is committed.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut WriterState) -> StoreResult<T> + Send + 'static,
    {
        self.shared
            .writer
            .run(WhenFull::Wait, Durability::PowerLoss, f)
            .await
    }

    /// Like `write`, but answers `Busy` at once when the writer's queue is full.
    async fn write_or_busy<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut WriterState) -> StoreResult<T> + Send + 'static,
    {
        self.shared
            .writer
            .run(WhenFull::Refuse, Durability::PowerLoss, f)
            .await
    }

    /// For the dispatcher's claims and results: committed before the caller continues,
    /// durable against a crash of this process (see `writer` for why that suffices).
    async fn write_bookkeeping<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut WriterState) -> StoreResult<T> + Send + 'static,
    {
        self.shared
            .writer
            .run(WhenFull::Wait, Durability::ProcessCrash, f)
            .await
    }

    /// Tells the attached dispatcher that a committed write made work due now.
    fn wake_node(&self) {
        self.shared.node.wake();
    }

    /// When the earliest waiting delivery falls due, from the writer's index.
    fn next_due_in_index(&self) -> Option<hookline_core::clock::Millis> {
        self.shared
            .due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_due()
    }

    fn known_key(&self, key_hash: &str) -> Option<OrgId> {
        let keys = self
            .shared
            .known_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        keys.get(key_hash).cloned()
    }

    fn remember_key(&self, key_hash: &str, org: &OrgId) {
        let mut keys = self
            .shared
            .known_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        keys.insert(key_hash.to_owned(), org.clone());
    }

    fn forget_known_keys(&self) {
        let mut keys = self
            .shared
            .known_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        keys.clear();
    }

    /// Runs `f` on a reader connection, which sees the last committed state.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let index = shared.next_reader.fetch_add(1, Ordering::Relaxed) % shared.readers.len();
            let conn = shared.readers[index]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}
