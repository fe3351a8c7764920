//! LTIAAS through the facade: capture an ID token (its service key to the keyring,
//! its launch to the ledger), list service keys with their age, find or create line
//! items, and send or read one score through the journal.

use serde::Serialize;

use super::Passback;
use crate::error::{Error, Result};
use crate::http::{ClientOptions, Verdict};
use crate::import::idtoken;
use crate::intake::{ActivitySeen, ContextSeen, PersonSeen, Place, Placed, RowFacts};
use crate::ltiaas::ScoreToSend;
use crate::ltiaas::classify::AuthScheme;
use crate::ltiaas::client::{
    LineItem, LineItemFilter, LtiaasAuth, LtiaasClient, LtiaasRequest, NewLineItem, ResultScore,
    format_timestamp_ms,
};
use crate::model::{AttemptOutcome, ErrorClass, Platform, PlatformKind};
use crate::store::{ServiceKeyRecord, now_rfc3339};
use crate::sync::ltiaas::{LtiaasOp, LtiaasTransport};
use crate::sync::{self, AttemptReport, JournalLink, RetryPolicy, SendReport};

pub use crate::import::idtoken::{CapturedLaunch, IDTOKEN_SOURCE, KeyChange};

/// How the line item a score went to was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineItemSource {
    /// Given by the caller (`--line-item`).
    Given,
    /// Remembered on the activity in the ledger.
    Ledger,
    /// Looked up by resource link through `GET /api/lineitems`.
    Lookup,
    /// Created because none existed (`--create-line-item`).
    Created,
}

/// The result of sending a score or reading results, possibly over several attempts.
#[derive(Debug, Clone, Serialize)]
pub struct LtiaasReport {
    /// `score` or `score_read`.
    pub operation: &'static str,
    pub confirmed: bool,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    pub user_id: String,
    pub line_item_id: Option<String>,
    pub line_item_source: Option<LineItemSource>,
    /// When the service key used was captured (RFC 3339), and how old it was.
    pub service_key_captured_at: Option<String>,
    pub service_key_age: Option<String>,
    /// The timestamp of the last score attempt.
    pub timestamp: Option<String>,
    /// For reads: the result the LMS holds for the user (`null` = no grade).
    pub result: Option<ResultScore>,
    /// For reads: the score the LMS holds on the 0–1 scale (`resultScore / resultMaximum`; `null` = no grade).
    pub read_score: Option<f64>,
    pub attempts: Vec<AttemptReport>,
}

impl LtiaasReport {
    /// A report for a failure before any journaled attempt (e.g. the line item lookup).
    pub fn failed_before_sending(
        operation: &'static str,
        user_id: &str,
        verdict: &Verdict,
        what: &str,
    ) -> Self {
        Self {
            operation,
            confirmed: false,
            outcome: verdict.outcome,
            error_class: verdict.error_class,
            description: format!("{what}: {}", verdict.description),
            fix_hint: verdict.fix_hint.clone(),
            user_id: user_id.to_string(),
            line_item_id: None,
            line_item_source: None,
            service_key_captured_at: None,
            service_key_age: None,
            timestamp: None,
            result: None,
            read_score: None,
            attempts: Vec::new(),
        }
    }

    /// The report of a send or read through the journal.
    fn from_send(sent: SendReport<ResultScore>, user_id: &str, line_item_id: &str) -> Self {
        Self {
            operation: sent.operation,
            confirmed: sent.confirmed,
            outcome: sent.outcome,
            error_class: sent.error_class,
            description: sent.description,
            fix_hint: sent.fix_hint,
            user_id: user_id.to_string(),
            line_item_id: Some(line_item_id.to_string()),
            line_item_source: None,
            service_key_captured_at: None,
            service_key_age: None,
            timestamp: sent.attempts.last().and_then(|a| a.message_identifier.clone()),
            result: sent.output,
            read_score: sent.read_score,
            attempts: sent.attempts,
        }
    }
}

impl LineItemSource {
    /// A few words for people: `looked up by resource link`.
    pub fn describe(self) -> &'static str {
        match self {
            LineItemSource::Given => "given",
            LineItemSource::Ledger => "remembered in the ledger",
            LineItemSource::Lookup => "looked up by resource link",
            LineItemSource::Created => "created",
        }
    }
}

/// The result of `passback ltiaas idtoken`.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    /// True when the ID token was read and a service key is stored.
    pub ok: bool,
    pub platform: String,
    pub http_status: Option<u16>,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    pub launch: Option<CapturedLaunch>,
    pub warnings: Vec<String>,
}

