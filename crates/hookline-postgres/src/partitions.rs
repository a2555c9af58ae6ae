//! Deliveries and attempts are partitioned by their event's id, one partition of each
//! per UTC day (`hookline_core::partition`): an event's deliveries and all their
//! attempts, retries and replays included, sit in the same day's pair of tables, so
//! retention drops a day by dropping two tables, never leaving an attempt whose event or
//! delivery is gone. Nodes make the days ahead themselves. Events are not partitioned:
//! an idempotency key and a stream's `seq` must stay unique across every day, which a
//! partitioned table can only enforce within one; they are deleted row by row, once no
//! partition is left that could hold their deliveries.

use hookline_core::clock::Millis;
use hookline_core::ids::EventId;
use hookline_core::partition::{Day, keeps_rows_before};
use sqlx::PgConnection;

use hookline_store::StoreResult;

/// Both partitioned tables; each day has a partition of each, with the same bounds.
/// Attempts first: completions write attempts before deliveries, so dropping in this
/// order takes their locks in the same order and cannot deadlock with one.
const TABLES: [&str; 2] = ["attempts", "deliveries"];

/// Storage settings of a day's deliveries (a partitioned table cannot carry them):
/// the queue churns, so it is vacuumed early, as the table was before partitioning.
const DELIVERIES_STORAGE: &str =
    "WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02)";

/// One day's pair of partitions (or the pair made of the tables from before
/// partitioning): their name after the table's, and the event ids they hold.
#[derive(Debug, Clone)]
pub struct Partition {
    pub suffix: String,
    /// The lowest event id it holds; None: every id below `until`.
    pub from: Option<String>,
    /// The first event id it no longer holds.
    pub until: String,
    /// When the events it holds were made, at the latest.
    pub until_ms: Millis,
}

/// The partitions of deliveries (attempts have the same), oldest first.
/// A partition another transaction is dropping meanwhile has no bound to print: it is
/// left out.
pub async fn existing(conn: &mut PgConnection) -> StoreResult<Vec<Partition>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'deliveries'::regclass",
    )
    .fetch_all(conn)
    .await?;
    let mut partitions: Vec<Partition> = rows
        .iter()
        .filter_map(|(name, bound)| parse(name, bound.as_deref()?))
        .collect();
    partitions.sort_by_key(|p| p.until_ms);
    Ok(partitions)
}

/// A partition from its table name and its bound as PostgreSQL prints it:
/// `FOR VALUES FROM ('evt_…') TO ('evt_…')`, or `FROM (MINVALUE)`.
fn parse(name: &str, bound: &str) -> Option<Partition> {
    let suffix = name.strip_prefix("deliveries_")?.to_owned();
    let quoted: Vec<&str> = bound.split('\'').skip(1).step_by(2).collect();
    let until = quoted.last()?.to_string();
    let from = match bound.contains("MINVALUE") {
        true => None,
        false => Some(quoted.first()?.to_string()),
    };
    Some(Partition {
        suffix,
        from,
        until_ms: EventId::made_at(&until)?,
        until,
    })
}

/// Makes the partitions of today and the days ahead that do not exist yet, under a lock
/// (nodes preparing at once wait for one another, then find them made); returns how
/// many days it made. A day begins where the partition before it ends, if that is later
/// than its midnight (the first day after the cutover).
pub async fn prepare(conn: &mut PgConnection, now: Millis) -> StoreResult<u32> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('hookline-partitions', 0))")
        .execute(&mut *conn)
        .await?;
    let existing = existing(conn).await?;
    let mut made = 0;
    for day in Day::ahead(now) {
        if existing.iter().any(|p| p.suffix == day_suffix(&day)) {
            continue;
        }
        let until = EventId::lowest_at(day.end).to_string();
        let midnight = EventId::lowest_at(day.start).to_string();
        let from = existing
            .iter()
            .filter(|p| p.until_ms <= day.end)
            .map(|p| p.until.clone())
            .fold(midnight, std::cmp::max);
        if from >= until {
            continue;
        }
        for table in TABLES {
            let storage = match table {
                "deliveries" => DELIVERIES_STORAGE,
                _ => "",
            };
            sqlx::query(&format!(
                "CREATE TABLE {table}_{suffix} PARTITION OF {table}
                 FOR VALUES FROM ('{from}') TO ('{until}') {storage}",
                suffix = day_suffix(&day),
            ))
            .execute(&mut *conn)
            .await?;
        }
        made += 1;
    }
    Ok(made)
}

