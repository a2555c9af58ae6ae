//! The subcommands other than `serve`, one module each.

pub mod listen;
pub mod org;
pub mod publish;
pub mod verify;
