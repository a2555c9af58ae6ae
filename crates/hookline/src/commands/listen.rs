//! `hookline listen`: a local receiver for developers wiring up a destination. It
//! verifies each delivery (when given the secret) and prints it, so the whole path
//! from publish to a verified request can be seen in one terminal.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Args;
use hookline_verify::{Signed, verify};
use serde_json::{Value, json};

#[derive(Args)]
#[command(
    after_help = "Example:\n  hookline listen --port 9000 --secret whsec_…\n  # then create a destination with url http://127.0.0.1:9000/ and that secret"
)]
pub struct ListenArgs {
    /// Port on 127.0.0.1 to receive on.
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The destination's secret (whsec_…) or ed25519 public key (whpk_…); when given,
    /// every request is verified.
    #[arg(long, env = "HOOKLINE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Print one JSON object per delivery instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone)]
struct Listener {
    secret: Option<String>,
    json: bool,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Answers 200 when the request verifies (or no secret was given), 401 when it does not,
/// so a misconfigured secret shows up as a failed attempt in Hookline too.
async fn receive(State(listener): State<Listener>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let verdict = listener.secret.as_deref().map(|secret| {
        let signed = Signed {
            id: header(&headers, "webhook-id"),
            timestamp: header(&headers, "webhook-timestamp"),
            signature: header(&headers, "webhook-signature"),
            body: &body,
        };
        verify(secret, &signed, chrono::Utc::now().timestamp()).map_err(|e| e.to_string())
    });
    let parsed: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    if listener.json {
        println!(
            "{}",
            json!({
                "webhook_id": header(&headers, "webhook-id"),
                "delivery_id": header(&headers, "hookline-delivery-id"),
                "verified": verdict.as_ref().map(Result::is_ok),
                "error": verdict.as_ref().and_then(|v| v.as_ref().err()),
                "body": parsed,
            })
        );
    } else {
        println!(
            "→ {} {} stream {} seq {}",
            parsed["type"].as_str().unwrap_or("?"),
            header(&headers, "webhook-id"),
            parsed["stream"].as_str().unwrap_or("?"),
            parsed["seq"]
        );
        match &verdict {
            None => println!("  (not verified: start with --secret to check signatures)"),
            Some(Ok(())) => println!("  ✔ signature verified"),
            Some(Err(reason)) => println!("  ✘ signature invalid: {reason}"),
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&parsed).unwrap_or_default()
        );
    }
    match verdict {
        Some(Err(_)) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::OK,
    }
}

pub async fn run(args: ListenArgs) -> anyhow::Result<ExitCode> {
    if let Some(Err(code)) = args.secret.as_deref().map(super::check_secret) {
        return Ok(code);
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let app = axum::Router::new().fallback(receive).with_state(Listener {
        secret: args.secret,
        json: args.json,
    });
    eprintln!("listening on http://{addr}/ — point a destination here (serve with --dev)");
    axum::serve(listener, app).await?;
    Ok(ExitCode::SUCCESS)
}
