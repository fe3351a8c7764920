//! Platforms: LMS connections Passback signs for, with their secrets in the keyring.

use super::Passback;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{NewLti11Platform, NewLtiaasPlatform, Platform, PlatformKind};
use crate::secrets::{BoundSecret, SecretRef};
use crate::store::{PlatformInsert, Store};

/// Which platform to remove; `force` confirms removing one that has grades.
#[derive(Debug, Clone, Default, serde::Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct RemovePlatform {
    pub name: String,
    /// The person confirmed: its grades and their history go too.
    pub force: bool,
}

/// A removed platform, with what went with it.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct RemovedPlatform {
    pub name: String,
    pub contexts: i64,
    pub grades: i64,
    /// Keyring entries found and deleted.
    pub keyring_entries: usize,
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "platform name {name:?} is not valid: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Normalize an allowed outcome host: lower-case, optional `:port`, no scheme or path.
pub fn normalize_host(h: &str) -> Result<String> {
    let h = h.trim().to_ascii_lowercase();
    let bad = h.is_empty()
        || h.contains("://")
        || h.contains('/')
        || h.contains('?')
        || h.contains('#')
        || h.contains('@')
        || h.chars().any(char::is_whitespace);
    if bad {
        return Err(Error::invalid(format!(
            "allowed host {h:?} is not a host name: give just the host (and optional :port), e.g. canvas.example.edu"
        )));
    }
    Ok(h)
}

/// A platform the window adds: LTI 1.1 (consumer key and secret, allowed hosts)
/// or LTIAAS (base URL and API key). The secret goes to the keyring and is never
/// sent back to the window.
#[derive(Debug, Clone, Default, serde::Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct PlatformForm {
    pub kind: Option<PlatformKind>,
    pub name: String,
    pub consumer_key: String,
    pub base_url: String,
    pub allowed_hosts: Vec<String>,
    pub allow_http: bool,
    /// The consumer secret (LTI 1.1) or the API key (LTIAAS).
    pub secret: String,
}

/// Where to try a signed read ("Test connection").
#[derive(Debug, Clone, Default, serde::Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct ConnectionTest {
    pub platform: String,
    /// A `lis_result_sourcedid` the LMS knows (from any launch).
    pub sourcedid: String,
    pub outcome_url: String,
}

/// What the test read found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct ConnectionResult {
    /// The LMS accepted the signature and answered the read.
    pub ok: bool,
    pub description: String,
    pub fix_hint: Option<String>,
    /// The grade the LMS holds for that sourcedid (0–1), if any.
    pub lms_score: Option<f64>,
}

impl Passback {
    /// Add a platform from the window's form.
    pub async fn add_platform_form(&self, f: PlatformForm) -> Result<Platform> {
        if f.secret.is_empty() {
            return Err(Error::invalid(match f.kind {
                Some(PlatformKind::Ltiaas) => "the API key is empty",
                _ => "the consumer secret is empty",
            }));
        }
        match f.kind {
            Some(PlatformKind::Lti11) => {
                self.add_lti11_platform(
                    NewLti11Platform {
                        name: f.name,
                        consumer_key: f.consumer_key,
                        allowed_hosts: f
                            .allowed_hosts
                            .into_iter()
                            .map(|h| h.trim().to_string())
                            .filter(|h| !h.is_empty())
                            .collect(),
                        allow_http: f.allow_http,
                    },
                    &f.secret,
                )
                .await
            }
            Some(PlatformKind::Ltiaas) => {
                self.add_ltiaas_platform(
                    NewLtiaasPlatform {
                        name: f.name,
                        base_url: f.base_url,
                    },
                    &f.secret,
                )
                .await
            }
            None => Err(Error::invalid("choose the platform's kind: lti11 or ltiaas")),
        }
    }

