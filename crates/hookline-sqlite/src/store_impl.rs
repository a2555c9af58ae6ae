//! `Records` and `Queue` for `SqliteStore`: each call picks the writer or a reader and hands the
//! work to the function that does it.

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::event::{Event, NewEvent};
use hookline_core::ids::{ApiKeyId, AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::sealed::SealedKeys;

use crate::{SqliteStore, publish, queue, reads, writes};
use hookline_store::*;

#[async_trait]
impl Records for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn create_org(&self, org: &Org, first_key: &ApiKeyRecord) -> StoreResult<()> {
        let (org, key) = (org.clone(), first_key.clone());
        self.write(move |conn, _| writes::create_org(conn, &org, &key))
            .await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Org>> {
        self.read(reads::list_orgs).await
    }

    async fn set_test_mode(&self, org: &OrgId, since: Option<Millis>) -> StoreResult<()> {
        let org = org.clone();
        self.write(move |conn, _| {
            conn.execute(
                "UPDATE orgs SET test_mode_since = CASE WHEN ?1 IS NULL THEN NULL
                     ELSE COALESCE(test_mode_since, ?1) END
                 WHERE id = ?2",
                rusqlite::params![since, org.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    async fn test_mode(&self, org: &OrgId) -> StoreResult<Option<Millis>> {
        let org = org.clone();
        self.read(move |conn| {
            let since: Option<Option<Millis>> =
                rusqlite::OptionalExtension::optional(conn.query_row(
                    "SELECT test_mode_since FROM orgs WHERE id = ?1",
                    [org.as_str()],
                    |r| r.get(0),
                ))?;
            Ok(since.flatten())
        })
        .await
    }

    async fn orgs_in_test_mode(&self) -> StoreResult<Vec<OrgId>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT id FROM orgs WHERE test_mode_since IS NOT NULL")?
                .query_map([], |r| r.get(0).map(OrgId::from_trusted))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn set_org_retention(&self, org: &OrgId, days: Option<f64>) -> StoreResult<bool> {
        let org = org.clone();
        self.write(move |conn, _| {
            Ok(conn.execute(
                "UPDATE orgs SET retention_days = ?1 WHERE id = ?2 AND deleted_at IS NULL",
                rusqlite::params![days, org.as_str()],
            )? == 1)
        })
        .await
    }

    async fn purge(&self, now: Millis, window: Option<Millis>, batch: u32) -> StoreResult<Purged> {
        // With the publishes' durability: committed without an fsync of its own, its WAL
        // frames would be synced by the next publish's commit instead, which then waited
        // for them (publish p99 242 ms while purging, in `hookline-bench retention`).
        self.write(move |conn, _| crate::retention::purge(conn, now, window, batch))
            .await
    }

    async fn fold_rollups(&self, before: Millis, rows: u32) -> StoreResult<u64> {
        self.write(move |conn, _| crate::rollup_fold::fold(conn, before, rows))
            .await
    }

    async fn clear_intercepted(&self, org: &OrgId) -> StoreResult<u64> {
        let org = org.clone();
        self.write(move |conn, _| {
            Ok(conn.execute(
                "DELETE FROM attempts WHERE org_id = ?1 AND error_kind = 'intercepted'",
                [org.as_str()],
            )? as u64)
        })
        .await
    }

    async fn delete_org(&self, org: &OrgId, now: Millis) -> StoreResult<bool> {
        let org = org.clone();
        let deleted = self
            .write(move |conn, state| writes::delete_org(conn, state, &org, now))
            .await?;
        self.forget_known_keys();
        Ok(deleted)
    }

    async fn create_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |conn, _| writes::create_api_key(conn, &key))
            .await
    }

    async fn list_api_keys(&self, org: &OrgId) -> StoreResult<Vec<ApiKeyRecord>> {
        let org = org.clone();
        self.read(move |conn| reads::list_api_keys(conn, &org))
            .await
    }

    async fn delete_api_key(&self, org: &OrgId, id: &ApiKeyId) -> StoreResult<KeyDeletion> {
        let (org, id) = (org.clone(), id.clone());
        let deleted = self
            .write(move |conn, _| writes::delete_api_key(conn, &org, &id))
            .await?;
        self.forget_known_keys();
        Ok(deleted)
    }

    async fn org_for_key(&self, key_hash: &str) -> StoreResult<Option<OrgId>> {
        if let Some(org) = self.known_key(key_hash) {
            return Ok(Some(org));
        }
        let hash = key_hash.to_owned();
        let org = self
            .read(move |conn| reads::org_for_key(conn, &hash))
            .await?;
        if let Some(org) = &org {
            self.remember_key(key_hash, org);
        }
        Ok(org)
    }

    async fn org_signing_keys(&self, org: &OrgId) -> StoreResult<Option<SealedKeys>> {
        let org = org.clone();
        self.read(move |conn| reads::org_signing_keys(conn, &org))
            .await
    }

    async fn set_org_signing_keys(
        &self,
        org: &OrgId,
        keys: &SealedKeys,
        expected: Option<&SealedKeys>,
    ) -> StoreResult<bool> {
        let (org, keys, expected) = (org.clone(), keys.clone(), expected.cloned());
        self.write(move |conn, _| {
            writes::set_org_signing_keys(conn, &org, &keys, expected.as_ref())
        })
        .await
    }

    async fn get_event(&self, org: &OrgId, id: &EventId) -> StoreResult<Option<Event>> {
        let (org, id) = (org.clone(), id.clone());
        self.read(move |conn| reads::get_event(conn, &org, &id))
            .await
    }

    async fn list_events(&self, org: &OrgId, query: &EventQuery) -> StoreResult<Page<Event>> {
        let (org, query) = (org.clone(), query.clone());
        self.read(move |conn| reads::list_events(conn, &org, &query))
            .await
    }

    async fn insert_destination(
        &self,
        destination: &Destination,
        max_per_org: u32,
    ) -> StoreResult<()> {
        let destination = destination.clone();
        self.write(move |conn, state| {
            writes::insert_destination(conn, state, &destination, max_per_org)
        })
        .await
    }

    async fn get_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
    ) -> StoreResult<Option<Destination>> {
        let (org, id) = (org.clone(), id.clone());
        self.read(move |conn| reads::get_destination(conn, &org, &id))
            .await
    }

    async fn list_destinations(
        &self,
        org: &OrgId,
        query: &DestinationQuery,
    ) -> StoreResult<Page<Destination>> {
        let (org, query) = (org.clone(), query.clone());
        self.read(move |conn| reads::list_destinations(conn, &org, &query))
            .await
    }

    async fn update_destination_settings(
        &self,
        org: &OrgId,
        id: &DestinationId,
        settings: &DestinationSettings,
        now: Millis,
    ) -> StoreResult<bool> {
        let (org, id, enabled) = (org.clone(), id.clone(), settings.enabled);
        let settings = settings.clone();
        let updated = self
            .write(move |conn, state| {
                writes::update_destination_settings(conn, state, &org, &id, &settings, now)
            })
            .await?;
        if updated && enabled {
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
        let (org, id) = (org.clone(), id.clone());
        let (keys, expected) = (keys.clone(), expected.clone());
        self.write(move |conn, state| {
            writes::replace_destination_keys(conn, state, &org, &id, &keys, &expected, now)
        })
        .await
    }

    async fn delete_destination(
        &self,
        org: &OrgId,
        id: &DestinationId,
        now: Millis,
    ) -> StoreResult<bool> {
        let (org, id) = (org.clone(), id.clone());
        self.write(move |conn, state| writes::delete_destination(conn, state, &org, &id, now))
            .await
    }

    async fn list_deliveries(
        &self,
        org: &OrgId,
        query: &DeliveryQuery,
    ) -> StoreResult<Page<Delivery>> {
        let (org, query) = (org.clone(), query.clone());
        self.read(move |conn| reads::list_deliveries(conn, &org, &query))
            .await
    }

    async fn get_delivery(&self, org: &OrgId, id: &DeliveryId) -> StoreResult<Option<Delivery>> {
        let (org, id) = (org.clone(), id.clone());
        self.read(move |conn| reads::get_delivery(conn, &org, &id))
            .await
    }

    async fn list_attempts(&self, org: &OrgId, query: &AttemptQuery) -> StoreResult<Page<Attempt>> {
        let (org, query) = (org.clone(), query.clone());
        self.read(move |conn| reads::list_attempts(conn, &org, &query))
            .await
    }

    async fn unfinished(
        &self,
        org: &OrgId,
        destination: Option<&DestinationId>,
    ) -> StoreResult<Unfinished> {
        let (org, destination) = (org.clone(), destination.cloned());
        self.read(move |conn| reads::unfinished(conn, &org, destination.as_ref()))
            .await
    }

    async fn rollups(
        &self,
        org: &OrgId,
        destination: Option<&DestinationId>,
        since: Millis,
    ) -> StoreResult<Vec<(Millis, hookline_core::rollup::Rollup)>> {
        let (org, destination) = (org.clone(), destination.cloned());
        self.read(move |conn| {
            let sql = rollups::select(|n| format!("?{n}"), destination.is_some());
            let mut select = conn.prepare_cached(&sql)?;
            let read = |r: &rusqlite::Row<'_>| {
                let mut counters = [0i64; 16];
                for (i, c) in counters.iter_mut().enumerate() {
                    *c = r.get(i + 1)?;
                }
                Ok((r.get(0)?, rollups::from_counters(&counters)))
            };
            let rows = match &destination {
                Some(d) => {
                    select.query_map(rusqlite::params![org.as_str(), since, d.as_str()], read)?
                }
                None => select.query_map(rusqlite::params![org.as_str(), since], read)?,
            };
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn get_attempt(&self, org: &OrgId, id: &AttemptId) -> StoreResult<Option<Attempt>> {
        let (org, id) = (org.clone(), id.clone());
        self.read(move |conn| reads::get_attempt(conn, &org, &id))
            .await
    }
}

#[async_trait]
impl Queue for SqliteStore {
    async fn publish(&self, org: &OrgId, event: NewEvent, now: Millis) -> StoreResult<Published> {
        let org = org.clone();
        let published = self
            .write_or_busy(move |conn, state| {
                publish::publish(conn, state, &org, event.clone(), now)
            })
            .await?;
        if published.created && published.queued > 0 {
            self.wake_node();
        }
        Ok(published)
    }

    async fn publish_batch(
        &self,
        org: &OrgId,
        events: Vec<NewEvent>,
        now: Millis,
    ) -> StoreResult<Vec<Published>> {
        let org = org.clone();
        // One writer job: the writer's transaction holds all of them, and a failure
        // undoes the job's every publish (its savepoint) and no one else's.
        let published = self
            .write_or_busy(move |conn, state| {
                events
                    .iter()
                    .map(|event| publish::publish(conn, state, &org, event.clone(), now))
                    .collect::<StoreResult<Vec<_>>>()
            })
            .await?;
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
        let (destination, events) = (destination.clone(), events.to_vec());
        let queued = self
            .write(move |conn, state| {
                crate::backfill::backfill(conn, state, &destination, &events, now)
            })
            .await?;
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
        let (org, id) = (org.clone(), id.clone());
        let queued = self
            .write(move |conn, state| writes::redeliver(conn, state, &org, &id, now))
            .await?;
        if queued.is_some() {
            self.wake_node();
        }
        Ok(queued)
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        let request = request.clone();
        self.write_bookkeeping(move |conn, state| queue::claim(conn, state, &request))
            .await
    }

    async fn complete(&self, batch: CompletedBatch) -> StoreResult<()> {
        // Shared, so that the attempts are freed here rather than on the writer thread,
        // where the allocator's frees from another thread slowed the writer.
        let batch = std::sync::Arc::new(batch);
        let written = batch.clone();
        self.write_bookkeeping(move |conn, state| queue::complete(conn, state, &written))
            .await
    }

    async fn release(&self, node_id: &str, handbacks: &[Handback], now: Millis) -> StoreResult<()> {
        let (node_id, handbacks) = (node_id.to_owned(), handbacks.to_vec());
        self.write_bookkeeping(move |conn, state| {
            queue::release(conn, state, &node_id, &handbacks, now)
        })
        .await?;
        self.wake_node();
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<Millis>> {
        // No read of the leases: this is asked after nearly every claim, and a query
        // on a reader each time cost the dispatcher's loop a trip to the blocking pool.
        Ok(self.next_due_in_index())
    }

    async fn due_now(&self, now: Millis) -> StoreResult<DueNow> {
        self.read(move |conn| reads::due_now(conn, now)).await
    }

    fn commit_times(&self) -> hookline_store::CommitTimes {
        self.shared.writer.commit_times()
    }

    fn attach(&self, node: std::sync::Arc<dyn Admission>) {
        self.shared.node.set(node);
    }
}
