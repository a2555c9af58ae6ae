//! The PostgreSQL store, for when one machine is not enough: any number of Hookline
//! nodes share one database. Claims take due rows with `FOR UPDATE SKIP LOCKED`, so
//! nodes never block on each other's rows; leases let another node rescue the work of
//! one that died; `LISTEN/NOTIFY` wakes idle nodes when work is committed.

mod candidates;
mod group_commit;
mod membership;
#[cfg(feature = "test-support")]
pub mod own_instance;
mod partitions;
mod publish;
mod queue;
mod reads;
mod replays;
mod retention;
mod rollup_fold;
mod rows;
mod schema;
mod store_impl;
#[cfg(feature = "test-support")]
pub mod test_databases;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use hookline_core::clock::{Clock, SystemClock};
use hookline_store::{Admission, AttachedNode, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

/// The channel every node listens on and every enqueue notifies.
const WORK_CHANNEL: &str = "hookline_work";

/// At most one NOTIFY per this many milliseconds from publishing on one node: every
/// NOTIFY takes a database-wide lock at commit, so one per publish would serialize all
/// commits. This node's own dispatcher is woken in-process; others within this delay.
const NOTIFY_EVERY_MS: i64 = 20;

/// Spaces out the NOTIFYs of publishing (see `NOTIFY_EVERY_MS`).
#[derive(Clone, Default)]
pub(crate) struct NotifyGate {
    last_notify_ms: Arc<AtomicI64>,
}

impl NotifyGate {
    /// Whether a publish at `now` should NOTIFY other nodes.
    fn due(&self, now: i64) -> bool {
        let last = self.last_notify_ms.load(Ordering::Relaxed);
        now - last >= NOTIFY_EVERY_MS
            && self
                .last_notify_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// How publications are stored (the pool, NOTIFYs, leases to this node).
    publisher: group_commit::Publisher,
    /// Where publishes wait to be stored together.
    publishes: group_commit::GroupCommit,
    /// The dispatcher of this process, woken when any node commits work.
    node: AttachedNode,
    /// Whether the task that listens for other nodes' work has been started.
    listening: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("pool", &self.pool).finish()
    }
}

impl PgStore {
    /// Connects and migrates. Boxed so the future's `Send`-ness is settled here, where
    /// sqlx's types are concrete, instead of tripping callers that spawn it.
    pub fn connect(
        url: &str,
        max_connections: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<Self>> + Send + '_>> {
        Box::pin(async move {
            reach(url).await?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(3))
                .connect(url)
                .await?;
            let now = SystemClock.now_ms();
            schema::migrate(&pool, now).await?;
            // Today's partitions, before anything is published.
            let mut tx = pool.begin().await?;
            partitions::prepare(&mut tx, now).await?;
            tx.commit().await?;
            let publisher = group_commit::Publisher {
                pool: pool.clone(),
                notify: NotifyGate::default(),
                node: AttachedNode::default(),
            };
            Ok(Self {
                publishes: group_commit::GroupCommit::start(publisher.clone()),
                pool,
                node: publisher.node.clone(),
                publisher,
                listening: Arc::default(),
            })
        })
    }

    /// Attaches this process's dispatcher, and starts listening for the work other
    /// nodes commit once a dispatcher is there to be woken.
    fn attach_node(&self, node: Arc<dyn Admission>) {
        self.node.set(node);
        if !self.listening.swap(true, Ordering::Relaxed) {
            self.forward_wakeups();
        }
    }

    /// Tells the attached dispatcher that work it may claim was committed.
    fn wake_node(&self) {
        self.node.wake();
    }

    /// Wakes the attached dispatcher whenever any node commits new work, until the
    /// process ends; reconnects by itself when the database comes back.
    fn forward_wakeups(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                let listening = async {
                    let mut listener = PgListener::connect_with(&store.pool).await?;
                    listener.listen(WORK_CHANNEL).await?;
                    loop {
                        listener.recv().await?;
                        store.wake_node();
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                if let Err(e) = listening.await {
                    tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Connects once, alone, so that a database that cannot be reached is reported with
/// where it was looked for and why, rather than as a pool's timeout. The URL is never
/// shown: it may hold a password.
async fn reach(url: &str) -> StoreResult<()> {
    let scheme = url.split("://").next().unwrap_or_default();
    if !matches!(scheme, "postgres" | "postgresql") || !url.contains("://") {
        return Err(StoreError::Unavailable(format!(
            "the database URL must start with postgres:// (its scheme is '{scheme}')"
        )));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("the database URL does not parse: {e}")))?;
    let target = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(REACH_TIMEOUT, PgConnection::connect_with(&options)).await {
        Err(_) => Err(StoreError::Unavailable(format!(
            "PostgreSQL at {target} did not answer within {} s",
            REACH_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {target}: {e}"
        ))),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
    }
}

const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Tells every listening node there is work; delivered when the transaction commits.
pub async fn notify_work(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}
