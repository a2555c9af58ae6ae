//! Replay jobs on the embedded store: the shared SQL (`hookline_store::replays::sql`),
//! written by the writer thread, read from the read pool.

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::ids::{DestinationId, OrgId, ReplayId};
use hookline_core::replay::{Replay, ReplayStep};
use hookline_store::replays::{RawReplay, sql};
use hookline_store::{Page, PageRequest, Replays, StoreResult};
use rusqlite::{OptionalExtension, Row, params};

use crate::SqliteStore;

fn param(n: usize) -> String {
    format!("?{n}")
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawReplay> {
    Ok(RawReplay {
        id: r.get(0)?,
        org_id: r.get(1)?,
        destination_id: r.get(2)?,
        filter: r.get(3)?,
        rate_per_sec: r.get(4)?,
        total: r.get(5)?,
        done: r.get(6)?,
        failed: r.get(7)?,
        state: r.get(8)?,
        cursor: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        kind: r.get(12)?,
    })
}

#[async_trait]
impl Replays for SqliteStore {
    async fn insert_replay(&self, replay: &Replay) -> StoreResult<()> {
        let r = replay.clone();
        self.write(move |conn, _| {
            conn.prepare_cached(&sql::insert(param))?.execute(params![
                r.id.as_str(),
                r.org_id.as_str(),
                r.destination_id.as_str(),
                r.work.to_json().to_string(),
                r.rate_per_sec,
                r.total,
                r.done,
                r.failed,
                r.state.as_str(),
                r.cursor,
                r.created_at,
                r.updated_at,
                r.work.kind(),
            ])?;
            Ok(())
        })
        .await
    }

    async fn get_replay(&self, org: &OrgId, id: &ReplayId) -> StoreResult<Option<Replay>> {
        let (org, id) = (org.clone(), id.clone());
        self.read(move |conn| {
            conn.prepare_cached(&sql::get(param))?
                .query_row(params![org.as_str(), id.as_str()], raw)
                .optional()?
                .map(RawReplay::parse)
                .transpose()
        })
        .await
    }

    async fn list_replays(&self, org: &OrgId, page: &PageRequest) -> StoreResult<Page<Replay>> {
        let (org, page) = (org.clone(), page.clone());
        self.read(move |conn| {
            let mut select = conn.prepare_cached(&sql::list(param, page.cursor.is_some()))?;
            let cursor = page.cursor.clone().unwrap_or_default();
            let rows = select
                .query_map(params![org.as_str(), cursor, page.limit + 1], raw)?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(RawReplay::parse)
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page::from_rows(rows, page.limit, |r| r.id.to_string()))
        })
        .await
    }

    async fn backfill_of(
        &self,
        org: &OrgId,
        destination: &DestinationId,
    ) -> StoreResult<Option<Replay>> {
        let (org, destination) = (org.clone(), destination.clone());
        self.read(move |conn| {
            conn.prepare_cached(&sql::backfill_of(param))?
                .query_row(params![org.as_str(), destination.as_str()], raw)
                .optional()?
                .map(RawReplay::parse)
                .transpose()
        })
        .await
    }

    async fn cancel_replay(&self, org: &OrgId, id: &ReplayId, now: Millis) -> StoreResult<bool> {
        let (org, id) = (org.clone(), id.clone());
        self.write(move |conn, _| {
            Ok(conn.prepare_cached(&sql::cancel(param))?.execute(params![
                now,
                org.as_str(),
                id.as_str()
            ])? > 0)
        })
        .await
    }

    async fn claim_replay(
        &self,
        node: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Option<Replay>> {
        // Most seconds there is none: asked of the read pool, so the writer (and the
        // disk) hear of replays only while one runs.
        let running: bool = self
            .read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM replays WHERE state = 'running')",
                    )?
                    .query_row([], |r| r.get(0))?)
            })
            .await?;
        if !running {
            return Ok(None);
        }
        let node = node.to_owned();
        self.write(move |conn, _| {
            conn.prepare_cached(&sql::claim(param, false))?
                .query_row(params![node, now, lease_until], raw)
                .optional()?
                .map(RawReplay::parse)
                .transpose()
        })
        .await
    }

    async fn advance_replay(
        &self,
        id: &ReplayId,
        node: &str,
        step: &ReplayStep,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<bool> {
        let (id, node, step) = (id.clone(), node.to_owned(), step.clone());
        self.write(move |conn, _| {
            Ok(conn.prepare_cached(&sql::advance(param))?.execute(params![
                step.cursor,
                step.done,
                step.failed,
                step.finished,
                now,
                lease_until,
                id.as_str(),
                node,
            ])? > 0)
        })
        .await
    }
}
