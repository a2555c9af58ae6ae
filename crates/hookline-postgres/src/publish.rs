//! Publishing: events, their streams' next `seq`s, and one delivery per destination that
//! wants each, all in the caller's transaction, in the same few statements however many
//! events there are; and reading back events published before under the same
//! idempotency keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hookline_core::clock::Millis;
use hookline_core::destination::Destination;
use hookline_core::event::NewEvent;
use hookline_core::ids::{DeliveryId, OrgId};
use sqlx::{PgConnection, Row};

use crate::membership::MEMBERS_SHARED;
use crate::writes::insert_destination;
use crate::{notify_work, rows};
use hookline_store::raw::{DESTINATION_COLUMNS, EVENT_COLUMNS};
use hookline_store::{LocalLeases, Published, StoreError, StoreResult};

/// One event to publish, as the API handed it over at `now`.
#[derive(Clone)]
pub struct Publication {
    pub org: OrgId,
    pub event: NewEvent,
    pub now: Millis,
}

/// An org's id and an idempotency key.
type KeyOfOrg = (String, String);

/// The events stored before under any of `keys`.
async fn existing_events(
    conn: &mut PgConnection,
    keys: &[KeyOfOrg],
) -> StoreResult<HashMap<KeyOfOrg, Published>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (orgs, keys): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(o, k)| (o.as_str(), k.as_str())).unzip();
    let sql = format!(
        "SELECT {EVENT_COLUMNS}, deliveries, idempotency_key FROM events
         WHERE (org_id, idempotency_key) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))"
    );
    sqlx::query(&sql)
        .bind(&orgs)
        .bind(&keys)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| {
            let event = rows::event(row)?;
            let key = (event.org_id.to_string(), row.try_get::<String, _>(10)?);
            let published = Published {
                event: Arc::new(event),
                deliveries: row.try_get::<i64, _>(9)? as u32,
                queued: 0,
                created: false,
            };
            Ok((key, published))
        })
        .collect()
}

/// The event stored before under `key`, if any.
pub async fn existing_event(
    conn: &mut PgConnection,
    org: &OrgId,
    key: &str,
) -> StoreResult<Option<Published>> {
    let key = (org.to_string(), key.to_owned());
    let mut found = existing_events(conn, std::slice::from_ref(&key)).await?;
    Ok(found.remove(&key))
}

/// Takes the next `seq` of each stream for each of `publications`, in their order. The
/// streams' rows are upserted in key order, so transactions taking several at once
/// cannot deadlock.
async fn next_seqs(
    conn: &mut PgConnection,
    publications: &[&Publication],
) -> StoreResult<Vec<i64>> {
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for p in publications {
        *counts
            .entry((p.org.as_str(), p.event.stream.as_str()))
            .or_default() += 1;
    }
    let orgs: Vec<&str> = counts.keys().map(|(o, _)| *o).collect();
    let streams: Vec<&str> = counts.keys().map(|(_, s)| *s).collect();
    let added: Vec<i64> = counts.values().copied().collect();
    let last: Vec<(String, String, i64)> = sqlx::query_as(
        "INSERT INTO streams (org_id, name, last_seq)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS s(org_id, name, added)
         ORDER BY org_id, name
         ON CONFLICT (org_id, name) DO UPDATE SET last_seq = streams.last_seq + EXCLUDED.last_seq
         RETURNING org_id, name, last_seq",
    )
    .bind(&orgs)
    .bind(&streams)
    .bind(&added)
    .fetch_all(&mut *conn)
    .await?;
    // The first `seq` taken for each stream, counted up as the publications take theirs.
    let mut next: HashMap<(String, String), i64> = last
        .into_iter()
        .map(|(org, stream, last)| {
            let added = counts[&(org.as_str(), stream.as_str())];
            ((org, stream), last - added + 1)
        })
        .collect();
    publications
        .iter()
        .map(|p| {
            let key = (p.org.to_string(), p.event.stream.as_str().to_owned());
            let seq = next
                .get_mut(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("no seq taken for stream {}", key.1)))?;
            *seq += 1;
            Ok(*seq - 1)
        })
        .collect()
}

