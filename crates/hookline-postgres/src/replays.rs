//! Replay jobs on PostgreSQL: the shared SQL (`hookline_store::replays::sql`); a claim
//! skips rows another node is claiming at the same moment.

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::ids::{DestinationId, OrgId, ReplayId};
use hookline_core::replay::{Replay, ReplayStep};
use hookline_store::replays::{RawReplay, sql};
use hookline_store::{Page, PageRequest, Replays, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PgStore;

fn param(n: usize) -> String {
    format!("${n}")
}

fn raw(r: &PgRow) -> StoreResult<Replay> {
    RawReplay {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        destination_id: r.try_get(2)?,
        filter: r.try_get(3)?,
        rate_per_sec: r.try_get(4)?,
        total: r.try_get(5)?,
        done: r.try_get(6)?,
        failed: r.try_get(7)?,
        state: r.try_get(8)?,
        cursor: r.try_get(9)?,
        created_at: r.try_get(10)?,
        updated_at: r.try_get(11)?,
        kind: r.try_get(12)?,
    }
    .parse()
}

#[async_trait]
impl Replays for PgStore {
    async fn insert_replay(&self, r: &Replay) -> StoreResult<()> {
        sqlx::query(&sql::insert(param))
            .bind(r.id.as_str())
            .bind(r.org_id.as_str())
            .bind(r.destination_id.as_str())
            .bind(r.work.to_json().to_string())
            .bind(i64::from(r.rate_per_sec))
            .bind(r.total)
            .bind(r.done)
            .bind(r.failed)
            .bind(r.state.as_str())
            .bind(r.cursor.clone())
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.work.kind())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_replay(&self, org: &OrgId, id: &ReplayId) -> StoreResult<Option<Replay>> {
        sqlx::query(&sql::get(param))
            .bind(org.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(raw)
            .transpose()
    }

    async fn list_replays(&self, org: &OrgId, page: &PageRequest) -> StoreResult<Page<Replay>> {
        let rows = sqlx::query(&sql::list(param, page.cursor.is_some()))
            .bind(org.as_str())
            .bind(page.cursor.clone().unwrap_or_default())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(raw)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit, |r| r.id.to_string()))
    }

    async fn backfill_of(
        &self,
        org: &OrgId,
        destination: &DestinationId,
    ) -> StoreResult<Option<Replay>> {
        sqlx::query(&sql::backfill_of(param))
            .bind(org.as_str())
            .bind(destination.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(raw)
            .transpose()
    }

    async fn cancel_replay(&self, org: &OrgId, id: &ReplayId, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(&sql::cancel(param))
            .bind(now)
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn claim_replay(
        &self,
        node: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Option<Replay>> {
        sqlx::query(&sql::claim(param, true))
            .bind(node)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(raw)
            .transpose()
    }

    async fn advance_replay(
        &self,
        id: &ReplayId,
        node: &str,
        step: &ReplayStep,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(&sql::advance(param))
            .bind(step.cursor.clone())
            .bind(step.done)
            .bind(step.failed)
            .bind(step.finished)
            .bind(now)
            .bind(lease_until)
            .bind(id.as_str())
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