/// A stored service key with its age (the key itself stays in the keyring).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceKeyRow {
    pub platform: String,
    pub context_id: String,
    pub resource_link_id: String,
    pub ltiaas_platform_id: Option<String>,
    pub captured_at: String,
    /// Seconds since capture.
    pub age_secs: i64,
    /// e.g. `3 d 4 h`.
    pub age: String,
    pub source: String,
    pub secret_ref: String,
}

/// Which line item a score goes to.
#[derive(Debug, Clone, Default)]
pub struct LineItemChoice {
    /// Use this line item id as is.
    pub line_item_id: Option<String>,
    /// Look it up again even if the ledger remembers one.
    pub refresh: bool,
    /// When the lookup finds none, create one with this label (scores only).
    pub create_label: Option<String>,
}

/// Where one LTIAAS score goes: a platform, a (context, resource link) with a
/// stored service key, and a learner.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LtiaasTarget {
    pub platform: String,
    pub context_id: String,
    pub resource_link_id: String,
    pub user_id: String,
}

impl LtiaasTarget {
    /// Where this target is in the ledger (with the learner when `with_person`).
    fn place(&self, platform_id: i64, with_person: bool) -> Place<'_> {
        Place {
            platform_id,
            context: ContextSeen {
                context_id: &self.context_id,
                ..ContextSeen::default()
            },
            activity: ActivitySeen {
                resource_link_id: &self.resource_link_id,
                ..ActivitySeen::default()
            },
            person: with_person.then(|| PersonSeen {
                lti_user_id: &self.user_id,
                ..PersonSeen::default()
            }),
        }
    }
}

/// A request as shown by `--dry-run` (placeholders instead of secrets).
#[derive(Debug, Clone, Serialize)]
pub struct DryRequest {
    pub purpose: String,
    pub method: &'static str,
    pub url: String,
    pub authorization: String,
    pub body: Option<serde_json::Value>,
    pub http_text: String,
}

/// What a send would do, without sending anything.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub line_item_id: Option<String>,
    pub line_item_source: Option<LineItemSource>,
    pub service_key_captured_at: String,
    pub service_key_age: String,
    pub requests: Vec<DryRequest>,
    pub notes: Vec<String>,
}

/// Line items of one (context, resource link), for support.
#[derive(Debug, Clone, Serialize)]
pub struct LineItemListing {
    pub confirmed: bool,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    pub pages: usize,
    pub line_items: Vec<LineItem>,
}

/// `3 d 4 h`, `5 h 2 min`, `12 min`, `40 s`.
pub fn format_age(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

/// Seconds from an RFC 3339 time to now (0 if unparseable or in the future).
pub fn age_secs(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0))
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A resolved line item, or the report to return instead.
pub(super) enum Resolved {
    Found(String, LineItemSource),
    Failed(Box<LtiaasReport>),
}

/// An LTIAAS platform ready to call: its client and its API key.
pub(super) struct LtiaasConnection {
    pub(super) platform: Platform,
    pub(super) client: LtiaasClient,
    pub(super) api_key: String,
}

impl Passback {
    pub(super) async fn ltiaas_connect(&self, name: &str, opts: ClientOptions) -> Result<LtiaasConnection> {
        let platform = self.platform(name).await?;
        if platform.kind != PlatformKind::Ltiaas {
            return Err(Error::invalid(format!(
                "platform {name:?} is an LTI 1.1 platform; LTIAAS commands need a platform added with \
                 `passback platform add-ltiaas`"
            )));
        }
        let base = platform.base_url.clone().ok_or_else(|| {
            Error::internal(format!("LTIAAS platform {name:?} has no base URL in the ledger"))
        })?;
        let client = LtiaasClient::new(&base, opts)?;
        // The API key goes only to the host it was stored for, whatever the ledger says now.
        let host = client.host().to_string();
        let (secret_ref, bound) = self.platform_secret(&platform).await?;
        let api_key = bound.for_host(&host, &secret_ref)?.to_string();
        Ok(LtiaasConnection {
            platform,
            client,
            api_key,
        })
    }

