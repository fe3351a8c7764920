//! The facts a grade's status depends on, and the stored status itself
//! (`current_grades`). The rules that turn facts into a status are not SQL:
//! they live in `crate::status`, and `crate::intake` applies them.

use sqlx::AnyConnection;

use super::{GradeKey, Store};
use crate::error::{Error, Result};
use crate::model::{GradeFacts, GradeStatus};

impl Store {
    /// What the status of the current grade of `key` depends on; `None` when the
    /// pair has no grade.
    pub async fn grade_facts(conn: &mut AnyConnection, key: GradeKey) -> Result<Option<GradeFacts>> {
        Ok(Self::grade_facts_many(conn, &[key])
            .await?
            .pop()
            .map(|(_, f, _)| f))
    }

    /// Store a grade's decided status.
    pub async fn set_status(
        conn: &mut AnyConnection,
        key: GradeKey,
        status: GradeStatus,
        detail: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE current_grades SET status = $1, status_detail = $2 WHERE activity_ref = $3 AND learner_ref = $4",
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
            "SELECT status, status_detail FROM current_grades WHERE activity_ref = $1 AND learner_ref = $2",
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
        conn: &mut AnyConnection,
        activity_ref: i64,
    ) -> Result<Vec<GradeKey>> {
        let rows =
            sqlx::query_as("SELECT activity_ref, learner_ref FROM current_grades WHERE activity_ref = $1")
                .bind(activity_ref)
                .fetch_all(&mut *conn)
                .await?;
        Ok(keys(rows))
    }

    /// Every (activity, learner) with a current grade of a learner.
    pub async fn grade_keys_of_learner(conn: &mut AnyConnection, learner_ref: i64) -> Result<Vec<GradeKey>> {
        let rows =
            sqlx::query_as("SELECT activity_ref, learner_ref FROM current_grades WHERE learner_ref = $1")
                .bind(learner_ref)
                .fetch_all(&mut *conn)
                .await?;
        Ok(keys(rows))
    }

    /// Every (activity, learner) with a current grade.
    pub async fn all_grade_keys(conn: &mut AnyConnection) -> Result<Vec<GradeKey>> {
        let rows = sqlx::query_as("SELECT activity_ref, learner_ref FROM current_grades")
            .fetch_all(&mut *conn)
            .await?;
        Ok(keys(rows))
    }

    /// The activity of (platform, context id, resource link id), inside a transaction.
    pub async fn activity_ref_of(
        conn: &mut AnyConnection,
        platform_id: i64,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT a.id FROM activities a JOIN contexts c ON c.id = a.context_ref
             WHERE c.platform_id = $1 AND c.context_id = $2 AND a.resource_link_id = $3",
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
