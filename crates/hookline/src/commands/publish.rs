//! `hookline publish`: publish one event from the shell, through the HTTP API of a
//! running server, exactly as an integration would.

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
#[command(after_help = "Example:
  export HOOKLINE_API_KEY=hk_…
  hookline publish --type turn.completed --stream sess_123 --data '{\"tokens\": 812}'")]
pub struct PublishArgs {
    /// The event type, e.g. turn.completed.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: String,
    /// The stream (default: the server's default stream).
    #[arg(long)]
    stream: Option<String>,
    /// The event data, a JSON value.
    #[arg(long, default_value = "{}")]
    data: String,
    /// user (default), progress or debug.
    #[arg(long)]
    level: Option<String>,
    /// An idempotency key: publishing again with it returns the original event.
    #[arg(long)]
    id: Option<String>,
    /// Also deliver this event to this URL, signed with the org's secret.
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// The server's base URL (`localhost:8080` means `http://localhost:8080`).
    #[arg(long, env = "HOOKLINE_URL", default_value = "http://127.0.0.1:8080", value_parser = server_url)]
    url: String,
    /// An API key of the org to publish as.
    #[arg(long, env = "HOOKLINE_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Print the server's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

/// A server's base URL, `http://` assumed when no scheme is given.
fn server_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let full = match text.contains("://") {
        true => text.to_owned(),
        false => format!("http://{text}"),
    };
    match reqwest::Url::parse(&full) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(full.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "'{text}' is not a server URL; it must look like http://127.0.0.1:8080 or localhost:8080"
        )),
    }
}

pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    let data: Value = serde_json::from_str(&args.data).context("--data is not valid JSON")?;
    let mut body = json!({"type": args.event_type, "data": data});
    for (field, value) in [
        ("stream", args.stream),
        ("level", args.level),
        ("id", args.id),
        ("webhook_url", args.webhook_url),
    ] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    let endpoint = format!("{}/v1/events", args.url);
    let response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(&args.api_key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let status = response.status();
    let answer: Value = response.json().await.context("the answer is not JSON")?;
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("the server refused the event ({status}): {message}");
    }
    if args.json {
        println!("{answer}");
    } else {
        let replayed = if status.as_u16() == 200 {
            " (already published with this id)"
        } else {
            ""
        };
        let deliveries = answer["deliveries"].as_u64().unwrap_or(0);
        println!(
            "published {} to stream {} as seq {}: {deliveries} {}{replayed}",
            answer["id"].as_str().unwrap_or("?"),
            answer["stream"].as_str().unwrap_or("?"),
            answer["seq"],
            if deliveries == 1 {
                "delivery"
            } else {
                "deliveries"
            },
        );
    }
    Ok(())
}
