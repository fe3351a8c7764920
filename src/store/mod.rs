//! The ledger: SQLite (one person) or PostgreSQL (a team) through sqlx's `Any`
//! driver, with embedded migrations for each engine (`engine`).
//!
//! The store is the only module that speaks SQL. It knows nothing about
//! secrets (platforms carry a keyring reference chosen by the caller) nor about
//! the rules that decide a grade's status (`crate::status`). Methods that write
//! facts take a connection, so `crate::intake`, the single writer of facts, can
//! commit a fact and the statuses it changes in one transaction.

mod bulk;
mod claims;
mod copy;
mod course;
pub mod dump;
mod edx;
pub mod engine;
mod health;
mod imports;
mod journal;
mod ledger;
mod listing;
mod places;
mod platforms;
mod service_keys;
mod sql;
mod status;
mod sync;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use crate::error::{Error, Result};

pub use bulk::{ExternalAttemptInsert, GradeInsert, LaunchInsert, ObservationInsert, StoredStatus};
pub use claims::Claimed;
pub use copy::CopyReport;
pub use course::{CourseActivity, LearnerIds};
pub use edx::{EdxAssignment, EdxRecord};
pub use engine::{Engine, ServerAddress, begin_write};
pub use health::{FailureGroup, PlaceCounts};
pub use imports::{BatchCounts, NewBatch, TakenBack, TargetChange};
pub use ledger::{GradeKey, validate_grade};
pub use listing::{GradeCursor, GradeFilter, GradeSort, GradesPage, SortKey, SortedCursor};
pub use places::{ActivityUpsert, ContextUpsert, LearnerUpsert, LearnerWritten};
pub use platforms::{PlatformInsert, Tx};
pub use service_keys::{ServiceKeyInsert, ServiceKeyRecord, ServiceKeyUpsert};
pub use sql::Sql;
pub use sync::{
    AttemptFilter, AttemptRow, Candidate, Dangling, LastAttempt, RunRow, actor, host_name, run_id, set_actor,
};

/// The ledger database: a SQLite file (one person) or a PostgreSQL database (a
/// team), through sqlx's `Any` driver. The statements are the same for both; what
/// must differ is in [`engine`].
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    path: Option<PathBuf>,
    server: Option<ServerAddress>,
}

/// A connection for durable commits (see [`Store::durable_connection`]).
pub enum Durable {
    Own(AnyConnection),
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
}

impl std::ops::Deref for Durable {
    type Target = AnyConnection;
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
    rfc3339_after(Duration::ZERO)
}

/// The time `after` from now, in the ledger's timestamp format (lease ends).
pub fn rfc3339_after(after: Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + after;
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).expect("formatting a UTC timestamp cannot fail")
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

fn store_error(what: String) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| Error::new(crate::error::ErrorKind::Store, format!("{what}: {e}"))
}

impl Store {
    /// Open (creating if missing) the ledger at `path` and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        private_file(path)?;
        let pool = Self::sqlite_pool(path, "rwc", 4)
            .await
            .map_err(store_error(format!(
                "cannot open the ledger at {}. Check the path (--db or PASSBACK_DB) and its permissions",
                path.display()
            )))?;
        let store = Self {
            pool,
            engine: Engine::Sqlite,
            path: Some(path.to_path_buf()),
            server: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn sqlite_pool(
        path: &Path,
        mode: &str,
        connections: u32,
    ) -> std::result::Result<AnyPool, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let url = engine::sqlite_url(path, mode).map_err(|e| sqlx::Error::Configuration(e.message.into()))?;
        let opts = Self::quiet(url.parse::<AnyConnectOptions>()?);
        let pragmas = engine::sqlite_pragmas(mode != "ro", false);
        AnyPoolOptions::new()
            .max_connections(connections)
            .after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
    }

    /// A listing or an import streams for as long as the ledger is big: that is
    /// not a slow statement worth a warning on the user's terminal.
    fn quiet(opts: AnyConnectOptions) -> AnyConnectOptions {
        opts.log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
    }

