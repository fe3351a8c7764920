//! What differs between the two engines, in one place: how to connect, the
//! migrations, per-connection settings, and the few SQL fragments the engines
//! spell differently. Every other statement in the store is written once.

use std::path::Path;

use url::Url;

use crate::error::{Error, ErrorKind, Result};

pub(super) static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
pub(super) static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database behind a ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// A file on this machine: one person's ledger.
    Sqlite,
    /// A PostgreSQL database: a team's shared ledger.
    Postgres,
}

impl Engine {
    /// An inner join whose order the statement fixes: SQLite's `CROSS JOIN … ON`
    /// keeps the written order (the planner would sometimes scan a big table
    /// against a small VALUES list); PostgreSQL has no `CROSS JOIN … ON` and
    /// plans join orders well on its own.
    pub(super) fn ordered_join(self) -> &'static str {
        match self {
            Engine::Sqlite => "CROSS JOIN",
            Engine::Postgres => "JOIN",
        }
    }

    /// The engine behind a connection (sqlx's `Any` connection knows its backend).
    pub fn of(conn: &sqlx::AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Engine::Postgres
        } else {
            Engine::Sqlite
        }
    }

    pub(super) fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Engine::Sqlite => &SQLITE_MIGRATOR,
            Engine::Postgres => &POSTGRES_MIGRATOR,
        }
    }
}

/// Begin a write transaction on `conn` (a savepoint when it is in one already).
/// SQLite takes the write lock at once (`BEGIN IMMEDIATE`): a transaction that
/// reads and then writes would otherwise fail with "database is locked" when
/// another process (a second sync, an import) wrote in between. PostgreSQL locks
/// rows as they are written.
pub async fn begin_write(conn: &mut sqlx::AnyConnection) -> Result<sqlx::Transaction<'_, sqlx::Any>> {
    use sqlx::Connection;
    if Engine::of(conn) == Engine::Sqlite && !conn.is_in_transaction() {
        Ok(conn.begin_with("BEGIN IMMEDIATE").await?)
    } else {
        Ok(conn.begin().await?)
    }
}

/// Settings every SQLite connection gets (sqlx's `Any` driver connects from a URL,
/// so they are applied as pragmas once connected).
pub(super) fn sqlite_pragmas(file: bool, durable: bool) -> String {
    let mut p = String::from("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; ");
    if file {
        p.push_str("PRAGMA journal_mode = WAL; ");
        p.push_str(if durable {
            "PRAGMA synchronous = FULL; "
        } else {
            "PRAGMA synchronous = NORMAL; "
        });
        // Imports write a whole file in one transaction: a page cache of 32 MB
        // (per connection, used only as it fills) keeps it from spilling to the
        // WAL page by page. Reads go through a memory map of the file, so a
        // window listing a large ledger on four connections holds it once.
        p.push_str("PRAGMA cache_size = -32768; PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY;");
    }
    p
}

/// The `sqlite://` URL of a ledger file (`mode` `rwc` creates it, `ro` reads only).
pub(super) fn sqlite_url(path: &Path, mode: &str) -> Result<String> {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'?')
        .add(b'<')
        .add(b'>')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'&')
        .add(b'+')
        .add(b'=')
        .add(b';');
    let text = path.to_str().ok_or_else(|| {
        Error::invalid(format!(
            "the ledger path {} is not valid UTF-8: move the ledger to a path whose name is.",
            path.display()
        ))
    })?;
    Ok(format!(
        "sqlite://{}?mode={mode}",
        utf8_percent_encode(text, PATH)
    ))
}

/// A PostgreSQL ledger's address, as given by `--db` or `PASSBACK_DB`
/// (`postgres://user@host:port/database?sslmode=…`), without any password: the
/// password comes from the keyring or `PGPASSFILE`, never from the command line.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerAddress {
    url: Url,
}

impl std::fmt::Debug for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url)
    }
}

impl std::fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url)
    }
}

/// The `sslmode` values libpq and sqlx know.
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Query parameters a ledger address may carry (the rest are refused, so a typo
/// is not silently ignored).
const PARAMS: [&str; 6] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "options",
];

