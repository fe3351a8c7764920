//! The one error type that crosses every boundary (CLI, Tauri IPC, HTTP bridge).
//!
//! Every error has a stable machine-readable [`ErrorKind`] and a human message
//! that says what happened and, where possible, what to do next.

use serde::{Serialize, Serializer, ser::SerializeStruct};
use ts_rs::TS;

/// Stable error kinds. The serialized names (`snake_case`) are part of the
/// public contract of the CLI's `--json` output and the desktop IPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller asked for something malformed (bad flag value, bad name).
    Invalid,
    /// The named thing does not exist in the ledger.
    NotFound,
    /// The thing already exists.
    Conflict,
    /// The ledger (SQLite) failed or is unusable.
    Store,
    /// The OS keyring is unreachable, locked or failed.
    Keyring,
    /// A secret that should be in the keyring is missing.
    SecretMissing,
    /// Reading or writing a local file failed.
    Io,
    /// The ledger is open read-only (not trusted yet): nothing may be written or sent.
    ReadOnly,
    /// A team ledger's database refuses this to this person (e.g. platforms are
    /// for its administrators).
    Forbidden,
    /// Anything else; a bug if it ever shows up.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Store => "store",
            ErrorKind::Keyring => "keyring",
            ErrorKind::SecretMissing => "secret_missing",
            ErrorKind::Io => "io",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Passback's error: a stable kind plus a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn keyring(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Keyring, message)
    }
}

impl Serialize for Error {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Error", 2)?;
        st.serialize_field("kind", self.kind.as_str())?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::not_found("no such record in the ledger"),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::conflict(format!("already in the ledger: {}", db.message()))
            }
            // PostgreSQL's insufficient_privilege: the message says what to do.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => {
                Error::new(ErrorKind::Forbidden, db.message().to_string())
            }
            _ => Error::new(
                ErrorKind::Store,
                format!("ledger database error: {e}. Run `passback doctor` to check the database."),
            ),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::new(
            ErrorKind::Store,
            format!(
                "could not migrate the ledger schema: {e}. The database may be from a newer Passback; \
                 upgrade Passback or point --db at another file."
            ),
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_kind_and_message() {
        let e = Error::not_found("no platform named \"x\"");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "not_found", "message": "no platform named \"x\""})
        );
    }

    #[test]
    fn kind_names_match_serde_names() {
        for k in [
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Store,
            ErrorKind::Keyring,
            ErrorKind::SecretMissing,
            ErrorKind::Io,
            ErrorKind::Internal,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
