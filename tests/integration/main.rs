//! The workspace's integration tests, linked as one binary: the spawned `passback`
//! CLI against temporary ledgers and the real OS keyring, the core against the
//! sandbox LMS over real loopback HTTP, and the demo workspace.
//!
//! Registered by `crates/passback-cli` (the top of the crate graph) so that
//! `CARGO_BIN_EXE_passback` points at the real binary.

mod common;

mod cli;
mod cli_lti11;
mod cli_ltiaas;
mod demo;
mod fuzz_replay;
mod import;
mod keyring;
mod lti11_sandbox;
mod ltiaas_sandbox;
mod malformed;
mod sync;
mod team;
mod ui_bridge;