    /// Change a platform from the window: LTI 1.1 consumer key, allowed hosts and
    /// plain http, or the LTIAAS base URL; a non-empty `secret` replaces the one in
    /// the keyring (empty keeps it). The name and kind stay. A new secret goes to the
    /// keyring before the ledger commits; if the commit fails the old one is put back.
    pub async fn edit_platform(&self, f: PlatformForm) -> Result<Platform> {
        let p = self.store().platform_by_name(f.name.trim()).await?;
        let (consumer_key, base_url, hosts, allow_http) = match p.kind {
            PlatformKind::Lti11 => {
                let key = f.consumer_key.trim().to_string();
                if key.is_empty() {
                    return Err(Error::invalid("the consumer key is empty"));
                }
                let hosts = f
                    .allowed_hosts
                    .iter()
                    .map(|h| h.trim())
                    .filter(|h| !h.is_empty())
                    .map(normalize_host)
                    .collect::<Result<Vec<_>>>()?;
                if hosts.is_empty() {
                    return Err(Error::invalid(
                        "give at least one allowed host: Passback signs outcome requests only for hosts you allow",
                    ));
                }
                (Some(key), None, hosts, f.allow_http)
            }
            PlatformKind::Ltiaas => {
                let (base, host) = crate::ltiaas::client::parse_base(&f.base_url)?;
                (None, Some(base), vec![host], false)
            }
        };
        // Resolved before the transaction: it reads the ledger id.
        let secret_ref = self.owned_secret_ref(&p.secret_ref).await?;
        if f.secret.is_empty() {
            // The stored secret keeps its binding: it follows the platform only to hosts
            // it was stored for. A new host needs the secret typed again for it.
            let bound = self.secrets.get_bound(&secret_ref).await?;
            if let Some(new) = hosts.iter().find(|h| !bound.allows(h)) {
                return Err(Error::invalid(format!(
                    "{new} is a new host for this platform's {}: enter it again so Passback knows it may go \
                     there (a secret is only ever sent to, or signed for, the hosts it was stored for)",
                    match p.kind {
                        PlatformKind::Lti11 => "consumer secret",
                        PlatformKind::Ltiaas => "API key",
                    }
                )));
            }
        }
        let mut tx = self.store().begin().await?;
        Store::update_platform(
            &mut tx,
            p.id,
            consumer_key.as_deref(),
            base_url.as_deref(),
            allow_http,
            &hosts,
        )
        .await?;
        if f.secret.is_empty() {
            tx.commit().await?;
        } else {
            let old = self.secrets.get_raw(&secret_ref).await.ok();
            self.secrets.set_bound(&secret_ref, &f.secret, &hosts).await?;
            if let Err(e) = tx.commit().await {
                if let Some(old) = old {
                    let _ = self.secrets.set_raw(&secret_ref, &old).await;
                }
                return Err(e.into());
            }
        }
        self.store().platform_by_name(&p.name).await
    }

    /// Store a platform's secret again (a new keyring, or an entry stored before
    /// secrets were bound to hosts), bound to the hosts the platform lists now.
    pub async fn set_platform_secret(&self, name: &str, secret: &str) -> Result<Platform> {
        if secret.is_empty() {
            return Err(Error::invalid(
                "the secret is empty: pipe it on stdin or name an environment variable with --secret-env",
            ));
        }
        let p = self.store().platform_by_name(name).await?;
        self.edit_platform(PlatformForm {
            kind: Some(p.kind),
            name: p.name,
            consumer_key: p.consumer_key.unwrap_or_default(),
            base_url: p.base_url.unwrap_or_default(),
            allowed_hosts: p.allowed_hosts,
            allow_http: p.allow_http,
            secret: secret.to_string(),
        })
        .await
    }

    /// "Test connection": one signed readResult against a sourcedid the user
    /// gives, through the journal like any read. Nothing is written to the LMS.
    pub async fn test_connection(&self, t: &ConnectionTest) -> Result<ConnectionResult> {
        let one = super::lti11::OneOutcome {
            platform: t.platform.clone(),
            sourcedid: t.sourcedid.trim().to_string(),
            outcome_url: t.outcome_url.trim().to_string(),
        };
        if one.sourcedid.is_empty() || one.outcome_url.is_empty() {
            return Err(Error::invalid(
                "give a lis_result_sourcedid and the outcome service URL from any launch of this platform",
            ));
        }
        let r = self
            .send_one(
                &one,
                &crate::lti11::client::OutcomeOp::Read,
                crate::sync::RetryPolicy {
                    max_attempts: 1,
                    ..Default::default()
                },
                crate::http::ClientOptions::default(),
            )
            .await?;
        Ok(ConnectionResult {
            ok: r.confirmed,
            description: r.description,
            fix_hint: r.fix_hint,
            lms_score: r.read_score,
        })
    }

