//! The ledger: SQLite through sqlx, with embedded migrations.
//!
//! The store is the only module that speaks SQL. It knows nothing about
//! secrets (platforms carry a keyring reference chosen by the caller) nor about
//! the rules that decide a grade's status (`crate::status`). Methods that write
//! facts take a connection, so `crate::intake`, the single writer of facts, can
//! commit a fact and the statuses it changes in one transaction.

mod bulk;
mod course;
pub mod dump;
mod edx;
mod health;
mod imports;
mod journal;
mod ledger;
mod listing;
mod places;
mod platforms;
mod service_keys;
mod status;
mod sync;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Error, Result};

pub use bulk::{ExternalAttemptInsert, GradeInsert, LaunchInsert, ObservationInsert, StoredStatus};
pub use course::{CourseActivity, LearnerIds};
pub use edx::{EdxAssignment, EdxRecord};
pub use health::{FailureGroup, PlaceCounts};
pub use imports::{BatchCounts, NewBatch, TakenBack, TargetChange};
pub use ledger::{GradeKey, validate_grade};
pub use listing::{GradeCursor, GradeFilter, GradeSort, GradesPage, SortKey, SortedCursor};
pub use places::{ActivityUpsert, ContextUpsert, LearnerUpsert, LearnerWritten};
pub use platforms::{PlatformInsert, Tx};
pub use service_keys::{ServiceKeyInsert, ServiceKeyRecord, ServiceKeyUpsert};
pub use sync::{AttemptFilter, AttemptRow, Candidate, Dangling, LastAttempt, RunRow, host_name, run_id};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The ledger database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: Option<PathBuf>,
}

/// A connection for durable commits (see [`Store::durable_connection`]).
pub enum Durable {
    Own(sqlx::SqliteConnection),
    Pooled(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl std::ops::Deref for Durable {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        match self {
            Durable::Own(c) => c,
            Durable::Pooled(c) => c,
        }
    }
}

impl std::ops::DerefMut for Durable {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Durable::Own(c) => c,
            Durable::Pooled(c) => c,
        }
    }
}

/// Current time as RFC 3339 UTC with milliseconds, the ledger's timestamp format.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).expect("formatting a UTC timestamp cannot fail")
}

/// Make the ledger's file private before SQLite opens it: it holds learners' names,
/// e-mails and grades. Folders Passback creates for it are 0700; a new ledger file is
/// created 0600 (SQLite gives its WAL and shared-memory files the file's mode); an
/// existing ledger of this user's that others may read is tightened to 0600.
fn private_file(path: &Path) -> Result<()> {
    use crate::error::ErrorKind;
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::new(ErrorKind::Io, format!("cannot {what} {}: {e}", p.display()))
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(parent)
            .map_err(|e| io("create the ledger folder", parent, e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(path).map_err(|e| io("read", path, e))?;
                // SAFETY: getuid has no preconditions and cannot fail.
                let me = unsafe { libc::getuid() };
                if meta.is_file() && meta.uid() == me && meta.mode() & 0o077 != 0 {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| io("make private", path, e))?;
                }
            }
            Err(e) => return Err(io("create the ledger", path, e)),
        }
    }
    Ok(())
}

