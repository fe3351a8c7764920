//! Reconcile and sync: the facade over the engine (`crate::sync::engine`). It
//! takes the ledger's sync lock and recovers what a dead run left (see
//! `crate::sync::recovery`), plans, and runs the engine with a router that finds
//! each grade's credentials (keyring), service key and line item once per
//! platform or activity.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Passback;
use super::ltiaas::Resolved;
use crate::error::{Error, Result};
use crate::http::{ClientOptions, Verdict};
use crate::lti11::client::OutcomeClient;
use crate::model::{AttemptOutcome, Cause, ErrorClass, GradeStatus, PlatformKind};
use crate::progress::{Job, Progress};
use crate::store::{Candidate, GradeFilter};
use crate::sync::engine::{self, GradeResult, Options, PlanSummary, Route, Router, RunSummary};
use crate::sync::plan::{Only, Selection};
use crate::sync::recovery;

/// What to sync (and how), as the CLI and the window ask.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(default)]
pub struct SyncRequest {
    /// Which grades: platform, course, activity, learner, grade ids.
    pub filter: GradeFilter,
    /// Which statuses (empty: the default selection).
    pub only: Vec<Only>,
    pub force_lower: bool,
    pub verify: bool,
    pub dry_run: bool,
    /// Requests in flight per LMS host (default 4).
    pub concurrency: Option<usize>,
    /// At most this many requests a second per host.
    pub rate: Option<f64>,
    /// Seconds before a request times out (default 30).
    pub timeout_secs: Option<u64>,
}

/// What to reconcile.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(default)]
pub struct ReconcileRequest {
    pub filter: GradeFilter,
    /// Compare against the latest imported gradebook export instead of reading the LMS.
    pub from_export: bool,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub timeout_secs: Option<u64>,
}

/// Statuses after a reconcile, with where the comparison came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
pub struct StatusCounts {
    pub counts: Vec<(GradeStatus, i64)>,
    /// For `--from-export`: the export compared against, and when it was made.
    pub export: Option<(String, String)>,
}

/// Where the grades stand, for the window's overview.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
pub struct Health {
    /// Grades by status per platform and course, the largest first.
    pub places: Vec<crate::store::PlaceCounts>,
    /// Failed grades by cause, the largest group first.
    pub failures: Vec<crate::store::FailureGroup>,
    /// Grades that cannot be sent until the learner launches again.
    pub cannot_send: i64,
    /// The latest reconcile or sync.
    pub last_run: Option<LastRun>,
}

/// When the latest reconcile or sync ran.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct LastRun {
    /// `reconcile` or `sync`.
    pub kind: String,
    pub started_at: String,
    /// `null`: still running (or its process stopped; the next run recovers it).
    pub finished_at: Option<String>,
}

/// How a reconcile or sync ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
pub struct SyncReport {
    pub run: RunSummary,
    /// The statuses of the matched grades afterwards.
    pub statuses: StatusCounts,
}

/// How long a run's claims last unless renewed: [`engine::DEFAULT_LEASE`], or
/// `PASSBACK_CLAIM_LEASE_SECS` (at least 1).
fn claim_lease() -> std::time::Duration {
    std::env::var("PASSBACK_CLAIM_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s >= 1)
        .map_or(engine::DEFAULT_LEASE, std::time::Duration::from_secs)
}

fn options(concurrency: Option<usize>, rate: Option<f64>, verify: bool) -> Options {
    Options {
        concurrency: concurrency.unwrap_or(4).clamp(1, 64),
        rate: rate.filter(|r| *r > 0.0),
        verify,
        ..Options::default()
    }
}

fn client_options(timeout_secs: Option<u64>) -> ClientOptions {
    let mut o = ClientOptions::default();
    if let Some(t) = timeout_secs.filter(|t| *t > 0) {
        o.total_timeout = std::time::Duration::from_secs(t);
        o.connect_timeout = o.connect_timeout.min(o.total_timeout);
    }
    o
}

/// Finds each grade's route once per platform (LTI 1.1) or activity (LTIAAS).
struct AppRouter<'a> {
    pb: &'a Passback,
    opts: ClientOptions,
    routes: tokio::sync::Mutex<HashMap<(i64, String, String), Arc<Route>>>,
}

fn unreachable(description: String, hint: &str, class: ErrorClass, cause: Cause) -> Arc<Route> {
    Arc::new(Route::Unreachable(
        Verdict::new(AttemptOutcome::Error, Some(class), description, Some(hint)).with_cause(cause),
    ))
}