    /// Open (creating its tables if the database is empty) a team ledger on a
    /// PostgreSQL server. `password` comes from the keyring; without one, sqlx
    /// reads `PGPASSFILE` (or `~/.pgpass`) as libpq does.
    pub async fn open_server(address: &ServerAddress, password: Option<&str>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let opts = Self::quiet(
            address
                .connect_url(password)
                .parse::<AnyConnectOptions>()
                .map_err(store_error(format!("cannot read the ledger address {address}")))?,
        );
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Store,
                    format!(
                        "cannot connect to the team ledger {address}: {e}. Check the address, that the server \
                         is running, and the password (`passback ledger password set ADDRESS`, or PGPASSFILE)."
                    ),
                )
            })?;
        let store = Self {
            pool,
            engine: Engine::Postgres,
            path: None,
            server: Some(address.clone()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Which engine holds this ledger.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The team ledger's address (`None` for a SQLite ledger).
    pub fn server(&self) -> Option<&ServerAddress> {
        self.server.as_ref()
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
        let pool = Self::sqlite_pool(path, "ro", 2)
            .await
            .map_err(store_error(format!(
                "cannot open {} read-only. Check that it is a Passback ledger you may read",
                path.display()
            )))?;
        Ok(Self {
            pool,
            engine: Engine::Sqlite,
            path: Some(path.to_path_buf()),
            server: None,
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

    /// Open an existing ledger without writing to it: a ledger someone sent,
    /// shown before the user trusts it. Nothing is created, no migration runs and the
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
        let latest = store.schema_latest();
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

    /// A connection whose every commit is durable before it returns: the sync
    /// journal commits an attempt on it before the request leaves. SQLite: its
    /// own connection with `synchronous = FULL`; PostgreSQL commits durably
    /// anyway (`synchronous_commit` on); an in-memory ledger lends a pooled one.
    pub async fn durable_connection(&self) -> Result<Durable> {
        Ok(match &self.path {
            Some(path) => {
                let url = engine::sqlite_url(path, "rw")?;
                let mut conn = Self::quiet(url.parse::<AnyConnectOptions>()?).connect().await?;
                conn.execute(sqlx::AssertSqlSafe(engine::sqlite_pragmas(true, true)))
                    .await?;
                Durable::Own(conn)
            }
            None => Durable::Pooled(self.pool.acquire().await?),
        })
    }

    /// A private throw-away ledger (unit tests): in memory, or, when the test
    /// environment names a PostgreSQL server (`PASSBACK_TEST_POSTGRES`), a fresh
    /// schema of its own there, so the same tests run against both engines.
    pub async fn open_in_memory() -> Result<Self> {
        if let Some(url) = std::env::var("PASSBACK_TEST_POSTGRES")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return Self::open_test_schema(&url).await;
        }
        Self::open_sqlite_in_memory().await
    }

    /// A private in-memory SQLite ledger, whatever the test environment (tests
    /// of SQLite itself: query plans, storage classes).
    pub async fn open_sqlite_in_memory() -> Result<Self> {
        sqlx::any::install_default_drivers();
        // One connection, kept for the pool's life: every connection to an
        // in-memory database is its own database.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(engine::sqlite_pragmas(false, false)))
                        .await?;
                    Ok(())
                })
            })
            .connect_with("sqlite::memory:".parse::<AnyConnectOptions>()?)
            .await?;
        let store = Self {
            pool,
            engine: Engine::Sqlite,
            path: None,
            server: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A ledger in a new schema of its own on the test server at `url`.
    async fn open_test_schema(url: &str) -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        sqlx::any::install_default_drivers();
        let schema = format!(
            "t{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        );
        let mut admin = AnyConnection::connect(url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await?;
        admin.close().await?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect_with(Self::quiet(scoped.parse::<AnyConnectOptions>()?))
            .await?;
        let store = Self {
            pool,
            engine: Engine::Postgres,
            path: None,
            server: Some(ServerAddress::parse(url)?),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        // A team ledger is shared by people whose database roles may not change
        // its tables: when it is current, nothing is asked of the migrator (which
        // would try to create its own table).
        let current = self.schema_version().await.ok();
        let latest = self.schema_latest();
        if current.is_some_and(|v| v > latest) {
            return Err(Error::new(
                crate::error::ErrorKind::Store,
                format!(
                    "this ledger was written by a newer Passback (schema {}, this one knows {latest}): update Passback.",
                    current.unwrap_or_default()
                ),
            ));
        }
        if current != Some(latest) {
            self.engine.migrator().run(&self.pool).await.map_err(|e| {
                let text = e.to_string();
                if self.engine == Engine::Postgres && text.contains("permission denied") {
                    Error::new(
                        crate::error::ErrorKind::Forbidden,
                        format!(
                            "this team ledger needs its tables created or upgraded to schema {latest}, which your \
                             database role may not do: its administrator (the database's owner) runs \
                             `passback --db ADDRESS doctor` once with this Passback. ({text})"
                        ),
                    )
                } else {
                    Error::from(e)
                }
            })?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO ledger_meta (key, value) VALUES ('ledger_id', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where the ledger lives (`None` for in-memory and server ledgers).
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
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM ledger_meta WHERE key = $1")
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
    pub async fn set_meta_in(conn: &mut AnyConnection, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledger_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Highest applied migration version.
    pub async fn schema_version(&self) -> Result<i64> {
        let (v,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Highest migration version this build knows for this ledger's engine.
    pub fn schema_latest(&self) -> i64 {
        self.engine
            .migrator()
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// The database engine's own version (e.g. `SQLite 3.46.0`, `PostgreSQL 15.8`).
    pub async fn engine_version(&self) -> Result<String> {
        let sql = match self.engine {
            Engine::Sqlite => "SELECT 'SQLite ' || sqlite_version()",
            Engine::Postgres => "SELECT 'PostgreSQL ' || current_setting('server_version')",
        };
        let (v,): (String,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(v)
    }

    /// Flush the WAL into the main file (used before backups and by tests that
    /// inspect the file's bytes). Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.engine == Engine::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests;
