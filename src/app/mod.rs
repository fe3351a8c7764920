//! `Passback`: the facade the CLI, the desktop shell and the browser bridge call,
//! and nothing else. Only the facade composes the ledger (`store`, written through
//! `intake`), the protocols (`lti11`, `ltiaas`), the send loop (`sync`) and the
//! keyring (`secrets`). One file per area:
//!
//! * [`platforms`]: LMS connections and their secrets;
//! * [`grades`]: local grades and activities;
//! * [`import`]: files other systems emit, into the ledger (and back out);
//! * [`lti11`]: one LTI 1.1 outcome operation by hand (support);
//! * [`ltiaas`]: ID tokens, service keys, line items, one LTIAAS score by hand;
//! * [`commands`]: the command list and JSON dispatch the window and the bridge share.

pub mod audit;
pub mod commands;
pub mod grades;
pub mod import;
pub mod jobs;
pub mod lti11;
pub mod ltiaas;
pub mod platforms;
pub mod session;
pub mod sync;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::intake::Intake;
use crate::model::{DoctorReport, Overview};
use crate::secrets::Secrets;
use crate::store::Store;

pub use grades::ManualGrade;
pub use lti11::OneOutcome;
pub use platforms::{RemovedPlatform, normalize_host};

/// Environment variable that overrides the ledger location.
pub const DB_ENV: &str = "PASSBACK_DB";

/// The ledger path: `--db` wins, then `PASSBACK_DB`, then the OS data dir.
/// A value that looks like a URL (`scheme://…`) is refused rather than taken for a
/// file name: `PASSBACK_DB=postgres://…` must not quietly create a SQLite file
/// under `./postgres:/`.
pub fn resolve_db_path(explicit: Option<&Path>) -> Result<PathBuf> {
    let chosen = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(DB_ENV).filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => return default_db_path(),
        },
    };
    if let Some(scheme) = url_scheme(&chosen.to_string_lossy()) {
        return Err(Error::invalid(format!(
            "the ledger {:?} is a {scheme}:// address, not a file: this Passback opens ledgers that are SQLite \
             files only. Give the path of a ledger file (--db PATH or PASSBACK_DB=PATH), or leave both out for \
             your own ledger.",
            chosen.to_string_lossy()
        )));
    }
    Ok(chosen)
}

/// The scheme of a `scheme://…` value (RFC 3986 scheme characters), if it is one.
fn url_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))).then_some(scheme)
}

/// `<OS data dir>/passback/ledger.sqlite` (e.g. `~/.local/share/passback/` on Linux).
pub fn default_db_path() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("org", "Passback", "passback").ok_or_else(|| {
        Error::invalid("cannot find a home directory for the ledger; pass --db PATH or set PASSBACK_DB")
    })?;
    Ok(dirs.data_dir().join("ledger.sqlite"))
}

/// The core API handle: a ledger plus a secret store.
#[derive(Debug, Clone)]
pub struct Passback {
    intake: Intake,
    secrets: Secrets,
    /// Reconciles and syncs the window started (see [`jobs`]).
    jobs: std::sync::Arc<jobs::Jobs>,
    /// A ledger opened read-only before the user trusts it (see [`session`]).
    read_only: bool,
}

impl Passback {
    /// Open the ledger at `db_path` with the given secret store.
    pub async fn open(db_path: &Path, secrets: Secrets) -> Result<Self> {
        Self::with_store(Store::open(db_path).await?, secrets).await
    }

    /// Open an existing ledger read-only, with no keyring: a ledger someone sent,
    /// shown before the user trusts it. The file is not changed (SQLite opens it
    /// read-only; no migration, no status refresh), every command that writes or
    /// sends is refused with [`ErrorKind::ReadOnly`](crate::error::ErrorKind), and
    /// no keyring entry is touched whatever the ledger names.
    pub async fn open_read_only(db_path: &Path) -> Result<Self> {
        Ok(Self {
            intake: Intake::new(Store::open_read_only(db_path).await?),
            secrets: Secrets::withheld(),
            jobs: Default::default(),
            read_only: true,
        })
    }

