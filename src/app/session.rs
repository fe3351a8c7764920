//! The ledger a window has open, and **File → Open ledger…**: a support person
//! receives a ledger from a colleague and opens it. A ledger opened for the first
//! time is shown read-only (SQLite opens it read-only, nothing is migrated) with
//! no keyring at all ([`Secrets::withheld`]), so a crafted file can neither change
//! anything nor make Passback read or send a secret. Trusting it (the user says
//! they know where it came from) records its path and ledger id in this user's
//! trust list — outside any ledger, so a ledger cannot trust itself — and reopens
//! it normally. The ledger the app opened at start (the user's own, or the demo)
//! is trusted.
//!
//! The desktop shell and the browser bridge hold one [`Session`] and route every
//! call through [`Session::dispatch`].

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use super::Passback;
use super::commands;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Overview;
use crate::secrets::Secrets;

/// Where the trust list lives unless `PASSBACK_TRUST_FILE` names another file.
pub const TRUST_FILE_ENV: &str = "PASSBACK_TRUST_FILE";

/// Arguments of `open_ledger`.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct OpenLedger {
    /// The ledger file (a path on this computer).
    pub path: String,
}

/// Arguments of `trust_ledger`.
#[derive(Debug, Clone, Default, Deserialize, TS)]
pub struct TrustLedger {
    /// The ledger to trust; none: the one open read-only now. A ledger too old to
    /// be shown read-only is trusted by path (and upgraded as it opens).
    #[serde(default)]
    pub path: Option<String>,
}

/// This user's trusted ledgers: a small JSON file in the OS config folder,
/// readable by this user only.
#[derive(Debug, Clone)]
pub struct TrustList {
    file: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    ledgers: Vec<Trusted>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Trusted {
    path: PathBuf,
    ledger_id: String,
}

impl TrustList {
    pub fn at(file: impl Into<PathBuf>) -> Self {
        Self { file: file.into() }
    }

    /// `PASSBACK_TRUST_FILE`, or `<OS config dir>/passback/trusted-ledgers.json`.
    pub fn default_location() -> Result<Self> {
        if let Some(p) = std::env::var_os(TRUST_FILE_ENV).filter(|v| !v.is_empty()) {
            return Ok(Self::at(p));
        }
        let dirs = directories::ProjectDirs::from("org", "Passback", "passback").ok_or_else(|| {
            Error::invalid(format!(
                "cannot find a home directory for the trust list; set {TRUST_FILE_ENV}"
            ))
        })?;
        Ok(Self::at(dirs.config_dir().join("trusted-ledgers.json")))
    }

    fn load(&self) -> Result<TrustFile> {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "the trust list {} is unreadable ({e}); remove it to start a new one (ledgers then open read-only until trusted again).",
                        self.file.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustFile::default()),
            Err(e) => Err(Error::new(
                ErrorKind::Io,
                format!("cannot read the trust list {}: {e}", self.file.display()),
            )),
        }
    }

    /// Whether the ledger at `path` (canonical) with this id is trusted.
    pub fn contains(&self, path: &Path, ledger_id: &str) -> Result<bool> {
        Ok(self
            .load()?
            .ledgers
            .iter()
            .any(|t| t.path == path && t.ledger_id == ledger_id))
    }

    /// Trust the ledger at `path` (canonical) with this id. Written whole to a
    /// temporary file and renamed, readable by this user only.
    pub fn add(&self, path: &Path, ledger_id: &str) -> Result<()> {
        let mut list = self.load()?;
        let entry = Trusted {
            path: path.to_path_buf(),
            ledger_id: ledger_id.to_string(),
        };
        if list.ledgers.contains(&entry) {
            return Ok(());
        }
        list.ledgers.retain(|t| t.path != entry.path);
        list.ledgers.push(entry);
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("cannot write the trust list {}: {e}", self.file.display()),
            )
        };
        if let Some(dir) = self.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.file.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(&list).map_err(|e| Error::internal(e.to_string()))?;
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(io)?;
            f.write_all(&body).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.file).map_err(io)
    }
}

/// The open ledger, swappable by File → Open ledger.
pub struct Session {
    current: RwLock<std::result::Result<Passback, Error>>,
    secrets: Secrets,
    trust: TrustList,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| {
        Error::new(
            if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Io
            },
            format!(
                "cannot open {}: {e}. Choose an existing Passback ledger.",
                path.display()
            ),
        )
    })
}

