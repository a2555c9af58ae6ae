//! `hookline verify`: check one delivery's signature from the shell.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;
use hookline_verify::{Signed, verify};

#[derive(Args)]
#[command(
    after_help = "Example:\n  hookline verify --secret whsec_… --id evt_… --timestamp 1764288000 \\\n    --signature 'v1,…' < body.json"
)]
pub struct VerifyArgs {
    /// The destination's signing secret (whsec_…).
    #[arg(long, env = "HOOKLINE_SECRET", hide_env_values = true)]
    secret: String,
    /// The webhook-id header.
    #[arg(long)]
    id: String,
    /// The webhook-timestamp header.
    #[arg(long)]
    timestamp: String,
    /// The webhook-signature header.
    #[arg(long)]
    signature: String,
    /// Accept any timestamp (for checking a stored request later).
    #[arg(long)]
    ignore_timestamp: bool,
}

/// Reads the body from stdin; exit 0 when the signature verifies, 1 with the reason otherwise.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    let now = if args.ignore_timestamp {
        args.timestamp.trim().parse().unwrap_or_default()
    } else {
        chrono::Utc::now().timestamp()
    };
    let signed = Signed {
        id: &args.id,
        timestamp: &args.timestamp,
        signature: &args.signature,
        body: &body,
    };
    match verify(&args.secret, &signed, now) {
        Ok(()) => {
            println!("valid");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("invalid: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
