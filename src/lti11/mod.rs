//! LTI 1.1 Basic Outcomes, the tool side: OAuth 1.0a body-hash signing (and the
//! verifier launches and the sandbox use), POX XML, the outcome client and the
//! classification of LMS answers. A protocol module: it knows HTTP and the
//! domain model, never the ledger or the app.

pub mod classify;
pub mod client;
pub mod oauth;
pub mod pox;
