//! `hookline org create|list|delete` and `hookline key create`: tenants and their API
//! keys, written straight to the store. A key or org secret is printed once, never again.

use std::sync::Arc;

use anyhow::Context;
use hookline_core::clock::{Clock, SystemClock, rfc3339};
use hookline_core::ids::OrgId;
use hookline_core::keys::SigningKeys;
use hookline_core::sealed::MasterKey;
use hookline_store::{ApiKeyRecord, Org, Store};
use serde_json::json;

/// The org, its first API key, and its signing secret (for `webhook_url` one-shots),
/// sealed as the server would seal it.
pub async fn create(
    name: String,
    store: Arc<dyn Store>,
    master_key: &MasterKey,
    json: bool,
) -> anyhow::Result<()> {
    let name = name.trim().to_owned();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 200,
        "the org name must be 1 to 200 characters"
    );
    let now = SystemClock.now_ms();
    let org = Org::new(name, now);
    let (record, api_key) = ApiKeyRecord::issue(&org.id, now);
    store.create_org(&org, &record).await?;
    let keys = SigningKeys::new(None);
    let sealed = master_key.seal(&keys, org.id.as_str());
    store.set_org_signing_keys(&org.id, &sealed, None).await?;
    let secret = keys.secret.expose();
    if json {
        println!(
            "{}",
            json!({"org_id": org.id, "name": org.name, "api_key": api_key, "signing_secret": secret})
        );
    } else {
        println!("org_id:         {}", org.id);
        println!("api_key:        {api_key}");
        println!("signing_secret: {secret}");
        println!(
            "Keep both safe: each is shown only this once. The signing secret signs \
             deliveries to a publish's one-shot webhook_url."
        );
    }
    Ok(())
}

pub async fn list(store: Arc<dyn Store>, json: bool) -> anyhow::Result<()> {
    let orgs = store.list_orgs().await?;
    if json {
        let orgs: Vec<_> = orgs
            .iter()
            .map(|o| json!({"org_id": o.id, "name": o.name, "created_at": rfc3339(o.created_at)}))
            .collect();
        println!("{}", serde_json::Value::from(orgs));
    } else if orgs.is_empty() {
        println!("no orgs yet: hookline org create NAME");
    } else {
        for o in &orgs {
            println!("{}  {}  {}", o.id, rfc3339(o.created_at), o.name);
        }
    }
    Ok(())
}

/// The org named by `id`, if it exists and is not deleted.
async fn existing(store: &dyn Store, id: &str) -> anyhow::Result<Org> {
    let id = OrgId::parse(id).with_context(|| format!("'{id}' is not an org id (org_…)"))?;
    store
        .list_orgs()
        .await?
        .into_iter()
        .find(|o| o.id == id)
        .with_context(|| format!("no org {id}: hookline org list shows the orgs"))
}

pub async fn create_key(org: &str, store: Arc<dyn Store>, json: bool) -> anyhow::Result<()> {
    let org = existing(store.as_ref(), org).await?;
    let (record, api_key) = ApiKeyRecord::issue(&org.id, SystemClock.now_ms());
    store.create_api_key(&record).await?;
    if json {
        println!(
            "{}",
            json!({"org_id": org.id, "api_key_id": record.id, "api_key": api_key})
        );
    } else {
        println!("org_id:  {} ({})", org.id, org.name);
        println!("api_key: {api_key}");
        println!("Keep the API key safe: it is shown only this once.");
    }
    Ok(())
}

pub async fn delete(id: &str, yes: bool, store: Arc<dyn Store>, json: bool) -> anyhow::Result<()> {
    let org = existing(store.as_ref(), id).await?;
    anyhow::ensure!(
        yes,
        "this would delete org {} ({}): its API keys stop working at once and its \
         destinations are deleted, their pending deliveries canceled. Run again with --yes",
        org.id,
        org.name
    );
    store.delete_org(&org.id, SystemClock.now_ms()).await?;
    if json {
        println!("{}", json!({"org_id": org.id, "deleted": true}));
    } else {
        println!("deleted org {} ({})", org.id, org.name);
    }
    Ok(())
}

/// `days`: the org's own retention; `None`: the server's again.
pub async fn set_retention(
    id: &str,
    days: Option<f64>,
    store: Arc<dyn Store>,
    json: bool,
) -> anyhow::Result<()> {
    if let Some(days) = days {
        anyhow::ensure!(
            days.is_finite() && days >= 0.0,
            "--days must be a number of days, 0 or more"
        );
    }
    let org = existing(store.as_ref(), id).await?;
    anyhow::ensure!(
        store.set_org_retention(&org.id, days).await?,
        "no org {}: hookline org list shows the orgs",
        org.id
    );
    if json {
        println!("{}", json!({"org_id": org.id, "retention_days": days}));
    } else {
        match days {
            Some(0.0) => println!("org {} ({}) keeps everything", org.id, org.name),
            Some(days) => println!("org {} ({}) keeps {days} days", org.id, org.name),
            None => println!(
                "org {} ({}) keeps what the server's --retention-days says",
                org.id, org.name
            ),
        }
    }
    Ok(())
}