    /// Add an LTI 1.1 platform. The consumer secret goes to the keyring; the
    /// ledger row is committed only after the keyring accepted it.
    pub async fn add_lti11_platform(&self, p: NewLti11Platform, consumer_secret: &str) -> Result<Platform> {
        validate_name(&p.name)?;
        if p.consumer_key.trim().is_empty() {
            return Err(Error::invalid("the consumer key is empty"));
        }
        if p.allowed_hosts.is_empty() {
            return Err(Error::invalid(
                "give at least one allowed host (--allow-host): Passback signs outcome requests only for hosts you allow",
            ));
        }
        let hosts = p
            .allowed_hosts
            .iter()
            .map(|h| normalize_host(h))
            .collect::<Result<Vec<_>>>()?;
        self.add_platform(
            PlatformInsert {
                name: &p.name,
                kind: PlatformKind::Lti11,
                consumer_key: Some(p.consumer_key.trim()),
                base_url: None,
                allowed_hosts: &hosts,
                allow_http: p.allow_http,
                secret_ref: "",
            },
            consumer_secret,
        )
        .await
    }

    /// Add an LTIAAS platform. The API key goes to the keyring.
    pub async fn add_ltiaas_platform(&self, p: NewLtiaasPlatform, api_key: &str) -> Result<Platform> {
        validate_name(&p.name)?;
        let (base, host) = crate::ltiaas::client::parse_base(&p.base_url)?;
        self.add_platform(
            PlatformInsert {
                name: &p.name,
                kind: PlatformKind::Ltiaas,
                consumer_key: None,
                base_url: Some(&base),
                allowed_hosts: std::slice::from_ref(&host),
                allow_http: false,
                secret_ref: "",
            },
            api_key,
        )
        .await
    }

    async fn add_platform(&self, mut insert: PlatformInsert<'_>, secret: &str) -> Result<Platform> {
        if secret.is_empty() {
            return Err(Error::invalid(
                "the secret is empty: pipe it on stdin or name an environment variable with --secret-env",
            ));
        }
        let secret_ref = SecretRef::platform(&self.store().ledger_id().await?, insert.name);
        let secret_ref_s = secret_ref.to_string();
        insert.secret_ref = &secret_ref_s;
        let mut tx = self.store().begin().await?;
        Store::insert_platform(&mut tx, &insert).await?;
        // Keyring first, commit second: if the keyring refuses, nothing is kept.
        self.secrets
            .set_bound(&secret_ref, secret, insert.allowed_hosts)
            .await?;
        if let Err(e) = tx.commit().await {
            let _ = self.secrets.delete(&secret_ref).await;
            return Err(e.into());
        }
        self.store().platform_by_name(insert.name).await
    }

    pub async fn list_platforms(&self) -> Result<Vec<Platform>> {
        self.store().list_platforms().await
    }

    pub async fn platform(&self, name: &str) -> Result<Platform> {
        self.store().platform_by_name(name).await
    }

    /// The platform's consumer secret (LTI 1.1) or API key (LTIAAS) from the keyring,
    /// with the hosts it was stored for (check them with [`BoundSecret::for_host`]
    /// before it is sent or used to sign).
    pub async fn platform_secret(&self, p: &Platform) -> Result<(SecretRef, BoundSecret)> {
        let r = self.owned_secret_ref(&p.secret_ref).await?;
        let bound = self.secrets.get_bound(&r).await.map_err(|e| {
            if e.kind != ErrorKind::SecretMissing {
                return e;
            }
            // A shared ledger names platforms whose secret each person stores.
            Error::new(
                ErrorKind::SecretMissing,
                format!(
                    "this computer has no secret for platform {:?} ({}). On a shared ledger each person stores \
                     it once in their own keyring: `passback platform secret set {}` (reads stdin), or Settings \
                     → Platforms → Edit in the window.",
                    p.name, e.message, p.name
                ),
            )
        })?;
        Ok((r, bound))
    }

