//! The engine reconcile and sync share: walk the grades a filter matches a page
//! at a time, plan each one ([`super::plan`]), and work on those that need it —
//! read, write, verify — many at once but politely per host ([`super::hosts`]),
//! every attempt journaled durably before its request leaves and completed after
//! ([`super::journal`]). Transient failures are retried with exponential backoff
//! and full jitter, honouring `Retry-After`; an `auth` failure stops that
//! platform's work at once; a permanent failure is tried once. Results go to a
//! [`Progress`] sink, one per grade; the engine never prints.
//!
//! The app says how to reach each grade's LMS through a [`Router`] (credentials
//! come from the keyring, which the engine never sees).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use serde::Serialize;
use ts_rs::TS;
use url::Url;

use super::hosts::{Host, Hosts};
use super::journal::Journal;
use super::lti11::OutcomeTransport;
use super::ltiaas::{LtiaasOp, LtiaasTransport};
use super::plan::{self, AfterRead, Planned, Selection};
use super::{Answer, Transport};
use crate::error::Result;
use crate::failpoint;
use crate::http::Verdict;
use crate::intake::Intake;
use crate::intake::journal::Finished;
use crate::lti11::client::{self, Lti11Credentials, OutcomeClient, OutcomeOp};
use crate::lti11::pox::{ReplaceResult, ResultData};
use crate::ltiaas::ScoreToSend;
use crate::ltiaas::client::{LtiaasAuth, LtiaasClient};
use crate::model::{AttemptResult, Cause, ErrorClass, GradeStatus, NewAttempt};
use crate::progress::{Flow, Job, Progress, Start, Tally};
use crate::store::{Candidate, GradeFilter, GradeKey, Store};

/// How a run behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Requests in flight per LMS host.
    pub concurrency: usize,
    /// At most this many requests a second per host.
    pub rate: Option<f64>,
    /// Tries of one request, the first included (transient failures only).
    pub max_attempts: u32,
    /// The first backoff; each retry may wait up to twice as long as the last.
    pub base_delay: Duration,
    /// The longest backoff between two tries.
    pub max_backoff: Duration,
    /// The longest wait a host may ask for (`Retry-After`) before the grade is left for later.
    pub max_wait: Duration,
    /// Read back after writing; `in_sync` only on a match.
    pub verify: bool,
    /// The run's claims (see [`Claims`]); `None` works on every grade it plans,
    /// without asking other runs (tests of the engine alone).
    pub claims: Option<Claims>,
}

/// A run's claims on the grades it works on: the run (`sync_runs` id) and how long
/// a claim lasts unless renewed. Two runs on one ledger split the work this way,
/// and one that stops leaves its grades to the others once its claims expire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claims {
    pub run: i64,
    pub lease: Duration,
}

/// How long a claim lasts unless its run renews it (`PASSBACK_CLAIM_LEASE_SECS`
/// overrides it, e.g. for tests of a stopped run).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 4,
            rate: None,
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
            verify: false,
            claims: None,
        }
    }
}

/// How to reach the LMS of a grade.
pub enum Route {
    Lti11 {
        client: Arc<OutcomeClient>,
        creds: Arc<Lti11Credentials>,
    },
    Ltiaas {
        client: Arc<LtiaasClient>,
        auth: Arc<LtiaasAuth>,
        line_item_id: String,
    },
    /// No way to reach it (no service key, no line item, no secret): why, as a verdict.
    Unreachable(Verdict),
}

/// Says how to reach each grade's LMS (the app implements it, caching per
/// platform and activity).
pub trait Router: Send + Sync {
    fn route(&self, c: &Candidate) -> impl Future<Output = Result<Arc<Route>>> + Send;
}

/// How one grade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The LMS confirmed the write (and, with `--verify`, the read-back matched).
    Sent,
    /// A read showed the LMS already holds the local grade: nothing sent.
    AlreadyInSync,
    /// Reconcile: read, and given the status the read decides.
    Read,
    /// The LMS holds more than the local grade: left alone (`--force-lower` writes over it).
    LmsHigher,
    /// Cannot be sent until someone acts (listed with the reason).
    CannotSend,
    Failed,
    /// Not tried: cancelled, or its platform stopped after an auth failure.
    Stopped,
}