impl Session {
    /// A session over the ledger the app opened at start (trusted: the user's own,
    /// or the demo) — or the reason it could not be opened, which every command
    /// reports until another ledger is opened. `secrets` is the OS keyring, used for
    /// trusted ledgers only.
    pub fn new(opened: Result<Passback>, secrets: Secrets, trust: TrustList) -> Self {
        Self {
            current: RwLock::new(opened),
            secrets,
            trust,
        }
    }

    /// The open ledger.
    pub fn current(&self) -> Result<Passback> {
        self.current.read().expect("session").clone()
    }

    fn replace(&self, pb: Passback) -> Result<()> {
        let mut cur = self.current.write().expect("session");
        if let Ok(old) = &*cur
            && old.has_running_jobs()
        {
            return Err(Error::conflict(
                "a job is still running on the open ledger: wait for it to finish or cancel it, then open another ledger.",
            ));
        }
        *cur = Ok(pb);
        Ok(())
    }

    /// Open the ledger at `path`: read-only with no keyring unless this user trusts
    /// it (or it is the one already open).
    pub async fn open_ledger(&self, path: &Path) -> Result<Overview> {
        let path = canonical(path)?;
        if let Ok(cur) = self.current()
            && cur
                .store()
                .path()
                .and_then(|p| std::fs::canonicalize(p).ok())
                .as_deref()
                == Some(path.as_path())
        {
            return cur.overview().await;
        }
        let ro = Passback::open_read_only(&path).await?;
        let id = ro.store().ledger_id().await?;
        let pb = if self.trust.contains(&path, &id)? {
            ro.store().close().await;
            Passback::open(&path, self.secrets.clone()).await?
        } else {
            ro
        };
        let overview = pb.overview().await?;
        self.replace(pb)?;
        Ok(overview)
    }

    /// Trust a ledger (the one open read-only, or the one at `path`): record it in
    /// this user's trust list and open it normally (upgraded if it is older, with
    /// the keyring).
    pub async fn trust_ledger(&self, path: Option<&Path>) -> Result<Overview> {
        let path = match path {
            Some(p) => canonical(p)?,
            None => {
                let cur = self.current()?;
                if !cur.is_read_only() {
                    return cur.overview().await;
                }
                let p = cur
                    .store()
                    .path()
                    .ok_or_else(|| Error::invalid("an in-memory ledger cannot be trusted"))?
                    .to_path_buf();
                canonical(&p)?
            }
        };
        let id = crate::store::Store::peek_ledger_id(&path).await?;
        if let Ok(cur) = self.current()
            && cur.has_running_jobs()
        {
            return Err(Error::conflict(
                "a job is still running on the open ledger: wait for it to finish or cancel it first.",
            ));
        }
        self.trust.add(&path, &id)?;
        if let Ok(cur) = self.current()
            && cur.is_read_only()
        {
            // The read-only pool goes before the file is opened for writing.
            cur.store().close().await;
        }
        let pb = Passback::open(&path, self.secrets.clone()).await?;
        let overview = pb.overview().await?;
        self.replace(pb)?;
        Ok(overview)
    }

