//! `hookline verify`: check one delivery's signature from the shell.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;
use hookline_verify::{Signed, verify, verify_hex};

#[derive(Args)]
#[command(after_help = "Examples:
  hookline verify --secret whsec_… --id evt_… --timestamp 1764288000 \\
    --signature 'v1,…' < body.json
  hookline verify --secret whpk_… --id evt_… --timestamp 1764288000 \\
    --signature 'v1a,…' < body.json
  hookline verify --secret whsec_… --hex-prefix sha256= --timestamp 1764288000 \\
    --signature 'sha256=…' < body.json")]
pub struct VerifyArgs {
    /// The destination's signing secret (whsec_…), or its public key (whpk_…) for ed25519.
    #[arg(long, env = "HOOKLINE_SECRET", hide_env_values = true)]
    secret: String,
    /// The webhook-id header (not needed with --hex-prefix).
    #[arg(long, required_unless_present = "hex_prefix")]
    id: Option<String>,
    /// The webhook-timestamp header (or the hex scheme's timestamp header, if it has one).
    #[arg(long)]
    timestamp: Option<String>,
    /// The webhook-signature header, or the hex scheme's signature header.
    #[arg(long)]
    signature: String,
    /// Check a hmac_sha256_hex header with this prefix (may be empty: --hex-prefix '').
    #[arg(long, value_name = "PREFIX")]
    hex_prefix: Option<String>,
    /// Accept any timestamp (for checking a stored request later).
    #[arg(long)]
    ignore_timestamp: bool,
}

/// Reads the body from stdin; exit 0 when the signature verifies, 1 with the reason
/// otherwise, 2 when the secret itself is malformed.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Err(code) = super::check_secret(&args.secret) {
        return Ok(code);
    }
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    let timestamp = args.timestamp.as_deref();
    let now = match (args.ignore_timestamp, timestamp) {
        (true, Some(ts)) => ts.trim().parse().unwrap_or_default(),
        _ => chrono::Utc::now().timestamp(),
    };
    let verdict = match (&args.hex_prefix, &args.id) {
        (Some(prefix), _) => {
            verify_hex(&args.secret, &args.signature, prefix, timestamp, &body, now)
        }
        (None, Some(id)) => {
            let Some(timestamp) = timestamp else {
                anyhow::bail!("--timestamp is required to check a webhook-signature");
            };
            let signed = Signed {
                id,
                timestamp,
                signature: &args.signature,
                body: &body,
            };
            verify(&args.secret, &signed, now)
        }
        (None, None) => unreachable!("clap requires --id unless --hex-prefix is given"),
    };
    match verdict {
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