/// One grade's result, as the sink receives it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct GradeResult {
    pub grade_id: i64,
    pub platform: String,
    pub context_id: String,
    pub resource_link_id: String,
    pub lti_user_id: String,
    pub learner_name: Option<String>,
    /// The local score on the 0–1 scale.
    pub score: f64,
    pub ended: Ended,
    /// The status the grade has now.
    pub status: GradeStatus,
    pub cause: Option<Cause>,
    pub error_class: Option<ErrorClass>,
    pub description: String,
    pub fix_hint: Option<String>,
    /// What a read found (0–1; `null` = no grade or no read).
    pub lms_score: Option<f64>,
    /// Requests sent for this grade.
    pub requests: u32,
}

/// What a run planned, before anything was sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
pub struct PlanSummary {
    /// Grades the filter matched.
    pub matched: u64,
    /// Grades to work on.
    pub work: u64,
    /// Of those, grades read before they are written.
    pub read_first: u64,
    pub cannot_send: u64,
    /// Grades left alone, by why.
    pub skipped: BTreeMap<String, u64>,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
pub struct RunSummary {
    pub job: String,
    pub plan: PlanSummary,
    pub ended: BTreeMap<String, u64>,
    /// Failures by cause.
    pub failed_by_cause: BTreeMap<String, u64>,
    pub requests: u64,
    #[ts(type = "number")]
    pub elapsed_ms: u64,
    pub cancelled: bool,
    /// Platforms stopped by an auth failure, with the one message that says why.
    pub stopped_platforms: BTreeMap<String, String>,
    /// Grades another run was working on when this one came to them, which this
    /// one left to it (`0` when it waited for them and took over what was left).
    pub left_to_other_runs: u64,
    /// Grades this run took over from a run that stopped (their claims expired).
    pub taken_over: u64,
    /// A dry run: one example request, redacted (no secret, no signature).
    pub example_request: Option<String>,
    pub dry_run: bool,
}

impl RunSummary {
    /// Everything planned to be worked on ended confirmed (sent, already in
    /// sync, or read). Grades that cannot be sent are listed, not tried: they do
    /// not make a run fail (a learner who never launches would fail every run).
    pub fn all_confirmed(&self) -> bool {
        !self.cancelled
            && self.ended.iter().all(|(k, n)| {
                *n == 0 || matches!(k.as_str(), "sent" | "already_in_sync" | "read" | "cannot_send")
            })
    }
}

/// What a step of one grade came to.
enum Exchange {
    Done(Answer<()>),
    Failed(Verdict),
    /// Not sent: the run stopped or the platform did.
    Stopped(String),
}

/// One run's shared state.
struct Run<'a, R> {
    router: &'a R,
    journal: Journal,
    hosts: Hosts,
    opts: Options,
    job: Job,
    sel: Selection,
    stop: std::sync::atomic::AtomicBool,
    /// Platforms stopped by an auth failure, and why.
    stopped: Mutex<BTreeMap<i64, (String, String)>>,
}

fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let top = exp.min(cap);
    Duration::from_secs_f64(rand::rng().random_range(0.0..=top.as_secs_f64()))
}

fn failed_result(c: &Candidate, v: &Verdict, requests: u32) -> GradeResult {
    result(c, Ended::Failed, GradeStatus::Failed, Some(v), requests)
}

fn result(
    c: &Candidate,
    ended: Ended,
    status: GradeStatus,
    v: Option<&Verdict>,
    requests: u32,
) -> GradeResult {
    GradeResult {
        grade_id: c.grade_id,
        platform: c.platform.clone(),
        context_id: c.context_id.clone(),
        resource_link_id: c.resource_link_id.clone(),
        lti_user_id: c.lti_user_id.clone(),
        learner_name: c.learner_name.clone(),
        score: c.score(),
        ended,
        status,
        cause: v.map(|v| v.cause),
        error_class: v.and_then(|v| v.error_class),
        description: v.map(|v| v.description.clone()).unwrap_or_default(),
        fix_hint: v.and_then(|v| v.fix_hint.clone()),
        lms_score: None,
        requests,
    }
}

