//! The single writer of ledger facts.
//!
//! Everything Passback learns goes into the ledger through [`Intake`]: a person
//! seen in a course, a launch (with the outcome target it carried), a grade
//! observed, a service key learned, a line item found, an attempt journaled and
//! completed. Each call is one transaction that also re-decides the status of
//! every grade the fact touches ([`crate::status::decide`]), so the stored
//! status column always agrees with the facts.
//!
//! Callers describe *where* a fact happened with a [`Place`] (platform, context,
//! activity, and optionally a person); intake resolves the context → activity →
//! learner chain once, here, instead of in every caller.

use sqlx::AnyConnection;

use crate::error::{Error, Result};
use crate::model::{
    Activity, AttemptResult, Context, Grade, Learner, NewAttempt, NewGrade, OutcomeTarget, Role,
};
use crate::status;
use crate::store::{GradeKey, ServiceKeyInsert, ServiceKeyUpsert, Store};

/// A course as a fact names it; `None` fields keep what the ledger knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextSeen<'a> {
    pub context_id: &'a str,
    pub title: Option<&'a str>,
    pub label: Option<&'a str>,
}

/// An activity (resource link) as a fact names it; `None` fields keep what the ledger knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActivitySeen<'a> {
    pub resource_link_id: &'a str,
    pub title: Option<&'a str>,
    pub points_possible: Option<f64>,
    /// The LTIAAS line item of the activity.
    pub line_item_id: Option<&'a str>,
}

/// A person as a fact names them; `None` fields keep what the ledger knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonSeen<'a> {
    pub lti_user_id: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub person_sourcedid: Option<&'a str>,
    pub role: Option<Role>,
}

/// Where a fact happened.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub platform_id: i64,
    pub context: ContextSeen<'a>,
    pub activity: ActivitySeen<'a>,
    pub person: Option<PersonSeen<'a>>,
}

/// The ledger rows a [`Place`] resolved to.
#[derive(Debug, Clone)]
pub struct Placed {
    pub context: Context,
    pub activity: Activity,
    pub learner: Option<Learner>,
}

impl Placed {
    /// The (activity, learner) pair, when the place named a person.
    pub fn key(&self) -> Option<GradeKey> {
        self.learner.as_ref().map(|l| GradeKey {
            activity_ref: self.activity.id,
            learner_ref: l.id,
        })
    }
}

/// Writes facts into the ledger, keeping every grade's stored status true.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Store,
}

/// Re-decide the status of `key`'s current grade, if it has one.
async fn refresh(conn: &mut AnyConnection, key: GradeKey) -> Result<()> {
    refresh_all(conn, vec![key]).await
}

/// Re-decide the statuses of these pairs' current grades (pairs without one are skipped).
pub(crate) async fn refresh_all(conn: &mut AnyConnection, keys: Vec<GradeKey>) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    // Only statuses that change are written.
    let decided: Vec<_> = Store::grade_facts_many(conn, &keys)
        .await?
        .into_iter()
        .map(|(key, facts, stored)| {
            let d = status::decide(&facts);
            (key, d.status, d.detail, stored)
        })
        .filter(|(_, status, detail, stored)| stored.status != status.as_str() || stored.detail != *detail)
        .map(|(key, status, detail, _)| (key, status, detail))
        .collect();
    Store::set_statuses(conn, &decided).await
}

/// Resolve a place, re-deciding the learner's grades when their role changed.
async fn resolve(conn: &mut AnyConnection, p: &Place<'_>) -> Result<Placed> {
    let context = Store::upsert_context(
        conn,
        p.platform_id,
        p.context.context_id,
        p.context.title,
        p.context.label,
    )
    .await?;
    let activity = Store::upsert_activity(
        conn,
        context.id,
        p.activity.resource_link_id,
        p.activity.title,
        p.activity.points_possible,
        p.activity.line_item_id,
    )
    .await?;
    let learner = match &p.person {
        None => None,
        Some(who) => {
            let (learner, role_changed) = Store::upsert_learner(
                conn,
                p.platform_id,
                who.lti_user_id,
                who.name,
                who.email,
                who.person_sourcedid,
                who.role,
            )
            .await?;
            if role_changed {
                let keys = Store::grade_keys_of_learner(conn, learner.id).await?;
                refresh_all(conn, keys).await?;
            }
            Some(learner)
        }
    };
    Ok(Placed {
        context,
        activity,
        learner,
    })
}

