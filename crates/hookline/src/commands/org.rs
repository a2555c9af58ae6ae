//! `hookline org create`: a tenant and its first API key, written straight to the store.

use std::sync::Arc;

use hookline_core::clock::{Clock, SystemClock};
use hookline_store::{ApiKeyRecord, Org, Store};

pub async fn create(name: String, store: Arc<dyn Store>, json: bool) -> anyhow::Result<()> {
    let name = name.trim().to_owned();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 200,
        "the org name must be 1 to 200 characters"
    );
    let now = SystemClock.now_ms();
    let org = Org::new(name, now);
    let (record, api_key) = ApiKeyRecord::issue(&org.id, now);
    store.create_org(&org, &record).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"org_id": org.id, "name": org.name, "api_key": api_key})
        );
    } else {
        println!("org_id:  {}", org.id);
        println!("api_key: {}", api_key);
        println!("Keep the API key safe: it is shown only this once.");
    }
    Ok(())
}