/// The LTI 1.1 replaceResult for a grade, with only the extensions its launch advertised.
pub fn replace_result(c: &Candidate) -> ReplaceResult {
    let accepted = c.ext_outcome_data_values_accepted.as_deref().unwrap_or("");
    let accepts = |kind: &str| accepted.split(',').any(|k| k.trim().eq_ignore_ascii_case(kind));
    let result_data = match (&c.result_text, &c.result_url) {
        (Some(t), _) if accepts("text") => Some(ResultData::Text(t.clone())),
        (_, Some(u)) if accepts("url") => Some(ResultData::Url(u.clone())),
        _ => None,
    };
    ReplaceResult {
        score: Some(c.score()),
        result_data,
        submitted_at: c.submitted_at.clone().filter(|_| c.ext_submitted_at_accepted),
        ..ReplaceResult::default()
    }
}

/// The LTIAAS score for a grade.
pub fn score_to_send(c: &Candidate) -> ScoreToSend {
    let mut s = ScoreToSend::final_score(&c.lti_user_id, c.score_given, c.score_maximum);
    s.comment = c.comment.clone();
    s
}

/// Where one grade's requests go: for LTI 1.1 its outcome URL, checked against
/// the platform's allowed hosts once per grade (not once per request).
enum Target {
    Outcome(std::result::Result<Url, String>),
    Other,
}

impl Target {
    fn of(c: &Candidate, route: &Route) -> Self {
        match route {
            Route::Lti11 { creds, .. } => Target::Outcome(
                client::check_target(c.outcome_url.as_deref().unwrap_or(""), creds).map_err(|e| e.message),
            ),
            _ => Target::Other,
        }
    }
}