    /// Read the ID token of a launch (`GET /api/idtoken` with the ltik), record
    /// its context, activity and learner in the ledger and store its service
    /// key in the keyring (newest capture wins).
    pub async fn ltiaas_capture_idtoken(
        &self,
        platform: &str,
        ltik: &str,
        opts: ClientOptions,
    ) -> Result<CaptureReport> {
        let conn = self.ltiaas_connect(platform, opts).await?;
        let auth = LtiaasAuth::ltik(&conn.api_key, ltik.trim())?;
        let captured_at = now_rfc3339();
        let answer = conn.client.get_idtoken(&auth).await;
        let mut report = CaptureReport {
            ok: false,
            platform: conn.platform.name.clone(),
            http_status: answer.http_status,
            error_class: answer.verdict.error_class,
            description: answer.verdict.description.clone(),
            fix_hint: answer.verdict.fix_hint.clone(),
            launch: None,
            warnings: Vec::new(),
        };
        let Some(token) = answer.value else {
            return Ok(report);
        };
        let previous = match (&token.launch.context.id, &token.launch.resource_link.id) {
            (Some(c), Some(r)) => self.store().service_key(conn.platform.id, c, r).await?,
            _ => None,
        };
        let plan = match idtoken::plan(
            &conn.platform,
            &self.store().ledger_id().await?,
            &token,
            previous.as_ref(),
            &captured_at,
            IDTOKEN_SOURCE,
            true,
        ) {
            Ok(p) => p,
            Err(idtoken::NotRecorded::MissingIds(what)) => {
                report.error_class = Some(ErrorClass::Permanent);
                report.description =
                    format!("{what}, so Passback cannot tell which course and activity it is");
                report.fix_hint = Some(
                    "Capture the ltik from a resource link launch of a graded activity (not a deep-linking or \
                     course-navigation launch)."
                        .into(),
                );
                return Ok(report);
            }
        };
        let (launch, warnings) = self
            .record_capture(&conn.platform, conn.client.host(), plan)
            .await?;
        report.warnings = warnings;
        match launch.service_key {
            KeyChange::Missing => {
                report.error_class = Some(ErrorClass::Permanent);
                report.description = "the ID token carries no service key: this launch context has neither \
                                      Assignment and Grades nor Names and Roles"
                    .into();
                report.fix_hint = Some(
                    "Enable Assignment and Grades for the tool in the LMS (and on the LTIAAS account), then \
                     launch a graded activity again and capture its ltik."
                        .into(),
                );
            }
            change => {
                report.ok = true;
                report.error_class = None;
                report.fix_hint = None;
                report.description = match change {
                    KeyChange::New => "captured a new service key".into(),
                    KeyChange::Replaced => "captured a newer service key; it replaces the older one".into(),
                    KeyChange::KeptNewer | KeyChange::Missing => {
                        "a newer service key is already stored; it was kept".into()
                    }
                };
            }
        }
        tracing::info!(
            platform = %conn.platform.name,
            context = %launch.context_id,
            resource_link = %launch.resource_link_id,
            key = ?launch.service_key,
            "captured an LTIAAS ID token"
        );
        report.launch = Some(launch);
        Ok(report)
    }

    /// Record a planned capture: its service key in the keyring under the capture's
    /// own account (bound to `host`, the LTIAAS host it was read from), then its facts
    /// in the ledger, where the newest capture wins; afterwards the entry nothing names
    /// any more is deleted — the one this capture displaced, or its own when a newer
    /// capture was recorded meanwhile (then the launch says so).
    pub(crate) async fn record_capture(
        &self,
        platform: &Platform,
        host: &str,
        plan: idtoken::IdTokenPlan,
    ) -> Result<(CapturedLaunch, Vec<String>)> {
        if let Some((secret_ref, key)) = &plan.store_key {
            // Keyring first, ledger second: the ledger never points at a key that is not there.
            self.secrets()
                .set_bound(secret_ref, key, &[host.to_string()])
                .await?;
        }
        let written: Vec<_> = plan.store_key.iter().map(|(r, _)| r.clone()).collect();
        let committed = async {
            let mut batch = self.intake().begin_batch(None).await?;
            batch
                .push(RowFacts {
                    line: 1,
                    facts: plan.facts,
                })
                .await?;
            batch.commit_returning_unused_keys().await
        }
        .await;
        let unused = match committed {
            Ok((_, unused)) => unused,
            Err(e) => {
                self.secrets().forget(&written).await;
                return Err(e);
            }
        };
        let ledger_id = self.store().ledger_id().await?;
        let unused_refs = self.secrets().forget_unused(&unused, &ledger_id).await;
        let mut launch = plan.launch;
        if written.iter().any(|w| unused_refs.contains(w)) {
            // Another capture, newer than this one, was recorded meanwhile: it stays.
            launch.service_key = KeyChange::KeptNewer;
            launch.service_key_ref = self
                .store()
                .service_key(platform.id, &launch.context_id, &launch.resource_link_id)
                .await?
                .map(|k| k.secret_ref);
        }
        Ok((launch, plan.warnings))
    }

    /// Every stored service key (optionally of one platform) with its age.
    pub async fn ltiaas_service_keys(&self, platform: Option<&str>) -> Result<Vec<ServiceKeyRow>> {
        let pid = match platform {
            Some(name) => Some(self.platform(name).await?.id),
            None => None,
        };
        Ok(self
            .store()
            .list_service_keys(pid)
            .await?
            .into_iter()
            .map(|k| {
                let age = age_secs(&k.captured_at);
                ServiceKeyRow {
                    platform: k.platform,
                    context_id: k.context_id,
                    resource_link_id: k.resource_link_id,
                    ltiaas_platform_id: k.ltiaas_platform_id,
                    captured_at: k.captured_at,
                    age_secs: age,
                    age: format_age(age),
                    source: k.source,
                    secret_ref: k.secret_ref,
                }
            })
            .collect())
    }