impl AppRouter<'_> {
    async fn build(&self, c: &Candidate) -> Arc<Route> {
        match c.transport {
            PlatformKind::Lti11 => match self.pb.lti11_credentials(&c.platform).await {
                Ok(creds) => match OutcomeClient::new(self.opts) {
                    Ok(client) => Arc::new(Route::Lti11 {
                        client: Arc::new(client),
                        creds: Arc::new(creds),
                    }),
                    Err(e) => unreachable(e.message, "", ErrorClass::Permanent, Cause::InvalidRequest),
                },
                // No secret: nothing of this platform can be signed.
                Err(e) => unreachable(
                    e.message,
                    "Store the platform's consumer secret again (passback platform add-lti11), then sync.",
                    ErrorClass::Auth,
                    Cause::SignatureRejected,
                ),
            },
            PlatformKind::Ltiaas => self.ltiaas(c).await,
        }
    }

    async fn ltiaas(&self, c: &Candidate) -> Arc<Route> {
        let conn = match self.pb.ltiaas_connect(&c.platform, self.opts).await {
            Ok(conn) => conn,
            Err(e) => {
                return unreachable(
                    e.message,
                    "Store the platform's LTIAAS API key again (passback platform add-ltiaas), then sync.",
                    ErrorClass::Auth,
                    Cause::ApiKeyRejected,
                );
            }
        };
        let (_, auth) = match self
            .pb
            .ltiaas_service_auth(&conn, &c.context_id, &c.resource_link_id)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return unreachable(
                    e.message,
                    "A launch of the activity is needed to capture its service key.",
                    ErrorClass::Permanent,
                    Cause::ServiceKeyStale,
                );
            }
        };
        let target = super::ltiaas::LtiaasTarget {
            platform: c.platform.clone(),
            context_id: c.context_id.clone(),
            resource_link_id: c.resource_link_id.clone(),
            user_id: c.lti_user_id.clone(),
        };
        let choice = super::ltiaas::LineItemChoice {
            line_item_id: c.line_item_id.clone(),
            refresh: false,
            create_label: None,
        };
        match self
            .pb
            .resolve_line_item(&conn, &auth, &target, &choice, "score", None)
            .await
        {
            Ok(Resolved::Found(line_item_id, _)) => Arc::new(Route::Ltiaas {
                client: Arc::new(conn.client),
                auth: Arc::new(auth),
                line_item_id,
            }),
            Ok(Resolved::Failed(report)) => Arc::new(Route::Unreachable(
                Verdict::new(
                    AttemptOutcome::Error,
                    report.error_class.or(Some(ErrorClass::Permanent)),
                    report.description,
                    report.fix_hint.as_deref(),
                )
                .with_cause(Cause::AssignmentInvalid),
            )),
            Err(e) => unreachable(e.message, "", ErrorClass::Transient, Cause::ConnectionFailed),
        }
    }
}

impl Router for AppRouter<'_> {
    async fn route(&self, c: &Candidate) -> Result<Arc<Route>> {
        let key = match c.transport {
            PlatformKind::Lti11 => (c.platform_id, String::new(), String::new()),
            PlatformKind::Ltiaas => (c.platform_id, c.context_id.clone(), c.resource_link_id.clone()),
        };
        // One lookup per key, even when many grades ask at once.
        let mut routes = self.routes.lock().await;
        if let Some(r) = routes.get(&key) {
            return Ok(r.clone());
        }
        let r = self.build(c).await;
        routes.insert(key, r.clone());
        Ok(r)
    }
}

impl Passback {
    /// Where the grades stand: counted in SQL, a few rows whatever the ledger's size.
    pub async fn health(&self) -> Result<Health> {
        let store = self.store();
        let places = store.counts_by_place().await?;
        let cannot_send = places
            .iter()
            .flat_map(|p| &p.counts)
            .filter(|(s, _)| *s == GradeStatus::CannotSend)
            .map(|(_, n)| n)
            .sum();
        Ok(Health {
            places,
            failures: store.failure_groups().await?,
            cannot_send,
            last_run: store.runs(1).await?.into_iter().next().map(|r| LastRun {
                kind: r.kind,
                started_at: r.started_at,
                finished_at: r.finished_at,
            }),
        })
    }

