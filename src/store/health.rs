//! What the window's overview shows: grades by status per platform and course,
//! the oldest grade the LMS still lacks, failures grouped by cause, and the last
//! run. All counted in SQL (grouped, never listed), so a ledger of any size
//! answers with a few rows.

use sqlx::Row;

use super::Store;
use crate::error::{Error, Result};
use crate::model::{Cause, GradeStatus};

/// One course's grades by status.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct PlaceCounts {
    pub platform: String,
    pub context_id: String,
    pub context_title: Option<String>,
    /// Every status present, with its count.
    pub counts: Vec<(GradeStatus, i64)>,
    /// When the oldest grade the LMS does not hold yet (pending, missing in the
    /// LMS, differing, failed or unknown) was recorded (RFC 3339).
    pub oldest_unsent: Option<String>,
}

/// Failed grades that share a cause.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct FailureGroup {
    /// `null`: failures journaled before causes were recorded.
    pub cause: Option<Cause>,
    pub grades: i64,
    /// What the LMS or the transport said, for one of them.
    pub description: Option<String>,
    /// What to do about it.
    pub fix_hint: Option<String>,
}

impl Store {
    /// Grades by status for every course, busiest platform and course first.
    pub async fn counts_by_place(&self) -> Result<Vec<PlaceCounts>> {
        let rows = sqlx::query(
            "SELECT p.name AS platform, c.context_id, c.title AS context_title, cg.status, COUNT(*) AS n,
                    MIN(CASE WHEN cg.status IN ('pending', 'lms_missing', 'differs', 'failed', 'unknown')
                        THEN g.recorded_at END) AS oldest
             FROM current_grades cg
             JOIN grades g ON g.id = cg.grade_ref
             JOIN activities a ON a.id = cg.activity_ref
             JOIN contexts c ON c.id = a.context_ref
             JOIN platforms p ON p.id = c.platform_id
             GROUP BY p.name, c.context_id, c.title, cg.status
             ORDER BY p.name, c.context_id, cg.status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<PlaceCounts> = Vec::new();
        for r in rows {
            let platform: String = r.try_get("platform")?;
            let context_id: String = r.try_get("context_id")?;
            let s: String = r.try_get("status")?;
            let status =
                GradeStatus::parse(&s).ok_or_else(|| Error::internal(format!("unknown status {s:?}")))?;
            let n: i64 = r.try_get("n")?;
            let oldest: Option<String> = r.try_get("oldest")?;
            let same = out
                .last()
                .is_some_and(|p| p.platform == platform && p.context_id == context_id);
            if !same {
                out.push(PlaceCounts {
                    platform,
                    context_id,
                    context_title: r.try_get("context_title")?,
                    counts: Vec::new(),
                    oldest_unsent: None,
                });
            }
            let place = out.last_mut().expect("pushed above");
            place.counts.push((status, n));
            if let Some(o) = oldest
                && place.oldest_unsent.as_ref().is_none_or(|cur| o < *cur)
            {
                place.oldest_unsent = Some(o);
            }
        }
        let total = |p: &PlaceCounts| p.counts.iter().map(|(_, n)| n).sum::<i64>();
        out.sort_by(|a, b| total(b).cmp(&total(a)).then(a.platform.cmp(&b.platform)));
        Ok(out)
    }

    /// Failed grades grouped by the cause of their latest answered attempt, the
    /// largest group first.
    pub async fn failure_groups(&self) -> Result<Vec<FailureGroup>> {
        let rows = sqlx::query(
            "SELECT x.cause, COUNT(*) AS n, MIN(x.description) AS description, MIN(x.fix_hint) AS fix_hint
             FROM current_grades cg
             JOIN attempts x ON x.id = (
                 SELECT x2.id FROM attempts x2
                 WHERE x2.grade_ref = cg.grade_ref AND x2.finished_at IS NOT NULL
                 ORDER BY x2.id DESC LIMIT 1)
             WHERE cg.status = 'failed'
             GROUP BY x.cause
             ORDER BY n DESC, x.cause",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FailureGroup {
                    cause: r
                        .try_get::<Option<String>, _>("cause")?
                        .as_deref()
                        .and_then(Cause::parse),
                    grades: r.try_get("n")?,
                    description: r.try_get("description")?,
                    fix_hint: r.try_get("fix_hint")?,
                })
            })
            .collect()
    }
}