    /// The stored service key record and the key itself (from the keyring).
    pub(super) async fn ltiaas_service_auth(
        &self,
        conn: &LtiaasConnection,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<(ServiceKeyRecord, LtiaasAuth)> {
        let rec = self
            .store()
            .service_key(conn.platform.id, context_id, resource_link_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no LTIAAS service key is stored for context {context_id:?} / resource link \
                     {resource_link_id:?} on platform {:?}: it needs a launch. Have someone open the activity in \
                     the LMS, then capture it: pipe the launch's ltik on stdin to `passback ltiaas idtoken --platform {}`.",
                    conn.platform.name, conn.platform.name
                ))
            })?;
        let key_ref = self.owned_secret_ref(&rec.secret_ref).await?;
        let bound = self.secrets().get_bound(&key_ref).await?;
        let key = bound.for_host(conn.client.host(), &key_ref)?;
        let auth = LtiaasAuth::service_key(&conn.api_key, key)?;
        Ok((rec, auth))
    }

    /// List the line items of a (context, resource link) through its service key.
    /// With `all`, the resource link filter is not applied.
    pub async fn ltiaas_line_items(
        &self,
        t: &LtiaasTarget,
        mut filter: LineItemFilter,
        all: bool,
        opts: ClientOptions,
    ) -> Result<LineItemListing> {
        let conn = self.ltiaas_connect(&t.platform, opts).await?;
        let (_, auth) = self
            .ltiaas_service_auth(&conn, &t.context_id, &t.resource_link_id)
            .await?;
        if !all {
            filter.resource_link_id = Some(t.resource_link_id.clone());
        }
        let answer = conn.client.list_line_items(&auth, &filter).await;
        Ok(LineItemListing {
            confirmed: answer.verdict.is_success(),
            error_class: answer.verdict.error_class,
            description: answer.verdict.description,
            fix_hint: answer.verdict.fix_hint,
            pages: answer.pages,
            line_items: answer.value.unwrap_or_default(),
        })
    }

    pub(super) async fn resolve_line_item(
        &self,
        conn: &LtiaasConnection,
        auth: &LtiaasAuth,
        t: &LtiaasTarget,
        choice: &LineItemChoice,
        operation: &'static str,
        score_maximum: Option<f64>,
    ) -> Result<Resolved> {
        if let Some(id) = choice
            .line_item_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            return Ok(Resolved::Found(id.to_string(), LineItemSource::Given));
        }
        let place = t.place(conn.platform.id, false);
        let placed = self.intake().place(&place).await?;
        if !choice.refresh
            && let Some(id) = placed.activity.ltiaas_line_item_id.filter(|s| !s.is_empty())
        {
            return Ok(Resolved::Found(id, LineItemSource::Ledger));
        }
        let filter = LineItemFilter {
            resource_link_id: Some(t.resource_link_id.clone()),
            ..LineItemFilter::default()
        };
        let lookup = conn.client.list_line_items(auth, &filter).await;
        let Some(items) = lookup.value else {
            return Ok(Resolved::Failed(Box::new(LtiaasReport::failed_before_sending(
                operation,
                &t.user_id,
                &lookup.verdict,
                "looking up the line item",
            ))));
        };
        let mut matching: Vec<&LineItem> = items
            .iter()
            .filter(|li| {
                li.id.is_some() && li.resource_link_id.as_deref() == Some(t.resource_link_id.as_str())
            })
            .collect();
        // An LMS that drops resourceLinkId from its answers: trust the filter only when it is unambiguous.
        if matching.is_empty()
            && items.len() == 1
            && items[0].resource_link_id.is_none()
            && items[0].id.is_some()
        {
            matching.push(&items[0]);
        }
        let found = match matching.as_slice() {
            [one] => one.id.clone().map(|id| (id, LineItemSource::Lookup)),
            [] => None,
            many => {
                let listed: Vec<String> = many
                    .iter()
                    .take(5)
                    .map(|li| {
                        format!(
                            "{} ({})",
                            li.id.as_deref().unwrap_or("?"),
                            li.label.as_deref().unwrap_or("no label")
                        )
                    })
                    .collect();
                return Ok(Resolved::Failed(Box::new(not_sent(
                    operation,
                    &t.user_id,
                    format!(
                        "{} line items are tied to resource link {:?}: {}",
                        many.len(),
                        t.resource_link_id,
                        listed.join(", ")
                    ),
                    "Pick one and give it with --line-item ID (`passback ltiaas line-items` lists them).",
                ))));
            }
        };
        let (id, source) = match (found, &choice.create_label, score_maximum) {
            (Some(f), _, _) => f,
            (None, Some(label), Some(max)) => {
                let new = NewLineItem {
                    label: label.clone(),
                    score_maximum: max,
                    resource_link_id: Some(t.resource_link_id.clone()),
                    resource_id: None,
                    tag: None,
                };
                let created = conn.client.create_line_item(auth, &new).await;
                match created.value.and_then(|li| li.id) {
                    Some(id) => (id, LineItemSource::Created),
                    None => {
                        return Ok(Resolved::Failed(Box::new(LtiaasReport::failed_before_sending(
                            operation,
                            &t.user_id,
                            &created.verdict,
                            "creating the line item",
                        ))));
                    }
                }
            }
            (None, _, _) => {
                let hint = if operation == "score" {
                    "Create the gradebook column in the LMS (or let Passback create one with --create-line-item \
                     --label LABEL), or give an existing line item with --line-item ID."
                } else {
                    "Nothing can be read back before a score was ever sent to a line item; give one with \
                     --line-item ID if you know it."
                };
                return Ok(Resolved::Failed(Box::new(not_sent(
                    operation,
                    &t.user_id,
                    format!(
                        "no line item is tied to resource link {:?} in context {:?}",
                        t.resource_link_id, t.context_id
                    ),
                    hint,
                ))));
            }
        };
        self.intake().line_item_learned(&place, &id).await?;
        Ok(Resolved::Found(id, source))
    }

    /// What the journal links a support send or read to: the activity and the
    /// learner (no grade version: `send-one` works outside the ledger's grades).
    async fn journal_link(&self, platform_id: i64, t: &LtiaasTarget) -> Result<JournalLink> {
        let placed: Placed = self.intake().place(&t.place(platform_id, true)).await?;
        Ok(JournalLink {
            grade_ref: None,
            activity_ref: Some(placed.activity.id),
            learner_ref: placed.learner.map(|l| l.id),
        })
    }

    /// Send or read through the journal and report it with the line item's origin.
    async fn ltiaas_through_journal(
        &self,
        conn: &LtiaasConnection,
        auth: &LtiaasAuth,
        t: &LtiaasTarget,
        line_item_id: &str,
        op: LtiaasOp<'_>,
        policy: RetryPolicy,
    ) -> Result<LtiaasReport> {
        let link = self.journal_link(conn.platform.id, t).await?;
        let transport = LtiaasTransport {
            client: &conn.client,
            auth,
            platform_id: conn.platform.id,
            line_item_id,
            op,
        };
        let sent = sync::send(self.intake(), &transport, policy, link).await?;
        Ok(LtiaasReport::from_send(sent, &t.user_id, line_item_id))
    }

    /// Send one score through the journal: find the line item (given, remembered,
    /// looked up or created), then post with a fresh timestamp, retrying
    /// transient failures.
    pub async fn ltiaas_send_one(
        &self,
        t: &LtiaasTarget,
        score: &ScoreToSend,
        choice: &LineItemChoice,
        policy: RetryPolicy,
        opts: ClientOptions,
    ) -> Result<LtiaasReport> {
        score.validate()?;
        if score.user_id != t.user_id {
            return Err(Error::invalid("the score's user id differs from the target's"));
        }
        let conn = self.ltiaas_connect(&t.platform, opts).await?;
        let (rec, auth) = self
            .ltiaas_service_auth(&conn, &t.context_id, &t.resource_link_id)
            .await?;
        let resolved = self
            .resolve_line_item(&conn, &auth, t, choice, "score", Some(score.score_maximum))
            .await?;
        let mut report = match resolved {
            Resolved::Failed(r) => *r,
            Resolved::Found(id, source) => {
                let mut r = self
                    .ltiaas_through_journal(&conn, &auth, t, &id, LtiaasOp::Score(score), policy)
                    .await?;
                r.line_item_source = Some(source);
                r
            }
        };
        annotate_key(&mut report, &rec);
        Ok(report)
    }

    /// Read what the LMS holds for one learner (`GET …/scores?userId=`), journaled.
    pub async fn ltiaas_read_one(
        &self,
        t: &LtiaasTarget,
        choice: &LineItemChoice,
        policy: RetryPolicy,
        opts: ClientOptions,
    ) -> Result<LtiaasReport> {
        let conn = self.ltiaas_connect(&t.platform, opts).await?;
        let (rec, auth) = self
            .ltiaas_service_auth(&conn, &t.context_id, &t.resource_link_id)
            .await?;
        let choice = LineItemChoice {
            create_label: None,
            ..choice.clone()
        };
        let resolved = self
            .resolve_line_item(&conn, &auth, t, &choice, "score_read", None)
            .await?;
        let mut report = match resolved {
            Resolved::Failed(r) => *r,
            Resolved::Found(id, source) => {
                if t.user_id.trim().is_empty() {
                    return Err(Error::invalid("the user id is empty"));
                }
                let mut r = self
                    .ltiaas_through_journal(
                        &conn,
                        &auth,
                        t,
                        &id,
                        LtiaasOp::Read { user_id: &t.user_id },
                        policy,
                    )
                    .await?;
                r.line_item_source = Some(source);
                r
            }
        };
        annotate_key(&mut report, &rec);
        Ok(report)
    }

    /// What `ltiaas_send_one` would send, with `<API_KEY>:<SERVICE_KEY>`
    /// placeholders. Nothing is sent and nothing is written to the ledger; the
    /// service key is only checked to be in the keyring.
    pub async fn ltiaas_dry_run(
        &self,
        t: &LtiaasTarget,
        score: &ScoreToSend,
        choice: &LineItemChoice,
    ) -> Result<DryRun> {
        score.validate()?;
        let conn = self.ltiaas_connect(&t.platform, ClientOptions::default()).await?;
        let (rec, _auth) = self
            .ltiaas_service_auth(&conn, &t.context_id, &t.resource_link_id)
            .await?;
        let store = self.store();
        let remembered = store
            .ltiaas_line_item_of(conn.platform.id, &t.context_id, &t.resource_link_id)
            .await?;
        let (line_item, source) = match (&choice.line_item_id, remembered) {
            (Some(id), _) => (Some(id.clone()), Some(LineItemSource::Given)),
            (None, Some(id)) if !choice.refresh => (Some(id), Some(LineItemSource::Ledger)),
            _ => (None, None),
        };
        let mut requests = Vec::new();
        let mut notes = vec![
            "dry run: nothing was sent and the ledger is unchanged".to_string(),
            "a real send sets a fresh timestamp on every attempt".to_string(),
        ];
        if line_item.is_none() {
            let lookup = conn.client.line_items_request(
                &LineItemFilter {
                    resource_link_id: Some(t.resource_link_id.clone()),
                    ..LineItemFilter::default()
                },
                AuthScheme::ServiceKey,
            )?;
            requests.push(dry("look up the line item of the resource link", &lookup, None));
            if let Some(label) = &choice.create_label {
                let create = conn.client.create_line_item_request(&NewLineItem {
                    label: label.clone(),
                    score_maximum: score.score_maximum,
                    resource_link_id: Some(t.resource_link_id.clone()),
                    resource_id: None,
                    tag: None,
                })?;
                requests.push(dry(
                    "create the line item if the lookup finds none",
                    &create,
                    None,
                ));
            }
        }
        const PLACEHOLDER: &str = "{LINE_ITEM_ID}";
        let li_for_url = line_item.clone().unwrap_or_else(|| PLACEHOLDER.to_string());
        let last = match &line_item {
            Some(id) => {
                store
                    .last_score_timestamp_ms(conn.platform.id, id, &score.user_id)
                    .await?
            }
            None => None,
        };
        let ms = last.map_or(now_ms(), |l| now_ms().max(l + 1));
        let req = conn
            .client
            .score_request(&li_for_url, &score.body(format_timestamp_ms(ms)))?;
        let encoded_placeholder = crate::ltiaas::client::encode_component(PLACEHOLDER);
        requests.push(dry(
            "send the score",
            &req,
            line_item
                .is_none()
                .then_some((encoded_placeholder.as_str(), PLACEHOLDER)),
        ));
        if line_item.is_none() {
            notes.push(format!(
                "{PLACEHOLDER} stands for the line item the lookup finds; it is URL-encoded once as one path segment"
            ));
        }
        let age = age_secs(&rec.captured_at);
        Ok(DryRun {
            line_item_id: line_item,
            line_item_source: source,
            service_key_captured_at: rec.captured_at,
            service_key_age: format_age(age),
            requests,
            notes,
        })
    }
}