/// The event ids some partition holds, as `(from, until)` ranges for `unnest` (from ''
/// for the lowest): an event outside all of them has no delivery or attempt left, and
/// none can be made for it.
pub fn ranges(partitions: &[Partition]) -> (Vec<&str>, Vec<&str>) {
    partitions
        .iter()
        .map(|p| (p.from.as_deref().unwrap_or_default(), p.until.as_str()))
        .unzip()
}

fn day_suffix(day: &Day) -> String {
    format!("p{}", day.name)
}

/// Drops the oldest day whose every delivery has finished and whose every org's
/// retention has passed its end (`cuts`: each org's cut, None to keep everything);
/// returns whether it dropped one. Its own short transaction: dropping a partition
/// locks its table for a moment, so it waits at most a second for that, then leaves the
/// day for the next pass.
pub async fn drop_expired(
    conn: &mut PgConnection,
    now: Millis,
    cuts: &[(String, Option<Millis>)],
) -> StoreResult<bool> {
    for partition in existing(conn).await? {
        if partition.until_ms > now {
            break;
        }
        let holding: Vec<&str> = cuts
            .iter()
            .filter(|(_, cut)| keeps_rows_before(*cut, partition.until_ms))
            .map(|(org, _)| org.as_str())
            .collect();
        if held_back(conn, &partition, &holding).await? {
            continue;
        }
        sqlx::query("SET LOCAL lock_timeout = '1s'")
            .execute(&mut *conn)
            .await?;
        for table in TABLES {
            sqlx::query(&format!("DROP TABLE {table}_{}", partition.suffix))
                .execute(&mut *conn)
                .await?;
        }
        tracing::info!(
            partition = partition.suffix,
            "retention dropped the deliveries and attempts of events before {}",
            hookline_core::clock::rfc3339(partition.until_ms)
        );
        return Ok(true);
    }
    Ok(false)
}

/// Whether `partition` must stay: a delivery in it has not finished (each arm is a
/// partial index's own condition, so this reads the backlog, not the day), or one of
/// the `holding` orgs has deliveries in it, or events it could hold deliveries of (a
/// backfill may still want them: a day of events no destination took yet is empty).
async fn held_back(
    conn: &mut PgConnection,
    partition: &Partition,
    holding: &[&str],
) -> StoreResult<bool> {
    let table = format!("deliveries_{}", partition.suffix);
    Ok(sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table}
                        WHERE state IN ('pending', 'failed') AND NOT ordered)
             OR EXISTS (SELECT 1 FROM {table} WHERE state IN ('pending', 'failed') AND ordered)
             OR EXISTS (SELECT 1 FROM {table} WHERE state = 'delivering')
             OR EXISTS (SELECT 1 FROM {table} WHERE org_id = ANY($1))
             OR EXISTS (SELECT 1 FROM unnest($1::text[]) AS o(id), LATERAL (
                            SELECT 1 FROM events
                            WHERE org_id = o.id AND id >= $2 AND id < $3 LIMIT 1) e)"
    ))
    .bind(holding)
    .bind(partition.from.as_deref().unwrap_or_default())
    .bind(&partition.until)
    .fetch_one(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_read_from_its_name_and_printed_bound() {
        let from = EventId::lowest_at(1_000).to_string();
        let until = EventId::lowest_at(86_401_000).to_string();
        let day = parse(
            "deliveries_p19700102",
            &format!("FOR VALUES FROM ('{from}') TO ('{until}')"),
        )
        .unwrap();
        assert_eq!(day.suffix, "p19700102");
        assert_eq!(day.from.as_deref(), Some(from.as_str()));
        assert_eq!(day.until_ms, 86_401_000);

        let legacy = parse(
            "deliveries_legacy",
            &format!("FOR VALUES FROM (MINVALUE) TO ('{until}')"),
        )
        .unwrap();
        assert_eq!((legacy.suffix.as_str(), legacy.from), ("legacy", None));
        assert!(parse("attempts_legacy", "FOR VALUES FROM (MINVALUE) TO ('x')").is_none());
    }
}
