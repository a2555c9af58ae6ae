//! Folding day-old minute rollups into hours on PostgreSQL: what the embedded store's
//! fold does (see `hookline_sqlite`'s), under retention's advisory lock taken without
//! waiting, so two nodes never add the same minutes twice.

use hookline_core::clock::Millis;
use hookline_core::rollup::MINUTE_MS;
use hookline_store::{StoreResult, rollups};
use sqlx::PgConnection;

use crate::retention::PURGE_LOCK;

fn param(n: usize) -> String {
    format!("${n}")
}

pub async fn fold(conn: &mut PgConnection, before: Millis, rows: u32) -> StoreResult<u64> {
    let ours: bool = sqlx::query_scalar(PURGE_LOCK).fetch_one(&mut *conn).await?;
    if !ours {
        return Ok(0);
    }
    let orgs: Vec<String> = sqlx::query_scalar("SELECT id FROM orgs ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    let mut folded = 0;
    for org in orgs {
        let left = u64::from(rows).saturating_sub(folded);
        if left == 0 {
            break;
        }
        let bound: Option<Millis> = sqlx::query_scalar(&rollups::fold_bound(param))
            .bind(&org)
            .bind(before)
            .bind(left as i64)
            .fetch_optional(&mut *conn)
            .await?;
        let upto = bound.unwrap_or(before);
        let mut went = fold_org(conn, &org, upto).await?;
        if went == 0 && bound.is_some() {
            // The org's oldest minute alone holds more rows than are left: it goes whole.
            went = fold_org(conn, &org, upto + MINUTE_MS).await?;
        }
        folded += went;
    }
    Ok(folded)
}

async fn fold_org(conn: &mut PgConnection, org: &str, upto: Millis) -> StoreResult<u64> {
    sqlx::query(&rollups::fold_into_hours(param))
        .bind(org)
        .bind(upto)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query(&rollups::delete_folded(param))
        .bind(org)
        .bind(upto)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}