/// The host a route sends to.
fn host_of(c: &Candidate, route: &Route, target: &Target) -> String {
    let host = |u: &Url| {
        u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
    };
    match (route, target) {
        (Route::Lti11 { .. }, Target::Outcome(Ok(u))) => host(u).unwrap_or_default(),
        (Route::Lti11 { .. }, _) => c.outcome_url.clone().unwrap_or_default(),
        (Route::Ltiaas { client, .. }, _) => client.host().to_string(),
        (Route::Unreachable(_), _) => String::new(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Read,
    Write,
}

impl<R: Router> Run<'_, R> {
    fn platform_stop(&self, platform_id: i64) -> Option<String> {
        self.stopped
            .lock()
            .expect("stop lock")
            .get(&platform_id)
            .map(|(name, why)| format!("not tried: platform {name} stopped after an auth failure ({why})"))
    }

    fn stop_platform(&self, c: &Candidate, v: &Verdict) {
        let mut s = self.stopped.lock().expect("stop lock");
        s.entry(c.platform_id).or_insert_with(|| {
            let mut why = v.description.clone();
            if let Some(h) = &v.fix_hint {
                why.push_str(". ");
                why.push_str(h);
            }
            (c.platform.clone(), why)
        });
    }

    fn halted(&self, c: &Candidate) -> Option<String> {
        if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Some("not tried: the run was cancelled".into());
        }
        self.platform_stop(c.platform_id)
    }

    /// One request of one grade, retried as its failures allow.
    async fn exchange<T: Transport>(
        &self,
        c: &Candidate,
        t: &T,
        host: &Host,
        requests: &mut u32,
    ) -> Result<Exchange> {
        let mut attempt = 0u32;
        loop {
            if let Some(why) = self.halted(c) {
                return Ok(Exchange::Stopped(why));
            }
            attempt += 1;
            let prepared = match t
                .prepare(super::journal::Reservations::Journal(&self.journal))
                .await
            {
                Ok(p) => p,
                Err(e) => return Ok(Exchange::Failed(Verdict::not_sent(e.message))),
            };
            let id = self
                .journal
                .started(NewAttempt {
                    grade_ref: Some(c.grade_id),
                    activity_ref: Some(c.key.activity_ref),
                    learner_ref: Some(c.key.learner_ref),
                    operation: t.operation(),
                    transport: t.kind(),
                    target: prepared.target.clone(),
                    message_identifier: prepared.message_identifier.clone(),
                    request_excerpt: Some(prepared.excerpt.clone()),
                })
                .await?;
            let permit = host.enter().await;
            let answer = t.execute(&prepared.request).await;
            let answered_at = crate::store::now_rfc3339();
            drop(permit);
            *requests += 1;
            failpoint::hit("after_response");
            host.spend(answer.budget);
            let v = answer.verdict.clone();
            self.journal
                .finished(Finished {
                    id,
                    key: Some(c.key),
                    result: AttemptResult {
                        outcome: v.outcome,
                        http_status: answer.http_status,
                        code_major: answer.code_major.clone(),
                        description: Some(v.description.clone()),
                        error_class: v.error_class,
                        fix_hint: v.fix_hint.clone(),
                        read_score: answer.read_score,
                        response_excerpt: answer.response_excerpt.clone(),
                        cause: Some(v.cause),
                    },
                    at: Some(answered_at),
                })
                .await?;
            match v.error_class {
                None if v.is_success() => {
                    return Ok(Exchange::Done(Answer {
                        verdict: answer.verdict,
                        http_status: answer.http_status,
                        code_major: answer.code_major,
                        read_score: answer.read_score,
                        response_excerpt: answer.response_excerpt,
                        output: None,
                        budget: answer.budget,
                    }));
                }
                Some(ErrorClass::Transient) if attempt < self.opts.max_attempts => {
                    if let Some(ra) = v.retry_after {
                        if ra > self.opts.max_wait {
                            let mut v = v;
                            v.fix_hint = Some(format!(
                                "{} The LMS asked to wait {} s, longer than this run waits; sync again later.",
                                v.fix_hint.unwrap_or_default(),
                                ra.as_secs()
                            ));
                            return Ok(Exchange::Failed(v));
                        }
                        if v.cause == Cause::RateLimited {
                            host.pause_for(ra);
                        }
                    }
                    let wait = full_jitter(self.opts.base_delay, self.opts.max_backoff, attempt)
                        .max(v.retry_after.unwrap_or(Duration::ZERO));
                    tokio::time::sleep(wait).await;
                }
                Some(ErrorClass::Auth) => {
                    self.stop_platform(c, &v);
                    return Ok(Exchange::Failed(v));
                }
                _ => return Ok(Exchange::Failed(v)),
            }
        }
    }

    /// One step (read or write) of a grade through its route.
    async fn step(
        &self,
        c: &Candidate,
        route: &Route,
        target: &Target,
        host: &Host,
        step: Step,
        requests: &mut u32,
    ) -> Result<Exchange> {
        match route {
            Route::Unreachable(v) => Ok(Exchange::Failed(v.clone())),
            Route::Lti11 { client: http, creds } => {
                let Some(sourcedid) = c.sourcedid.as_deref() else {
                    return Ok(Exchange::Failed(Verdict::not_sent(
                        "no lis_result_sourcedid is known for this grade".into(),
                    )));
                };
                let url = match target {
                    Target::Outcome(Ok(u)) => u,
                    Target::Outcome(Err(e)) => return Ok(Exchange::Failed(Verdict::not_sent(e.clone()))),
                    Target::Other => {
                        return Err(crate::error::Error::internal(
                            "an LTI 1.1 route without its target",
                        ));
                    }
                };
                let op = match step {
                    Step::Read => OutcomeOp::Read,
                    Step::Write => OutcomeOp::Replace(Box::new(replace_result(c))),
                };
                let t = OutcomeTransport {
                    client: http,
                    creds,
                    url,
                    sourcedid,
                    op: &op,
                };
                self.exchange(c, &t, host, requests).await
            }
            Route::Ltiaas {
                client: http,
                auth,
                line_item_id,
            } => {
                let score = score_to_send(c);
                if let Err(e) = score.validate() {
                    return Ok(Exchange::Failed(Verdict::not_sent(e.message)));
                }
                let op = match step {
                    Step::Read => LtiaasOp::Read {
                        user_id: &c.lti_user_id,
                    },
                    Step::Write => LtiaasOp::Score(&score),
                };
                let t = LtiaasTransport {
                    client: http,
                    auth,
                    platform_id: c.platform_id,
                    line_item_id,
                    op,
                };
                self.exchange(c, &t, host, requests).await
            }
        }
    }

    /// Everything a grade needs: read first if planned, write if needed, verify if asked.
    async fn work(&self, c: Candidate, read_first: bool) -> Result<GradeResult> {
        let route = match self.router.route(&c).await {
            Ok(r) => r,
            Err(e) => Arc::new(Route::Unreachable(Verdict::not_sent(e.message))),
        };
        let target = Target::of(&c, &route);
        let host = self.hosts.get(&host_of(&c, &route, &target));
        let mut requests = 0u32;
        let mut lms_score = None;
        let stopped = |why: String, requests| {
            let mut r = result(&c, Ended::Stopped, c.status, None, requests);
            r.description = why;
            r
        };
        if read_first || self.job == Job::Reconcile {
            match self
                .step(&c, &route, &target, &host, Step::Read, &mut requests)
                .await?
            {
                Exchange::Stopped(why) => return Ok(stopped(why, requests)),
                Exchange::Failed(v) => return Ok(failed_result(&c, &v, requests)),
                Exchange::Done(a) => {
                    lms_score = a.read_score;
                    if self.job == Job::Reconcile {
                        let status = match a.read_score {
                            Some(v) if plan::same_as(&c, v) => GradeStatus::InSync,
                            Some(_) => GradeStatus::Differs,
                            None => GradeStatus::LmsMissing,
                        };
                        let mut r = result(&c, Ended::Read, status, Some(&a.verdict), requests);
                        r.lms_score = lms_score;
                        return Ok(r);
                    }
                    match plan::after_read(&c, a.read_score, self.sel.force_lower) {
                        AfterRead::InSync => {
                            let mut r = result(
                                &c,
                                Ended::AlreadyInSync,
                                GradeStatus::InSync,
                                Some(&a.verdict),
                                requests,
                            );
                            r.description = "the LMS already holds this grade".into();
                            r.lms_score = lms_score;
                            return Ok(r);
                        }
                        AfterRead::LmsHigher(v) => {
                            let mut r = result(&c, Ended::LmsHigher, GradeStatus::Differs, None, requests);
                            r.description = format!(
                                "the LMS holds more ({}, local {}): possible instructor override; left alone \
                                 (--force-lower writes over it)",
                                crate::status::percent(v),
                                crate::status::percent(c.score())
                            );
                            r.lms_score = lms_score;
                            return Ok(r);
                        }
                        AfterRead::Write => {}
                    }
                }
            }
        }
        match self
            .step(&c, &route, &target, &host, Step::Write, &mut requests)
            .await?
        {
            Exchange::Stopped(why) => return Ok(stopped(why, requests)),
            Exchange::Failed(v) => {
                let mut r = failed_result(&c, &v, requests);
                r.lms_score = lms_score;
                return Ok(r);
            }
            Exchange::Done(a) => {
                if !self.opts.verify {
                    let mut r = result(&c, Ended::Sent, GradeStatus::InSync, Some(&a.verdict), requests);
                    r.lms_score = lms_score;
                    return Ok(r);
                }
            }
        }
        // --verify: read back.
        match self
            .step(&c, &route, &target, &host, Step::Read, &mut requests)
            .await?
        {
            Exchange::Stopped(why) => Ok(stopped(why, requests)),
            Exchange::Failed(v) => Ok(failed_result(&c, &v, requests)),
            Exchange::Done(a) => {
                let matched = a.read_score.is_some_and(|v| plan::same_as(&c, v));
                let (ended, status) = if matched {
                    (Ended::Sent, GradeStatus::InSync)
                } else {
                    (Ended::Failed, GradeStatus::Differs)
                };
                let mut r = result(&c, ended, status, Some(&a.verdict), requests);
                r.lms_score = a.read_score;
                if !matched {
                    r.cause = Some(Cause::LmsRefused);
                    r.description = format!(
                        "the LMS confirmed the write but reads back {} (local {})",
                        a.read_score.map_or("no grade".into(), crate::status::percent),
                        crate::status::percent(c.score())
                    );
                }
                Ok(r)
            }
        }
    }
}

