//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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

/// A temporary ledger location that is removed when dropped.
pub struct TempLedger {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempLedger {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.sqlite");
        Self { dir, path }
    }

    /// The `passback` binary with `--db` pointing at this ledger.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("passback").expect("passback binary");
        c.arg("--db").arg(&self.path);
        c.env_remove("PASSBACK_DB");
        c
    }

    pub fn path(&self) -> &Path {
        &self.path
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