impl Intake {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The ledger, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A context, activity and (optionally) person seen: make sure the ledger has
    /// them, with whatever names the fact carried.
    pub async fn place(&self, p: &Place<'_>) -> Result<Placed> {
        let mut tx = self.store.begin().await?;
        let placed = resolve(&mut tx, p).await?;
        tx.commit().await?;
        Ok(placed)
    }

    /// A launch seen: the place, and the outcome target the launch carried (a
    /// newer target replaces an older one).
    pub async fn launch_seen(&self, p: &Place<'_>, target: Option<&OutcomeTarget>) -> Result<Placed> {
        let mut tx = self.store.begin().await?;
        let placed = resolve(&mut tx, p).await?;
        if let (Some(t), Some(key)) = (target, placed.key()) {
            Store::set_outcome_target(&mut tx, key, t).await?;
            refresh(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok(placed)
    }

    /// An outcome target learned for a known (activity, learner).
    pub async fn target_learned(&self, key: GradeKey, target: &OutcomeTarget) -> Result<()> {
        let mut tx = self.store.begin().await?;
        Store::set_outcome_target(&mut tx, key, target).await?;
        refresh(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A local grade observed at a place (the place must name a person). An
    /// unchanged value is not a new version; the second value says whether one
    /// was added.
    pub async fn grade_observed(&self, p: &Place<'_>, g: &NewGrade) -> Result<(Placed, Grade, bool)> {
        crate::store::validate_grade(g)?;
        let mut tx = self.store.begin().await?;
        let placed = resolve(&mut tx, p).await?;
        let key = placed
            .key()
            .ok_or_else(|| Error::internal("a grade needs a person at its place"))?;
        let (grade, added) = Store::record_grade(&mut tx, key, g).await?;
        if added {
            refresh(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok((placed, grade, added))
    }

    /// The LTIAAS line item of an activity found (looked up or created).
    pub async fn line_item_learned(&self, p: &Place<'_>, line_item_id: &str) -> Result<Placed> {
        let mut place = *p;
        place.activity.line_item_id = Some(line_item_id);
        self.place(&place).await
    }

    /// An LTIAAS service key learned for (platform, context, resource link); every
    /// learner's grade for that activity may become sendable. Newest capture wins:
    /// says whether this one was recorded and which keyring reference nothing names
    /// any more (see [`Store::upsert_service_key`]).
    pub async fn service_key_learned(&self, k: &ServiceKeyInsert<'_>) -> Result<ServiceKeyUpsert> {
        let mut tx = self.store.begin().await?;
        let upsert = Store::upsert_service_key(&mut tx, k).await?;
        if upsert.written
            && let Some(activity) =
                Store::activity_ref_of(&mut tx, k.platform_id, k.context_id, k.resource_link_id).await?
        {
            let keys = Store::grade_keys_of_activity(&mut tx, activity).await?;
            refresh_all(&mut tx, keys).await?;
        }
        tx.commit().await?;
        Ok(upsert)
    }

    /// Journal an attempt before its request leaves; returns its id.
    pub async fn attempt_started(&self, a: &NewAttempt) -> Result<i64> {
        let mut tx = self.store.begin().await?;
        let id = Store::start_attempt(&mut tx, a).await?;
        if let Some(grade_ref) = a.grade_ref
            && let Some(key) = Store::grade_key_of(&mut tx, grade_ref).await?
        {
            refresh(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Complete a journaled attempt with what the LMS answered.
    pub async fn attempt_finished(&self, id: i64, r: &AttemptResult) -> Result<()> {
        let mut tx = self.store.begin().await?;
        Store::finish_attempt(&mut tx, id, r).await?;
        if let Some(key) = Store::attempt_grade_key(&mut tx, id).await? {
            refresh(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Open a run of `kind`: `decide` sees the runs not finished yet and says which
    /// of them are dead (closed here) or refuses; then the new run is recorded.
    /// One transaction, so two runs cannot both pass the check.
    pub async fn open_run(
        &self,
        kind: &str,
        decide: impl FnOnce(&[crate::store::RunRow]) -> Result<Vec<i64>>,
    ) -> Result<i64> {
        let mut tx = self.store.begin_immediate().await?;
        let open = Store::open_runs(&mut tx).await?;
        for dead in decide(&open)? {
            Store::finish_run(&mut tx, dead, r#"{"ended":"interrupted: its process stopped"}"#).await?;
        }
        let id = Store::insert_run(&mut tx, kind).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Claim `keys` for run `run` for `lease` (see [`Store::claim_grades`]). On the
    /// grades taken over from a run whose lease expired (its process stopped),
    /// what that run finished is folded and what it left in flight is closed as
    /// interrupted (the grade becomes `unknown`: read before anything is sent
    /// again), in the claiming transaction: recovery happens once, by the run
    /// that took the grade.
    pub async fn claim_grades(
        &self,
        run: i64,
        keys: &[GradeKey],
        lease: std::time::Duration,
    ) -> Result<crate::store::Claimed> {
        let now = crate::store::now_rfc3339();
        let until = crate::store::rfc3339_after(lease);
        let mut tx = self.store.begin_immediate().await?;
        let claimed = Store::claim_grades(&mut tx, run, keys, &now, &until).await?;
        let mut stopped: std::collections::BTreeMap<(&str, &str), Vec<GradeKey>> = Default::default();
        for (key, run_id, started_at) in &claimed.taken_over {
            stopped.entry((run_id, started_at)).or_default().push(*key);
        }
        for ((run_id, started_at), keys) in stopped {
            tracing::warn!(
                run = run_id,
                grades = keys.len(),
                "taking over grades a stopped run had claimed"
            );
            let (done, folded) = Store::finished_attempts_of_run(&mut tx, run_id, started_at).await?;
            journal::fold(&mut tx, &done, folded).await?;
            let finishes: Vec<journal::Finished> = Store::pending_attempts_of(&mut tx, run_id, &keys)
                .await?
                .into_iter()
                .map(|(id, key)| journal::Finished {
                    id,
                    key: Some(key),
                    result: journal::interrupted(),
                    at: None,
                })
                .collect();
            journal::record(&mut tx, &[], &finishes).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Close a run with its summary (JSON).
    pub async fn close_run(&self, id: i64, summary: &str) -> Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        Store::finish_run(&mut conn, id, summary).await
    }

    /// Record what a stopped run's finished attempts showed the LMS to hold, and
    /// re-decide their grades' statuses (the run may have stopped before its
    /// journal folded them). Safe to repeat.
    pub async fn fold_stopped_run(&self, run_id: &str, started_at: &str) -> Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        let (done, keys) = Store::finished_attempts_of_run(&mut conn, run_id, started_at).await?;
        journal::fold(&mut conn, &done, keys).await
    }

    /// Close attempts a process that died left in flight (see [`journal::interrupted`]).
    /// Safe to repeat, and to race with another run recovering the same attempts:
    /// only those still in flight are closed.
    pub async fn close_interrupted(&self, attempts: &[(i64, Option<GradeKey>)]) -> Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        let mut tx = crate::store::begin_write(&mut conn).await?;
        let ids: Vec<i64> = attempts.iter().map(|(id, _)| *id).collect();
        let open: std::collections::HashSet<i64> = Store::unfinished_attempts(&mut tx, &ids)
            .await?
            .into_iter()
            .collect();
        let finishes: Vec<journal::Finished> = attempts
            .iter()
            .filter(|(id, _)| open.contains(id))
            .map(|(id, key)| journal::Finished {
                id: *id,
                key: *key,
                result: journal::interrupted(),
                at: None,
            })
            .collect();
        journal::record(&mut tx, &[], &finishes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reserve the timestamp (Unix ms) of the next LTIAAS score for (line item,
    /// user): strictly later than any reserved before.
    pub async fn reserve_score_timestamp(
        &self,
        platform_id: i64,
        line_item_id: &str,
        lti_user_id: &str,
        now_ms: i64,
    ) -> Result<i64> {
        let mut tx = self.store.begin().await?;
        let ms =
            Store::next_score_timestamp_ms(&mut tx, platform_id, line_item_id, lti_user_id, now_ms).await?;
        tx.commit().await?;
        Ok(ms)
    }

    /// Open a batch: one transaction for many facts. With `record`, the batch's own
    /// import record is created first and every change it makes is remembered
    /// under it (so it can be taken back); without, nothing is remembered (dry runs).
    pub async fn begin_batch(&self, record: Option<&crate::store::NewBatch<'_>>) -> Result<Batch> {
        self.begin_batch_with(record, batch::Limits::default()).await
    }

    async fn begin_batch_with(
        &self,
        record: Option<&crate::store::NewBatch<'_>>,
        limits: batch::Limits,
    ) -> Result<Batch> {
        let mut tx = self.store.begin().await?;
        let id = match record {
            Some(b) => Some(Store::insert_batch(&mut tx, b).await?),
            None => None,
        };
        Ok(Batch::new(tx, id, limits))
    }

    /// The record of an import that kept nothing (rejected or cancelled), with its
    /// issues, so `passback import list` shows what happened. Returns its id.
    pub async fn record_batch_that_kept_nothing(
        &self,
        record: &crate::store::NewBatch<'_>,
        status: &str,
        counts: &crate::store::BatchCounts,
        notes: &[String],
        issues: &[crate::model::RowIssue],
    ) -> Result<i64> {
        let mut tx = self.store.begin().await?;
        let id = Store::insert_batch(&mut tx, record).await?;
        Store::finish_batch(&mut tx, id, status, counts, notes).await?;
        Store::insert_issues(&mut tx, id, issues).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Re-decide every stored status when the ledger was last decided by other
    /// status rules (an older Passback, or a freshly migrated ledger). Returns how
    /// many grades were re-decided.
    pub async fn refresh_statuses_if_rules_changed(&self) -> Result<usize> {
        let want = status::RULES_VERSION.to_string();
        if self.store.meta(STATUS_RULES_KEY).await?.as_deref() == Some(want.as_str()) {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        let keys = Store::all_grade_keys(&mut tx).await?;
        let n = keys.len();
        refresh_all(&mut tx, keys).await?;
        Store::set_meta_in(&mut tx, STATUS_RULES_KEY, &want).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// What taking an import batch back removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct UndoReport {
    pub batch_id: i64,
    pub grade_versions_removed: u64,
    pub targets_restored: u64,
    pub observations_removed: u64,
    pub attempts_removed: u64,
    pub launches_removed: u64,
}

impl Intake {
    /// Take an import batch back: the grade versions, outcome targets, LMS
    /// observations, other systems' attempts and launches it recorded. Refused when
    /// a later batch changed the same grades, or when Passback already sent or read
    /// a grade version or target the batch added (history would no longer add up).
    /// Service keys and Open edX records it learned stay.
    pub async fn undo_batch(&self, batch_id: i64) -> Result<UndoReport> {
        let batch = self.store.batch(batch_id).await?;
        match batch.status.as_str() {
            "undone" => {
                return Err(Error::conflict(format!(
                    "import batch {batch_id} was already undone"
                )));
            }
            "rejected" | "cancelled" | "running" => {
                return Err(Error::conflict(format!(
                    "import batch {batch_id} is {}: it changed nothing, so there is nothing to undo",
                    batch.status
                )));
            }
            _ => {}
        }
        let mut tx = self.store.begin().await?;
        let later = Store::later_batches_on_same_grades(&mut tx, batch_id).await?;
        if !later.is_empty() {
            let list: Vec<String> = later.iter().rev().map(i64::to_string).collect();
            return Err(Error::conflict(if let [one] = list.as_slice() {
                format!(
                    "batch {one} changed the same grades later: undo it first (`passback import undo {one}`), \
                     then this one"
                )
            } else {
                format!(
                    "batches {} changed the same grades later: undo them first, newest first, then this one",
                    list.join(", ")
                )
            }));
        }
        let built = Store::attempts_built_on_batch(&mut tx, batch_id).await?;
        if built > 0 {
            return Err(Error::conflict(format!(
                "Passback already sent or read {built} grade(s) using what batch {batch_id} imported; undoing it would \
                 leave those attempts without their grade or target. Import a corrected file instead."
            )));
        }
        let gone = Store::take_back_batch(&mut tx, batch_id).await?;
        let report = UndoReport {
            batch_id,
            grade_versions_removed: gone.grade_versions,
            targets_restored: gone.targets,
            observations_removed: gone.observations,
            attempts_removed: gone.attempts,
            launches_removed: gone.launches,
        };
        refresh_all(&mut tx, gone.touched).await?;
        Store::set_batch_status(&mut tx, batch_id, "undone").await?;
        tx.commit().await?;
        Ok(report)
    }
}

/// `ledger_meta` key holding the status rules version last applied.
const STATUS_RULES_KEY: &str = "status_rules";

mod batch;
pub mod journal;

pub use batch::{
    ActivityOwned, Batch, ContextOwned, ExternalAttempt, Fact, LaunchInfo, PersonOwned, PlaceOwned, RowFacts,
    RowOutcome, RowResult,
};

#[cfg(test)]
mod tests;
