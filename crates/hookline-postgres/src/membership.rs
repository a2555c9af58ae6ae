//! Which nodes are alive, so a dead node's leases are taken over in seconds rather
//! than when they run out (a lease may cover several timeouts of a slow destination).
//!
//! A serving node joins under its id: it holds a session advisory lock on that id for
//! as long as it runs (so two live processes cannot share an id), frees the leases its
//! previous run left at once, and records a heartbeat every `HEARTBEAT_EVERY`. Every node
//! also looks for nodes silent for `SILENT_AFTER` and frees their leases; the row of a
//! silent node is deleted in the same statement, so it is rescued once. Heartbeats use
//! the database's clock, so skew between nodes cannot make a live node look dead.
//! A node whose row is new waits out the publishes that could not see it (they lease
//! fresh deliveries to their own node while it is the only member: `publish`).
//! A node looks for silent nodes only once its own connection has lasted `SILENT_AFTER`:
//! after an outage of the database, every node's heartbeat is old, and the first one
//! back must not take the leases of the others, which are reconnecting too. A node that
//! was only cut off and comes back may finish an attempt another node also makes:
//! at-least-once, with the same `webhook-id`.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::{PgStore, notify_work};
use hookline_store::{StoreError, StoreResult};

const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// Four heartbeats missed: a rescue comes 12 to 15 s after a node's last heartbeat.
const SILENT_AFTER: Duration = Duration::from_secs(12);

/// The database's clock in milliseconds.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The members' lock: every publish that may lease to its node takes it shared before it
/// reads whether another node is a member (`publish::publish_all`); a node whose row is
/// new takes it exclusively for a moment, to wait out the publishes that did not see it.
macro_rules! members_lock {
    () => {
        "hashtextextended('hookline-members', 0)"
    };
}
pub(crate) const MEMBERS_SHARED: &str =
    concat!("SELECT pg_advisory_xact_lock_shared(", members_lock!(), ")");
const MEMBERS_EXCLUSIVE: &str = concat!("SELECT pg_advisory_lock(", members_lock!(), ")");
const MEMBERS_RELEASE: &str = concat!("SELECT pg_advisory_unlock(", members_lock!(), ")");

/// The advisory lock that says node `$1` is running.
const NODE_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('hookline-node:' || $1, 0))";

impl PgStore {
    /// Joins as node `node_id` until `shutdown`: fails if a running node holds that id;
    /// otherwise frees the leases an earlier run under this id left, and keeps the
    /// heartbeat and the rescue of silent nodes going in the background.
    pub async fn join(&self, node_id: &str, shutdown: CancellationToken) -> StoreResult<()> {
        let mut conn = self.member_connection(node_id).await?;
        let freed = sqlx::query(
            "UPDATE deliveries SET lease_until = 0
             WHERE state = 'delivering' AND leased_by = $1",
        )
        .bind(node_id)
        .execute(&mut conn)
        .await?
        .rows_affected();
        if freed > 0 {
            tracing::info!(freed, "took back the leases this node's previous run left");
            self.notify_all().await?;
        }
        beat(&mut conn, node_id).await?;
        wait_out_publishes(&mut conn).await?;
        let store = self.clone();
        let node_id = node_id.to_owned();
        tokio::spawn(async move {
            let mut member = Some(Membership {
                conn,
                since: Instant::now(),
            });
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                }
                if let Err(e) = store.keep_alive(&mut member, &node_id).await {
                    tracing::warn!(error = %e, "node heartbeat failed; retrying");
                    member = None;
                }
            }
            if let Some(member) = member.as_mut() {
                let leaving = sqlx::query("DELETE FROM nodes WHERE id = $1").bind(&node_id);
                if let Err(e) = leaving.execute(&mut member.conn).await {
                    tracing::warn!(error = %e, "could not record that this node left");
                }
            }
        });
        Ok(())
    }

    /// A connection of its own that holds the node's lock while it is open.
    async fn member_connection(&self, node_id: &str) -> StoreResult<PgConnection> {
        let mut conn = PgConnection::connect_with(&self.pool.connect_options()).await?;
        let locked: bool = sqlx::query_scalar(NODE_LOCK)
            .bind(node_id)
            .fetch_one(&mut conn)
            .await?;
        if !locked {
            return Err(StoreError::Conflict(format!(
                "node id '{node_id}' is in use by another running node; give each node its \
                 own (--node-id)"
            )));
        }
        Ok(conn)
    }

    /// One heartbeat and one look for silent nodes; reconnects (and takes the node's
    /// lock again) first if the connection was lost.
    async fn keep_alive(&self, member: &mut Option<Membership>, node_id: &str) -> StoreResult<()> {
        if member.is_none() {
            *member = Some(Membership {
                conn: self.member_connection(node_id).await?,
                since: Instant::now(),
            });
        }
        let Membership { conn, since } = member.as_mut().expect("connected above");
        // Back after its row was taken for a silent node's: the others lease at publish
        // as if alone until they see it again.
        if beat(conn, node_id).await? {
            wait_out_publishes(conn).await?;
        }
        if since.elapsed() < SILENT_AFTER {
            return Ok(());
        }
        let rescued: Vec<(String, i64)> = sqlx::query_as(&format!(
            "WITH silent AS (
                 DELETE FROM nodes WHERE heartbeat_at < {DB_NOW_MS} - $1 AND id <> $2
                 RETURNING id),
             freed AS (
                 UPDATE deliveries SET lease_until = 0
                 WHERE state = 'delivering' AND leased_by IN (SELECT id FROM silent)
                 RETURNING leased_by)
             SELECT silent.id, (SELECT COUNT(*) FROM freed WHERE leased_by = silent.id)
             FROM silent"
        ))
        .bind(SILENT_AFTER.as_millis() as i64)
        .bind(node_id)
        .fetch_all(&mut *conn)
        .await?;
        for (silent, freed) in &rescued {
            tracing::warn!(node = %silent, freed, "a node fell silent; its leases are freed");
        }
        if rescued.iter().any(|(_, freed)| *freed > 0) {
            self.notify_all().await?;
        }
        Ok(())
    }

    /// Wakes every node's dispatcher, this one's included.
    async fn notify_all(&self) -> StoreResult<()> {
        notify_work(&mut *self.pool.acquire().await?).await?;
        self.wake_node();
        Ok(())
    }
}

/// This node's connection, holding its lock, and since when it has held it.
struct Membership {
    conn: PgConnection,
    since: Instant,
}

/// Records a heartbeat; returns whether the node's row was new.
async fn beat(conn: &mut PgConnection, node_id: &str) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(&format!(
        "INSERT INTO nodes (id, heartbeat_at) VALUES ($1, {DB_NOW_MS})
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
         RETURNING xmax = 0"
    ))
    .bind(node_id)
    .fetch_one(conn)
    .await?)
}

/// Waits until every publish that began before this node's row was visible has ended
/// (`MEMBERS_SHARED`): such a publish leased deliveries as if its node were
/// alone, and this node must see those leases before it leases any of its own.
async fn wait_out_publishes(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query(MEMBERS_EXCLUSIVE).execute(&mut *conn).await?;
    sqlx::query(MEMBERS_RELEASE).execute(conn).await?;
    Ok(())
}
