//! The fuzz targets' bodies as a library, compiled once for every fuzz binary. The code
//! is `targets/mod.rs`, which the corpus replay test (`tests/integration/fuzz_replay.rs`)
//! includes as well, so both run exactly the same checks.

#[path = "../targets/mod.rs"]
mod targets;

pub use targets::*;
