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

use crate::error::{Error, ErrorKind, Result};
use crate::intake::Intake;
use crate::model::{DoctorReport, Overview};
use crate::secrets::Secrets;
use crate::store::{ServerAddress, Store};

pub use grades::ManualGrade;
pub use lti11::OneOutcome;
pub use platforms::{RemovedPlatform, normalize_host};

/// Environment variable that overrides the ledger location.
pub const DB_ENV: &str = "PASSBACK_DB";

/// Where a ledger lives: a SQLite file (one person's) or a PostgreSQL database (a
/// team's, `postgres://user@host:port/database`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ledger {
    File(PathBuf),
    Server(ServerAddress),
}

impl std::fmt::Display for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ledger::File(p) => write!(f, "{}", p.display()),
            Ledger::Server(a) => write!(f, "{a}"),
        }
    }
}

/// The ledger `--db` names, else `PASSBACK_DB`, else the file in the OS data dir.
/// A `postgres://` or `postgresql://` address is a team ledger; any other
/// `scheme://…` value is refused rather than taken for a file name
/// (`PASSBACK_DB=mysql://…` must not quietly create a SQLite file under `./mysql:/`).
pub fn resolve_ledger(explicit: Option<&Path>) -> Result<Ledger> {
    let chosen = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(DB_ENV).filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => return default_db_path().map(Ledger::File),
        },
    };
    let text = chosen.to_string_lossy();
    match url_scheme(&text) {
        Some("postgres" | "postgresql") => Ok(Ledger::Server(ServerAddress::parse(&text)?)),
        Some(scheme) => Err(Error::invalid(format!(
            "the ledger {text:?} is a {scheme}:// address: Passback opens SQLite files and PostgreSQL \
             databases (postgres://USER@HOST:PORT/DATABASE). Give a file path or a postgres:// address \
             (--db or PASSBACK_DB), or leave both out for your own ledger."
        ))),
        None => Ok(Ledger::File(chosen)),
    }
}

/// The ledger file: like [`resolve_ledger`], for what only a file can be (the
/// demo workspace, a ledger someone sent).
pub fn resolve_db_path(explicit: Option<&Path>) -> Result<PathBuf> {
    match resolve_ledger(explicit)? {
        Ledger::File(p) => Ok(p),
        Ledger::Server(a) => Err(Error::invalid(format!(
            "{a} is a team ledger on a PostgreSQL server; this needs a ledger file (--db PATH)."
        ))),
    }
}

/// Copy a personal ledger file (history and attempts included) into `to`, an
/// empty team ledger or an earlier copy of the same ledger (then only what is
/// missing is written). `progress` hears each table: (name, rows, rows written).
pub async fn copy_ledger(
    from: &Path,
    to: &Ledger,
    secrets: Secrets,
    progress: impl FnMut(&str, u64, u64),
) -> Result<crate::store::CopyReport> {
    if !from.is_file() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "there is no ledger file at {}: give the path of your ledger (--from PATH).",
                from.display()
            ),
        ));
    }
    if let Ledger::File(p) = to
        && p == from
    {
        return Err(Error::invalid("--from and --to name the same ledger."));
    }
    let source = Store::open(from).await?;
    let dest = Passback::open_ledger(to, secrets).await?;
    let report = source.copy_into(dest.store(), progress).await;
    source.close().await;
    dest.store().close().await;
    report
}

/// Store this person's password for a team ledger's server in their keyring.
pub async fn set_server_password(secrets: &Secrets, address: &ServerAddress, password: &str) -> Result<()> {
    secrets.set_raw(&server_password_ref(address), password).await
}

/// Remove it; whether there was one.
pub async fn forget_server_password(secrets: &Secrets, address: &ServerAddress) -> Result<bool> {
    secrets.delete(&server_password_ref(address)).await
}

/// The keyring entry holding this person's password for a team ledger's server.
pub fn server_password_ref(address: &ServerAddress) -> crate::secrets::SecretRef {
    crate::secrets::SecretRef {
        service: crate::secrets::SERVICE.into(),
        account: format!("ledger-server/{}", address.keyring_account()),
    }
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

    /// Open a ledger file or a team ledger. A team ledger's password comes from
    /// this person's keyring (`passback ledger password set ADDRESS`) or, when the
    /// keyring has none (a server job), from the file `PGPASSFILE` names.
    pub async fn open_ledger(ledger: &Ledger, secrets: Secrets) -> Result<Self> {
        match ledger {
            Ledger::File(path) => Self::open(path, secrets).await,
            Ledger::Server(address) => {
                let password = match secrets.get_raw(&server_password_ref(address)).await {
                    Ok(p) => Some(p),
                    Err(e)
                        if matches!(
                            e.kind,
                            ErrorKind::SecretMissing | ErrorKind::Keyring | ErrorKind::NotFound
                        ) =>
                    {
                        tracing::debug!(detail = %e.message, "no server password in the keyring; trying PGPASSFILE");
                        None
                    }
                    Err(e) => return Err(e),
                };
                let store = Store::open_server(address, password.as_deref()).await?;
                Self::with_store(store, secrets).await
            }
        }
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
        let store = self.store();
        match (store.path(), store.server()) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(server)) => server.to_string(),
            (None, None) => ":memory:".into(),
        }
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
            engine_version: store.engine_version().await?,
            db_path: self.db_path(),
            schema_version: store.schema_version().await?,
            schema_latest: store.schema_latest(),
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
    fn an_address_is_a_team_ledger_or_refused_never_taken_for_a_file_name() {
        let team = resolve_ledger(Some(Path::new("postgres://team@db.example.edu/passback"))).unwrap();
        assert!(
            matches!(&team, Ledger::Server(a) if a.keyring_account() == "team@db.example.edu:5432/passback")
        );
        assert!(matches!(
            resolve_ledger(Some(Path::new(
                "postgresql://job@localhost:6543/l?sslmode=require"
            )))
            .unwrap(),
            Ledger::Server(_)
        ));
        for (url, says) in [
            (
                "postgres://team:hunter2@db.example.edu/passback",
                "contains a password",
            ),
            ("postgresql://x", "names no database"),
            ("mysql://h/db", "is a mysql:// address"),
            ("sqlite://l.db", "is a sqlite:// address"),
        ] {
            let e = resolve_ledger(Some(Path::new(url))).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Invalid, "{url}");
            assert!(e.message.contains(says), "{url}: {}", e.message);
            assert!(!e.message.contains("hunter2"), "{}", e.message);
            assert!(
                !Path::new("postgres:").exists() && !Path::new("mysql:").exists(),
                "nothing was created"
            );
        }
        let e = resolve_db_path(Some(Path::new("postgres://team@db.example.edu/passback"))).unwrap_err();
        assert!(e.message.contains("needs a ledger file"), "{}", e.message);
        for path in [
            "ledger.sqlite",
            "./a://b",
            "C:\\ledgers\\l.sqlite",
            "/tmp/with:colon.sqlite",
            "1http://x",
        ] {
            assert!(
                matches!(resolve_ledger(Some(Path::new(path))).unwrap(), Ledger::File(_)),
                "{path}"
            );
        }
    }
}
