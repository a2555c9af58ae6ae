//! `hookline org create`: a tenant and its first API key, written straight to the store.

use std::path::PathBuf;

use hookline_core::api_key::NewApiKey;
use hookline_core::clock::{Clock, SystemClock};
use hookline_core::ids::{ApiKeyId, OrgId};
use hookline_store::sqlite::SqliteStore;
use hookline_store::{ApiKeyRecord, Org, Store};

pub async fn create(name: String, data_dir: PathBuf, json: bool) -> anyhow::Result<()> {
    let name = name.trim().to_owned();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 200,
        "the org name must be 1 to 200 characters"
    );
    let store = SqliteStore::open_shared(&data_dir)?;
    let now = SystemClock.now_ms();
    let org = Org {
        id: OrgId::generate(),
        name,
        created_at: now,
    };
    let key = NewApiKey::generate();
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(),
        org_id: org.id.clone(),
        key_hash: key.hash,
        display_prefix: key.display_prefix,
        created_at: now,
    };
    store.create_org(&org, &record).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"org_id": org.id, "name": org.name, "api_key": key.plaintext})
        );
    } else {
        println!("org_id:  {}", org.id);
        println!("api_key: {}", key.plaintext);
        println!("Keep the API key safe: it is shown only this once.");
    }
    Ok(())
}
