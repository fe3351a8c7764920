//! LTI 1.1 Basic Outcomes: OAuth 1.0a body-hash signing, POX XML, the outcome
//! client and the classification of LMS answers.

pub mod classify;
pub mod client;
pub mod oauth;
pub mod pox;
