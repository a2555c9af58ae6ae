//! Reads: single objects scoped to their org, and cursor-paginated lists.

use hookline_core::clock::Millis;
use hookline_core::delivery::{Attempt, Delivery};
use hookline_core::destination::Destination;
use hookline_core::event::Event;
use hookline_core::ids::{AttemptId, DeliveryId, DestinationId, EventId, OrgId};
use hookline_core::sealed::SealedKeys;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::rows;
use hookline_store::raw::{ATTEMPT_COLUMNS, DELIVERY_COLUMNS, DESTINATION_COLUMNS, EVENT_COLUMNS};
use hookline_store::request_note::{self, RequestNote};
use hookline_store::{
    ApiKeyRecord, AttemptQuery, DeliveryQuery, DestinationQuery, DueNow, EventQuery, Org, Page,
    PageRequest, StoreResult, Unfinished,
};

/// `SELECT columns FROM table WHERE org_id = $org`, to which filters are added.
fn select(columns: &str, table: &str, org: &OrgId) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::new(format!("SELECT {columns} FROM {table} WHERE org_id = "));
    q.push_bind(org.as_str().to_owned());
    q
}

fn filter<T>(q: &mut QueryBuilder<'static, Postgres>, clause: &str, value: Option<T>)
where
    T: 'static + Send + sqlx::Encode<'static, Postgres> + sqlx::Type<Postgres>,
{
    if let Some(value) = value {
        q.push(format!(" AND {clause} "));
        q.push_bind(value);
    }
}

async fn page<T>(
    conn: &mut PgConnection,
    mut q: QueryBuilder<'static, Postgres>,
    newest_first: bool,
    page: &PageRequest,
    map: fn(&PgRow) -> StoreResult<T>,
    cursor_of: fn(&T) -> String,
) -> StoreResult<Page<T>> {
    let (cmp, order) = if newest_first {
        ("id <", "DESC")
    } else {
        ("id >", "ASC")
    };
    filter(&mut q, cmp, page.cursor.clone());
    q.push(format!(" ORDER BY id {order} LIMIT {}", page.limit + 1));
    let rows = q
        .build()
        .fetch_all(conn)
        .await?
        .iter()
        .map(map)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(rows, page.limit, cursor_of))
}

/// The one row of `q` (already narrowed to an id), parsed.
async fn one<T>(
    conn: &mut PgConnection,
    mut q: QueryBuilder<'static, Postgres>,
    map: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    q.build()
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

pub async fn org_for_key(conn: &mut PgConnection, key_hash: &str) -> StoreResult<Option<OrgId>> {
    let org: Option<String> = sqlx::query_scalar("SELECT org_id FROM api_keys WHERE key_hash = $1")
        .bind(key_hash)
        .fetch_optional(conn)
        .await?;
    Ok(org.map(OrgId::from_trusted))
}

pub async fn org_signing_keys(
    conn: &mut PgConnection,
    org: &OrgId,
) -> StoreResult<Option<SealedKeys>> {
    let keys: Option<Option<String>> =
        sqlx::query_scalar("SELECT signing_keys FROM orgs WHERE id = $1")
            .bind(org.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(keys.flatten().map(SealedKeys::from_stored))
}

pub async fn due_now(conn: &mut PgConnection, now: Millis) -> StoreResult<DueNow> {
    let (count, oldest): (i64, Option<Millis>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(run_at) FROM deliveries
         WHERE state IN ('pending', 'failed') AND run_at <= $1
           AND destination_id NOT IN (SELECT id FROM destinations
                                      WHERE deleted_at IS NULL AND NOT enabled)",
    )
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(DueNow {
        count: count as u64,
        oldest,
    })
}

pub async fn list_orgs(conn: &mut PgConnection) -> StoreResult<Vec<Org>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, name, created_at FROM orgs WHERE deleted_at IS NULL
         ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at)| Org {
            id: OrgId::from_trusted(id),
            name,
            created_at,
        })
        .collect())
}

pub async fn list_api_keys(conn: &mut PgConnection, org: &OrgId) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, org_id, key_hash, display_prefix, created_at FROM api_keys
         WHERE org_id = $1 ORDER BY id",
    )
    .bind(org.as_str())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, org_id, key_hash, display_prefix, created_at)| ApiKeyRecord {
                id: hookline_core::ids::ApiKeyId::from_trusted(id),
                org_id: OrgId::from_trusted(org_id),
                key_hash,
                display_prefix,
                created_at,
            },
        )
        .collect())
}

pub async fn get_event(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &EventId,
) -> StoreResult<Option<Event>> {
    let mut q = select(EVENT_COLUMNS, "events", org);
    filter(&mut q, "id =", Some(id.to_string()));
    one(conn, q, rows::event).await
}

pub async fn list_events(
    conn: &mut PgConnection,
    org: &OrgId,
    query: &EventQuery,
) -> StoreResult<Page<Event>> {
    let mut q = select(EVENT_COLUMNS, "events", org);
    filter(
        &mut q,
        "stream =",
        query.stream.as_ref().map(|s| s.as_str().to_owned()),
    );
    filter(
        &mut q,
        "type =",
        query.event_type.as_ref().map(|t| t.as_str().to_owned()),
    );
    filter(&mut q, "seq >", query.after_seq);
    page(conn, q, query.newest_first, &query.page, rows::event, |e| {
        e.id.to_string()
    })
    .await
}

pub async fn get_destination(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &DestinationId,
) -> StoreResult<Option<Destination>> {
    let mut q = select(DESTINATION_COLUMNS, "destinations", org);
    q.push(" AND deleted_at IS NULL AND NOT one_shot");
    filter(&mut q, "id =", Some(id.to_string()));
    one(conn, q, rows::destination).await
}

