//! The LTIAAS service API, the tool side: `Authorization` headers (`LTIK-AUTH-V2`
//! inside a launch, `SERVICE-AUTH-V1` outside it), ID tokens, line items with
//! `next` paging, scores and results, and the classification of answers. A
//! protocol module: it knows HTTP and the domain model, never the ledger or the
//! app (the app keeps service keys in the keyring and launches in the ledger).
//!
//! * [`client`]: HTTP, headers, once-only URL encoding of line item ids, `next`
//!   paging through `?url=`, lenient answer types.
//! * [`classify`]: lenient LTIAAS error bodies → outcome, error class, fix hint.
//! * [`score`]: a score to send, validated.

pub mod classify;
pub mod client;
pub mod score;

pub use score::ScoreToSend;
