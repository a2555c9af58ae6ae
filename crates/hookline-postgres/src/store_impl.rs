//! `Records` and `Queue` for `PgStore`: reads on a pooled connection, writes in a transaction each.

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::event::{Event, NewEvent};
use hookline_core::ids::{ApiKeyId, AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::sealed::SealedKeys;

use crate::group_commit::{publish_alone, publish_together};
use crate::publish::Publication;
use crate::{PgStore, publish, queue, reads, writes};
use hookline_store::*;

/// Runs the body in a transaction on a pooled connection and commits it: the body's
/// value, or the error, as a `StoreResult` for the caller to look at (an async block,
/// so that an error inside does not return from the caller behind its back).
macro_rules! in_tx {
    ($store:expr, |$conn:ident| $body:expr) => {
        async {
            let mut tx = $store.pool.begin().await?;
            let $conn: &mut sqlx::PgConnection = &mut tx;
            let value = $body.await?;
            tx.commit().await?;
            Ok::<_, StoreError>(value)
        }
        .await
    };
}

/// Runs the body on a pooled connection, outside any explicit transaction.
macro_rules! on_conn {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut pooled = $store.pool.acquire().await?;
        let $conn: &mut sqlx::PgConnection = &mut pooled;
        $body.await
    }};
}

#[async_trait]
impl Records for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_org(&self, org: &Org, first_key: &ApiKeyRecord) -> StoreResult<()> {
        in_tx!(self, |conn| writes::create_org(conn, org, first_key))
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        on_conn!(self, |conn| reads::list_orgs(conn))
    }

    async fn set_test_mode(&self, org: &OrgId, since: Option<Millis>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE orgs SET test_mode_since = CASE WHEN $1::BIGINT IS NULL THEN NULL
                 ELSE COALESCE(test_mode_since, $1) END
             WHERE id = $2",
        )
        .bind(since)
        .bind(org.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn test_mode(&self, org: &OrgId) -> StoreResult<Option<Millis>> {
        let since: Option<Option<Millis>> =
            sqlx::query_scalar("SELECT test_mode_since FROM orgs WHERE id = $1")
                .bind(org.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(since.flatten())
    }

    async fn orgs_in_test_mode(&self) -> StoreResult<Vec<OrgId>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM orgs WHERE test_mode_since IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().map(OrgId::from_trusted).collect())
    }

    async fn purge(&self, now: Millis, window: Option<Millis>, batch: u32) -> StoreResult<Purged> {
        if in_tx!(self, |conn| crate::retention::drop_day(conn, now, window))? {
            return Ok(Purged {
                days: 1,
                ..Purged::default()
            });
        }
        in_tx!(self, |conn| crate::retention::purge(
            conn, now, window, batch
        ))
    }

    async fn prepare(&self, now: Millis) -> StoreResult<u32> {
        in_tx!(self, |conn| crate::partitions::prepare(conn, now))
    }

    async fn fold_rollups(&self, before: Millis, rows: u32) -> StoreResult<u64> {
        in_tx!(self, |conn| crate::rollup_fold::fold(conn, before, rows))
    }

    async fn set_org_retention(&self, org: &OrgId, days: Option<f64>) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE orgs SET retention_days = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(days)
                .bind(org.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn clear_intercepted(&self, org: &OrgId) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM attempts WHERE org_id = $1 AND error_kind = 'intercepted'")
                .bind(org.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn delete_org(&self, org: &OrgId, now: Millis) -> StoreResult<bool> {
        in_tx!(self, |conn| writes::delete_org(conn, org, now))
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        on_conn!(self, |conn| writes::create_api_key(conn, key))
    }

    async fn list_api_keys(&self, org: &OrgId) -> StoreResult<Vec<ApiKeyRecord>> {
        on_conn!(self, |conn| reads::list_api_keys(conn, org))
    }

    async fn delete_api_key(&self, org: &OrgId, id: &ApiKeyId) -> StoreResult<KeyDeletion> {
        in_tx!(self, |conn| writes::delete_api_key(conn, org, id))
    }

    async fn org_for_key(&self, key_hash: &str) -> StoreResult<Option<OrgId>> {
        on_conn!(self, |conn| reads::org_for_key(conn, key_hash))
    }

    async fn org_signing_keys(&self, org: &OrgId) -> StoreResult<Option<SealedKeys>> {
        on_conn!(self, |conn| reads::org_signing_keys(conn, org))
    }

    async fn set_org_signing_keys(
        &self,
        org: &OrgId,
        keys: &SealedKeys,
        expected: Option<&SealedKeys>,
    ) -> StoreResult<bool> {
        on_conn!(self, |conn| writes::set_org_signing_keys(
            conn, org, keys, expected
        ))
    }

    async fn get_event(&self, org: &OrgId, id: &EventId) -> StoreResult<Option<Event>> {
        on_conn!(self, |conn| reads::get_event(conn, org, id))
    }

    async fn list_events(&self, org: &OrgId, query: &EventQuery) -> StoreResult<Page<Event>> {
        on_conn!(self, |conn| reads::list_events(conn, org, query))
    }

    async fn insert_destination(
        &self,
        destination: &Destination,
        max_per_org: u32,
    ) -> StoreResult<()> {
        in_tx!(self, |conn| writes::insert_limited_destination(
            conn,
            destination,
            max_per_org
        ))
    }

    async fn get_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        on_conn!(self, |conn| reads::get_destination(conn, org, id))
    }

    async fn list_destinations(
        &self,
        org: &OrgId,
        query: &DestinationQuery,
    ) -> StoreResult<Page<Destination>> {
        on_conn!(self, |conn| reads::list_destinations(conn, org, query))
    }

    async fn update_destination_settings(
        &self,
        org: &OrgId,
        id: &DestinationId,
        settings: &DestinationSettings,
        now: Millis,
    ) -> StoreResult<bool> {
        let updated = in_tx!(self, |conn| writes::update_destination_settings(
            conn, org, id, settings, now
        ))?;
        if updated && settings.enabled {
            self.wake_node();
        }
        Ok(updated)
    }

    async fn replace_destination_keys(
        &self,
        org: &OrgId,
        id: &DestinationId,
        keys: &SealedKeys,
        expected: &SealedKeys,
        now: Millis,
    ) -> StoreResult<bool> {
        in_tx!(self, |conn| writes::replace_destination_keys(
            conn, org, id, keys, expected, now
        ))
    }

    async fn delete_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
        now: Millis,
    ) -> StoreResult<bool> {
        in_tx!(self, |conn| writes::delete_destination(conn, org, id, now))
    }

    async fn list_deliveries(
        &self,
        org: &OrgId,
        query: &DeliveryQuery,
    ) -> StoreResult<Page<Delivery>> {
        on_conn!(self, |conn| reads::list_deliveries(conn, org, query))
    }

    async fn get_delivery(&self, org: &OrgId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        on_conn!(self, |conn| reads::get_delivery(conn, org, id))
    }

    async fn list_attempts(&self, org: &OrgId, query: &AttemptQuery) -> StoreResult<Page<Attempt>> {
        on_conn!(self, |conn| reads::list_attempts(conn, org, query))
    }

    async fn unfinished(
        &self,
        org: &OrgId,
        destination: Option<&DestinationId>,
    ) -> StoreResult<Unfinished> {
        on_conn!(self, |conn| reads::unfinished(conn, org, destination))
    }

    async fn rollups(
        &self,
        org: &OrgId,
        destination: Option<&DestinationId>,
        since: Millis,
    ) -> StoreResult<Vec<(Millis, hookline_core::rollup::Rollup)>> {
        let sql = rollups::select(|n| format!("${n}"), destination.is_some());
        let mut query = sqlx::query(&sql).bind(org.as_str()).bind(since);
        if let Some(d) = destination {
            query = query.bind(d.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                use sqlx::Row;
                let mut counters = [0i64; 16];
                for (i, c) in counters.iter_mut().enumerate() {
                    *c = r.try_get(i + 1)?;
                }
                Ok((r.try_get(0)?, rollups::from_counters(&counters)))
            })
            .collect()
    }

    async fn get_attempt(&self, org: &OrgId, id: &AttemptId) -> StoreResult<Option<Attempt>> {
        on_conn!(self, |conn| reads::get_attempt(conn, org, id))
    }
}

