//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Integration tests that touch secrets use the real OS keyring. `./dev test`
/// runs them inside `dbus-run-session` with an unlocked gnome-keyring; a bare
/// `cargo test` without a session bus fails here with instructions.
pub fn require_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests use the real Secret Service: run them through `./dev test`, which starts \
         dbus-run-session and an unlocked gnome-keyring"
    );
}

/// A temporary ledger that is removed when dropped: a file in a temporary folder,
/// or — with `PASSBACK_TEST_LEDGER=postgres` in the test command's PostgreSQL
/// step — a fresh database on its server (the folder still holds the test's
/// other files).
pub struct TempLedger {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    db: String,
    _team: Option<TeamDb>,
}

impl TempLedger {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.sqlite");
        let team = (std::env::var("PASSBACK_TEST_LEDGER").as_deref() == Ok("postgres")).then(|| {
            TeamDb::new().expect("PASSBACK_TEST_LEDGER=postgres needs PASSBACK_TEST_POSTGRES (./dev test)")
        });
        let db = team
            .as_ref()
            .map_or_else(|| path.display().to_string(), |t| t.url.clone());
        Self {
            dir,
            path,
            db,
            _team: team,
        }
    }

    /// The `passback` binary with `--db` pointing at this ledger.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("passback").expect("passback binary");
        c.arg("--db").arg(&self.db);
        c.env_remove("PASSBACK_DB");
        c
    }

    /// The ledger file (on a team ledger: where it would be; nothing is there).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `--db` names: the file, or the team ledger's address.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// Whether this is a team ledger on PostgreSQL.
    pub fn is_team(&self) -> bool {
        self._team.is_some()
    }

    /// The ledger through the core, as the CLI opens it.
    pub async fn open_passback(&self, secrets: passback::secrets::Secrets) -> passback::Passback {
        let ledger = passback::app::resolve_ledger(Some(Path::new(&self.db))).unwrap();
        passback::Passback::open_ledger(&ledger, secrets).await.unwrap()
    }

    /// The ledger's store, opened for writing (a file is migrated as the CLI would).
    pub async fn open_store_rw(&self) -> passback::store::Store {
        if self.is_team() {
            self.open_store().await
        } else {
            passback::store::Store::open(&self.path).await.unwrap()
        }
    }

    /// Everything the ledger holds, as bytes to search: the file's pages and WAL,
    /// or on a team ledger every value of every table.
    pub fn contents(&self) -> Vec<u8> {
        block_on(self.contents_async())
    }

    /// [`TempLedger::contents`] from async code.
    pub async fn contents_async(&self) -> Vec<u8> {
        if !self.is_team() {
            return ledger_bytes(&self.path);
        }
        let store = self.open_store().await;
        let dump = store.logical_dump().await.unwrap();
        store.close().await;
        dump.iter()
            .flat_map(|t| t.lines())
            .collect::<Vec<String>>()
            .join("\n")
            .into_bytes()
    }

    /// The ledger's store, opened without changing it (a file read-only).
    pub async fn open_store(&self) -> passback::store::Store {
        if self.is_team() {
            let a = passback::store::ServerAddress::parse(&self.db).unwrap();
            passback::store::Store::open_server(&a, None).await.unwrap()
        } else {
            passback::store::Store::open_read_only(&self.path).await.unwrap()
        }
    }
}

/// All bytes of the SQLite database and its side files.
pub fn ledger_bytes(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{}", path.display(), suffix));
        if let Ok(b) = std::fs::read(&p) {
            all.extend(b);
        }
    }
    all
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A spawned `passback sandbox`, killed when dropped.
pub struct SandboxProc {
    pub child: Child,
    pub info: Value,
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SandboxProc {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("passback"))
            .arg("sandbox")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("start line {line:?}: {e}"));
        Self { child, info }
    }

    pub fn s(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", self.info))
            .to_string()
    }

    pub fn admin(&self, path: &str, body: Value) -> Value {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_sandbox/{path}", self.s("base_url")))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap_or(Value::Null)
    }

    pub fn state(&self) -> Value {
        reqwest::blocking::get(format!("{}/_sandbox/ltiaas/state", self.s("base_url")))
            .unwrap()
            .json()
            .unwrap()
    }
}

/// Block on `f` in a small runtime of its own, on a thread of its own (so that
/// helpers work from sync tests and from inside an async test's runtime).
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .unwrap()
    })
}

/// A fresh database on the test command's PostgreSQL server, for a team ledger,
/// dropped when this goes. `None` outside the test command's PostgreSQL step
/// (no `PASSBACK_TEST_POSTGRES`).
pub struct TeamDb {
    pub url: String,
    admin: String,
    name: String,
}

impl TeamDb {
    pub fn new() -> Option<Self> {
        let admin = std::env::var("PASSBACK_TEST_POSTGRES")
            .ok()
            .filter(|u| !u.is_empty())?;
        let name = format!("team_{}", uuid_like());
        let sql = format!("CREATE DATABASE {name}");
        block_on(async {
            use sqlx::{Connection, Executor};
            sqlx::any::install_default_drivers();
            let mut c = sqlx::AnyConnection::connect(&admin).await.unwrap();
            c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
        });
        let (base, _) = admin.rsplit_once('/').unwrap();
        Some(Self {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for TeamDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin = self.admin.clone();
        block_on(async move {
            use sqlx::{Connection, Executor};
            if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
                let _ = c.execute(sqlx::AssertSqlSafe(sql)).await;
            }
        });
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{}_{t:x}", std::process::id())
}

/// Rows of (text, integer) from a ledger: a file path or a postgres:// address.
pub fn ledger_rows(db: &str, sql: &str) -> Vec<(String, i64)> {
    let url = if db.starts_with("postgres") {
        db.to_string()
    } else {
        format!("sqlite://{db}?mode=ro")
    };
    let sql = sql.to_string();
    block_on(async move {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap()
    })
}
