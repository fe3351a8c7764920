//! The attempt journal.
//!
//! An attempt is written *before* its request leaves (outcome `pending`) and
//! completed afterwards, so a crash mid-request leaves a visible trace and a
//! grade is never marked sent unless the LMS said so.

use sqlx::{Row, SqliteConnection, sqlite::SqliteRow};

use super::{GradeKey, Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{Attempt, AttemptOutcome, AttemptResult, ErrorClass, NewAttempt};

fn attempt_from_row(r: &SqliteRow) -> Result<Attempt> {
    let outcome: String = r.try_get("outcome")?;
    let class: Option<String> = r.try_get("error_class")?;
    Ok(Attempt {
        id: r.try_get("id")?,
        grade_ref: r.try_get("grade_ref")?,
        operation: r.try_get("operation")?,
        transport: r.try_get("transport")?,
        target: r.try_get("target")?,
        message_identifier: r.try_get("message_identifier")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        outcome: AttemptOutcome::parse(&outcome)
            .ok_or_else(|| Error::internal(format!("unknown attempt outcome {outcome:?}")))?,
        http_status: r.try_get("http_status")?,
        code_major: r.try_get("code_major")?,
        description: r.try_get("description")?,
        error_class: class.as_deref().and_then(ErrorClass::parse),
        fix_hint: r.try_get("fix_hint")?,
        read_score: r.try_get("read_score")?,
        request_excerpt: r.try_get("request_excerpt")?,
        response_excerpt: r.try_get("response_excerpt")?,
        cause: r
            .try_get::<Option<String>, _>("cause")?
            .as_deref()
            .and_then(crate::model::Cause::parse),
    })
}

impl Store {
    /// Journal an attempt before its request is sent; returns its id.
    pub async fn start_attempt(conn: &mut SqliteConnection, a: &NewAttempt) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO attempts (grade_ref, activity_ref, learner_ref, operation, transport, target,
               message_identifier, started_at, request_excerpt)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.grade_ref)
        .bind(a.activity_ref)
        .bind(a.learner_ref)
        .bind(a.operation.as_str())
        .bind(a.transport.as_str())
        .bind(&a.target)
        .bind(&a.message_identifier)
        .bind(now_rfc3339())
        .bind(&a.request_excerpt)
        .execute(&mut *conn)
        .await?
        .last_insert_rowid())
    }

    /// Complete a journaled attempt. Completing one twice is an error: the
    /// journal is append-only history.
    pub async fn finish_attempt(conn: &mut SqliteConnection, id: i64, r: &AttemptResult) -> Result<()> {
        let done = sqlx::query(
            "UPDATE attempts SET finished_at = ?, outcome = ?, http_status = ?, code_major = ?, description = ?,
               error_class = ?, fix_hint = ?, read_score = ?, response_excerpt = ?, cause = ?
             WHERE id = ? AND finished_at IS NULL",
        )
        .bind(now_rfc3339())
        .bind(r.outcome.as_str())
        .bind(r.http_status.map(i64::from))
        .bind(&r.code_major)
        .bind(&r.description)
        .bind(r.error_class.map(ErrorClass::as_str))
        .bind(&r.fix_hint)
        .bind(r.read_score)
        .bind(&r.response_excerpt)
        .bind(r.cause.map(crate::model::Cause::as_str))
        .bind(id)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::conflict(format!(
                "attempt {id} is unknown or already finished"
            )));
        }
        Ok(())
    }

    /// The (activity, learner) of the grade an attempt is linked to, if any.
    pub async fn attempt_grade_key(conn: &mut SqliteConnection, id: i64) -> Result<Option<GradeKey>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT g.activity_ref, g.learner_ref FROM attempts x JOIN grades g ON g.id = x.grade_ref WHERE x.id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(activity_ref, learner_ref)| GradeKey {
            activity_ref,
            learner_ref,
        }))
    }

    /// The (activity, learner) of a grade version.
    pub async fn grade_key_of(conn: &mut SqliteConnection, grade_ref: i64) -> Result<Option<GradeKey>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT activity_ref, learner_ref FROM grades WHERE id = ?")
                .bind(grade_ref)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(row.map(|(activity_ref, learner_ref)| GradeKey {
            activity_ref,
            learner_ref,
        }))
    }

    pub async fn attempt(&self, id: i64) -> Result<Attempt> {
        let r = sqlx::query("SELECT * FROM attempts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(format!("no attempt {id}")))?;
        attempt_from_row(&r)
    }

    /// Attempts for a grade version, newest first.
    pub async fn attempts_for_grade(&self, grade_ref: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM attempts WHERE grade_ref = ? ORDER BY id DESC")
            .bind(grade_ref)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// Most recent attempts across the ledger, newest first.
    pub async fn recent_attempts(&self, limit: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM attempts ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }
}
