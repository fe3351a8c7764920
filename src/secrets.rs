//! Secrets live only in the OS keyring (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows), through `keyring-core`.
//!
//! The ledger stores a [`SecretRef`] string (`service/account`), never the
//! secret. When no keyring is reachable Passback refuses to store secrets and
//! says why; it never falls back to plain text.

use std::sync::Arc;
use std::time::Duration;

use keyring_core::CredentialStore;

use crate::error::{Error, ErrorKind, Result};

/// The keyring service name all Passback entries use.
pub const SERVICE: &str = "passback";

/// How long a keyring call may take before we give up (a locked keyring can
/// block forever waiting for an unlock prompt).
const KEYRING_TIMEOUT: Duration = Duration::from_secs(20);

/// A reference to one keyring entry, stored in the ledger as `service/account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub service: String,
    pub account: String,
}

impl SecretRef {
    /// The reference for a platform's consumer secret or API key.
    pub fn platform(ledger_id: &str, platform_name: &str) -> Self {
        Self {
            service: SERVICE.into(),
            account: format!("ledger-{ledger_id}/platform/{platform_name}"),
        }
    }

    /// The reference for an LTIAAS service key of (platform, context, resource link).
    pub fn service_key(
        ledger_id: &str,
        platform_name: &str,
        context_id: &str,
        resource_link_id: &str,
    ) -> Self {
        Self {
            service: SERVICE.into(),
            account: format!(
                "ledger-{ledger_id}/service-key/{platform_name}/{}/{}",
                escape_segment(context_id),
                escape_segment(resource_link_id)
            ),
        }
    }

    /// The reference for one capture of an LTIAAS service key: every capture gets its
    /// own keyring account, so two captures racing never overwrite each other's key;
    /// the ledger's newest-wins row decides which one is used, the other is deleted.
    pub fn service_key_capture(
        ledger_id: &str,
        platform_name: &str,
        context_id: &str,
        resource_link_id: &str,
    ) -> Self {
        let mut r = Self::service_key(ledger_id, platform_name, context_id, resource_link_id);
        r.account.push_str(&format!("/{}", uuid::Uuid::new_v4().simple()));
        r
    }

    /// Parse a reference a ledger holds, accepting only what this ledger itself writes:
    /// service `passback` and an account under `ledger-<ledger_id>/` in the platform
    /// or service-key shape. A crafted ledger can otherwise point a platform at another
    /// application's keyring entry (to have it sent to a host it names, or deleted by
    /// `platform remove`).
    pub fn parse_owned(s: &str, ledger_id: &str) -> Result<Self> {
        let r = Self::parse(s)?;
        let own = format!("ledger-{ledger_id}/");
        let shape_ok = r.account.strip_prefix(&own).is_some_and(|rest| {
            rest.strip_prefix("platform/")
                .is_some_and(|n| !n.is_empty() && !n.contains('/'))
                || rest.strip_prefix("service-key/").is_some_and(|k| {
                    matches!(k.split('/').count(), 3 | 4) && !k.split('/').any(str::is_empty)
                })
        });
        if r.service != SERVICE || !shape_ok {
            return Err(Error::invalid(format!(
                "the ledger names the keyring entry {s:?}, which is not one of this ledger's own (service \
                 {SERVICE:?}, account ledger-{ledger_id}/…): refusing to read, send or delete it. The ledger may \
                 have been edited by someone else; remove the platform and add it again."
            )));
        }
        Ok(r)
    }

    pub fn parse(s: &str) -> Result<Self> {
        let (service, account) = s
            .split_once('/')
            .ok_or_else(|| Error::internal(format!("malformed keyring reference {s:?}")))?;
        Ok(Self {
            service: service.into(),
            account: account.into(),
        })
    }
}

/// A secret together with the hosts it may be sent to (or signed for), as stored in
/// the keyring: the binding lives beside the secret, out of the ledger's reach, so a
/// ledger that names this entry (even one copied with this ledger's id) cannot send
/// it anywhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct BoundSecret {
    pub secret: String,
    /// `host` or `host:port`, lower case. Empty for an entry stored by a Passback
    /// older than host binding: such an entry is never sent anywhere.
    pub hosts: Vec<String>,
}