pub async fn list_destinations(
    conn: &mut PgConnection,
    org: &OrgId,
    query: &DestinationQuery,
) -> StoreResult<Page<Destination>> {
    let mut q = select(DESTINATION_COLUMNS, "destinations", org);
    q.push(" AND deleted_at IS NULL AND NOT one_shot");
    filter(
        &mut q,
        "stream =",
        query.stream.as_ref().map(|s| s.as_str().to_owned()),
    );
    page(conn, q, false, &query.page, rows::destination, |d| {
        d.id.to_string()
    })
    .await
}

pub async fn get_delivery(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &DeliveryId,
) -> StoreResult<Option<Delivery>> {
    let mut q = select(DELIVERY_COLUMNS, "deliveries", org);
    filter(&mut q, "id =", Some(id.to_string()));
    one(conn, q, rows::delivery).await
}

pub async fn list_deliveries(
    conn: &mut PgConnection,
    org: &OrgId,
    query: &DeliveryQuery,
) -> StoreResult<Page<Delivery>> {
    let mut q = select(DELIVERY_COLUMNS, "deliveries", org);
    filter(
        &mut q,
        "destination_id =",
        query.destination.as_ref().map(|d| d.to_string()),
    );
    filter(
        &mut q,
        "state =",
        query.status.map(|s| s.as_str().to_owned()),
    );
    filter(
        &mut q,
        "stream =",
        query.stream.as_ref().map(|s| s.as_str().to_owned()),
    );
    filter(
        &mut q,
        "event_type =",
        query.event_type.as_ref().map(|t| t.as_str().to_owned()),
    );
    filter(&mut q, "created_at >=", query.since);
    filter(&mut q, "created_at <", query.until);
    page(conn, q, true, &query.page, rows::delivery, |d| {
        d.id.to_string()
    })
    .await
}

pub async fn list_attempts(
    conn: &mut PgConnection,
    org: &OrgId,
    query: &AttemptQuery,
) -> StoreResult<Page<Attempt>> {
    let mut q = select(ATTEMPT_COLUMNS, "attempts", org);
    filter(
        &mut q,
        "destination_id =",
        query.destination.as_ref().map(|d| d.to_string()),
    );
    filter(
        &mut q,
        "delivery_id =",
        query.delivery.as_ref().map(|d| d.to_string()),
    );
    filter(
        &mut q,
        "event_type =",
        query.event_type.as_ref().map(|t| t.as_str().to_owned()),
    );
    filter(
        &mut q,
        "response_status =",
        query.status_code.map(i64::from),
    );
    filter(
        &mut q,
        "error_kind =",
        query.error.map(|k| k.as_str().to_owned()),
    );
    filter(&mut q, "started_at >=", query.since);
    filter(&mut q, "started_at <", query.until);
    let noted = page(conn, q, true, &query.page, rows::attempt, |(a, _)| {
        a.id.to_string()
    })
    .await?;
    Ok(Page {
        data: rebuild(conn, org, noted.data).await?,
        next_cursor: noted.next_cursor,
    })
}

pub async fn get_attempt(
    conn: &mut PgConnection,
    org: &OrgId,
    id: &AttemptId,
) -> StoreResult<Option<Attempt>> {
    let mut q = select(ATTEMPT_COLUMNS, "attempts", org);
    filter(&mut q, "id =", Some(id.to_string()));
    let noted = one(conn, q, rows::attempt).await?;
    Ok(rebuild(conn, org, noted.into_iter().collect()).await?.pop())
}

/// The attempts' requests as sent, from the events their notes stand for.
async fn rebuild(
    conn: &mut PgConnection,
    org: &OrgId,
    noted: Vec<(Attempt, RequestNote)>,
) -> StoreResult<Vec<Attempt>> {
    let ids: Vec<String> = request_note::events_to_read(&noted)
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    let events = if ids.is_empty() {
        Vec::new()
    } else {
        let mut q = select(EVENT_COLUMNS, "events", org);
        filter(&mut q, "id = ANY(", Some(ids));
        q.push(")");
        q.build()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(rows::event)
            .collect::<StoreResult<Vec<_>>>()?
    };
    request_note::rebuild(noted, &events)
}

/// Each arm's condition is a partial index's own (the unordered and the ordered due rows,
/// the leased rows), so the count costs the backlog, never the history.
pub async fn unfinished(
    conn: &mut PgConnection,
    org: &OrgId,
    destination: Option<&DestinationId>,
) -> StoreResult<Unfinished> {
    let one = match destination {
        Some(_) => "AND destination_id = $2",
        None => "",
    };
    let sql = format!(
        "SELECT state, COUNT(*) FROM deliveries
          WHERE state IN ('pending', 'failed') AND NOT ordered AND org_id = $1 {one}
          GROUP BY state
         UNION ALL
         SELECT state, COUNT(*) FROM deliveries
          WHERE state IN ('pending', 'failed') AND ordered AND org_id = $1 {one}
          GROUP BY state
         UNION ALL
         SELECT state, COUNT(*) FROM deliveries
          WHERE state = 'delivering' AND org_id = $1 {one}
          GROUP BY state"
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(&sql).bind(org.as_str());
    if let Some(d) = destination {
        query = query.bind(d.as_str());
    }
    let mut counts = Unfinished::default();
    for (state, count) in query.fetch_all(conn).await? {
        counts.add(&state, count)?;
    }
    Ok(counts)
}
