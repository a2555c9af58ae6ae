//! Writes other than publishing and the queue: orgs, keys, destinations, redelivery.

use hookline_core::clock::Millis;
use hookline_core::delivery::Delivery;
use hookline_core::destination::{Destination, DestinationSettings};
use hookline_core::ids::{ApiKeyId, DeliveryId, DestinationId, OrgId};
use hookline_core::sealed::SealedKeys;
use rusqlite::{Connection, OptionalExtension, params};

use crate::WriterState;
use crate::reads;
use hookline_store::{ApiKeyRecord, KeyDeletion, Org, StoreError, StoreResult};

pub fn create_org(conn: &Connection, org: &Org, key: &ApiKeyRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![org.id.as_str(), org.name, org.created_at],
    )?;
    create_api_key(conn, key)
}

pub fn create_api_key(conn: &Connection, key: &ApiKeyRecord) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO api_keys (id, org_id, key_hash, display_prefix, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.id.as_str(),
            key.org_id.as_str(),
            key.key_hash,
            key.display_prefix,
            key.created_at
        ],
    )?;
    Ok(())
}

/// One write job: the org is marked deleted, its keys removed, and each destination
/// deleted as `delete_destination` does (so the writer's caches forget them too).
pub fn delete_org(
    conn: &Connection,
    state: &mut WriterState,
    org: &OrgId,
    now: Millis,
) -> StoreResult<bool> {
    let deleted = conn.execute(
        "UPDATE orgs SET deleted_at = ?1 WHERE id = ?2 AND deleted_at IS NULL",
        params![now, org.as_str()],
    )?;
    if deleted == 0 {
        return Ok(false);
    }
    conn.execute(
        "DELETE FROM api_keys WHERE org_id = ?1",
        params![org.as_str()],
    )?;
    let destinations: Vec<String> = conn
        .prepare("SELECT id FROM destinations WHERE org_id = ?1 AND deleted_at IS NULL")?
        .query_map(params![org.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in destinations {
        delete_destination(conn, state, org, &DestinationId::from_trusted(id), now)?;
    }
    Ok(true)
}

/// Runs on the writer, one job at a time: nothing can delete the org's other keys
/// between the count and the deletion.
pub fn delete_api_key(conn: &Connection, org: &OrgId, id: &ApiKeyId) -> StoreResult<KeyDeletion> {
    let keys: Vec<String> = conn
        .prepare_cached("SELECT id FROM api_keys WHERE org_id = ?1")?
        .query_map(params![org.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let deletion = KeyDeletion::of(&keys, id);
    if deletion == KeyDeletion::Deleted {
        conn.execute(
            "DELETE FROM api_keys WHERE id = ?1 AND org_id = ?2",
            params![id.as_str(), org.as_str()],
        )?;
    }
    Ok(deletion)
}

/// The writer runs one write at a time, so the count and the insert cannot interleave
/// with another org's create.
pub fn insert_destination(
    conn: &Connection,
    state: &mut WriterState,
    d: &Destination,
    max_per_org: u32,
) -> StoreResult<()> {
    let held: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM destinations
             WHERE org_id = ?1 AND deleted_at IS NULL AND NOT one_shot",
        )?
        .query_row(params![d.org_id.as_str()], |r| r.get(0))?;
    if held >= i64::from(max_per_org) {
        return Err(StoreError::destination_limit(max_per_org));
    }
    state.destinations.forget_org(d.org_id.as_str());
    insert_destination_row(conn, d, false)
}

/// The row alone; a one-shot destination (`webhook_url`) takes only the event it came
/// with, so it never enters the cache of destinations that events are matched against.
pub fn insert_destination_row(
    conn: &Connection,
    d: &Destination,
    one_shot: bool,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO destinations (id, org_id, stream, settings, enabled, secret, created_at,
             updated_at, one_shot)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        d.id.as_str(),
        d.org_id.as_str(),
        d.stream.as_ref().map(|s| s.as_str()),
        hookline_store::raw::settings_json(&d.settings),
        d.settings.enabled,
        d.keys.as_str(),
        d.created_at,
        d.updated_at,
        one_shot,
    ])?;
    Ok(())
}

pub fn update_destination_settings(
    conn: &Connection,
    state: &mut WriterState,
    org: &OrgId,
    id: &DestinationId,
    settings: &DestinationSettings,
    now: Millis,
) -> StoreResult<bool> {
    let was_ordered = state
        .destinations
        .of_org(conn, org)?
        .iter()
        .find(|d| d.id == *id)
        .map(|d| d.settings.ordered);
    state.destination_changed(org.as_str(), id.as_str());
    if was_ordered.is_some_and(|was| was != settings.ordered) {
        // Unfinished deliveries follow the destination into (or out of) the stream-order
        // index; finished ones never need it. Each state through its own partial index.
        for sql in [
            "UPDATE deliveries SET ordered = ?1
             WHERE destination_id = ?2 AND state IN ('pending', 'failed')",
            "UPDATE deliveries SET ordered = ?1
             WHERE state = 'delivering' AND destination_id = ?2",
        ] {
            conn.execute(sql, params![settings.ordered, id.as_str()])?;
        }
    }
    let changed = conn.execute(
        "UPDATE destinations SET settings = ?1, enabled = ?2, updated_at = ?3,
             disabled_reason = CASE WHEN ?2 THEN NULL ELSE disabled_reason END,
             consecutive_failures = CASE WHEN ?2 AND NOT enabled THEN 0
                                         ELSE consecutive_failures END
         WHERE id = ?4 AND org_id = ?5 AND deleted_at IS NULL",
        params![
            hookline_store::raw::settings_json(settings),
            settings.enabled,
            now,
            id.as_str(),
            org.as_str()
        ],
    )?;
    if changed > 0 && settings.enabled {
        state.due().refresh(conn, id.as_str())?;
    }
    Ok(changed > 0)
}

pub fn set_org_signing_keys(
    conn: &Connection,
    org: &OrgId,
    keys: &SealedKeys,
    expected: Option<&SealedKeys>,
) -> StoreResult<bool> {
    let changed = conn.execute(
        "UPDATE orgs SET signing_keys = ?1 WHERE id = ?2 AND signing_keys IS ?3",
        params![
            keys.as_str(),
            org.as_str(),
            expected.map(SealedKeys::as_str)
        ],
    )?;
    Ok(changed > 0)
}

pub fn replace_destination_keys(
    conn: &Connection,
    state: &mut WriterState,
    org: &OrgId,
    id: &DestinationId,
    keys: &SealedKeys,
    expected: &SealedKeys,
    now: Millis,
) -> StoreResult<bool> {
    state.destination_changed(org.as_str(), id.as_str());
    let changed = conn.execute(
        "UPDATE destinations SET secret = ?1, updated_at = ?2
         WHERE id = ?3 AND org_id = ?4 AND deleted_at IS NULL AND secret = ?5",
        params![
            keys.as_str(),
            now,
            id.as_str(),
            org.as_str(),
            expected.as_str()
        ],
    )?;
    Ok(changed > 0)
}

pub fn delete_destination(
    conn: &Connection,
    state: &mut WriterState,
    org: &OrgId,
    id: &DestinationId,
    now: Millis,
) -> StoreResult<bool> {
    state.destination_changed(org.as_str(), id.as_str());
    state.due().forget(id.as_str());
    let deleted = conn.execute(
        "UPDATE destinations SET deleted_at = ?1, enabled = 0, updated_at = ?1
         WHERE id = ?2 AND org_id = ?3 AND deleted_at IS NULL",
        params![now, id.as_str(), org.as_str()],
    )?;
    if deleted > 0 {
        conn.execute(
            "UPDATE deliveries SET state = 'canceled', run_at = NULL, lease_until = NULL,
                 leased_by = NULL, updated_at = ?1
             WHERE destination_id = ?2 AND state IN ('pending', 'failed', 'delivering')",
            params![now, id.as_str()],
        )?;
    }
    Ok(deleted > 0)
}

pub fn redeliver(
    conn: &Connection,
    state: &mut WriterState,
    org: &OrgId,
    id: &DeliveryId,
    now: Millis,
) -> StoreResult<Option<Delivery>> {
    let destination: Option<(String, bool)> = conn
        .query_row(
            "SELECT t.id, t.deleted_at IS NOT NULL FROM deliveries d
             JOIN destinations t ON t.id = d.destination_id
             WHERE d.id = ?1 AND d.org_id = ?2",
            params![id.as_str(), org.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let destination_id = match destination {
        None => return Ok(None),
        Some((_, true)) => {
            return Err(StoreError::Conflict(
                "the destination of this delivery has been deleted".into(),
            ));
        }
        Some((destination_id, false)) => destination_id,
    };
    conn.execute(
        "UPDATE deliveries SET state = 'pending', run_at = ?1, lease_until = NULL,
             leased_by = NULL, updated_at = ?1
         WHERE org_id = ?3 AND id = ?2",
        params![now, id.as_str(), org.as_str()],
    )?;
    state.due().mark(&destination_id, now);
    reads::get_delivery(conn, org, id)
}