impl std::fmt::Debug for BoundSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSecret")
            .field("secret", &"[redacted]")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// The keyring value's shape: `{"passback":1,"hosts":[...],"secret":"..."}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    passback: u32,
    hosts: Vec<String>,
    secret: String,
}

const ENVELOPE_VERSION: u32 = 1;

impl BoundSecret {
    fn to_stored(&self) -> String {
        serde_json::to_string(&Envelope {
            passback: ENVELOPE_VERSION,
            hosts: self.hosts.clone(),
            secret: self.secret.clone(),
        })
        .expect("a string and a list of strings always serialize")
    }

    fn from_stored(value: String) -> Self {
        match serde_json::from_str::<Envelope>(&value) {
            Ok(e) if e.passback == ENVELOPE_VERSION && !e.secret.is_empty() => Self {
                secret: e.secret,
                hosts: e.hosts,
            },
            // Stored before host binding (a bare secret): usable only locally.
            _ => Self {
                secret: value,
                hosts: Vec::new(),
            },
        }
    }

    /// Whether this secret may go to (or be signed for) `host` (`host` or `host:port`).
    pub fn allows(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The secret, for use with `host` only: refused (never sent) when the keyring
    /// entry was not stored for that host.
    pub fn for_host(&self, host: &str, what: &SecretRef) -> Result<&str> {
        if self.allows(host) {
            return Ok(&self.secret);
        }
        Err(self.refusal(host, what))
    }

    /// Why this secret does not go to `host`.
    pub fn refusal(&self, host: &str, what: &SecretRef) -> Error {
        if self.hosts.is_empty() {
            Error::new(
                ErrorKind::SecretMissing,
                format!(
                    "the keyring entry {what} was stored by an older Passback without the hosts it may be sent to, \
                     so Passback will not send it anywhere. Store the secret again (Settings → Platforms → Edit, or \
                     `passback platform secret set NAME` with the secret on stdin; for a service key, capture a launch \
                     again)."
                ),
            )
        } else {
            Error::new(
                ErrorKind::Invalid,
                format!(
                    "the keyring entry {what} was stored for {} only, and the ledger now wants it used with {host}: \
                     refusing. If the LMS really moved, enter the secret again for the new host (Settings → \
                     Platforms → Edit); if you did not change the platform, the ledger may have been edited by \
                     someone else.",
                    self.hosts.join(", ")
                ),
            )
        }
    }
}

/// Escape `%` then `/`, so distinct ids never map to the same keyring account.
fn escape_segment(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.account)
    }
}

/// Where the secrets go: the OS keyring, or an in-memory store for unit tests.
#[derive(Clone)]
pub struct Secrets {
    store: std::result::Result<Arc<CredentialStore>, String>,
    /// A headless job's secrets file (see [`Secrets::from_file`]): read instead
    /// of the keyring, and never written.
    file: Option<Arc<SecretsFile>>,
    /// Withheld on purpose (a ledger not trusted yet): no keyring entry is touched,
    /// whatever the ledger names.
    withheld: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.store {
            Ok(s) => write!(f, "Secrets({})", s.vendor()),
            Err(e) => write!(f, "Secrets(unavailable: {e})"),
        }
    }
}

/// Result of probing the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringStatus {
    pub ok: bool,
    pub detail: String,
}

const WITHHELD: &str = "this ledger is open read-only and not trusted yet, so Passback uses no keyring entry for it \
     and sends nothing. Trust it if you know where it came from.";

fn unavailable_message(reason: &str) -> String {
    format!(
        "no OS keyring is reachable ({reason}). Passback keeps secrets only in the OS keyring and will not \
         store them anywhere else. On Linux, start a desktop session or run gnome-keyring-daemon (Secret \
         Service) and unlock it, then try again."
    )
}

fn map_keyring_error(e: keyring_core::Error, what: &SecretRef) -> Error {
    use keyring_core::Error as K;
    match e {
        K::NoEntry => Error::new(
            ErrorKind::SecretMissing,
            format!(
                "the keyring has no entry {what}. Add the secret again (remove and re-add the platform, or \
                 re-import the launch) to restore it."
            ),
        ),
        K::NoStorageAccess(inner) => Error::keyring(format!(
            "the OS keyring refused access ({inner}). It may be locked: unlock it and try again."
        )),
        other => Error::keyring(format!("the OS keyring failed: {other}")),
    }
}