fn dry(purpose: &str, req: &LtiaasRequest, replace: Option<(&str, &str)>) -> DryRequest {
    let fix = |s: String| match replace {
        Some((from, to)) => s.replace(from, to),
        None => s,
    };
    DryRequest {
        purpose: purpose.into(),
        method: req.method.as_str(),
        url: fix(req.url.to_string()),
        authorization: crate::ltiaas::client::placeholder_header(req.scheme),
        body: req.body.as_deref().and_then(|b| serde_json::from_str(b).ok()),
        http_text: fix(req.to_http_text()),
    }
}

fn not_sent(operation: &'static str, user_id: &str, description: String, hint: &str) -> LtiaasReport {
    LtiaasReport {
        operation,
        confirmed: false,
        outcome: AttemptOutcome::Error,
        error_class: Some(ErrorClass::Permanent),
        description,
        fix_hint: Some(hint.to_string()),
        user_id: user_id.to_string(),
        line_item_id: None,
        line_item_source: None,
        service_key_captured_at: None,
        service_key_age: None,
        timestamp: None,
        result: None,
        read_score: None,
        attempts: Vec::new(),
    }
}

/// Add the service key's capture time and age; on an auth failure, say how old it is.
fn annotate_key(r: &mut LtiaasReport, rec: &ServiceKeyRecord) {
    let age = format_age(age_secs(&rec.captured_at));
    if r.error_class == Some(ErrorClass::Auth)
        && let Some(h) = &mut r.fix_hint
    {
        h.push_str(&format!(
            " (The stored key was captured {age} ago, at {}.)",
            rec.captured_at
        ));
    }
    r.service_key_captured_at = Some(rec.captured_at.clone());
    r.service_key_age = Some(age);
}