    /// What a sync would do, without doing it.
    pub async fn plan_sync(&self, req: &SyncRequest) -> Result<PlanSummary> {
        engine::plan_summary(self.store(), &req.filter, Job::Sync, &selection(req)).await
    }

    /// Send what is missing: read what the LMS holds where the ledger does not
    /// know, write what it lacks (never over a higher LMS grade unless asked),
    /// through the journal. `dry_run` plans and shows one redacted request.
    pub async fn sync(
        &self,
        req: &SyncRequest,
        sink: &mut (dyn Progress<GradeResult> + Send),
    ) -> Result<SyncReport> {
        let sel = selection(req);
        let router = AppRouter {
            pb: self,
            opts: client_options(req.timeout_secs),
            routes: Default::default(),
        };
        if req.dry_run {
            let plan = engine::plan_summary(self.store(), &req.filter, Job::Sync, &sel).await?;
            let example =
                engine::example_request(self.store(), &router, &req.filter, Job::Sync, &sel).await?;
            return Ok(SyncReport {
                run: RunSummary {
                    job: "sync".into(),
                    plan,
                    example_request: example,
                    dry_run: true,
                    ..RunSummary::default()
                },
                statuses: self.status_counts(&req.filter).await?,
            });
        }
        self.run_engine(
            Job::Sync,
            &req.filter,
            &sel,
            &router,
            options(req.concurrency, req.rate, req.verify),
            sink,
        )
        .await
    }

    /// Read what the LMS holds for every matched grade and give each its status
    /// (never writes to the LMS). `from_export` compares against the latest
    /// imported gradebook export instead of reading.
    pub async fn reconcile(
        &self,
        req: &ReconcileRequest,
        sink: &mut (dyn Progress<GradeResult> + Send),
    ) -> Result<SyncReport> {
        if req.from_export {
            let mut statuses = self.status_counts(&req.filter).await?;
            statuses.export = self.store().latest_export(&req.filter).await?;
            if statuses.export.is_none() {
                return Err(Error::not_found(
                    "no gradebook export is imported for these grades: import one (passback import FILE \
                     --context C), or reconcile by reading the LMS",
                ));
            }
            return Ok(SyncReport {
                run: RunSummary {
                    job: "reconcile".into(),
                    ..RunSummary::default()
                },
                statuses,
            });
        }
        let router = AppRouter {
            pb: self,
            opts: client_options(req.timeout_secs),
            routes: Default::default(),
        };
        self.run_engine(
            Job::Reconcile,
            &req.filter,
            &Selection::default(),
            &router,
            options(req.concurrency, req.rate, false),
            sink,
        )
        .await
    }

    async fn run_engine(
        &self,
        job: Job,
        filter: &GradeFilter,
        sel: &Selection,
        router: &AppRouter<'_>,
        opts: Options,
        sink: &mut (dyn Progress<GradeResult> + Send),
    ) -> Result<SyncReport> {
        let kind = match job {
            Job::Reconcile => "reconcile",
            _ => "sync",
        };
        let run = recovery::begin(self.intake(), kind).await?;
        let lease = claim_lease();
        let beat = recovery::heartbeat(self.intake(), run, lease);
        let opts = Options {
            claims: Some(engine::Claims { run, lease }),
            ..opts
        };
        let outcome = async {
            let plan = engine::plan_summary(self.store(), filter, job, sel).await?;
            engine::run(self.intake(), router, job, filter, sel, opts, plan, sink).await
        }
        .await;
        beat.abort();
        // The journal is closed (every answer recorded and folded): the grades can go.
        if let Err(e) = self.store().release_claims(run, None).await {
            tracing::warn!(error = %e.message, "cannot release the run's claims; they expire on their own");
        }
        let summary = match &outcome {
            Ok(s) => serde_json::to_string(s).unwrap_or_default(),
            Err(e) => serde_json::json!({"error": e.message}).to_string(),
        };
        self.intake().close_run(run, &summary).await?;
        Ok(SyncReport {
            run: outcome?,
            statuses: self.status_counts(filter).await?,
        })
    }

    async fn status_counts(&self, filter: &GradeFilter) -> Result<StatusCounts> {
        let mut f = filter.clone();
        f.status.clear();
        Ok(StatusCounts {
            counts: self.store().count_by_status(&f).await?,
            export: None,
        })
    }
}

fn selection(req: &SyncRequest) -> Selection {
    Selection {
        only: req.only.clone(),
        grades: req.filter.grades.clone(),
        force_lower: req.force_lower,
    }
}
