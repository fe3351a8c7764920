//! The attempt journal.
//!
//! An attempt is written *before* its request leaves (outcome `pending`) and
//! completed afterwards, so a crash mid-request leaves a visible trace and a
//! grade is never marked sent unless the LMS said so.

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::sql::Sql;

use super::{Engine, GradeKey, Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{Attempt, AttemptOutcome, AttemptResult, ErrorClass, NewAttempt};

fn attempt_from_row(r: &AnyRow) -> Result<Attempt> {
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

/// The columns a finished attempt sets, in `VALUES` order after its id.
const FINISH_COLUMNS: usize = 11;

impl Store {
    /// Journal an attempt before its request is sent; returns its id.
    pub async fn start_attempt(conn: &mut AnyConnection, a: &NewAttempt) -> Result<i64> {
        let ids = Self::start_attempts(conn, std::slice::from_ref(a)).await?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::internal("the journal returned no attempt id"))
    }

    /// Journal many attempts (one statement per power-of-two chunk); returns their
    /// ids in order.
    pub async fn start_attempts(conn: &mut AnyConnection, attempts: &[NewAttempt]) -> Result<Vec<i64>> {
        let now = now_rfc3339();
        let mut ids = Vec::with_capacity(attempts.len());
        for chunk in super::imports::shaped(attempts) {
            let mut q: Sql = Sql::new(
                "INSERT INTO attempts (grade_ref, activity_ref, learner_ref, operation, transport, target,
                   message_identifier, started_at, request_excerpt, run_id, actor) ",
            );
            q.push_values(chunk, |mut b, a| {
                b.push_bind(a.grade_ref)
                    .push_bind(a.activity_ref)
                    .push_bind(a.learner_ref)
                    .push_bind(a.operation.as_str())
                    .push_bind(a.transport.as_str())
                    .push_bind(a.target.clone())
                    .push_bind(a.message_identifier.clone())
                    .push_bind(now.clone())
                    .push_bind(a.request_excerpt.clone())
                    .push_bind(super::sync::run_id())
                    .push_bind(super::actor());
            });
            let n = chunk.len() as i64;
            match Engine::of(conn) {
                // One statement inserts its rows in VALUES order, each taking the
                // next rowid while this connection holds the write lock: the rows
                // are the `n` ids ending at the last inserted one. (Not
                // `RETURNING`: that streams one message per row between the
                // database thread and ours.)
                Engine::Sqlite => {
                    let done = q.build().execute(&mut *conn).await?;
                    if done.rows_affected() != chunk.len() as u64 {
                        return Err(Error::internal("the journal did not take every attempt"));
                    }
                    let (last,): (i64,) = sqlx::query_as("SELECT last_insert_rowid()")
                        .fetch_one(&mut *conn)
                        .await?;
                    ids.extend((last - n + 1)..=last);
                }
                // Identity values of concurrent inserts may interleave: ask for
                // them (PostgreSQL returns a VALUES insert's rows in order).
                Engine::Postgres => {
                    q.push(" RETURNING id");
                    let got: Vec<i64> = q.build_query_scalar().fetch_all(&mut *conn).await?;
                    if got.len() != chunk.len() {
                        return Err(Error::internal("the journal did not take every attempt"));
                    }
                    ids.extend(got);
                }
            }
        }
        Ok(ids)
    }

    /// Complete a journaled attempt. Completing one twice is an error: the
    /// journal is append-only history. A successful read records what the LMS
    /// held, and a confirmed write of a grade version what it holds now, as
    /// observations of the grade.
    pub async fn finish_attempt(conn: &mut AnyConnection, id: i64, r: &AttemptResult) -> Result<()> {
        // The journal is append-only: one attempt, finished once.
        if Self::close_attempts(conn, &[(id, r, None)]).await? == 0 {
            return Err(Error::conflict(format!(
                "attempt {id} is unknown or already finished"
            )));
        }
        Self::observe_attempts(conn, &[id]).await
    }

    /// Complete many journaled attempts (see [`Store::finish_attempt`]), in a
    /// few statements whatever their number. Each may say when its answer
    /// arrived (RFC 3339); otherwise it finished now.
    pub async fn finish_attempts(
        conn: &mut AnyConnection,
        done: &[(i64, &AttemptResult, Option<&str>)],
    ) -> Result<()> {
        Self::close_attempts(conn, done).await?;
        let ids: Vec<i64> = done.iter().map(|(id, ..)| *id).collect();
        Self::observe_attempts(conn, &ids).await
    }

    /// Record how attempts ended, and nothing else: what the LMS was seen to hold
    /// is recorded by [`Store::observe_attempts`] (the sync journal does it for
    /// many commits at once).
    /// Returns how many it closed: an attempt another run closed already (see
    /// below) is left as it is.
    pub async fn close_attempts(
        conn: &mut AnyConnection,
        done: &[(i64, &AttemptResult, Option<&str>)],
    ) -> Result<u64> {
        let mut closed = 0;
        if done.is_empty() {
            return Ok(0);
        }
        let now = now_rfc3339();
        for chunk in super::imports::shaped(done) {
            let mut q: Sql = Sql::new(
                "UPDATE attempts SET finished_at = v.column2, outcome = v.column3, http_status = v.column4,
                   code_major = v.column5, description = v.column6, error_class = v.column7, fix_hint = v.column8,
                   read_score = v.column9, response_excerpt = v.column10, cause = v.column11
                 FROM (",
            );
            q.push_values(chunk, |mut b, (id, r, at)| {
                b.push_bind(*id)
                    .push_bind(at.map_or_else(|| now.clone(), str::to_string))
                    .push_bind(r.outcome.as_str())
                    .push_bind(r.http_status.map(i64::from))
                    .push_bind(r.code_major.clone())
                    .push_bind(r.description.clone())
                    .push_bind(r.error_class.map(ErrorClass::as_str))
                    .push_bind(r.fix_hint.clone())
                    .push_bind(super::sql::Real(r.read_score))
                    .push_bind(r.response_excerpt.clone())
                    .push_bind(r.cause.map(crate::model::Cause::as_str));
            });
            debug_assert_eq!(FINISH_COLUMNS, 11);
            q.push(") AS v WHERE attempts.id = v.column1 AND attempts.finished_at IS NULL");
            let finished = q.build().execute(&mut *conn).await?.rows_affected();
            closed += finished;
            if finished != chunk.len() as u64 {
                // Closed already: another run took this run's grades when its claims
                // expired (a computer that slept through its lease) and closed what
                // it had in flight as interrupted; that run reads the LMS, so this
                // late answer changes nothing.
                let ids: Vec<i64> = chunk.iter().map(|(id, ..)| *id).collect();
                tracing::warn!(
                    closed_elsewhere = chunk.len() as u64 - finished,
                    ?ids,
                    "answers arrived for attempts another run had already closed"
                );
            }
        }
        Ok(closed)
    }

    /// What these finished attempts showed the LMS to hold, as observations of
    /// their grades: a successful read's value; a confirmed write's grade
    /// version. An attempt already observed is skipped, so this can run again
    /// (recovery does, for a run that stopped between a commit and its fold).
    pub async fn observe_attempts(conn: &mut AnyConnection, ids: &[i64]) -> Result<()> {
        for chunk in super::imports::shaped(ids) {
            let mut q: Sql = Sql::new(
                "INSERT INTO lms_observations (activity_ref, learner_ref, score, observed_at, source, attempt_ref)
                 SELECT x.activity_ref, x.learner_ref,
                        CASE WHEN x.operation IN ('read', 'score_read') THEN x.read_score
                             ELSE g.score_given / g.score_maximum END,
                        x.finished_at,
                        CASE WHEN x.operation IN ('read', 'score_read') THEN 'read' ELSE 'sent' END,
                        x.id
                 FROM attempts x LEFT JOIN grades g ON g.id = x.grade_ref
                 WHERE x.outcome = 'success' AND x.activity_ref IS NOT NULL AND x.learner_ref IS NOT NULL
                   AND (x.operation IN ('read', 'score_read')
                        OR (x.operation IN ('replace', 'score') AND g.score_maximum > 0))
                   AND NOT EXISTS (SELECT 1 FROM lms_observations o WHERE o.attempt_ref = x.id)
                   AND x.id IN (",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The finished attempts a run (`pid@host`, started at `since`) journaled,
    /// with the grades they were about: what recovery folds when that run's
    /// process stopped before folding them itself.
    pub async fn finished_attempts_of_run(
        conn: &mut AnyConnection,
        run_id: &str,
        since: &str,
    ) -> Result<(Vec<i64>, Vec<GradeKey>)> {
        let rows: Vec<(i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT id, activity_ref, learner_ref FROM attempts
             WHERE run_id = $1 AND started_at >= $2 AND finished_at IS NOT NULL ORDER BY id",
        )
        .bind(run_id)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for (id, a, l) in rows {
            ids.push(id);
            if let (Some(activity_ref), Some(learner_ref)) = (a, l) {
                keys.push(GradeKey {
                    activity_ref,
                    learner_ref,
                });
            }
        }
        Ok((ids, keys))
    }

    /// The (activity, learner) of the grade an attempt is linked to, if any.
    pub async fn attempt_grade_key(conn: &mut AnyConnection, id: i64) -> Result<Option<GradeKey>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT g.activity_ref, g.learner_ref FROM attempts x JOIN grades g ON g.id = x.grade_ref WHERE x.id = $1",
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
    pub async fn grade_key_of(conn: &mut AnyConnection, grade_ref: i64) -> Result<Option<GradeKey>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT activity_ref, learner_ref FROM grades WHERE id = $1")
                .bind(grade_ref)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(row.map(|(activity_ref, learner_ref)| GradeKey {
            activity_ref,
            learner_ref,
        }))
    }

    pub async fn attempt(&self, id: i64) -> Result<Attempt> {
        let r = sqlx::query("SELECT * FROM attempts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::not_found(format!("no attempt {id}")))?;
        attempt_from_row(&r)
    }

    /// Attempts for a grade version, newest first.
    pub async fn attempts_for_grade(&self, grade_ref: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM attempts WHERE grade_ref = $1 ORDER BY id DESC")
            .bind(grade_ref)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// The attempts about every version of the grade `grade_ref` is a version
    /// of (the same activity and learner), newest first, at most `limit`.
    pub async fn attempts_for_pair(&self, grade_ref: i64, limit: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT x.* FROM attempts x
             WHERE x.grade_ref IN (
                 SELECT g2.id FROM grades g1
                 JOIN grades g2 ON g2.activity_ref = g1.activity_ref AND g2.learner_ref = g1.learner_ref
                 WHERE g1.id = $1)
             ORDER BY x.id DESC LIMIT $2",
        )
        .bind(grade_ref)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// How many LMS observations the ledger holds (tests).
    #[cfg(test)]
    pub async fn observation_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM lms_observations")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Most recent attempts across the ledger, newest first.
    pub async fn recent_attempts(&self, limit: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM attempts ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attempt_from_row).collect()
    }
}
