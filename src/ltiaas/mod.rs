//! LTIAAS service API: capture a launch's ID token (with `LTIK-AUTH-V2`), keep
//! the per-context service key in the keyring (newest capture wins), and find
//! line items, send scores and read results with `SERVICE-AUTH-V1` outside
//! the launch, through the attempt journal.
//!
//! * [`client`]: HTTP, `Authorization` headers, once-only URL encoding of line
//!   item ids, `next` paging through `?url=`, lenient answer types.
//! * [`classify`]: lenient LTIAAS error bodies → outcome, error class, fix hint.
//! * [`send`]: the journaled retry loop with strictly increasing timestamps.
//! * [`ops`]: the `Passback` methods the CLI and the desktop shell call.
//! * [`roles`]: LTI role strings → Passback's normalized role.

pub mod classify;
pub mod client;
pub mod ops;
pub mod roles;
pub mod send;

pub use ops::{CaptureReport, DryRun, KeyChange, LineItemChoice, LtiaasTarget, ServiceKeyRow};
pub use send::{LineItemSource, LtiaasReport, ScoreToSend};
