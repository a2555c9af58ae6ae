//! Wiring: open the store, start the dispatcher, serve the API on a bound listener,
//! and shut both down in order when the token is canceled.

use std::sync::Arc;

use anyhow::Context;
use hookline_api::AppState;
use hookline_core::clock::{Clock, SystemClock};
use hookline_dispatch::{Dispatcher, DispatcherConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::configuration::ServeConfig;

/// Runs the server on `listener` until `shutdown` is canceled. In-flight attempts get
/// the dispatcher's grace period to finish; unfinished ones are handed back.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    dispatcher_config: DispatcherConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let opened = config.open_store().await?;
    let master_key = config.master_key()?;
    let store = opened.as_store();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = config.url_policy();
    if policy.allow_private || policy.allow_http {
        tracing::warn!(
            allow_http = policy.allow_http,
            allow_private_networks = policy.allow_private,
            "DEVELOPMENT MODE: destinations may use plain http and loopback/private addresses; never run this way in production"
        );
    }
    if !policy.allowed_cidrs.is_empty() {
        tracing::warn!(allowed_cidrs = ?policy.allowed_cidrs, "destinations may use these private ranges");
    }
    if policy.allow_tls_verify_off {
        tracing::warn!("destinations may turn off TLS certificate checks (allow_tls_verify_off)");
    }
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        clock.clone(),
        master_key.clone(),
        dispatcher_config,
    )?);
    let state = AppState {
        store,
        clock,
        url_policy: Arc::new(policy),
        master_key,
        dispatcher: dispatcher.clone(),
    };
    let dispatching = tokio::spawn(dispatcher.run(shutdown.clone()));
    tracing::info!(
        address = %listener.local_addr()?,
        store = if config.database_url.is_some() { "postgres" } else { "sqlite" },
        "Hookline is listening"
    );
    axum::serve(listener, hookline_api::router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP")?;
    dispatching.await.context("the dispatcher task failed")?;
    tracing::info!("Hookline stopped");
    Ok(())
}
