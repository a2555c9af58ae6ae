//! The destination index: parsed destinations per org, kept by the writer thread so
//! that publishing matches an event against memory instead of re-reading and
//! re-parsing every destination. It is only touched inside write jobs, which run one
//! at a time, and every write that changes a destination forgets that org's entry.
//! Sound because one server process owns the database.

use foldhash::HashMap;
use std::sync::Arc;

use hookline_core::destination::Destination;
use hookline_core::ids::OrgId;
use rusqlite::{Connection, OptionalExtension, params};

use crate::rows;
use hookline_store::{StoreError, StoreResult};

#[derive(Default)]
pub struct DestinationCache {
    /// Live (not deleted) destinations of each org.
    by_org: HashMap<String, Arc<[Arc<Destination>]>>,
    by_id: HashMap<String, Arc<Destination>>,
}

impl DestinationCache {
    pub fn of_org(
        &mut self,
        conn: &Connection,
        org: &OrgId,
    ) -> StoreResult<Arc<[Arc<Destination>]>> {
        if let Some(found) = self.by_org.get(org.as_str()) {
            return Ok(found.clone());
        }
        let sql = format!(
            "SELECT {} FROM destinations WHERE org_id = ?1 AND deleted_at IS NULL AND one_shot = 0",
            rows::DESTINATION_COLUMNS
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let loaded: Arc<[Arc<Destination>]> = stmt
            .query_map(params![org.as_str()], rows::destination)?
            .map(|d| d.map(Arc::new))
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into();
        for d in loaded.iter() {
            self.by_id.insert(d.id.to_string(), d.clone());
        }
        self.by_org.insert(org.to_string(), loaded.clone());
        Ok(loaded)
    }

    pub fn by_id(&mut self, conn: &Connection, id: &str) -> StoreResult<Arc<Destination>> {
        if let Some(found) = self.by_id.get(id) {
            return Ok(found.clone());
        }
        let sql = format!(
            "SELECT {} FROM destinations WHERE id = ?1",
            rows::DESTINATION_COLUMNS
        );
        let destination = conn
            .prepare_cached(&sql)?
            .query_row(params![id], rows::destination)
            .optional()?
            .map(Arc::new)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("delivery points to missing destination {id}"))
            })?;
        self.by_id.insert(id.to_owned(), destination.clone());
        Ok(destination)
    }

    /// Call after any change to a destination of `org`.
    pub fn forget_org(&mut self, org: &str) {
        self.by_org.remove(org);
        self.by_id.retain(|_, d| d.org_id.as_str() != org);
    }

    pub fn clear(&mut self) {
        self.by_org.clear();
        self.by_id.clear();
    }
}
