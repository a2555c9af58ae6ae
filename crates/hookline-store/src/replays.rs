//! The replay jobs a store keeps (see `hookline_core::replay`): made by the API, moved on
//! by each node's replay task under a lease, so one node at a time works on a job and a
//! job whose node died is taken up by another (or by the same node after a restart).

use async_trait::async_trait;
use hookline_core::clock::Millis;
use hookline_core::ids::{DestinationId, OrgId, ReplayId};
use hookline_core::replay::{Replay, ReplayFilter, ReplayStep};

use crate::{DeliveryQuery, MAX_PAGE_LIMIT, Page, PageRequest, Records, StoreResult};

#[async_trait]
pub trait Replays: Send + Sync + 'static {
    async fn insert_replay(&self, replay: &Replay) -> StoreResult<()>;
    /// A replay (not a backfill) of the org.
    async fn get_replay(&self, org: &OrgId, id: &ReplayId) -> StoreResult<Option<Replay>>;
    /// The org's replays (not backfills), newest first.
    async fn list_replays(&self, org: &OrgId, page: &PageRequest) -> StoreResult<Page<Replay>>;
    /// The destination's latest backfill, if it asked for one.
    async fn backfill_of(
        &self,
        org: &OrgId,
        destination: &DestinationId,
    ) -> StoreResult<Option<Replay>>;
    /// Stops a running replay; false if there is none of that id still running.
    async fn cancel_replay(&self, org: &OrgId, id: &ReplayId, now: Millis) -> StoreResult<bool>;
    /// A running job (replay or backfill) for `node` to work on until `lease_until`: one whose lease has
    /// run out, or that `node` already holds (it restarted).
    async fn claim_replay(
        &self,
        node: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Option<Replay>>;
    /// Records `step` of a replay `node` holds and extends its lease; false if the
    /// replay is no longer `node`'s or no longer running (canceled meanwhile).
    async fn advance_replay(
        &self,
        id: &ReplayId,
        node: &str,
        step: &ReplayStep,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<bool>;
}

/// The page of `destination`'s deliveries a replay looks at next: those `filter` names by
/// status and time, newest first, older than `cursor`. (Event types are matched on the
/// page, by `ReplayFilter::wants`.)
pub fn replay_query(
    destination: &DestinationId,
    filter: &ReplayFilter,
    cursor: Option<&str>,
    limit: u32,
) -> DeliveryQuery {
    DeliveryQuery {
        destination: Some(destination.clone()),
        status: Some(filter.status),
        since: filter.since,
        until: filter.until,
        page: PageRequest {
            limit: limit.clamp(1, MAX_PAGE_LIMIT),
            cursor: cursor.map(str::to_owned),
        },
        ..DeliveryQuery::default()
    }
}

/// How many of `destination`'s deliveries `filter` matches now: a dry run's answer, and
/// a replay's `total`.
pub async fn count_matching(
    records: &dyn Records,
    org: &OrgId,
    destination: &DestinationId,
    filter: &ReplayFilter,
) -> StoreResult<i64> {
    let (mut count, mut cursor) = (0, None);
    loop {
        let query = replay_query(destination, filter, cursor.as_deref(), MAX_PAGE_LIMIT);
        let page = records.list_deliveries(org, &query).await?;
        count += page.data.iter().filter(|d| filter.wants(d)).count() as i64;
        match (page.next_cursor, page.data.last()) {
            (Some(_), Some(last)) => cursor = Some(last.id.to_string()),
            _ => return Ok(count),
        }
    }
}

/// The replays' SQL, the same on both stores but for how parameters are written
/// (`param(n)`, from 1) and how a claim locks its row (`lock`: PostgreSQL's
/// `FOR UPDATE SKIP LOCKED`, nothing on the single-writer embedded store).
pub mod sql {
    /// Read back in this order by `RawReplay`.
    pub const COLUMNS: &str = "id, org_id, destination_id, filter, rate_per_sec, total, done, \
                               failed, state, cursor, created_at, updated_at, kind";

    pub fn insert(param: fn(usize) -> String) -> String {
        let params: Vec<String> = (1..=13).map(param).collect();
        format!(
            "INSERT INTO replays ({COLUMNS}) VALUES ({})",
            params.join(", ")
        )
    }

    /// org `param(1)`, id `param(2)`: a replay (not a backfill).
    pub fn get(param: fn(usize) -> String) -> String {
        format!(
            "SELECT {COLUMNS} FROM replays WHERE org_id = {} AND id = {} AND kind = 'replay'",
            param(1),
            param(2)
        )
    }

    /// org `param(1)`, destination `param(2)`: the destination's latest backfill.
    pub fn backfill_of(param: fn(usize) -> String) -> String {
        format!(
            "SELECT {COLUMNS} FROM replays
              WHERE org_id = {} AND destination_id = {} AND kind = 'backfill'
              ORDER BY id DESC LIMIT 1",
            param(1),
            param(2)
        )
    }

    /// org `param(1)`, older than id `param(2)` when `after`, at most `param(3)` rows.
    pub fn list(param: fn(usize) -> String, after: bool) -> String {
        let older = match after {
            true => format!(" AND id < {}", param(2)),
            false => String::new(),
        };
        format!(
            "SELECT {COLUMNS} FROM replays WHERE org_id = {} AND kind = 'replay'{older}
             ORDER BY id DESC LIMIT {}",
            param(1),
            param(3)
        )
    }

    /// now `param(1)`, org `param(2)`, id `param(3)`.
    pub fn cancel(param: fn(usize) -> String) -> String {
        format!(
            "UPDATE replays SET state = 'canceled', updated_at = {} \
             WHERE org_id = {} AND id = {} AND state = 'running' AND kind = 'replay'",
            param(1),
            param(2),
            param(3)
        )
    }

    /// node `param(1)`, now `param(2)`, lease until `param(3)`. With `shared`, only a
    /// replay whose lease ran out or that the node holds; else (one process owns the
    /// store, so any other lease is a dead process's) any running replay.
    pub fn claim(param: fn(usize) -> String, shared: bool) -> String {
        let (node, now, until) = (param(1), param(2), param(3));
        let (free, lock) = match shared {
            true => (
                format!("(lease_until <= {now} OR lease_owner = {node})"),
                "FOR UPDATE SKIP LOCKED",
            ),
            // `now` is still named, so both stores bind the same three parameters.
            false => (format!("{now} = {now}"), ""),
        };
        format!(
            "UPDATE replays SET lease_owner = {node}, lease_until = {until}
             WHERE id = (SELECT id FROM replays WHERE state = 'running' AND {free}
                          ORDER BY id LIMIT 1 {lock})
             RETURNING {COLUMNS}"
        )
    }

    /// cursor `param(1)`, done `param(2)`, failed `param(3)`, finished `param(4)`, now
    /// `param(5)`, lease until `param(6)`, id `param(7)`, node `param(8)`.
    pub fn advance(param: fn(usize) -> String) -> String {
        format!(
            "UPDATE replays SET cursor = COALESCE({}, cursor), done = done + {}, failed = failed + {},
                    state = CASE WHEN {} THEN 'done' ELSE state END,
                    updated_at = {}, lease_until = {}
              WHERE id = {} AND lease_owner = {} AND state = 'running'",
            param(1),
            param(2),
            param(3),
            param(4),
            param(5),
            param(6),
            param(7),
            param(8)
        )
    }
}

/// A replay's row as read, in `sql::COLUMNS` order.
pub struct RawReplay {
    pub id: String,
    pub org_id: String,
    pub destination_id: String,
    pub filter: String,
    pub rate_per_sec: i64,
    pub total: i64,
    pub done: i64,
    pub failed: i64,
    pub state: String,
    pub cursor: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub kind: String,
}

impl RawReplay {
    pub fn parse(self) -> StoreResult<Replay> {
        use hookline_core::replay::{ReplayState, ReplayWork};

        let corrupt =
            |what: &str| crate::StoreError::Corrupt(format!("replay {}: {what}", self.id));
        let work = serde_json::from_str(&self.filter)
            .ok()
            .and_then(|v| ReplayWork::from_json(&self.kind, &v))
            .ok_or_else(|| corrupt("filter"))?;
        Ok(Replay {
            id: ReplayId::parse(&self.id).ok_or_else(|| corrupt("id"))?,
            org_id: OrgId::parse(&self.org_id).ok_or_else(|| corrupt("org"))?,
            destination_id: DestinationId::parse(&self.destination_id)
                .ok_or_else(|| corrupt("destination"))?,
            work,
            rate_per_sec: u32::try_from(self.rate_per_sec).map_err(|_| corrupt("rate"))?,
            total: self.total,
            done: self.done,
            failed: self.failed,
            state: ReplayState::parse(&self.state).ok_or_else(|| corrupt("state"))?,
            cursor: self.cursor.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
