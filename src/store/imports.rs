//! Import batches, the rows they rejected or skipped, and the changes they made
//! (so a batch can be taken back).

use std::collections::HashMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row, any::AnyRow};

use super::sql::Sql;

use super::{GradeKey, Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{ImportBatch, OutcomeTarget, RowIssue, RowIssueKind};

/// A batch about to be read.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    pub file_name: &'a str,
    pub file_hash: &'a str,
    pub file_bytes: i64,
    pub format: &'a str,
    pub platform_ref: Option<i64>,
}

/// How a batch ended.
#[derive(Debug, Clone, Default)]
pub struct BatchCounts {
    pub read: i64,
    pub imported: i64,
    pub unchanged: i64,
    pub quarantined: i64,
    pub skipped: i64,
}

/// An outcome target a batch set, and the one it replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetChange {
    pub key: GradeKey,
    pub previous: Option<OutcomeTarget>,
}

/// What taking a batch back removed, and the pairs whose status must be decided again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TakenBack {
    pub grade_versions: u64,
    pub targets: u64,
    pub observations: u64,
    pub attempts: u64,
    pub launches: u64,
    pub touched: Vec<GradeKey>,
}

fn batch_from_row(r: &AnyRow) -> Result<ImportBatch> {
    let notes: String = r.try_get("notes")?;
    Ok(ImportBatch {
        id: r.try_get("id")?,
        file_name: r.try_get("file_name")?,
        file_hash: r.try_get("file_hash")?,
        file_bytes: r.try_get("file_bytes")?,
        format: r.try_get("format")?,
        platform: r.try_get("platform")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        status: r.try_get("status")?,
        rows_read: r.try_get("rows_read")?,
        rows_imported: r.try_get("rows_imported")?,
        rows_unchanged: r.try_get("rows_unchanged")?,
        rows_quarantined: r.try_get("rows_quarantined")?,
        rows_skipped: r.try_get("rows_skipped")?,
        notes: serde_json::from_str(&notes).unwrap_or_default(),
        actor: r.try_get("actor")?,
    })
}

const SELECT_BATCH: &str = "SELECT b.*, p.name AS platform FROM import_batches b
                            LEFT JOIN platforms p ON p.id = b.platform_ref";

/// The most rows a multi-row statement carries (SQLite allows 32766 bound values).
pub(super) const CHUNK: usize = 256;

/// `rows` in chunks of power-of-two sizes up to [`CHUNK`]: a multi-row statement
/// then comes in at most nine shapes, each prepared once and cached, instead of
/// one shape (and one parse) for every row count.
pub(super) fn shaped<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = 1usize << (usize::BITS - 1 - rest.len().min(CHUNK).leading_zeros());
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