    /// Remove a platform, its ledger data and its keyring entries. A platform
    /// that has grades is removed only with `force` (the CLI's `--yes`).
    pub async fn remove_platform(&self, name: &str, force: bool) -> Result<RemovedPlatform> {
        let p = self.store().platform_by_name(name).await?;
        let (contexts, grades) = self.store().platform_usage(p.id).await?;
        if grades > 0 && !force {
            return Err(Error::conflict(format!(
                "platform {name:?} has {grades} grade(s) in {contexts} context(s) in the ledger; removing it deletes \
                 them and their passback history. Confirm to remove it anyway (with the CLI: --yes)."
            )));
        }
        let mut refs = vec![self.owned_secret_ref(&p.secret_ref).await?];
        for r in self.store().service_key_refs(p.id).await? {
            refs.push(self.owned_secret_ref(&r).await?);
        }
        refs.sort_by_key(|r| r.to_string());
        refs.dedup();
        // The ledger row goes in a transaction first (a team ledger refuses it to
        // anyone but its administrators: then nothing else happens), the keyring
        // entries next, and the removal commits only once they are gone: if the
        // keyring is unreachable the ledger keeps the row, so the entries are not
        // orphaned without a trace.
        let mut tx = self.store().begin().await?;
        Store::delete_platform(&mut tx, p.id).await?;
        // Counted as found: a slot a target names may never have held a key.
        let mut deleted = 0;
        for r in &refs {
            deleted += usize::from(self.secrets.delete(r).await?);
        }
        tx.commit().await?;
        Ok(RemovedPlatform {
            name: p.name,
            contexts,
            grades,
            keyring_entries: deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ManualGrade;
    use crate::error::ErrorKind;
    use crate::model::NewGrade;
    use crate::secrets::Secrets;

    fn lti11(name: &str) -> NewLti11Platform {
        NewLti11Platform {
            name: name.into(),
            consumer_key: "k1".into(),
            allowed_hosts: vec!["LMS.Example.edu".into()],
            allow_http: false,
        }
    }

    #[tokio::test]
    async fn edit_changes_the_connection_keeps_or_replaces_the_secret_and_refuses_bad_values() {
        let pb = Passback::open_in_memory().await.unwrap();
        pb.add_lti11_platform(lti11("canvas"), "old-secret")
            .await
            .unwrap();
        let form = |key: &str, hosts: &[&str], secret: &str| PlatformForm {
            kind: None,
            name: "canvas".into(),
            consumer_key: key.into(),
            base_url: String::new(),
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            allow_http: false,
            secret: secret.into(),
        };
        let p = pb
            .edit_platform(form("k2", &["LMS.example.edu", " "], ""))
            .await
            .unwrap();
        assert_eq!(p.consumer_key.as_deref(), Some("k2"));
        assert_eq!(
            pb.platform_secret(&p).await.unwrap().1.secret,
            "old-secret",
            "an empty secret keeps the old one"
        );
        // The kept secret does not follow the platform to a host it was not stored for.
        let e = pb
            .edit_platform(form("k2", &["New.Example.edu"], ""))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(
            e.message.contains("new.example.edu is a new host"),
            "{}",
            e.message
        );
        assert_eq!(
            pb.platform("canvas").await.unwrap().allowed_hosts,
            vec!["lms.example.edu"]
        );
        // Typed again, it goes to the new host only.
        let p = pb
            .edit_platform(form("k2", &["New.Example.edu"], "new-secret"))
            .await
            .unwrap();
        assert_eq!(p.allowed_hosts, vec!["new.example.edu"]);
        let (r, bound) = pb.platform_secret(&p).await.unwrap();
        assert_eq!(bound.for_host("new.example.edu", &r).unwrap(), "new-secret");
        assert!(bound.for_host("lms.example.edu", &r).is_err());
        for (bad, why) in [
            (form("", &["a.edu"], ""), "consumer key"),
            (form("k", &[], ""), "allowed host"),
        ] {
            let e = pb.edit_platform(bad).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid);
            assert!(e.message.contains(why), "{}", e.message);
        }
        assert_eq!(
            pb.platform("canvas").await.unwrap().consumer_key.as_deref(),
            Some("k2"),
            "a refused edit changes nothing"
        );
        let e = pb
            .edit_platform(PlatformForm {
                name: "nope".into(),
                ..form("k", &["a.edu"], "")
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn an_ltiaas_api_key_never_goes_in_clear_to_a_host_hidden_behind_userinfo() {
        let pb = Passback::open_in_memory().await.unwrap();
        for base in [
            "http://localhost:x@evil.example",
            "http://[::1]@evil.example",
            "http://localhost:3000",
            "https://me@tool.ltiaas.com",
        ] {
            let e = pb
                .add_ltiaas_platform(
                    NewLtiaasPlatform {
                        name: "t".into(),
                        base_url: base.into(),
                    },
                    "api-key",
                )
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Invalid, "{base}");
            // The client that sends the key refuses it too, whatever a ledger says.
            assert!(
                crate::ltiaas::client::LtiaasClient::new(base, Default::default()).is_err(),
                "{base}"
            );
        }
        assert!(pb.list_platforms().await.unwrap().is_empty());
        let p = pb
            .add_ltiaas_platform(
                NewLtiaasPlatform {
                    name: "t".into(),
                    base_url: "http://127.0.0.1:4000/".into(),
                },
                "k",
            )
            .await
            .unwrap();
        assert_eq!(p.allowed_hosts, vec!["127.0.0.1:4000"]);
    }

    #[tokio::test]
    async fn a_crafted_ledger_cannot_read_send_or_delete_another_applications_keyring_entry() {
        let pb = Passback::open_in_memory().await.unwrap();
        pb.add_lti11_platform(lti11("canvas"), "s3cret").await.unwrap();
        // Another application's entry in the same keyring, and a ledger pointing at it.
        let theirs = SecretRef::parse("gh/oauth-token").unwrap();
        pb.secrets().set_raw(&theirs, "ghp_not_yours").await.unwrap();
        pb.store()
            .point_secret_ref_for_test("canvas", "gh/oauth-token")
            .await
            .unwrap();
        let p = pb.platform("canvas").await.unwrap();
        let e = pb.platform_secret(&p).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(
            e.message.contains("not one of this ledger's own"),
            "{}",
            e.message
        );
        let e = pb.remove_platform("canvas", true).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert_eq!(
            pb.secrets().get_raw(&theirs).await.unwrap(),
            "ghp_not_yours",
            "left alone"
        );
        // Another ledger's entry is refused the same way.
        let other = SecretRef::platform("another-ledger", "canvas");
        pb.store()
            .point_secret_ref_for_test("canvas", &other.to_string())
            .await
            .unwrap();
        assert_eq!(pb.platform_secret(&p).await.unwrap_err().kind, ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn add_list_and_read_back_the_secret() {
        let pb = Passback::open_in_memory().await.unwrap();
        let p = pb.add_lti11_platform(lti11("canvas"), "s3cret").await.unwrap();
        assert_eq!(p.allowed_hosts, vec!["lms.example.edu"]);
        assert_eq!(pb.platform_secret(&p).await.unwrap().1.secret, "s3cret");
        assert!(
            !serde_json::to_string(&pb.list_platforms().await.unwrap())
                .unwrap()
                .contains("s3cret")
        );
    }

    #[tokio::test]
    async fn keyring_refusal_leaves_no_ledger_row() {
        let store = Store::open_in_memory().await.unwrap();
        let pb = Passback::with_secrets(store, Secrets::unavailable("no session bus"));
        let e = pb.add_lti11_platform(lti11("canvas"), "s").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Keyring);
        assert!(pb.list_platforms().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn validation_errors_say_what_to_fix() {
        let pb = Passback::open_in_memory().await.unwrap();
        let mut bad = lti11("has space");
        assert_eq!(
            pb.add_lti11_platform(bad.clone(), "s").await.unwrap_err().kind,
            ErrorKind::Invalid
        );
        bad.name = "ok".into();
        bad.allowed_hosts = vec!["https://lms.example.edu/path".into()];
        let e = pb.add_lti11_platform(bad.clone(), "s").await.unwrap_err();
        assert!(e.message.contains("not a host name"), "{}", e.message);
        bad.allowed_hosts = vec![];
        assert!(
            pb.add_lti11_platform(bad, "s")
                .await
                .unwrap_err()
                .message
                .contains("--allow-host")
        );
        assert_eq!(
            pb.add_lti11_platform(lti11("x"), "").await.unwrap_err().kind,
            ErrorKind::Invalid
        );
        let e = pb
            .add_ltiaas_platform(
                NewLtiaasPlatform {
                    name: "l".into(),
                    base_url: "http://ltiaas.example.com".into(),
                },
                "k",
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("https"), "{}", e.message);
        let ok = pb
            .add_ltiaas_platform(
                NewLtiaasPlatform {
                    name: "l".into(),
                    base_url: "https://Your.LTIAAS.com/".into(),
                },
                "k",
            )
            .await
            .unwrap();
        assert_eq!(ok.base_url.as_deref(), Some("https://Your.LTIAAS.com"));
        assert_eq!(ok.allowed_hosts, vec!["your.ltiaas.com"]);
    }

    #[tokio::test]
    async fn removing_a_platform_with_grades_needs_confirmation_and_clears_the_keyring() {
        let pb = Passback::open_in_memory().await.unwrap();
        let p = pb.add_lti11_platform(lti11("canvas"), "s3cret").await.unwrap();
        pb.record_manual_grade(ManualGrade {
            platform: "canvas".into(),
            context_id: "c".into(),
            resource_link_id: "r".into(),
            activity_title: Some("Quiz".into()),
            points_possible: Some(10.0),
            lti_user_id: "u".into(),
            learner_name: None,
            grade: NewGrade {
                score_given: 5.0,
                score_maximum: 10.0,
                comment: None,
                result_text: None,
                result_url: None,
                submitted_at: None,
                source: "test".into(),
            },
        })
        .await
        .unwrap();
        let e = pb.remove_platform("canvas", false).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(e.message.contains("--yes"));
        assert_eq!(
            pb.platform_secret(&p).await.unwrap().1.secret,
            "s3cret",
            "nothing removed without confirmation"
        );
        let r = pb.remove_platform("canvas", true).await.unwrap();
        assert_eq!((r.contexts, r.grades, r.keyring_entries), (1, 1, 1));
        assert_eq!(
            pb.platform_secret(&p).await.unwrap_err().kind,
            ErrorKind::SecretMissing
        );
        assert!(pb.list_grades().await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;

    #[tokio::test]
    async fn the_windows_form_adds_a_platform_whose_secret_only_the_keyring_holds() {
        let pb = Passback::open_in_memory().await.unwrap();
        let form = PlatformForm {
            kind: Some(PlatformKind::Lti11),
            name: "canvas".into(),
            consumer_key: "ck".into(),
            allowed_hosts: vec![" canvas.example.edu ".into(), "".into()],
            secret: "s3cret-value".into(),
            ..PlatformForm::default()
        };
        let p = pb.add_platform_form(form.clone()).await.unwrap();
        assert_eq!(p.allowed_hosts, vec!["canvas.example.edu".to_string()]);
        // What the window gets back names the platform, never its secret.
        let shown = serde_json::to_string(&p).unwrap();
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert_eq!(pb.platform_secret(&p).await.unwrap().1.secret, "s3cret-value");
        // Each missing piece is named.
        let no_secret = PlatformForm {
            secret: String::new(),
            name: "other".into(),
            ..form.clone()
        };
        assert!(
            pb.add_platform_form(no_secret)
                .await
                .unwrap_err()
                .message
                .contains("secret is empty")
        );
        let no_kind = PlatformForm {
            kind: None,
            name: "other".into(),
            ..form.clone()
        };
        assert!(
            pb.add_platform_form(no_kind)
                .await
                .unwrap_err()
                .message
                .contains("kind")
        );
        let no_host = PlatformForm {
            allowed_hosts: vec![" ".into()],
            name: "other".into(),
            ..form
        };
        assert!(
            pb.add_platform_form(no_host)
                .await
                .unwrap_err()
                .message
                .contains("allowed host")
        );
        let t = ConnectionTest {
            platform: "canvas".into(),
            ..ConnectionTest::default()
        };
        assert_eq!(
            pb.test_connection(&t).await.unwrap_err().kind,
            crate::error::ErrorKind::Invalid
        );
    }
}
