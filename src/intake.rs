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

use sqlx::SqliteConnection;

use crate::error::{Error, Result};
use crate::model::{
    Activity, AttemptResult, Context, Grade, Learner, NewAttempt, NewGrade, OutcomeTarget, Role,
};
use crate::status;
use crate::store::{GradeKey, ServiceKeyInsert, Store};

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
async fn refresh(conn: &mut SqliteConnection, key: GradeKey) -> Result<()> {
    if let Some(facts) = Store::grade_facts(conn, key).await? {
        let d = status::decide(&facts);
        Store::set_status(conn, key, d.status, d.detail.as_deref()).await?;
    }
    Ok(())
}

async fn refresh_all(conn: &mut SqliteConnection, keys: Vec<GradeKey>) -> Result<()> {
    for key in keys {
        refresh(conn, key).await?;
    }
    Ok(())
}

/// Resolve a place, re-deciding the learner's grades when their role changed.
async fn resolve(conn: &mut SqliteConnection, p: &Place<'_>) -> Result<Placed> {
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
    /// returns whether this one was recorded.
    pub async fn service_key_learned(&self, k: &ServiceKeyInsert<'_>) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let written = Store::upsert_service_key(&mut tx, k).await?;
        if written
            && let Some(activity) =
                Store::activity_ref_of(&mut tx, k.platform_id, k.context_id, k.resource_link_id).await?
        {
            let keys = Store::grade_keys_of_activity(&mut tx, activity).await?;
            refresh_all(&mut tx, keys).await?;
        }
        tx.commit().await?;
        Ok(written)
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

/// `ledger_meta` key holding the status rules version last applied.
const STATUS_RULES_KEY: &str = "status_rules";

#[cfg(test)]
mod tests;
