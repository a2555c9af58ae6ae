//! Folding day-old minute rollups into hours, org by org, oldest first, in the
//! writer's short transactions (see `hookline_store::rollups`).

use hookline_core::clock::Millis;
use hookline_core::rollup::MINUTE_MS;
use hookline_store::{StoreResult, rollups};
use rusqlite::{Connection, OptionalExtension, params};

fn param(n: usize) -> String {
    format!("?{n}")
}

pub fn fold(conn: &Connection, before: Millis, rows: u32) -> StoreResult<u64> {
    let orgs: Vec<String> = conn
        .prepare_cached("SELECT id FROM orgs ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut folded = 0;
    for org in orgs {
        let left = u64::from(rows).saturating_sub(folded);
        if left == 0 {
            break;
        }
        let bound: Option<Millis> = conn
            .prepare_cached(&rollups::fold_bound(param))?
            .query_row(params![org, before, left], |r| r.get(0))
            .optional()?;
        let upto = bound.unwrap_or(before);
        let mut went = fold_org(conn, &org, upto)?;
        if went == 0 && bound.is_some() {
            // The org's oldest minute alone holds more rows than are left: it goes whole.
            went = fold_org(conn, &org, upto + MINUTE_MS)?;
        }
        folded += went;
    }
    Ok(folded)
}

fn fold_org(conn: &Connection, org: &str, upto: Millis) -> StoreResult<u64> {
    conn.prepare_cached(&rollups::fold_into_hours(param))?
        .execute(params![org, upto])?;
    Ok(conn
        .prepare_cached(&rollups::delete_folded(param))?
        .execute(params![org, upto])? as u64)
}