impl Secrets {
    /// The secrets this process uses: the file `explicit` names (`--secrets-file`),
    /// else the one `PASSBACK_SECRETS_FILE` names, else a systemd credential named
    /// `passback-secrets` (`LoadCredential=`, in `$CREDENTIALS_DIRECTORY`), else
    /// the OS keyring.
    pub async fn for_process(explicit: Option<&std::path::Path>) -> Result<Self> {
        let named = explicit.map(std::path::Path::to_path_buf).or_else(|| {
            std::env::var_os("PASSBACK_SECRETS_FILE")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
        });
        if let Some(path) = named {
            return Self::from_file(&path);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|v| !v.is_empty()) {
            let path = std::path::Path::new(&dir).join(SYSTEMD_CREDENTIAL);
            if path.is_file() {
                return Self::from_file(&path);
            }
        }
        Ok(Self::os().await)
    }

    /// Secrets for a job with no desktop keyring (a nightly sync on a server): a
    /// JSON file only its owner may read, e.g.
    /// `{"platforms": {"canvas": {"secret": "…", "hosts": ["canvas.example.edu"]}},
    ///   "ledger_passwords": {"job@db.example.edu:5432/passback": "…"}}`.
    /// A platform's secret goes only to the hosts listed beside it, whatever the
    /// ledger says. The file is refused if anyone but its owner (this user) can
    /// read or write it. Passback never writes it.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let file = SecretsFile::load(path)?;
        Ok(Self {
            store: Err(format!("secrets come from the file {}", path.display())),
            file: Some(Arc::new(file)),
            withheld: false,
        })
    }

    /// The platform's native keyring. Probing happens here; failures are kept
    /// and reported on use, so read-only commands still work without a keyring.
    pub async fn os() -> Self {
        let made = tokio::time::timeout(KEYRING_TIMEOUT, tokio::task::spawn_blocking(native_store)).await;
        let store = match made {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(format!("keyring probe panicked: {join}")),
            Err(_) => Err("the keyring did not answer in time".into()),
        };
        Self {
            store,
            file: None,
            withheld: false,
        }
    }

    /// No keyring at all, on purpose: for a ledger opened read-only before the user
    /// trusts it. Every use is refused with [`ErrorKind::ReadOnly`]; nothing reaches
    /// the OS keyring, whatever entry the ledger names.
    pub fn withheld() -> Self {
        Self {
            store: Err(WITHHELD.into()),
            file: None,
            withheld: true,
        }
    }

    /// A process-local store for unit tests.
    pub fn in_memory() -> Self {
        let store: Arc<CredentialStore> =
            keyring_core::mock::Store::new().expect("the mock keyring store is always available");
        Self {
            store: Ok(store),
            file: None,
            withheld: false,
        }
    }

    /// A store that is never reachable (tests of the refusal path).
    pub fn unavailable(reason: &str) -> Self {
        Self {
            store: Err(reason.to_string()),
            file: None,
            withheld: false,
        }
    }

    fn store(&self) -> Result<Arc<CredentialStore>> {
        if self.withheld {
            return Err(Error::new(ErrorKind::ReadOnly, WITHHELD));
        }
        self.store
            .clone()
            .map_err(|reason| Error::keyring(unavailable_message(&reason)))
    }

    /// Probe the keyring with a throw-away entry: write, read back, delete.
    pub async fn status(&self) -> KeyringStatus {
        if let Some(f) = &self.file {
            return KeyringStatus {
                ok: true,
                detail: format!(
                    "secrets file {} ({} platform(s), {} ledger password(s)); the OS keyring is not used",
                    f.path.display(),
                    f.platforms.len(),
                    f.ledger_passwords.len()
                ),
            };
        }
        let store = match &self.store {
            Ok(s) => s.clone(),
            Err(reason) if self.withheld => {
                return KeyringStatus {
                    ok: false,
                    detail: reason.clone(),
                };
            }
            Err(reason) => {
                return KeyringStatus {
                    ok: false,
                    detail: unavailable_message(reason),
                };
            }
        };
        let vendor = store.vendor();
        let probe = SecretRef {
            service: SERVICE.into(),
            account: format!("doctor-probe-{}", uuid::Uuid::new_v4()),
        };
        let value = uuid::Uuid::new_v4().to_string();
        let r: Result<()> = async {
            self.set_raw(&probe, &value).await?;
            let back = self.get_raw(&probe).await?;
            self.delete(&probe).await?;
            if back != value {
                return Err(Error::keyring(
                    "the keyring returned a different value than was stored",
                ));
            }
            Ok(())
        }
        .await;
        match r {
            Ok(()) => KeyringStatus {
                ok: true,
                detail: format!("reachable ({vendor})"),
            },
            Err(e) => KeyringStatus {
                ok: false,
                detail: e.message,
            },
        }
    }

    async fn with_entry<T: Send + 'static>(
        &self,
        r: &SecretRef,
        f: impl FnOnce(keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store()?;
        let what = r.clone();
        let (service, account) = (r.service.clone(), r.account.clone());
        let job = tokio::task::spawn_blocking(move || {
            let entry = store.build(&service, &account, None)?;
            f(entry)
        });
        match tokio::time::timeout(KEYRING_TIMEOUT, job).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(map_keyring_error(e, &what)),
            Ok(Err(join)) => Err(Error::internal(format!("keyring call panicked: {join}"))),
            Err(_) => Err(Error::keyring(format!(
                "the OS keyring did not answer within {} s; it may be locked and waiting for an unlock \
                 prompt. Unlock it and try again.",
                KEYRING_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Store `secret` under `r`, bound to `hosts` (`host` or `host:port`): Passback
    /// sends it to, or signs for, those hosts only.
    pub async fn set_bound(&self, r: &SecretRef, secret: &str, hosts: &[String]) -> Result<()> {
        if secret.is_empty() {
            return Err(Error::invalid("refusing to store an empty secret"));
        }
        if hosts.is_empty() {
            return Err(Error::internal(
                "a secret must be stored with the hosts it may be sent to",
            ));
        }
        let value = BoundSecret {
            secret: secret.to_string(),
            hosts: hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
        }
        .to_stored();
        self.set_raw(r, &value).await
    }

    /// The secret stored under `r` with the hosts it is bound to.
    pub async fn get_bound(&self, r: &SecretRef) -> Result<BoundSecret> {
        Ok(BoundSecret::from_stored(self.get_raw(r).await?))
    }

    /// The keyring value as stored (a [`BoundSecret`]'s envelope, or an older bare
    /// secret): for probes, restores and tests, never for sending.
    pub async fn set_raw(&self, r: &SecretRef, value: &str) -> Result<()> {
        if let Some(f) = &self.file {
            return Err(f.read_only());
        }
        if value.is_empty() {
            return Err(Error::invalid("refusing to store an empty secret"));
        }
        let value = value.to_string();
        self.with_entry(r, move |e| e.set_password(&value)).await
    }

    /// See [`Secrets::set_raw`].
    pub async fn get_raw(&self, r: &SecretRef) -> Result<String> {
        if let Some(f) = &self.file {
            return f.get(r);
        }
        self.with_entry(r, |e| e.get_password()).await
    }

    /// Delete entries nothing names any more (best effort: an entry left behind is
    /// logged, never an error, since the ledger has already moved on).
    pub async fn forget(&self, refs: &[SecretRef]) {
        for r in refs {
            if let Err(e) = self.delete(r).await {
                tracing::warn!(entry = %r, error = %e, "could not delete an unused keyring entry");
            }
        }
    }

    /// [`Secrets::forget`] the references a ledger handed back as unused (see
    /// `Batch::commit_returning_unused_keys`), only those that are `ledger_id`'s own;
    /// returns the ones forgotten.
    pub async fn forget_unused(&self, refs: &[String], ledger_id: &str) -> Vec<SecretRef> {
        let owned: Vec<SecretRef> = refs
            .iter()
            .filter_map(|r| SecretRef::parse_owned(r, ledger_id).ok())
            .collect();
        self.forget(&owned).await;
        owned
    }

    /// Delete an entry; deleting one that is already gone is not an error. Says
    /// whether there was an entry to delete.
    pub async fn delete(&self, r: &SecretRef) -> Result<bool> {
        if let Some(f) = &self.file {
            return Err(f.read_only());
        }
        self.with_entry(r, |e| match e.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(other) => Err(other),
        })
        .await
    }
}

#[cfg(target_os = "linux")]
fn native_store() -> std::result::Result<Arc<CredentialStore>, String> {
    match zbus_secret_service_keyring_store::Store::new() {
        Ok(s) => Ok(s),
        Err(e) => Err(format!("Secret Service over D-Bus: {e}")),
    }
}

#[cfg(target_os = "macos")]
fn native_store() -> std::result::Result<Arc<CredentialStore>, String> {
    apple_native_keyring_store::keychain::Store::new()
        .map_err(|e| format!("macOS Keychain: {e}"))
        .map(|s| s as Arc<CredentialStore>)
}

#[cfg(target_os = "windows")]
fn native_store() -> std::result::Result<Arc<CredentialStore>, String> {
    windows_native_keyring_store::Store::new()
        .map_err(|e| format!("Windows Credential Manager: {e}"))
        .map(|s| s as Arc<CredentialStore>)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn native_store() -> std::result::Result<Arc<CredentialStore>, String> {
    Err("this operating system has no supported keyring".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_secrets_file_serves_bound_secrets_only_when_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(
            &path,
            r#"{"platforms": {"canvas": {"secret": "s3cr:et", "hosts": ["Canvas.Example.edu"]}},
                "ledger_passwords": {"job@db:5432/l": "pw"}}"#,
        )
        .unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = Secrets::from_file(&path).unwrap_err();
            assert!(e.message.contains("chmod 600"), "{mode:o}: {}", e.message);
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = Secrets::from_file(&path).unwrap();
        let canvas = s
            .get_bound(&SecretRef::platform("any-ledger", "canvas"))
            .await
            .unwrap();
        assert_eq!(canvas.secret, "s3cr:et");
        assert!(canvas.allows("canvas.example.edu") && !canvas.allows("evil.example.net"));
        let pw = SecretRef {
            service: SERVICE.into(),
            account: "ledger-server/job@db:5432/l".into(),
        };
        assert_eq!(s.get_raw(&pw).await.unwrap(), "pw");
        let e = s
            .get_bound(&SecretRef::platform("l", "moodle"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::SecretMissing);
        assert!(e.message.contains("\"moodle\""), "{}", e.message);
        // Never written.
        let e = s
            .set_raw(&SecretRef::platform("l", "canvas"), "x")
            .await
            .unwrap_err();
        assert!(e.message.contains("never writes"), "{}", e.message);
        assert!(s.delete(&pw).await.is_err());
        assert!(s.status().await.ok);
        // A broken file says where, never what.
        std::fs::write(
            &path,
            r#"{"platforms": {"canvas": {"secret": "hunter2", "hostz": []}}}"#,
        )
        .unwrap();
        let e = Secrets::from_file(&path).unwrap_err();
        assert!(
            e.message.contains("line 1") && !e.message.contains("hunter2"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn in_memory_round_trip_across_entries() {
        let s = Secrets::in_memory();
        let r = SecretRef::platform("l1", "demo");
        let hosts = ["lms.example.edu".to_string()];
        s.set_bound(&r, "shh", &hosts).await.unwrap();
        assert_eq!(s.get_bound(&r).await.unwrap().secret, "shh");
        s.set_bound(&r, "shh2", &hosts).await.unwrap();
        assert_eq!(s.get_bound(&r).await.unwrap().secret, "shh2");
        s.delete(&r).await.unwrap();
        let e = s.get_bound(&r).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::SecretMissing);
        // deleting twice is fine, and says there was nothing left
        assert!(!s.delete(&r).await.unwrap());
    }

    #[tokio::test]
    async fn unavailable_keyring_refuses_clearly() {
        let s = Secrets::unavailable("no session bus");
        let e = s
            .set_bound(&SecretRef::platform("l", "p"), "x", &["h".into()])
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Keyring);
        assert!(e.message.contains("no session bus"));
        assert!(e.message.contains("never") || e.message.contains("will not"));
        let st = s.status().await;
        assert!(!st.ok);
    }

    #[tokio::test]
    async fn status_probe_succeeds_on_memory_store() {
        assert!(Secrets::in_memory().status().await.ok);
    }

    #[test]
    fn a_ledger_may_name_only_its_own_keyring_entries() {
        let id = "7d20cabb";
        for own in [
            SecretRef::platform(id, "canvas").to_string(),
            SecretRef::service_key(id, "tool", "c/1", "rl%2").to_string(),
            SecretRef::service_key_capture(id, "tool", "c/1", "rl%2").to_string(),
        ] {
            assert_eq!(SecretRef::parse_owned(&own, id).unwrap().to_string(), own);
        }
        for foreign in [
            "gh/oauth-token",
            "passback/ledger-other/platform/canvas",
            "passback/ledger-7d20cabb",
            "passback/ledger-7d20cabb/platform/",
            "passback/ledger-7d20cabb/platform/a/b",
            "passback/ledger-7d20cabb/doctor-probe",
            "passback/ledger-7d20cabb/service-key/x",
            "passback/ledger-7d20cabb/service-key/p/c/r/k/extra",
            "passback/ledger-7d20cabb/service-key/p//r",
            "Passback/ledger-7d20cabb/platform/canvas",
            "passback/ledger-7d20cabbX/platform/canvas",
        ] {
            let e = SecretRef::parse_owned(foreign, id).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{foreign}");
        }
    }

    #[test]
    fn refs_round_trip_and_escape_slashes() {
        let r = SecretRef::service_key("abc", "p", "ctx/1", "rl/2");
        assert_eq!(r.account, "ledger-abc/service-key/p/ctx%2F1/rl%2F2");
        assert_eq!(SecretRef::parse(&r.to_string()).unwrap(), r);
        let a = SecretRef::service_key("abc", "p", "a/b", "r");
        let b = SecretRef::service_key("abc", "p", "a%2Fb", "r");
        assert_ne!(a, b, "escaping is injective");
    }

    #[tokio::test]
    async fn empty_secret_is_refused() {
        let e = Secrets::in_memory()
            .set_bound(&SecretRef::platform("l", "p"), "", &["h".into()])
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn a_secret_is_bound_to_the_hosts_it_was_stored_for() {
        let s = Secrets::in_memory();
        let r = SecretRef::platform("l1", "canvas");
        s.set_bound(
            &r,
            "s3cret",
            &["Canvas.Example.edu".into(), "127.0.0.1:4000".into()],
        )
        .await
        .unwrap();
        let b = s.get_bound(&r).await.unwrap();
        assert_eq!(b.hosts, vec!["canvas.example.edu", "127.0.0.1:4000"]);
        assert_eq!(b.for_host("canvas.example.edu", &r).unwrap(), "s3cret");
        assert_eq!(b.for_host("127.0.0.1:4000", &r).unwrap(), "s3cret");
        for elsewhere in [
            "evil.example",
            "127.0.0.1:4001",
            "canvas.example.edu.evil.example",
            "",
        ] {
            let e = b.for_host(elsewhere, &r).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{elsewhere}");
            assert!(e.message.contains("canvas.example.edu"), "{}", e.message);
        }
        // The secret itself is never in a Debug rendering.
        assert!(!format!("{b:?}").contains("s3cret"));
        // A value stored before binding (a bare secret) goes nowhere, with what to do.
        s.set_raw(&r, "legacy-secret").await.unwrap();
        let legacy = s.get_bound(&r).await.unwrap();
        assert_eq!(legacy.secret, "legacy-secret");
        let e = legacy.for_host("canvas.example.edu", &r).unwrap_err();
        assert_eq!(e.kind, ErrorKind::SecretMissing);
        assert!(e.message.contains("Store the secret again"), "{}", e.message);
        // Binding to no host at all is a bug, not a policy.
        assert_eq!(
            s.set_bound(&r, "x", &[]).await.unwrap_err().kind,
            ErrorKind::Internal
        );
    }

    #[test]
    fn every_capture_of_a_service_key_has_its_own_account() {
        let a = SecretRef::service_key_capture("l", "p", "c", "r");
        let b = SecretRef::service_key_capture("l", "p", "c", "r");
        assert_ne!(a, b);
        let slot = SecretRef::service_key("l", "p", "c", "r");
        assert!(a.account.starts_with(&format!("{}/", slot.account)));
    }
}

/// The systemd credential name `Secrets::for_process` looks for.
pub const SYSTEMD_CREDENTIAL: &str = "passback-secrets";

/// A headless job's secrets (see [`Secrets::from_file`]).
struct SecretsFile {
    path: std::path::PathBuf,
    platforms: std::collections::BTreeMap<String, FilePlatform>,
    ledger_passwords: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    platforms: std::collections::BTreeMap<String, FilePlatform>,
    #[serde(default)]
    ledger_passwords: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePlatform {
    secret: String,
    hosts: Vec<String>,
}

impl SecretsFile {
    fn load(path: &std::path::Path) -> Result<Self> {
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::invalid(format!("cannot read the secrets file {shown}: {e}")))?;
        if !meta.is_file() {
            return Err(Error::invalid(format!("the secrets file {shown} is not a file")));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: getuid has no preconditions and cannot fail.
            let me = unsafe { libc::getuid() };
            if meta.uid() != me {
                return Err(Error::invalid(format!(
                    "the secrets file {shown} belongs to another user (uid {}): it must be this user's own \
                     (uid {me}), readable by no one else.",
                    meta.uid()
                )));
            }
            if meta.mode() & 0o077 != 0 {
                return Err(Error::invalid(format!(
                    "the secrets file {shown} can be read or written by others (mode {:o}): refusing to use \
                     it. Make it private with `chmod 600 {shown}` (systemd credentials already are).",
                    meta.mode() & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("cannot read the secrets file {shown}: {e}")))?;
        // The error names the line and column, never the content.
        let shape: FileShape = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(format!(
                "the secrets file {shown} is not valid (line {}, column {}: {}). Expected JSON like \
                 {{\"platforms\": {{\"NAME\": {{\"secret\": \"…\", \"hosts\": [\"lms.example.edu\"]}}}}}}.",
                e.line(),
                e.column(),
                match e.classify() {
                    serde_json::error::Category::Data => "unexpected field or type",
                    serde_json::error::Category::Syntax => "syntax error",
                    serde_json::error::Category::Eof => "ends too early",
                    serde_json::error::Category::Io => "unreadable",
                }
            ))
        })?;
        for (name, p) in &shape.platforms {
            if p.secret.is_empty() || p.hosts.is_empty() || p.hosts.iter().any(|h| h.trim().is_empty()) {
                return Err(Error::invalid(format!(
                    "the secrets file {shown}: platform {name:?} needs a secret and the hosts it may be sent to"
                )));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            platforms: shape.platforms,
            ledger_passwords: shape.ledger_passwords,
        })
    }

    fn read_only(&self) -> Error {
        Error::invalid(format!(
            "secrets come from the file {} (--secrets-file), which Passback never writes: edit the file instead.",
            self.path.display()
        ))
    }

    /// The value stored under `r`, as the keyring would hold it.
    fn get(&self, r: &SecretRef) -> Result<String> {
        let missing = |what: &str| {
            Error::new(
                ErrorKind::SecretMissing,
                format!(
                    "the secrets file {} has no {what}: add it to the file.",
                    self.path.display()
                ),
            )
        };
        if r.service != SERVICE {
            return Err(missing(&format!("entry {r}")));
        }
        if let Some(server) = r.account.strip_prefix("ledger-server/") {
            return self
                .ledger_passwords
                .get(server)
                .cloned()
                .ok_or_else(|| missing(&format!("ledger password for {server} (in \"ledger_passwords\")")));
        }
        // `ledger-<id>/platform/<name>`: the file names platforms by name.
        if let Some((_, rest)) = r.account.split_once('/')
            && let Some(name) = rest.strip_prefix("platform/")
        {
            let p = self
                .platforms
                .get(name)
                .ok_or_else(|| missing(&format!("secret for platform {name:?} (in \"platforms\")")))?;
            return Ok(BoundSecret {
                secret: p.secret.clone(),
                hosts: p.hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
            }
            .to_stored());
        }
        Err(missing(&format!(
            "entry {r} (a secrets file holds platform secrets and ledger passwords; LTIAAS service keys \
             come from captures in a keyring)"
        )))
    }
}