impl Store {
    pub async fn insert_batch(conn: &mut AnyConnection, b: &NewBatch<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "INSERT INTO import_batches (file_name, file_hash, file_bytes, format, platform_ref, started_at, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(b.file_name)
        .bind(b.file_hash)
        .bind(b.file_bytes)
        .bind(b.format)
        .bind(b.platform_ref)
        .bind(now_rfc3339())
        .bind(super::actor())
        .fetch_one(&mut *conn)
        .await?)
    }

    pub async fn finish_batch(
        conn: &mut AnyConnection,
        id: i64,
        status: &str,
        c: &BatchCounts,
        notes: &[String],
    ) -> Result<()> {
        sqlx::query(
            "UPDATE import_batches SET finished_at = $1, status = $2, rows_read = $3, rows_imported = $4,
               rows_unchanged = $5, rows_quarantined = $6, rows_skipped = $7, notes = $8 WHERE id = $9",
        )
        .bind(now_rfc3339())
        .bind(status)
        .bind(c.read)
        .bind(c.imported)
        .bind(c.unchanged)
        .bind(c.quarantined)
        .bind(c.skipped)
        .bind(serde_json::to_string(notes).map_err(|e| Error::internal(e.to_string()))?)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// What is known of a batch's file once it is read: its hash, and the one
    /// platform its rows were about (when no `--platform` named it up front).
    pub async fn set_batch_file(
        conn: &mut AnyConnection,
        id: i64,
        hash: &str,
        platform_ref: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE import_batches SET file_hash = $1, platform_ref = COALESCE(platform_ref, $2) WHERE id = $3",
        )
        .bind(hash)
        .bind(platform_ref)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn set_batch_status(conn: &mut AnyConnection, id: i64, status: &str) -> Result<()> {
        sqlx::query("UPDATE import_batches SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn insert_issues(conn: &mut AnyConnection, batch: i64, issues: &[RowIssue]) -> Result<()> {
        for chunk in shaped(issues) {
            let mut q: Sql =
                Sql::new("INSERT INTO import_issues (batch_ref, line, column_name, kind, reason) ");
            q.push_values(chunk, |mut b, i| {
                b.push_bind(batch)
                    .push_bind(i.line as i64)
                    .push_bind(i.column.clone())
                    .push_bind(i.kind.as_str())
                    .push_bind(i.reason.clone());
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Every batch, newest first.
    pub async fn list_batches(&self) -> Result<Vec<ImportBatch>> {
        let rows = sqlx::query(AssertSqlSafe(format!("{SELECT_BATCH} ORDER BY b.id DESC")))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(batch_from_row).collect()
    }

    pub async fn batch(&self, id: i64) -> Result<ImportBatch> {
        let row = sqlx::query(AssertSqlSafe(format!("{SELECT_BATCH} WHERE b.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no import batch {id}; `passback import list` shows the batches in this ledger"
                ))
            })?;
        batch_from_row(&row)
    }

    /// The rows a batch rejected or skipped, in file order.
    pub async fn batch_issues(&self, id: i64) -> Result<Vec<RowIssue>> {
        // Issues of one line in the order they were written: SQLite's rowid,
        // PostgreSQL's row position (the table is only ever appended to).
        let sql = match self.engine {
            super::Engine::Sqlite => {
                "SELECT line, column_name, kind, reason FROM import_issues WHERE batch_ref = $1 ORDER BY line, rowid"
            }
            super::Engine::Postgres => {
                "SELECT line, column_name, kind, reason FROM import_issues WHERE batch_ref = $1 ORDER BY line, ctid"
            }
        };
        let rows = sqlx::query(sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(RowIssue {
                    line: r.try_get::<i64, _>("line")? as u64,
                    column: r.try_get("column_name")?,
                    kind: if kind == "skipped" {
                        RowIssueKind::Skipped
                    } else {
                        RowIssueKind::Rejected
                    },
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Remember the outcome targets a batch replaced.
    pub async fn record_target_changes(
        conn: &mut AnyConnection,
        batch: i64,
        changes: &[TargetChange],
    ) -> Result<()> {
        for chunk in shaped(changes) {
            let mut rows = Vec::with_capacity(chunk.len());
            for c in chunk {
                let previous = match &c.previous {
                    Some(t) => Some(serde_json::to_string(t).map_err(|e| Error::internal(e.to_string()))?),
                    None => None,
                };
                rows.push((c.key, previous));
            }
            let mut q: Sql = Sql::new(
                "INSERT INTO batch_target_changes (batch_ref, activity_ref, learner_ref, previous) ",
            );
            q.push_values(rows, |mut b, (key, previous)| {
                b.push_bind(batch)
                    .push_bind(key.activity_ref)
                    .push_bind(key.learner_ref)
                    .push_bind(previous);
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Batches after `batch`, not undone, that changed a grade, target or
    /// observation of a pair `batch` changed. (Scans: undo is rare, imports are not.)
    pub async fn later_batches_on_same_grades(conn: &mut AnyConnection, batch: i64) -> Result<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "WITH mine (activity_ref, learner_ref) AS (
                 SELECT activity_ref, learner_ref FROM grades WHERE batch_ref = $1
                 UNION SELECT activity_ref, learner_ref FROM lms_observations WHERE batch_ref = $1
                 UNION SELECT activity_ref, learner_ref FROM batch_target_changes WHERE batch_ref = $1),
             later (batch_ref, activity_ref, learner_ref) AS (
                 SELECT batch_ref, activity_ref, learner_ref FROM grades WHERE batch_ref > $1
                 UNION ALL SELECT batch_ref, activity_ref, learner_ref FROM lms_observations WHERE batch_ref > $1
                 UNION ALL SELECT batch_ref, activity_ref, learner_ref FROM batch_target_changes WHERE batch_ref > $1)
             SELECT DISTINCT l.batch_ref FROM later l
             JOIN mine m ON m.activity_ref = l.activity_ref AND m.learner_ref = l.learner_ref
             JOIN import_batches b ON b.id = l.batch_ref AND b.status <> 'undone'
             ORDER BY l.batch_ref",
        )
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    /// Passback's own attempts that used a grade version or a target the batch added.
    pub async fn attempts_built_on_batch(conn: &mut AnyConnection, batch: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM attempts x WHERE x.origin = 'passback' AND (
               x.grade_ref IN (SELECT id FROM grades WHERE batch_ref = $1)
               OR (x.activity_ref, x.learner_ref) IN (
                    SELECT c.activity_ref, c.learner_ref FROM batch_target_changes c
                    JOIN import_batches b ON b.id = c.batch_ref
                    WHERE c.batch_ref = $1 AND x.started_at >= b.started_at))",
        )
        .bind(batch)
        .fetch_one(&mut *conn)
        .await?;
        Ok(n)
    }

    /// Take back everything a batch added: its grade versions (each pair's
    /// current grade moves to the version before, or the pair has none), the
    /// targets it replaced (put back), its LMS observations, the attempts of
    /// other systems and the launches it recorded. Statuses are left to the caller.
    pub async fn take_back_batch(conn: &mut AnyConnection, batch: i64) -> Result<TakenBack> {
        let mut out = TakenBack::default();
        let touched: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT activity_ref, learner_ref FROM grades WHERE batch_ref = $1
             UNION SELECT activity_ref, learner_ref FROM lms_observations WHERE batch_ref = $1
             UNION SELECT activity_ref, learner_ref FROM attempts WHERE batch_ref = $1 AND activity_ref IS NOT NULL
                                                                        AND learner_ref IS NOT NULL
             UNION SELECT activity_ref, learner_ref FROM batch_target_changes WHERE batch_ref = $1",
        )
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        out.touched = touched
            .into_iter()
            .map(|(activity_ref, learner_ref)| GradeKey {
                activity_ref,
                learner_ref,
            })
            .collect();

        // Targets: each pair gets back what it had before the batch's first change.
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT activity_ref, learner_ref, previous FROM batch_target_changes WHERE batch_ref = $1 ORDER BY id",
        )
        .bind(batch)
        .fetch_all(&mut *conn)
        .await?;
        let mut first: HashMap<GradeKey, Option<String>> = HashMap::new();
        for (activity_ref, learner_ref, previous) in rows {
            first
                .entry(GradeKey {
                    activity_ref,
                    learner_ref,
                })
                .or_insert(previous);
        }
        out.targets = first.len() as u64;
        let mut restore = Vec::new();
        let mut remove = Vec::new();
        for (key, previous) in first {
            match previous {
                Some(json) => restore.push((
                    key,
                    serde_json::from_str::<OutcomeTarget>(&json)
                        .map_err(|e| Error::internal(format!("a batch change holds a bad target: {e}")))?,
                )),
                None => remove.push(key),
            }
        }
        Self::set_outcome_targets(conn, &restore).await?;
        for chunk in shaped(&remove) {
            let mut q: Sql = Sql::new("DELETE FROM outcome_targets WHERE id IN (SELECT t.id FROM ");
            super::bulk::push_keys(&mut q, chunk);
            q.push(
                " AS k JOIN outcome_targets t ON t.activity_ref = k.column1 AND t.learner_ref = k.column2)",
            );
            q.build().execute(&mut *conn).await?;
        }

        let gone = |r: sqlx::any::AnyQueryResult| r.rows_affected();
        out.attempts = gone(
            sqlx::query("DELETE FROM attempts WHERE batch_ref = $1 AND origin <> 'passback'")
                .bind(batch)
                .execute(&mut *conn)
                .await?,
        );
        out.attempts += gone(
            sqlx::query(
                "DELETE FROM attempts WHERE origin <> 'passback'
                   AND grade_ref IN (SELECT id FROM grades WHERE batch_ref = $1)",
            )
            .bind(batch)
            .execute(&mut *conn)
            .await?,
        );
        out.observations = gone(
            sqlx::query("DELETE FROM lms_observations WHERE batch_ref = $1")
                .bind(batch)
                .execute(&mut *conn)
                .await?,
        );
        out.launches = gone(
            sqlx::query("DELETE FROM launches WHERE batch_ref = $1")
                .bind(batch)
                .execute(&mut *conn)
                .await?,
        );
        sqlx::query(
            "DELETE FROM current_grades WHERE grade_ref IN (SELECT id FROM grades WHERE batch_ref = $1)",
        )
        .bind(batch)
        .execute(&mut *conn)
        .await?;
        out.grade_versions = gone(
            sqlx::query("DELETE FROM grades WHERE batch_ref = $1")
                .bind(batch)
                .execute(&mut *conn)
                .await?,
        );
        // The pairs whose current version went: the newest version left, if any.
        for chunk in shaped(&out.touched) {
            let mut q: Sql = Sql::new(
                "INSERT INTO current_grades (activity_ref, learner_ref, grade_ref, status)
                 SELECT g.activity_ref, g.learner_ref, g.id, 'pending' FROM ",
            );
            super::bulk::push_keys(&mut q, chunk);
            q.push(
                " AS k JOIN grades g ON g.activity_ref = k.column1 AND g.learner_ref = k.column2
                 WHERE g.version = (SELECT MAX(g2.version) FROM grades g2
                                   WHERE g2.activity_ref = g.activity_ref AND g2.learner_ref = g.learner_ref)
                 AND NOT EXISTS (SELECT 1 FROM current_grades cg
                                 WHERE cg.activity_ref = g.activity_ref AND cg.learner_ref = g.learner_ref)",
            );
            q.build().execute(&mut *conn).await?;
        }
        sqlx::query("DELETE FROM batch_target_changes WHERE batch_ref = $1")
            .bind(batch)
            .execute(&mut *conn)
            .await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_power_of_two_shapes_covering_every_row_once() {
        for n in [0usize, 1, 2, 3, 255, 256, 257, 511, 512, 1000] {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = shaped(&rows).collect();
            let flat: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(flat, rows, "{n} rows, in order, once");
            assert!(
                chunks
                    .iter()
                    .all(|c| c.len().is_power_of_two() && c.len() <= CHUNK),
                "{n}: {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
        }
        assert_eq!(
            shaped(&[0; 511]).map(<[i32]>::len).collect::<Vec<_>>(),
            [256, 128, 64, 32, 16, 8, 4, 2, 1]
        );
    }
}
