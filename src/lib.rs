//! Passback's core: the ledger, secrets, the LTI protocols, intake and the send
//! loop, behind one facade ([`app::Passback`]). No UI, no HTTP server, no CLI
//! parsing: the CLI (`crates/passback-cli`), the desktop shell (`src-tauri/`) and
//! the browser bridge are thin adapters over the facade, and the sandbox LMS is
//! its own crate (`crates/passback-sandbox`). ARCHITECTURE.md draws the allowed
//! arrows between the modules; a test below keeps them true.

pub mod app;
pub mod error;
pub mod failpoint;
pub mod http;
pub mod import;
pub mod intake;
pub mod lti;
pub mod lti11;
pub mod ltiaas;
pub mod model;
pub mod progress;
pub mod secrets;
pub mod status;
pub mod store;
pub mod sync;

pub use app::Passback;
pub use error::{Error, ErrorKind, Result};

#[cfg(test)]
mod architecture;
