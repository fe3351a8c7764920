//! Passback's core: the ledger, secrets, importers, LTI clients, reconcile,
//! sync and the sandbox LMS. UI-free; the CLI (`src/main.rs`) and the desktop
//! shell (`src-tauri/`) are thin layers over [`app::Passback`].

pub mod app;
pub mod bridge;
pub mod cli;
pub mod demo;
pub mod error;
pub mod lti11;
pub mod ltiaas;
pub mod model;
pub mod net;
pub mod sandbox;
pub mod secrets;
pub mod store;
pub mod sync;

pub use app::Passback;
pub use error::{Error, ErrorKind, Result};
