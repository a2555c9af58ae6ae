//! Test support: the real server on a random port with a fresh data directory, a real
//! HTTP receiver on 127.0.0.1, and a Standard Webhooks verifier written from the spec
//! (independent of hookline-core's signer).
//!
//! Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod app;
pub mod pair;
pub mod process;
pub mod receiver;
pub mod secrets;
pub mod sse;
pub mod verify;
