//! The grade listing: filtered in SQL on the stored status and the names, sorted
//! by platform, course, activity and learner, and streamed row by row so a
//! ledger of any size lists in bounded memory.

use futures_util::TryStreamExt;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::Store;
use crate::error::{Error, Result};
use crate::model::{GradeRow, GradeStatus};

/// Which current grades to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct GradeFilter {
    /// Any of these statuses.
    pub status: Vec<GradeStatus>,
    /// A platform's name.
    pub platform: Option<String>,
    /// A course's LTI `context_id`.
    pub context: Option<String>,
    /// An activity's `resource_link_id` (or its title).
    pub activity: Option<String>,
    /// A learner's LTI `user_id`.
    pub learner: Option<String>,
}

fn row(r: &sqlx::sqlite::SqliteRow) -> Result<GradeRow> {
    let status: String = r.try_get("status")?;
    Ok(GradeRow {
        grade_id: r.try_get("grade_id")?,
        platform: r.try_get("platform")?,
        context_id: r.try_get("context_id")?,
        resource_link_id: r.try_get("resource_link_id")?,
        activity_title: r.try_get("activity_title")?,
        lti_user_id: r.try_get("lti_user_id")?,
        learner_name: r.try_get("learner_name")?,
        version: r.try_get("version")?,
        score_given: r.try_get("score_given")?,
        score_maximum: r.try_get("score_maximum")?,
        recorded_at: r.try_get("recorded_at")?,
        status: GradeStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("unknown grade status {status:?} in the ledger")))?,
        status_detail: r.try_get("status_detail")?,
    })
}

impl Store {
    /// Call `each` with every current grade the filter matches, in listing order,
    /// without holding the listing in memory. Returns how many there were.
    pub async fn for_each_grade_row(
        &self,
        f: &GradeFilter,
        mut each: impl FnMut(GradeRow) -> Result<()>,
    ) -> Result<u64> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT g.id AS grade_id, p.name AS platform, c.context_id, a.resource_link_id,
                    a.title AS activity_title, l.lti_user_id, l.name AS learner_name, g.version, g.score_given,
                    g.score_maximum, g.recorded_at, cg.status, cg.status_detail
             FROM current_grades cg
             JOIN grades g ON g.id = cg.grade_ref
             JOIN activities a ON a.id = cg.activity_ref
             JOIN contexts c ON c.id = a.context_ref
             JOIN platforms p ON p.id = c.platform_id
             JOIN learners l ON l.id = cg.learner_ref
             WHERE 1 = 1",
        );
        if !f.status.is_empty() {
            q.push(" AND cg.status IN (");
            let mut sep = q.separated(", ");
            for s in &f.status {
                sep.push_bind(s.as_str());
            }
            q.push(")");
        }
        if let Some(p) = &f.platform {
            q.push(" AND p.name = ").push_bind(p.clone());
        }
        if let Some(c) = &f.context {
            q.push(" AND c.context_id = ").push_bind(c.clone());
        }
        if let Some(a) = &f.activity {
            q.push(" AND (a.resource_link_id = ")
                .push_bind(a.clone())
                .push(" OR a.title = ")
                .push_bind(a.clone())
                .push(")");
        }
        if let Some(l) = &f.learner {
            q.push(" AND l.lti_user_id = ").push_bind(l.clone());
        }
        q.push(" ORDER BY p.name, c.context_id, a.resource_link_id, l.lti_user_id");
        let mut rows = q.build().fetch(&self.pool);
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            each(row(&r)?)?;
            n += 1;
        }
        Ok(n)
    }

    /// The current version of every grade the filter matches, with names and its stored status.
    pub async fn list_grade_rows_where(&self, f: &GradeFilter) -> Result<Vec<GradeRow>> {
        let mut out = Vec::new();
        self.for_each_grade_row(f, |r| {
            out.push(r);
            Ok(())
        })
        .await?;
        Ok(out)
    }
}
