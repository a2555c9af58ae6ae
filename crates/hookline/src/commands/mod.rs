//! The subcommands other than `serve`, one module each.

pub mod listen;
pub mod org;
pub mod publish;
pub mod verify;

/// Exit code for a malformed `--secret`: a mistake in the command, as clap's own usage
/// errors are, and distinct from `verify`'s 1 for a signature that does not match.
const BAD_SECRET: u8 = 2;

/// Checks a `--secret` before anything else runs; a malformed one is reported (without
/// echoing it) and ends the command with `BAD_SECRET`.
fn check_secret(secret: &str) -> Result<(), std::process::ExitCode> {
    hookline_verify::check_key(secret).map_err(|e| {
        eprintln!("error: --secret: {e}");
        std::process::ExitCode::from(BAD_SECRET)
    })
}