/// Grades per page read from the ledger.
const PAGE: i64 = 500;

/// Walk every grade the filter matches and plan it; `each` gets the candidate and its plan.
async fn walk(
    store: &Store,
    filter: &GradeFilter,
    job: Job,
    sel: &Selection,
    mut each: impl FnMut(Candidate, Planned) -> Result<Flow>,
) -> Result<()> {
    let mut after: Option<GradeKey> = None;
    loop {
        let page = store.candidates_page(filter, after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.key);
        let full = page.len() as i64 == PAGE;
        for c in page {
            let planned = match job {
                Job::Reconcile => plan_read(&c),
                _ => plan::plan(&c, sel),
            };
            if each(c, planned)? == Flow::Stop {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Reconcile reads every grade that has somewhere to read from.
fn plan_read(c: &Candidate) -> Planned {
    match (c.status, c.transport) {
        (GradeStatus::CannotSend, crate::model::PlatformKind::Lti11) if c.sourcedid.is_none() => {
            Planned::CannotSend(c.status_detail.clone().unwrap_or_default())
        }
        (GradeStatus::CannotSend, _) if c.status_detail.as_deref().is_some_and(|d| d.contains("launch")) => {
            Planned::CannotSend(c.status_detail.clone().unwrap_or_default())
        }
        _ => Planned::Work { read_first: true },
    }
}

fn skip_kind(why: &str) -> String {
    if why.starts_with("already in sync") {
        "in_sync".into()
    } else if why.contains("instructor override") {
        "lms_higher".into()
    } else if why.starts_with("a permanent failure") {
        "permanent_failure".into()
    } else {
        "not_selected".into()
    }
}

/// Plan the run: count what it will do.
pub async fn plan_summary(
    store: &Store,
    filter: &GradeFilter,
    job: Job,
    sel: &Selection,
) -> Result<PlanSummary> {
    let mut s = PlanSummary::default();
    walk(store, filter, job, sel, |_, p| {
        s.matched += 1;
        match p {
            Planned::Work { read_first } => {
                s.work += 1;
                s.read_first += u64::from(read_first);
            }
            Planned::CannotSend(_) => s.cannot_send += 1,
            Planned::Skip(why) => *s.skipped.entry(skip_kind(&why)).or_default() += 1,
        }
        Ok(Flow::Continue)
    })
    .await?;
    Ok(s)
}

/// One example request for `--dry-run`: redacted (no secret, no signature).
pub async fn example_request<R: Router>(
    store: &Store,
    router: &R,
    filter: &GradeFilter,
    job: Job,
    sel: &Selection,
) -> Result<Option<String>> {
    let mut first = None;
    walk(store, filter, job, sel, |c, p| {
        if matches!(p, Planned::Work { .. }) {
            first = Some(c);
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    })
    .await?;
    let Some(c) = first else {
        return Ok(None);
    };
    let route = router.route(&c).await?;
    Ok(match &*route {
        Route::Lti11 { creds, .. } => {
            let url = client::check_target(c.outcome_url.as_deref().unwrap_or(""), creds)?;
            let op = match job {
                Job::Reconcile => OutcomeOp::Read,
                _ => OutcomeOp::Replace(Box::new(replace_result(&c))),
            };
            let signed = client::sign(creds, &url, &op, c.sourcedid.as_deref().unwrap_or(""))?;
            Some(signed.journal_excerpt())
        }
        Route::Ltiaas {
            client: http,
            line_item_id,
            ..
        } => {
            let ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
            let req = http.score_request(
                line_item_id,
                &score_to_send(&c).body(crate::ltiaas::client::format_timestamp_ms(ms)),
            )?;
            Some(req.journal_excerpt())
        }
        Route::Unreachable(v) => Some(format!("(no request: {})", v.description)),
    })
}

/// Run reconcile (`Job::Reconcile`: read only) or sync (`Job::Sync`) over the
/// grades `filter` matches.
#[allow(clippy::too_many_arguments)]
pub async fn run<R: Router>(
    intake: &Intake,
    router: &R,
    job: Job,
    filter: &GradeFilter,
    sel: &Selection,
    opts: Options,
    plan: PlanSummary,
    sink: &mut (dyn Progress<GradeResult> + Send),
) -> Result<RunSummary> {
    let started = Instant::now();
    let store = intake.store();
    let total = plan.work + plan.cannot_send;
    sink.begin(&Start {
        job,
        title: match job {
            Job::Reconcile => format!("reading what the LMS holds for {} grade(s)", plan.work),
            _ => format!("sending {} grade(s)", plan.work),
        },
        total: Some(total),
    });
    let run = Run {
        router,
        journal: Journal::open(store).await?,
        hosts: Hosts::new(opts.concurrency, opts.rate),
        opts,
        job,
        sel: sel.clone(),
        stop: std::sync::atomic::AtomicBool::new(false),
        stopped: Mutex::new(BTreeMap::new()),
    };
    let mut summary = RunSummary {
        job: format!("{job:?}").to_ascii_lowercase(),
        plan,
        ..RunSummary::default()
    };
    let mut tally = Tally {
        total: Some(total),
        ..Tally::default()
    };
    let cap = (opts.concurrency.max(1) * 4).max(8);
    let mut after: Option<GradeKey> = None;
    let mut buffer: std::collections::VecDeque<(Candidate, Planned)> = Default::default();
    let mut exhausted = false;
    let mut in_flight = FuturesUnordered::new();
    let mut cancelled = false;

    let mut report = |r: GradeResult, tally: &mut Tally, summary: &mut RunSummary| -> Flow {
        tally.done += 1;
        if r.ended == Ended::Failed {
            tally.failed += 1;
            *summary
                .failed_by_cause
                .entry(r.cause.unwrap_or(Cause::Unknown).as_str().to_string())
                .or_default() += 1;
        }
        *summary
            .ended
            .entry(
                serde_json::to_value(r.ended)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
            .or_default() += 1;
        summary.requests += u64::from(r.requests);
        tally.elapsed = started.elapsed();
        sink.item(tally, &r)
    };

    // Grades this run finished (a later pass never takes them again) and, in the
    // current pass over the ledger, grades other runs held.
    let mut finished: std::collections::HashSet<GradeKey> = Default::default();
    let mut elsewhere: u64 = 0;
    loop {
        // Keep the queue fed.
        while !exhausted && !cancelled && buffer.len() < cap {
            let page = store.candidates_page(filter, after, PAGE).await?;
            exhausted = (page.len() as i64) < PAGE;
            if let Some(last) = page.last() {
                after = Some(last.key);
            }
            let plan_of = |c: &Candidate| match job {
                Job::Reconcile => plan_read(c),
                _ => plan::plan(c, sel),
            };
            let wanted: Vec<(Candidate, Planned)> = page
                .into_iter()
                .filter(|c| !finished.contains(&c.key))
                .map(|c| {
                    let p = plan_of(&c);
                    (c, p)
                })
                .filter(|(_, p)| !matches!(p, Planned::Skip(_)))
                .collect();
            let Some(claims) = opts.claims else {
                buffer.extend(wanted);
                continue;
            };
            if wanted.is_empty() {
                continue;
            }
            // Take the grades before working on them, then read them again: another
            // run may have finished one between the page and the claim.
            let keys: Vec<GradeKey> = wanted.iter().map(|(c, _)| c.key).collect();
            let claimed = intake.claim_grades(claims.run, &keys, claims.lease).await?;
            elsewhere += claimed.elsewhere.len() as u64;
            summary.taken_over += claimed.taken_over.len() as u64;
            if claimed.held.is_empty() {
                continue;
            }
            let held: std::collections::HashSet<GradeKey> = claimed.held.iter().copied().collect();
            let mut again = filter.clone();
            again.grades = wanted
                .iter()
                .filter(|(c, _)| held.contains(&c.key))
                .map(|(c, _)| c.grade_id)
                .collect();
            let fresh = store
                .candidates_page(&again, None, again.grades.len() as i64)
                .await?;
            let mut working: std::collections::HashSet<GradeKey> = Default::default();
            for c in fresh {
                let p = plan_of(&c);
                if !matches!(p, Planned::Skip(_)) {
                    working.insert(c.key);
                    buffer.push_back((c, p));
                }
            }
            // Held but nothing to do now (done meanwhile, or a newer version came).
            let idle: Vec<GradeKey> = claimed
                .held
                .iter()
                .filter(|k| !working.contains(k))
                .copied()
                .collect();
            if !idle.is_empty() {
                store.release_claims(claims.run, Some(&idle)).await?;
            }
        }
        // Start work up to the cap.
        while !cancelled && in_flight.len() < cap {
            let Some((c, planned)) = buffer.pop_front() else {
                break;
            };
            finished.insert(c.key);
            match planned {
                Planned::CannotSend(why) => {
                    let mut r = result(&c, Ended::CannotSend, GradeStatus::CannotSend, None, 0);
                    r.description = why;
                    if report(r, &mut tally, &mut summary) == Flow::Stop {
                        cancelled = true;
                    }
                }
                Planned::Work { read_first } => {
                    if let Some(why) = run.platform_stop(c.platform_id) {
                        let mut r = result(&c, Ended::Stopped, c.status, None, 0);
                        r.description = why;
                        if report(r, &mut tally, &mut summary) == Flow::Stop {
                            cancelled = true;
                        }
                        continue;
                    }
                    in_flight.push(run.work(c, read_first));
                }
                Planned::Skip(_) => {}
            }
        }
        if cancelled {
            run.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if in_flight.is_empty() && buffer.is_empty() && exhausted && !cancelled && elsewhere > 0 {
            // Other runs held some grades: wait until they finish them (their claims
            // go) or stop (their claims expire and this run takes the grades), then
            // walk the ledger again. This run's own work is done: with its answers
            // recorded and folded, its claims go now (a run waiting on this one
            // must not wait for this one's end, nor find a grade's status older
            // than its answer).
            if let Some(claims) = opts.claims {
                run.journal.flush().await?;
                store.release_claims(claims.run, None).await?;
            }
            let poll = opts.claims.map_or(Duration::from_secs(1), |c| {
                (c.lease / 4).min(Duration::from_secs(1))
            });
            tokio::time::sleep(poll).await;
            summary.left_to_other_runs = elsewhere;
            elsewhere = 0;
            after = None;
            exhausted = false;
            continue;
        }
        if in_flight.is_empty() && (buffer.is_empty() && exhausted || cancelled) {
            break;
        }
        let Some(done) = in_flight.next().await else {
            continue;
        };
        if report(done?, &mut tally, &mut summary) == Flow::Stop {
            cancelled = true;
        }
    }
    drop(in_flight);
    // Not started because of a stop: counted, not listed one by one.
    if cancelled {
        let left = buffer.len() as u64;
        *summary.ended.entry("stopped".into()).or_default() += left;
    }
    run.journal.close().await?;
    tally.elapsed = started.elapsed();
    sink.finish(&tally);
    summary.cancelled = cancelled;
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    summary.stopped_platforms = run
        .stopped
        .into_inner()
        .expect("stop lock")
        .into_values()
        .collect();
    Ok(summary)
}