/// The live, subscribed destinations of each of `orgs`, and whether a node other than
/// `node_id` is a member (read after taking `MEMBERS_SHARED`, see `publish_all`).
async fn destinations_of(
    conn: &mut PgConnection,
    orgs: &[&str],
    node_id: &str,
) -> StoreResult<(HashMap<String, Vec<Arc<Destination>>>, bool)> {
    let sql = format!(
        "SELECT {DESTINATION_COLUMNS},
             EXISTS (SELECT 1 FROM nodes WHERE id <> $2) AS others_present
         FROM destinations
         WHERE org_id = ANY($1) AND deleted_at IS NULL AND NOT one_shot"
    );
    let mut by_org: HashMap<String, Vec<Arc<Destination>>> = HashMap::new();
    let mut others_present = false;
    let found = sqlx::query(&sql)
        .bind(orgs)
        .bind(node_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in found {
        let destination = rows::destination(&row)?;
        others_present = row.try_get("others_present")?;
        by_org
            .entry(destination.org_id.to_string())
            .or_default()
            .push(Arc::new(destination));
    }
    Ok((by_org, others_present))
}

/// The rows of one commit's new deliveries, a column each.
#[derive(Default)]
struct DeliveryRows {
    ids: Vec<String>,
    destinations: Vec<String>,
    orgs: Vec<String>,
    events: Vec<String>,
    streams: Vec<String>,
    seqs: Vec<i64>,
    types: Vec<String>,
    created: Vec<Millis>,
    ordered: Vec<bool>,
    /// Until when the row is leased to the publishing node; None: it waits for a claim.
    leased_until: Vec<Option<Millis>>,
}

/// The rows of one commit's new events, a column each.
#[derive(Default)]
struct EventRows {
    ids: Vec<String>,
    orgs: Vec<String>,
    streams: Vec<String>,
    seqs: Vec<i64>,
    types: Vec<String>,
    levels: Vec<&'static str>,
    timestamps: Vec<Millis>,
    data: Vec<String>,
    raw: Vec<Option<String>>,
    keys: Vec<Option<String>>,
    deliveries: Vec<i64>,
}

/// Stores the events and their deliveries in the caller's transaction and answers for
/// each in order; one published before under the same idempotency key (or earlier in
/// `publications`) is answered with that event. When `notify`, tells listening nodes
/// (delivered at commit) if any delivery waits for a claim.
///
/// A fresh delivery is leased to the publishing node at once when its admission takes it
/// (`leases`, handed over once the caller commits), which spares the claim's write. Only
/// while that node is the only member: a publish first takes the members' lock shared,
/// then reads whether another node is a member, and if one is, leaves every delivery to
/// a claim, which counts what each node holds. (Locking each destination in every
/// publish, as a claim does, serialized the publishes of all nodes to a destination.) A
/// node joining takes the members' lock exclusively, so it waits out every publish that
/// did not see it.
pub async fn publish_all(
    conn: &mut PgConnection,
    publications: Vec<Publication>,
    notify: bool,
    leases: &mut LocalLeases,
) -> StoreResult<Vec<Published>> {
    let node = leases.node();
    if node.is_some() {
        sqlx::query(MEMBERS_SHARED).execute(&mut *conn).await?;
    }
    let key_of: Vec<Option<KeyOfOrg>> = publications
        .iter()
        .map(|p| {
            let key = p.event.idempotency_key.as_ref()?;
            Some((p.org.to_string(), key.as_str().to_owned()))
        })
        .collect();
    let keys: Vec<KeyOfOrg> = key_of.iter().flatten().cloned().collect();
    let mut answered = existing_events(conn, &keys).await?;
    // A publication is stored unless an event stored before, or an earlier one of these,
    // has its key: then it is answered with that event.
    let mut keys_taken: std::collections::HashSet<&KeyOfOrg> = std::collections::HashSet::new();
    let fresh: Vec<usize> = (0..publications.len())
        .filter(|i| match &key_of[*i] {
            Some(key) => !answered.contains_key(key) && keys_taken.insert(key),
            None => true,
        })
        .collect();
    let to_store: Vec<&Publication> = fresh.iter().map(|i| &publications[*i]).collect();
    let seqs = if to_store.is_empty() {
        Vec::new()
    } else {
        next_seqs(conn, &to_store).await?
    };
    let mut orgs: Vec<&str> = to_store.iter().map(|p| p.org.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let node_id = node.as_ref().map_or("", |n| n.node_id()).to_owned();
    let (destinations, others_present) = if orgs.is_empty() {
        (HashMap::new(), false)
    } else {
        destinations_of(conn, &orgs, &node_id).await?
    };

    let mut new_deliveries = DeliveryRows::default();
    let mut new_events = EventRows::default();
    let mut stored: HashMap<usize, Published> = HashMap::new();
    let mut waiting = 0;
    let count = publications.len();
    let fresh_ones = publications
        .into_iter()
        .enumerate()
        .filter(|(index, _)| fresh.binary_search(index).is_ok());
    for ((index, Publication { org, event, now }), seq) in fresh_ones.zip(seqs) {
        let key = &key_of[index];
        let one_shot = event.one_shot.clone().map(Arc::new);
        let event = Arc::new(event.into_event(org.clone(), seq, now));
        let mut wanted: Vec<Arc<Destination>> = destinations
            .get(org.as_str())
            .into_iter()
            .flatten()
            .filter(|d| d.wants(&event))
            .cloned()
            .collect();
        if let Some(one_shot) = one_shot {
            insert_destination(conn, &one_shot, true).await?;
            wanted.push(one_shot);
        }
        let mut queued = 0;
        for destination in &wanted {
            let id = DeliveryId::generate();
            let lease = leases.lease_at_publish(&id, destination, &event, others_present, now);
            queued += u32::from(lease.is_none());
            new_deliveries.ids.push(id.to_string());
            new_deliveries.destinations.push(destination.id.to_string());
            new_deliveries.orgs.push(event.org_id.to_string());
            new_deliveries.events.push(event.id.to_string());
            new_deliveries
                .streams
                .push(event.stream.as_str().to_owned());
            new_deliveries.seqs.push(event.seq);
            new_deliveries
                .types
                .push(event.event_type.as_str().to_owned());
            new_deliveries.created.push(now);
            new_deliveries.ordered.push(destination.settings.ordered);
            new_deliveries.leased_until.push(lease.map(|l| l.until));
        }
        waiting += queued;
        new_events.ids.push(event.id.to_string());
        new_events.orgs.push(event.org_id.to_string());
        new_events.streams.push(event.stream.as_str().to_owned());
        new_events.seqs.push(event.seq);
        new_events.types.push(event.event_type.as_str().to_owned());
        new_events.levels.push(event.level.as_str());
        new_events.timestamps.push(event.timestamp);
        new_events.data.push(event.data.to_string());
        new_events
            .raw
            .push(event.raw.as_ref().map(|r| r.to_string()));
        new_events
            .keys
            .push(key.as_ref().map(|(_, key)| key.clone()));
        new_events.deliveries.push(wanted.len() as i64);
        let published = Published {
            event,
            deliveries: wanted.len() as u32,
            queued,
            created: true,
        };
        if let Some(key) = key {
            answered.insert(key.clone(), published.clone());
        }
        stored.insert(index, published);
    }
    insert_deliveries(conn, &new_deliveries, &node_id).await?;
    insert_events(conn, &new_events).await?;
    if notify && waiting > 0 {
        notify_work(conn).await?;
    }

    (0..count)
        .map(|index| match stored.remove(&index) {
            Some(published) => Ok(published),
            None => key_of[index]
                .as_ref()
                .and_then(|key| answered.get(key))
                .map(|published| Published {
                    queued: 0,
                    created: false,
                    ..published.clone()
                })
                .ok_or_else(|| StoreError::Corrupt("a publication went unanswered".into())),
        })
        .collect()
}

/// Publishes one event (see `publish_all`).
pub async fn publish(
    conn: &mut PgConnection,
    org: &OrgId,
    event: NewEvent,
    now: Millis,
    notify: bool,
    leases: &mut LocalLeases,
) -> StoreResult<Published> {
    let publication = Publication {
        org: org.clone(),
        event,
        now,
    };
    publish_all(conn, vec![publication], notify, leases)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a publication went unanswered".into()))
}

/// One statement for all of the deliveries, however many events and destinations; those
/// with a lease are stored as their first attempt under way at `node_id`.
async fn insert_deliveries(
    conn: &mut PgConnection,
    rows: &DeliveryRows,
    node_id: &str,
) -> StoreResult<()> {
    if rows.ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO deliveries (id, destination_id, org_id, event_id, stream, event_seq,
             event_type, state, run_at, created_at, updated_at, ordered, attempts,
             lease_until, leased_by)
         SELECT d.id, d.destination_id, d.org_id, d.event_id, d.stream, d.seq, d.type,
             CASE WHEN d.leased_until IS NULL THEN 'pending' ELSE 'delivering' END,
             d.created, d.created, d.created, d.ordered,
             CASE WHEN d.leased_until IS NULL THEN 0 ELSE 1 END,
             d.leased_until, CASE WHEN d.leased_until IS NULL THEN NULL ELSE $11 END
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::bigint[], $7::text[], $8::bigint[], $9::boolean[], $10::bigint[])
              AS d(id, destination_id, org_id, event_id, stream, seq, type, created, ordered,
                   leased_until)",
    )
    .bind(&rows.ids)
    .bind(&rows.destinations)
    .bind(&rows.orgs)
    .bind(&rows.events)
    .bind(&rows.streams)
    .bind(&rows.seqs)
    .bind(&rows.types)
    .bind(&rows.created)
    .bind(&rows.ordered)
    .bind(&rows.leased_until)
    .bind(node_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One statement for all of the events, in idempotency key order: transactions storing
/// the same keys at once then wait for one another instead of deadlocking.
async fn insert_events(conn: &mut PgConnection, rows: &EventRows) -> StoreResult<()> {
    if rows.ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO events (id, org_id, stream, seq, type, level, timestamp, data, raw,
             idempotency_key, deliveries)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
             $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[])
             AS e(id, org_id, stream, seq, type, level, timestamp, data, raw, key, deliveries)
         ORDER BY org_id, key",
    )
    .bind(&rows.ids)
    .bind(&rows.orgs)
    .bind(&rows.streams)
    .bind(&rows.seqs)
    .bind(&rows.types)
    .bind(&rows.levels)
    .bind(&rows.timestamps)
    .bind(&rows.data)
    .bind(&rows.raw)
    .bind(&rows.keys)
    .bind(&rows.deliveries)
    .execute(conn)
    .await
    .map_err(
        |e| match e.as_database_error().and_then(|d| d.constraint()) {
            // Another node published the same idempotency key first; the caller looks it up.
            Some("events_idempotency") => StoreError::Conflict("idempotency key taken".into()),
            _ => e.into(),
        },
    )?;
    Ok(())
}