impl ServerAddress {
    /// Parse a `postgres://` or `postgresql://` address, refusing a password in it.
    pub fn parse(value: &str) -> Result<Self> {
        let url = Url::parse(value).map_err(|e| {
            Error::invalid(format!(
                "the ledger address is not a valid URL ({e}): write it as postgres://USER@HOST:PORT/DATABASE."
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(Error::invalid(format!(
                "{}:// ledgers are not supported: give a SQLite file path or a postgres:// address.",
                url.scheme()
            )));
        }
        if url.password().is_some() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "the ledger address contains a password: remove it (it would stay in your shell history and \
                 process list) and store it with `passback ledger password set ADDRESS` (reads stdin), or in \
                 the file PGPASSFILE names.",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid(
                "the ledger address names no server: write it as postgres://USER@HOST:PORT/DATABASE.",
            ));
        }
        let db = url.path().trim_start_matches('/');
        if db.is_empty() || db.contains('/') {
            return Err(Error::invalid(
                "the ledger address names no database: write it as postgres://USER@HOST:PORT/DATABASE.",
            ));
        }
        for (k, v) in url.query_pairs() {
            if k == "host" {
                // A Unix-socket folder (`?host=/run/postgresql`).
                continue;
            }
            if !PARAMS.contains(&&*k) {
                return Err(Error::invalid(format!(
                    "the ledger address has a parameter {k:?} Passback does not use; it knows {}.",
                    PARAMS.join(", ")
                )));
            }
            if k == "sslmode" && !SSL_MODES.contains(&&*v) {
                return Err(Error::invalid(format!(
                    "sslmode={v} is not a TLS mode: use one of {}.",
                    SSL_MODES.join(", ")
                )));
            }
        }
        Ok(Self { url })
    }

    /// Who connects (the URL's user, else the OS user, as libpq does).
    pub fn user(&self) -> String {
        match self.url.username() {
            "" => std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into()),
            u => percent_encoding::percent_decode_str(u)
                .decode_utf8_lossy()
                .into_owned(),
        }
    }

    /// The keyring account naming this server's password for this user:
    /// `user@host:port/database`.
    pub fn keyring_account(&self) -> String {
        // A Unix-socket folder (`?host=/run/postgresql`) is where libpq connects.
        let host = self
            .url
            .query_pairs()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.into_owned())
            .or_else(|| self.url.host_str().map(str::to_string))
            .unwrap_or_default();
        format!(
            "{}@{}:{}/{}",
            self.user(),
            host,
            self.url.port().unwrap_or(5432),
            self.url.path().trim_start_matches('/')
        )
    }

    /// The URL sqlx connects with, the password (if any) added in memory only.
    pub(super) fn connect_url(&self, password: Option<&str>) -> String {
        let mut url = self.url.clone();
        if let Some(p) = password {
            // A URL with a host always accepts a password.
            let _ = url.set_password(Some(p));
        }
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_address_never_carries_a_password_and_names_a_database() {
        let a = ServerAddress::parse("postgres://support@db.example.edu:6543/passback?sslmode=verify-full")
            .unwrap();
        assert_eq!(a.keyring_account(), "support@db.example.edu:6543/passback");
        assert!(a.connect_url(Some("s3cr:et")).contains("support:s3cr%3Aet@"));
        assert!(!a.to_string().contains("s3cr"));
        let sock = ServerAddress::parse("postgresql://job@localhost/ledger?host=/run/postgresql").unwrap();
        assert_eq!(sock.keyring_account(), "job@/run/postgresql:5432/ledger");
        for (bad, says) in [
            ("postgres://u:pw@h/db", "contains a password"),
            ("postgres://u@h/", "names no database"),
            ("postgres://u@h/db?sslmode=maybe", "not a TLS mode"),
            ("postgres://u@h/db?sslmod=require", "does not use"),
            ("mysql://u@h/db", "not supported"),
        ] {
            let e = ServerAddress::parse(bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn a_ledger_path_becomes_a_url_that_names_the_same_file() {
        let u = sqlite_url(Path::new("/tmp/a b/l?#%.sqlite"), "rwc").unwrap();
        assert_eq!(u, "sqlite:///tmp/a%20b/l%3F%23%25.sqlite?mode=rwc");
    }
}

/// A column as the engine's catalog describes it, its type reduced to the
/// storage class both engines share (`integer`, `real`, `text`, `blob`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub name: String,
    pub class: String,
    pub not_null: bool,
    /// Position in the primary key (1-based), 0 when not part of it.
    pub pk: i64,
}

fn class_of(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        "integer"
    } else if t.contains("real") || t.contains("double") || t.contains("float") {
        "real"
    } else if t.contains("char") || t.contains("text") {
        "text"
    } else if t.contains("blob") || t.contains("bytea") {
        "blob"
    } else {
        "other"
    }
    .into()
}

/// The ledger's tables (not the engine's own nor the migration record), by name.
pub(super) async fn tables(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>> {
    let sql = match Engine::of(conn) {
        Engine::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             AND name <> '_sqlx_migrations'"
        }
        Engine::Postgres => {
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'"
        }
    };
    let mut names: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *conn).await?;
    names.sort();
    Ok(names)
}