#[async_trait]
impl Queue for PgStore {
    async fn publish(&self, org: &OrgId, event: NewEvent, now: Millis) -> StoreResult<Published> {
        let key = event.idempotency_key.clone();
        let publication = Publication {
            org: org.clone(),
            event,
            now,
        };
        let published = match self.publishes.publish(publication).await {
            Ok(published) => published,
            Err(publication) => publish_alone(&self.publisher, publication).await,
        };
        match (published, key) {
            // Lost a race for the same idempotency key: answer with the winner's event.
            (Err(StoreError::Conflict(_)), Some(key)) => {
                on_conn!(self, |conn| publish::existing_event(
                    conn,
                    org,
                    key.as_str()
                ))?
                .ok_or_else(|| StoreError::Unavailable("idempotent event vanished".into()))
            }
            (Ok(published), _) => {
                if published.created && published.queued > 0 {
                    self.wake_node();
                }
                Ok(published)
            }
            (result, _) => result,
        }
    }

    async fn publish_batch(
        &self,
        org: &OrgId,
        events: Vec<NewEvent>,
        now: Millis,
    ) -> StoreResult<Vec<Published>> {
        let publications: Vec<Publication> = events
            .into_iter()
            .map(|event| Publication {
                org: org.clone(),
                event,
                now,
            })
            .collect();
        // A lost race for an item's idempotency key fails the whole transaction; once
        // more, the winner's event is found and answered, as a single publish does.
        let published = match publish_together(&self.publisher, publications.clone()).await {
            Err(StoreError::Conflict(_)) => publish_together(&self.publisher, publications).await,
            answered => answered,
        }?;
        if published.iter().any(|p| p.created && p.queued > 0) {
            self.wake_node();
        }
        Ok(published)
    }