impl Store {
    /// Open (creating if missing) the ledger at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        private_file(path)?;
        let opts = Self::file_options(path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Imports write a whole file in one transaction: a page cache of 32 MB
            // (per connection, used only as it fills) keeps it from spilling to the
            // WAL page by page.
            .pragma("cache_size", "-32768")
            // Reads go through a memory map of the file: pages are read in place
            // rather than copied into each connection's page cache, so a window
            // listing a large ledger on four connections holds it once, in pages the
            // OS shares and can reclaim.
            .pragma("mmap_size", "268435456")
            .pragma("temp_store", "memory")
            // Multi-row statements come in a few shapes per query (see
            // `imports::shaped`); keep them all prepared.
            .statement_cache_capacity(512)
            // A listing or an import streams for as long as the ledger is big: that
            // is not a slow statement worth a warning on the user's terminal.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Store,
                    format!(
                        "cannot open the ledger at {}: {e}. Check the path (--db or PASSBACK_DB) and its permissions.",
                        path.display()
                    ),
                )
            })?;
        let store = Self {
            pool,
            path: Some(path.to_path_buf()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A read-only connection pool to an existing file, with no check of what it holds.
    async fn connect_read_only(path: &Path) -> Result<Self> {
        use crate::error::ErrorKind;
        if !path.is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "there is no file at {}: choose an existing Passback ledger.",
                    path.display()
                ),
            ));
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Store,
                    format!(
                        "cannot open {} read-only: {e}. Check that it is a Passback ledger you may read.",
                        path.display()
                    ),
                )
            })?;
        Ok(Self {
            pool,
            path: Some(path.to_path_buf()),
        })
    }

    /// The ledger id of the ledger file at `path`, read without writing to it
    /// (whatever its schema version).
    pub async fn peek_ledger_id(path: &Path) -> Result<String> {
        let store = Self::connect_read_only(path).await?;
        let id = store.ledger_id().await.map_err(|e| {
            Error::invalid(format!(
                "{} is not a Passback ledger ({}).",
                path.display(),
                e.message
            ))
        });
        store.close().await;
        id
    }

    /// Open an existing ledger without writing to it: a ledger someone sent, shown
    /// before the user trusts it. Nothing is created, no migration runs and the
    /// connections are read-only (SQLite refuses any write), so the file is left as
    /// it came. A ledger whose schema is older than this build needs an upgrade,
    /// which only opening it normally (trusting it) does.
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        use crate::error::ErrorKind;
        let store = Self::connect_read_only(path).await?;
        let not_a_ledger = |detail: String| {
            Error::new(
                ErrorKind::Invalid,
                format!("{} is not a Passback ledger ({detail}).", path.display()),
            )
        };
        let version = store
            .schema_version()
            .await
            .map_err(|e| not_a_ledger(e.message))?;
        store.ledger_id().await.map_err(|e| not_a_ledger(e.message))?;
        let latest = Self::schema_latest();
        if version > latest {
            return Err(Error::new(
                ErrorKind::Store,
                format!(
                    "{} was written by a newer Passback (schema {version}, this one knows {latest}): update Passback to open it.",
                    path.display()
                ),
            ));
        }
        if version < latest {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!(
                    "{} was written by an older Passback (schema {version} of {latest}) and must be upgraded before it can be shown. Trust it to upgrade it and open it, if you know where it came from.",
                    path.display()
                ),
            ));
        }
        Ok(store)
    }

    fn file_options(path: &Path) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
    }

    /// A connection whose every commit is durable before it returns
    /// (`synchronous = FULL`): the sync journal commits an attempt on it before
    /// the request leaves. (An in-memory ledger lends a pooled connection.)
    pub async fn durable_connection(&self) -> Result<Durable> {
        use sqlx::ConnectOptions;
        Ok(match &self.path {
            Some(path) => Durable::Own(
                Self::file_options(path)
                    .synchronous(SqliteSynchronous::Full)
                    .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
                    .connect()
                    .await?,
            ),
            None => Durable::Pooled(self.pool.acquire().await?),
        })
    }

    /// A private in-memory ledger (unit tests).
    pub async fn open_in_memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| Error::internal(e.to_string()))?
            .foreign_keys(true);
        // One connection: every connection to :memory: is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        let store = Self { pool, path: None };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('ledger_id', ?)")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Where the ledger lives (`None` for in-memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A random id made when the ledger was created; keyring references include it
    /// so two ledgers on one machine never share a secret by accident.
    pub async fn ledger_id(&self) -> Result<String> {
        let (id,): (String,) = sqlx::query_as("SELECT value FROM ledger_meta WHERE key = 'ledger_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// A ledger-wide setting (e.g. `workspace` = `demo`).
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM ledger_meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        Self::set_meta_in(&mut conn, key, value).await
    }

    /// [`Store::set_meta`] inside a transaction.
    pub async fn set_meta_in(conn: &mut sqlx::SqliteConnection, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledger_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64> {
        let (v,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    /// Highest migration version this build knows.
    pub fn schema_latest() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    pub async fn sqlite_version(&self) -> Result<String> {
        let (v,): (String,) = sqlx::query_as("SELECT sqlite_version()")
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    /// Flush the WAL into the main file (used before backups and by tests that
    /// inspect the file's bytes).
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests;