    /// Whether this ledger is open read-only (not trusted yet).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// A throw-away in-memory ledger with an in-memory secret store (unit tests).
    pub async fn open_in_memory() -> Result<Self> {
        Self::with_store(Store::open_in_memory().await?, Secrets::in_memory()).await
    }

    async fn with_store(store: Store, secrets: Secrets) -> Result<Self> {
        let intake = Intake::new(store);
        let n = intake.refresh_statuses_if_rules_changed().await?;
        if n > 0 {
            tracing::info!(
                grades = n,
                "re-decided grade statuses under the current status rules"
            );
        }
        Ok(Self {
            intake,
            secrets,
            jobs: Default::default(),
            read_only: false,
        })
    }

    /// The ledger, for reads.
    pub fn store(&self) -> &Store {
        self.intake.store()
    }

    /// The ledger's single writer of facts.
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The jobs the window started.
    pub(crate) fn jobs(&self) -> &jobs::Jobs {
        &self.jobs
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// A keyring reference this ledger holds, if it is one of the ledger's own (see
    /// [`SecretRef::parse_owned`]): the only way the app turns a stored reference into
    /// a keyring entry to read, write or delete.
    pub(crate) async fn owned_secret_ref(&self, stored: &str) -> Result<crate::secrets::SecretRef> {
        crate::secrets::SecretRef::parse_owned(stored, &self.store().ledger_id().await?)
    }

    pub fn db_path(&self) -> String {
        self.store()
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| ":memory:".into())
    }

    /// What the main window shows on open.
    pub async fn overview(&self) -> Result<Overview> {
        let store = self.store();
        Ok(Overview {
            db_path: self.db_path(),
            workspace: store.meta("workspace").await?.unwrap_or_else(|| "ledger".into()),
            sandbox_url: store.meta("sandbox_url").await?,
            platforms: store.list_platforms().await?,
            activities: store.list_activity_rows().await?,
            grade_count: store.grade_count().await?,
            read_only: self.read_only,
        })
    }

    /// Check the ledger and the keyring.
    pub async fn doctor(&self) -> Result<DoctorReport> {
        let ks = self.secrets.status().await;
        let store = self.store();
        Ok(DoctorReport {
            passback_version: env!("CARGO_PKG_VERSION").into(),
            sqlite_version: store.sqlite_version().await?,
            db_path: self.db_path(),
            schema_version: store.schema_version().await?,
            schema_latest: Store::schema_latest(),
            ledger_id: store.ledger_id().await?,
            keyring_ok: ks.ok,
            keyring_detail: ks.detail,
        })
    }

    /// A facade over an existing ledger with another secret store (tests of refusals).
    #[cfg(test)]
    pub(crate) fn with_secrets(store: Store, secrets: Secrets) -> Self {
        Self {
            intake: Intake::new(store),
            secrets,
            jobs: Default::default(),
            read_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_path_precedence() {
        let explicit = resolve_db_path(Some(Path::new("/tmp/x.sqlite"))).unwrap();
        assert_eq!(explicit, PathBuf::from("/tmp/x.sqlite"));
        assert!(default_db_path().unwrap().ends_with("ledger.sqlite"));
    }

    #[test]
    fn an_address_is_refused_rather_than_taken_for_a_file_name() {
        for url in [
            "postgres://team@db.example.edu/passback",
            "postgresql://x",
            "mysql://h/db",
            "sqlite://l.db",
        ] {
            let e = resolve_db_path(Some(Path::new(url))).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Invalid, "{url}");
            assert!(e.message.contains("not a file"), "{}", e.message);
            assert!(!Path::new("postgres:").exists(), "nothing was created");
        }
        for path in [
            "ledger.sqlite",
            "./a://b",
            "C:\\ledgers\\l.sqlite",
            "/tmp/with:colon.sqlite",
            "1http://x",
        ] {
            assert!(resolve_db_path(Some(Path::new(path))).is_ok(), "{path}");
        }
    }
}