/// The columns of `table`, in the table's order.
pub(super) async fn columns(conn: &mut sqlx::AnyConnection, table: &str) -> Result<Vec<ColumnInfo>> {
    let sql = match Engine::of(conn) {
        Engine::Sqlite => r#"SELECT name, type, "notnull", pk FROM pragma_table_info($1) ORDER BY cid"#,
        Engine::Postgres => {
            "SELECT c.column_name::text, c.data_type::text,
                    CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END,
                    COALESCE((SELECT array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1
                              FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
                              WHERE i.indrelid = (current_schema() || '.' || c.table_name)::regclass
                                AND i.indisprimary AND a.attname = c.column_name), 0)::bigint
             FROM information_schema.columns c
             WHERE c.table_schema = current_schema() AND c.table_name = $1 ORDER BY c.ordinal_position"
        }
    };
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(sql).bind(table).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Err(Error::internal(format!("table {table} has no columns")));
    }
    Ok(rows
        .into_iter()
        .map(|(name, declared, not_null, pk)| ColumnInfo {
            name,
            class: class_of(&declared),
            // A primary key column is never NULL (SQLite reports it nullable
            // unless declared NOT NULL).
            not_null: not_null != 0 || pk > 0,
            pk,
        })
        .collect())
}

/// The ledger's schema as both engines can describe it: per table its columns,
/// then its indexes (`name unique partial (columns)`, an expression shown as
/// `<expr>`; constraint indexes named by their columns) and foreign keys
/// (`column -> table.column on delete ACTION`), each list sorted.
pub async fn describe(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>> {
    let engine = Engine::of(conn);
    let mut out = Vec::new();
    for table in tables(conn).await? {
        for c in columns(conn, &table).await? {
            out.push(format!(
                "{table}.{} {}{}{}",
                c.name,
                c.class,
                if c.not_null { " not null" } else { "" },
                if c.pk > 0 {
                    format!(" pk{}", c.pk)
                } else {
                    String::new()
                }
            ));
        }
        let (indexes, fks) = match engine {
            Engine::Sqlite => {
                let idx: Vec<(String, String, i64, i64, String)> = sqlx::query_as(
                    "SELECT l.name, l.origin, l.\"unique\", l.partial,
                            COALESCE((SELECT group_concat(COALESCE(i.name, '<expr>'), ',')
                                      FROM (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno) i), '')
                     FROM pragma_index_list($1) l WHERE l.origin <> 'pk'",
                )
                .bind(&table)
                .fetch_all(&mut *conn)
                .await?;
                let fks: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list($1)",
                )
                .bind(&table)
                .fetch_all(&mut *conn)
                .await?;
                (
                    idx.into_iter()
                        .map(|(name, origin, unique, partial, cols)| {
                            let name = if origin == "c" { name } else { "constraint".into() };
                            format!("{name} unique={unique} partial={partial} ({cols})")
                        })
                        .collect::<Vec<_>>(),
                    fks,
                )
            }
            Engine::Postgres => {
                let idx: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
                    "SELECT ic.relname::text,
                            (EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid))::int::bigint,
                            i.indisunique::int::bigint, (i.indpred IS NOT NULL)::int::bigint,
                            (SELECT string_agg(pg_get_indexdef(i.indexrelid, k.n::int, true), '|' ORDER BY k.n)
                             FROM generate_series(1, i.indnkeyatts) AS k(n))
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = (current_schema() || '.' || $1)::regclass AND NOT i.indisprimary",
                )
                .bind(&table)
                .fetch_all(&mut *conn)
                .await?;
                let fks: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT a.attname::text, ft.relname::text, fa.attname::text,
                            CASE k.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'r' THEN 'RESTRICT'
                                 WHEN 'd' THEN 'SET DEFAULT' ELSE 'NO ACTION' END
                     FROM pg_constraint k
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                     JOIN pg_class ft ON ft.oid = k.confrelid
                     JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1]
                     WHERE k.contype = 'f' AND k.conrelid = (current_schema() || '.' || $1)::regclass",
                )
                .bind(&table)
                .fetch_all(&mut *conn)
                .await?;
                (
                    idx.into_iter()
                        .map(|(name, constraint, unique, partial, defs)| {
                            let name = if constraint == 0 {
                                name
                            } else {
                                "constraint".into()
                            };
                            // A column, or `lower(column)` (SQLite's `column COLLATE
                            // NOCASE`), or another expression.
                            let plain = |t: &str| t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                            let cols = defs
                                .split('|')
                                .map(|d| {
                                    let d = d.trim();
                                    match d.strip_prefix("lower(").and_then(|d| d.strip_suffix(')')) {
                                        Some(col) if plain(col) => col.to_string(),
                                        _ if plain(d) => d.to_string(),
                                        _ => "<expr>".to_string(),
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join(",");
                            format!("{name} unique={unique} partial={partial} ({cols})")
                        })
                        .collect::<Vec<_>>(),
                    fks,
                )
            }
        };
        let mut indexes = indexes;
        indexes.sort();
        out.extend(indexes.into_iter().map(|i| format!("{table} index {i}")));
        let mut fks: Vec<String> = fks
            .into_iter()
            .map(|(from, t, to, on_delete)| format!("{table}.{from} -> {t}.{to} on delete {on_delete}"))
            .collect();
        fks.sort();
        out.extend(fks);
    }
    Ok(out)
}