    /// Run a command by name: the session's own (`open_ledger`, `trust_ledger`)
    /// or one of the core's (see [`commands`]) on the open ledger.
    pub async fn dispatch(&self, command: &str, args: Value) -> Result<Value> {
        match command {
            "open_ledger" => {
                let a: OpenLedger = commands::parse_args(command, args)?;
                commands::to_json(self.open_ledger(Path::new(&a.path)).await?)
            }
            "trust_ledger" => {
                let a: TrustLedger = commands::parse_args(command, args)?;
                commands::to_json(self.trust_ledger(a.path.as_deref().map(Path::new)).await?)
            }
            _ => commands::dispatch(&self.current()?, command, args).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::platforms::PlatformForm;
    use crate::model::PlatformKind;

    /// A ledger made by "a colleague": one platform with its secret in their keyring.
    async fn colleague_ledger(path: &Path) -> String {
        let pb = Passback::open(path, Secrets::in_memory()).await.unwrap();
        pb.add_platform_form(PlatformForm {
            kind: Some(PlatformKind::Lti11),
            name: "canvas".into(),
            consumer_key: "ck".into(),
            base_url: String::new(),
            allowed_hosts: vec!["canvas.example.edu".into()],
            allow_http: false,
            secret: "their-secret".into(),
        })
        .await
        .unwrap();
        let id = pb.store().ledger_id().await.unwrap();
        pb.store().checkpoint().await.unwrap();
        pb.store().close().await;
        id
    }

    fn own_session(dir: &Path, secrets: Secrets) -> Session {
        Session::new(
            Err(Error::not_found("no ledger opened at start")),
            secrets,
            TrustList::at(dir.join("config/trusted-ledgers.json")),
        )
    }

    #[tokio::test]
    async fn a_ledger_opened_for_the_first_time_is_read_only_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("from-a-colleague.sqlite");
        colleague_ledger(&path).await;
        let before = std::fs::read(&path).unwrap();

        // This user's keyring: whatever the ledger names must not be read from it.
        let session = own_session(dir.path(), Secrets::in_memory());
        let o = session.open_ledger(&path).await.unwrap();
        assert!(o.read_only);
        assert_eq!(o.platforms.len(), 1);
        let pb = session.current().unwrap();
        assert!(pb.is_read_only());

        // Reads answer; everything that writes, sends or uses the keyring is refused.
        for name in commands::READS {
            assert!(commands::COMMANDS.contains(name), "{name} is a command");
        }
        for name in commands::COMMANDS {
            let got = session.dispatch(name, Value::Null).await;
            if commands::READS.contains(name) {
                if let Err(e) = got {
                    assert_ne!(e.kind, ErrorKind::ReadOnly, "{name} only reads: {}", e.message);
                }
            } else {
                let e = got.expect_err(name);
                assert_eq!(e.kind, ErrorKind::ReadOnly, "{name}: {}", e.message);
                assert!(e.message.contains("Trust it"), "{}", e.message);
            }
        }
        // The keyring is withheld even from the core's own code paths.
        let platform = &o.platforms[0];
        let secret_ref = crate::secrets::SecretRef::parse(&platform.secret_ref).unwrap();
        let e = pb.secrets().get_bound(&secret_ref).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ReadOnly);
        let doctor = pb.doctor().await.unwrap();
        assert!(!doctor.keyring_ok);
        assert!(
            doctor.keyring_detail.contains("not trusted"),
            "{}",
            doctor.keyring_detail
        );

        // The file is as it came.
        drop(pb);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[tokio::test]
    async fn trusting_a_ledger_reopens_it_normally_and_is_remembered_for_that_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let id = colleague_ledger(&path).await;
        let session = own_session(dir.path(), Secrets::in_memory());
        assert!(session.open_ledger(&path).await.unwrap().read_only);

        let o = session.trust_ledger(None).await.unwrap();
        assert!(!o.read_only);
        assert!(!session.current().unwrap().is_read_only());
        let list = std::fs::read_to_string(dir.path().join("config/trusted-ledgers.json")).unwrap();
        assert!(list.contains(&id), "{list}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("config/trusted-ledgers.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Writing works now.
        let e = session
            .dispatch("cancel_job", serde_json::json!({"job_id": 1, "after": 0}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);

        // Another session (the app started again) opens it trusted at once.
        let again = own_session(dir.path(), Secrets::in_memory());
        assert!(!again.open_ledger(&path).await.unwrap().read_only);

        // A copy elsewhere (same ledger id, another file) is not trusted.
        session.current().unwrap().store().checkpoint().await.unwrap();
        let copy = dir.path().join("copy.sqlite");
        std::fs::copy(&path, &copy).unwrap();
        let third = own_session(dir.path(), Secrets::in_memory());
        assert!(third.open_ledger(&copy).await.unwrap().read_only);
    }

    #[tokio::test]
    async fn files_that_are_not_ledgers_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let session = own_session(dir.path(), Secrets::in_memory());
        let e = session
            .open_ledger(&dir.path().join("nope.sqlite"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database").unwrap();
        let e = session.open_ledger(&text).await.unwrap_err();
        assert!(
            e.message.contains("not a Passback ledger") || e.message.contains("read-only"),
            "{}",
            e.message
        );
        // The session still answers (with the reason it had no ledger).
        let e = session.dispatch("overview", Value::Null).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = session
            .dispatch("open_ledger", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
    }
}
