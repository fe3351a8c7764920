//! The facts a grade's status depends on, and the stored status itself
//! (`current_grades`). The rules that turn facts into a status are not SQL:
//! they live in `crate::status`, and `crate::intake` applies them.

use sqlx::{Row, SqliteConnection};

use super::{GradeKey, Store};
use crate::error::{Error, Result};
use crate::model::{
    AttemptFact, AttemptOperation, AttemptOutcome, ErrorClass, GradeFacts, GradeStatus, Observation,
    PlatformKind, Role,
};

impl Store {
    /// What the status of the current grade of `key` depends on; `None` when the
    /// pair has no grade.
    pub async fn grade_facts(conn: &mut SqliteConnection, key: GradeKey) -> Result<Option<GradeFacts>> {
        let Some(r) = sqlx::query(
            "SELECT cg.grade_ref, g.score_given, g.score_maximum, p.kind, l.role,
                    t.lis_result_sourcedid, t.lis_outcome_service_url, t.service_key_ref,
                    EXISTS (SELECT 1 FROM service_keys k WHERE k.platform_id = c.platform_id
                              AND k.context_id = c.context_id AND k.resource_link_id = a.resource_link_id)
                      AS activity_has_key
             FROM current_grades cg
             JOIN grades g ON g.id = cg.grade_ref
             JOIN activities a ON a.id = cg.activity_ref
             JOIN contexts c ON c.id = a.context_ref
             JOIN platforms p ON p.id = c.platform_id
             JOIN learners l ON l.id = cg.learner_ref
             LEFT JOIN outcome_targets t ON t.activity_ref = cg.activity_ref AND t.learner_ref = cg.learner_ref
             WHERE cg.activity_ref = ? AND cg.learner_ref = ?",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let kind: String = r.try_get("kind")?;
        let transport = PlatformKind::parse(&kind)
            .ok_or_else(|| Error::internal(format!("unknown platform kind {kind:?} in the ledger")))?;
        let role: String = r.try_get("role")?;
        let has_target = match transport {
            PlatformKind::Lti11 => {
                r.try_get::<Option<String>, _>("lis_result_sourcedid")?.is_some()
                    && r.try_get::<Option<String>, _>("lis_outcome_service_url")?
                        .is_some()
            }
            PlatformKind::Ltiaas => {
                r.try_get::<Option<String>, _>("service_key_ref")?.is_some()
                    || r.try_get::<i64, _>("activity_has_key")? != 0
            }
        };
        let given: f64 = r.try_get("score_given")?;
        let maximum: f64 = r.try_get("score_maximum")?;
        let grade_ref: i64 = r.try_get("grade_ref")?;

        let attempt = sqlx::query(
            "SELECT operation, outcome, error_class, description, COALESCE(finished_at, started_at) AS at
             FROM attempts
             WHERE grade_ref = ? AND NOT (outcome = 'pending' AND operation IN ('read', 'score_read'))
             ORDER BY id DESC LIMIT 1",
        )
        .bind(grade_ref)
        .fetch_optional(&mut *conn)
        .await?;
        let last_attempt = match attempt {
            None => None,
            Some(a) => {
                let op: String = a.try_get("operation")?;
                let outcome: String = a.try_get("outcome")?;
                let class: Option<String> = a.try_get("error_class")?;
                Some(AttemptFact {
                    operation: AttemptOperation::parse(&op)
                        .ok_or_else(|| Error::internal(format!("unknown attempt operation {op:?}")))?,
                    outcome: AttemptOutcome::parse(&outcome)
                        .ok_or_else(|| Error::internal(format!("unknown attempt outcome {outcome:?}")))?,
                    error_class: class.as_deref().and_then(ErrorClass::parse),
                    description: a.try_get("description")?,
                    at: a.try_get("at")?,
                })
            }
        };

        let seen = sqlx::query(
            "SELECT score, observed_at, source FROM lms_observations
             WHERE activity_ref = ? AND learner_ref = ?
             ORDER BY observed_at DESC, id DESC LIMIT 1",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .fetch_optional(&mut *conn)
        .await?;
        let last_observation = match seen {
            None => None,
            Some(o) => Some(Observation {
                score: o.try_get("score")?,
                at: o.try_get("observed_at")?,
                source: o.try_get("source")?,
            }),
        };

        Ok(Some(GradeFacts {
            transport,
            has_target,
            role: Role::parse(&role).unwrap_or(Role::Unknown),
            score: given / maximum,
            last_attempt,
            last_observation,
        }))
    }

    /// Store a grade's decided status.
    pub async fn set_status(
        conn: &mut SqliteConnection,
        key: GradeKey,
        status: GradeStatus,
        detail: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE current_grades SET status = ?, status_detail = ? WHERE activity_ref = ? AND learner_ref = ?",
        )
        .bind(status.as_str())
        .bind(detail)
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The stored status of `key`'s current grade.
    pub async fn stored_status(&self, key: GradeKey) -> Result<Option<(GradeStatus, Option<String>)>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, status_detail FROM current_grades WHERE activity_ref = ? AND learner_ref = ?",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(s, d)| {
            GradeStatus::parse(&s)
                .map(|st| (st, d))
                .ok_or_else(|| Error::internal(format!("unknown grade status {s:?} in the ledger")))
        })
        .transpose()
    }

    /// Every (activity, learner) with a current grade under an activity.
    pub async fn grade_keys_of_activity(
        conn: &mut SqliteConnection,
        activity_ref: i64,
    ) -> Result<Vec<GradeKey>> {
        let rows =
            sqlx::query_as("SELECT activity_ref, learner_ref FROM current_grades WHERE activity_ref = ?")
                .bind(activity_ref)
                .fetch_all(&mut *conn)
                .await?;
        Ok(keys(rows))
    }

    /// Every (activity, learner) with a current grade of a learner.
    pub async fn grade_keys_of_learner(
        conn: &mut SqliteConnection,
        learner_ref: i64,
    ) -> Result<Vec<GradeKey>> {
        let rows =
            sqlx::query_as("SELECT activity_ref, learner_ref FROM current_grades WHERE learner_ref = ?")
                .bind(learner_ref)
                .fetch_all(&mut *conn)
                .await?;
        Ok(keys(rows))
    }

    /// Every (activity, learner) with a current grade.
    pub async fn all_grade_keys(conn: &mut SqliteConnection) -> Result<Vec<GradeKey>> {
        let rows = sqlx::query_as("SELECT activity_ref, learner_ref FROM current_grades")
            .fetch_all(&mut *conn)
            .await?;
        Ok(keys(rows))
    }

    /// The activity of (platform, context id, resource link id), inside a transaction.
    pub async fn activity_ref_of(
        conn: &mut SqliteConnection,
        platform_id: i64,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT a.id FROM activities a JOIN contexts c ON c.id = a.context_ref
             WHERE c.platform_id = ? AND c.context_id = ? AND a.resource_link_id = ?",
        )
        .bind(platform_id)
        .bind(context_id)
        .bind(resource_link_id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(id,)| id))
    }
}

fn keys(rows: Vec<(i64, i64)>) -> Vec<GradeKey> {
    rows.into_iter()
        .map(|(activity_ref, learner_ref)| GradeKey {
            activity_ref,
            learner_ref,
        })
        .collect()
}