    async fn backfill(
        &self,
        destination: &Destination,
        events: &[Event],
        now: Millis,
    ) -> StoreResult<u32> {
        let queued = in_tx!(self, |conn| crate::writes::backfill(
            conn,
            destination,
            events,
            now
        ))?;
        if queued > 0 {
            self.wake_node();
        }
        Ok(queued)
    }

    async fn redeliver(
        &self,
        org: &OrgId,
        id: &DeliveryId,
        now: Millis,
    ) -> StoreResult<Option<Delivery>> {
        let queued = in_tx!(self, |conn| writes::redeliver(conn, org, id, now))?;
        if queued.is_some() {
            self.wake_node();
        }
        Ok(queued)
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        let claimed = in_tx!(self, |conn| queue::claim(conn, request))?;
        for delivery in &claimed {
            request
                .node
                .hold(&delivery.delivery_id, &delivery.destination);
        }
        Ok(claimed)
    }

    async fn complete(&self, batch: CompletedBatch) -> StoreResult<()> {
        in_tx!(self, |conn| queue::complete(conn, &batch))?;
        // A claim counts a destination's places by its leased rows, across nodes: those
        // of this batch are free only now, so what waits for them can be claimed.
        self.wake_node();
        Ok(())
    }

    async fn release(&self, node_id: &str, handbacks: &[Handback], now: Millis) -> StoreResult<()> {
        in_tx!(self, |conn| queue::release(conn, node_id, handbacks, now))?;
        self.wake_node();
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<Millis>> {
        on_conn!(self, |conn| queue::next_due_at(conn))
    }

    async fn due_now(&self, now: Millis) -> StoreResult<DueNow> {
        on_conn!(self, |conn| reads::due_now(conn, now))
    }

    fn commit_times(&self) -> hookline_store::CommitTimes {
        self.publishes.commit_times()
    }

    fn attach(&self, node: std::sync::Arc<dyn Admission>) {
        self.attach_node(node);
    }
}