/// A read's result in words: `7/10 (timestamp …)` or `no grade`.
pub fn describe_result(r: Option<&ResultScore>) -> String {
    match r.and_then(|r| r.result_score.map(|s| (s, r))) {
        Some((s, r)) => {
            let max = r.result_maximum.map(|m| format!("/{m}")).unwrap_or_default();
            let ts = r
                .timestamp
                .as_deref()
                .map(|t| format!(" (timestamp {t})"))
                .unwrap_or_default();
            format!("{s}{max}{ts}")
        }
        None => "no grade".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::lti11::client::OutcomeOp;
    use crate::ltiaas::client::IdToken;
    use crate::model::{NewLti11Platform, NewLtiaasPlatform};
    use crate::secrets::SecretRef;
    use crate::store::Store;

    fn token(service_key: &str) -> IdToken {
        serde_json::from_value(serde_json::json!({
            "user": { "id": "u1", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"] },
            "platform": { "id": "lms-1" },
            "launch": { "context": { "id": "c1" }, "resourceLink": { "id": "r1" } },
            "services": { "assignmentAndGrades": { "available": true }, "serviceKey": service_key }
        }))
        .unwrap()
    }

    /// A loopback port that records whether anything connected to it.
    async fn listener() -> (u16, tokio::task::JoinHandle<bool>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = tokio::spawn(async move {
            tokio::time::timeout(std::time::Duration::from_millis(300), l.accept())
                .await
                .is_ok()
        });
        (port, seen)
    }

    /// What a crafted ledger does: change a platform's row behind the app's back.
    async fn craft(
        pb: &Passback,
        id: i64,
        consumer_key: Option<&str>,
        base_url: Option<&str>,
        hosts: &[&str],
    ) {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut tx = pb.store().begin().await.unwrap();
        Store::update_platform(&mut tx, id, consumer_key, base_url, false, &hosts)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn racing_captures_never_leave_an_older_key_behind_the_newest_record() {
        let pb = Passback::open_in_memory().await.unwrap();
        let p = pb
            .add_ltiaas_platform(
                NewLtiaasPlatform {
                    name: "aas".into(),
                    base_url: "https://x.ltiaas.com".into(),
                },
                "api-key",
            )
            .await
            .unwrap();
        let ledger = pb.store().ledger_id().await.unwrap();
        let plan = |key: &str, at: &str| {
            idtoken::plan(&p, &ledger, &token(key), None, at, IDTOKEN_SOURCE, true)
                .unwrap_or_else(|_| panic!("the token names its context and resource link"))
        };
        // Two captures planned before either was recorded (each saw no key); the newer
        // one is recorded first, the older one after it — the race of the review.
        let older = plan("SK-older", "2026-01-01T00:00:01.000Z");
        let newer = plan("SK-newer", "2026-01-01T00:00:02.000Z");
        let older_ref = older.store_key.as_ref().unwrap().0.clone();
        let newer_ref = newer.store_key.as_ref().unwrap().0.clone();
        assert_ne!(older_ref, newer_ref, "each capture has its own keyring entry");
        let (n, _) = pb.record_capture(&p, "x.ltiaas.com", newer).await.unwrap();
        assert_eq!(n.service_key, KeyChange::New);
        let (o, _) = pb.record_capture(&p, "x.ltiaas.com", older).await.unwrap();
        assert_eq!(
            o.service_key,
            KeyChange::KeptNewer,
            "the late, older capture says it lost"
        );
        assert_eq!(o.service_key_ref.as_deref(), Some(newer_ref.to_string().as_str()));

        let rec = pb.store().service_key(p.id, "c1", "r1").await.unwrap().unwrap();
        assert_eq!(rec.captured_at, "2026-01-01T00:00:02.000Z");
        let in_use = pb
            .secrets()
            .get_bound(&SecretRef::parse(&rec.secret_ref).unwrap())
            .await
            .unwrap();
        assert_eq!(
            in_use.secret, "SK-newer",
            "the ledger's newest row has the newest key"
        );
        assert_eq!(in_use.hosts, vec!["x.ltiaas.com"]);
        assert_eq!(
            pb.secrets().get_bound(&older_ref).await.unwrap_err().kind,
            ErrorKind::SecretMissing,
            "the losing capture's entry is deleted"
        );
        // A newest capture displaces the recorded one, whose entry goes.
        let newest = plan("SK-newest", "2026-01-01T00:00:03.000Z");
        let (w, _) = pb.record_capture(&p, "x.ltiaas.com", newest).await.unwrap();
        assert_eq!(w.service_key, KeyChange::New, "planned without a previous key");
        assert_eq!(
            pb.secrets().get_bound(&newer_ref).await.unwrap_err().kind,
            ErrorKind::SecretMissing
        );
        let rec = pb.store().service_key(p.id, "c1", "r1").await.unwrap().unwrap();
        let key = pb
            .secrets()
            .get_bound(&SecretRef::parse(&rec.secret_ref).unwrap())
            .await
            .unwrap();
        assert_eq!(key.secret, "SK-newest");
        // Removing the platform finds every entry through the ledger.
        let removed = pb.remove_platform("aas", true).await.unwrap();
        assert_eq!(
            removed.keyring_entries, 2,
            "the API key and the key in use: {removed:?}"
        );
        assert_eq!(
            pb.secrets()
                .get_bound(&SecretRef::parse(&rec.secret_ref).unwrap())
                .await
                .unwrap_err()
                .kind,
            ErrorKind::SecretMissing
        );
    }

    #[tokio::test]
    async fn an_api_key_goes_only_to_the_host_it_was_stored_for_whatever_the_ledger_says() {
        let pb = Passback::open_in_memory().await.unwrap();
        let (real, _) = listener().await;
        let p = pb
            .add_ltiaas_platform(
                NewLtiaasPlatform {
                    name: "aas".into(),
                    base_url: format!("http://127.0.0.1:{real}"),
                },
                "the-api-key",
            )
            .await
            .unwrap();
        // A crafted ledger (same ledger id, same platform) now points somewhere else.
        let (evil, seen) = listener().await;
        let evil_base = format!("http://127.0.0.1:{evil}");
        craft(&pb, p.id, None, Some(&evil_base), &[&format!("127.0.0.1:{evil}")]).await;
        let e = pb
            .ltiaas_capture_idtoken("aas", "an-ltik", ClientOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{}", e.message);
        assert!(
            e.message.contains(&format!("stored for 127.0.0.1:{real} only")),
            "{}",
            e.message
        );
        assert!(!seen.await.unwrap(), "nothing connected to the crafted host");
    }

    #[tokio::test]
    async fn a_consumer_secret_signs_only_for_hosts_it_was_stored_for() {
        let pb = Passback::open_in_memory().await.unwrap();
        let (real, _) = listener().await;
        let p = pb
            .add_lti11_platform(
                NewLti11Platform {
                    name: "lms".into(),
                    consumer_key: "ck".into(),
                    allowed_hosts: vec![format!("127.0.0.1:{real}")],
                    allow_http: false,
                },
                "the-consumer-secret",
            )
            .await
            .unwrap();
        let (evil, seen) = listener().await;
        let real_host = format!("127.0.0.1:{real}");
        let evil_host = format!("127.0.0.1:{evil}");
        craft(&pb, p.id, Some("ck"), None, &[&real_host, &evil_host]).await;
        let one = super::super::lti11::OneOutcome {
            platform: "lms".into(),
            sourcedid: "s1".into(),
            outcome_url: format!("http://{evil_host}/outcomes"),
        };
        let e = pb
            .send_one(
                &one,
                &OutcomeOp::Read,
                RetryPolicy::default(),
                ClientOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(
            e.message.contains("not one of this platform's allowed hosts"),
            "{}",
            e.message
        );
        assert!(
            !seen.await.unwrap(),
            "nothing was signed for, or sent to, the crafted host"
        );
        // With only the crafted host left, the secret is not usable at all.
        craft(&pb, p.id, Some("ck"), None, &[&evil_host]).await;
        let e = pb.lti11_credentials("lms").await.unwrap_err();
        assert!(
            e.message.contains(&format!("stored for {real_host} only")),
            "{}",
            e.message
        );
    }
}
