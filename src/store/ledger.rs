//! Contexts, activities, learners, outcome targets and versioned grades.
//!
//! Writes take a connection (a transaction the caller, [`crate::intake`], owns),
//! so a fact and the statuses it changes are committed together. Reads use the
//! pool.

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::{Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{Activity, ActivityRow, Context, Grade, GradeRow, Learner, NewGrade, OutcomeTarget, Role};

/// Identifies one (activity, learner) pair in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GradeKey {
    pub activity_ref: i64,
    pub learner_ref: i64,
}

pub(super) fn grade_from_row(r: &AnyRow) -> Result<Grade> {
    Ok(Grade {
        id: r.try_get("id")?,
        activity_ref: r.try_get("activity_ref")?,
        learner_ref: r.try_get("learner_ref")?,
        version: r.try_get("version")?,
        score_given: r.try_get("score_given")?,
        score_maximum: r.try_get("score_maximum")?,
        comment: r.try_get("comment")?,
        result_text: r.try_get("result_text")?,
        result_url: r.try_get("result_url")?,
        submitted_at: r.try_get("submitted_at")?,
        recorded_at: r.try_get("recorded_at")?,
        source: r.try_get("source")?,
        observed_at: r.try_get("observed_at")?,
    })
}

fn activity_from_row(r: &AnyRow) -> Result<Activity> {
    Ok(Activity {
        id: r.try_get("id")?,
        context_ref: r.try_get("context_ref")?,
        resource_link_id: r.try_get("resource_link_id")?,
        title: r.try_get("title")?,
        points_possible: r.try_get("points_possible")?,
        ltiaas_line_item_id: r.try_get("ltiaas_line_item_id")?,
    })
}

fn learner_from_row(r: &AnyRow) -> Result<Learner> {
    let role: String = r.try_get("role")?;
    Ok(Learner {
        id: r.try_get("id")?,
        platform_id: r.try_get("platform_id")?,
        lti_user_id: r.try_get("lti_user_id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        person_sourcedid: r.try_get("person_sourcedid")?,
        role: Role::parse(&role).unwrap_or(Role::Unknown),
    })
}

pub(super) fn target_from_row(r: &AnyRow) -> Result<OutcomeTarget> {
    let flag = |name: &str| -> Result<bool> { Ok(r.try_get::<i64, _>(name)? != 0) };
    Ok(OutcomeTarget {
        lis_result_sourcedid: r.try_get("lis_result_sourcedid")?,
        lis_outcome_service_url: r.try_get("lis_outcome_service_url")?,
        ext_outcome_data_values_accepted: r.try_get("ext_outcome_data_values_accepted")?,
        ext_result_total_score_accepted: flag("ext_result_total_score_accepted")?,
        ext_submitted_at_accepted: flag("ext_submitted_at_accepted")?,
        ext_prioritize_non_tool_grade_accepted: flag("ext_prioritize_non_tool_grade_accepted")?,
        ext_needs_additional_review_accepted: flag("ext_needs_additional_review_accepted")?,
        service_key_ref: r.try_get("service_key_ref")?,
        learned_at: r.try_get("learned_at")?,
        learned_from: r.try_get("learned_from")?,
        unavailable_reason: r.try_get("unavailable_reason")?,
    })
}

/// Check a grade before it is recorded.
pub fn validate_grade(g: &NewGrade) -> Result<()> {
    if !g.score_maximum.is_finite() || g.score_maximum <= 0.0 {
        return Err(Error::invalid(format!(
            "score maximum must be a number above 0, got {}",
            g.score_maximum
        )));
    }
    if !g.score_given.is_finite() || g.score_given < 0.0 {
        return Err(Error::invalid(format!(
            "score given must be a number of 0 or more, got {}",
            g.score_given
        )));
    }
    if g.result_text.is_some() && g.result_url.is_some() {
        return Err(Error::invalid(
            "a grade carries either result text or a result URL, not both (LMSs accept only one kind)",
        ));
    }
    Ok(())
}

impl Store {
    pub async fn upsert_context(
        conn: &mut AnyConnection,
        platform_id: i64,
        context_id: &str,
        title: Option<&str>,
        label: Option<&str>,
    ) -> Result<Context> {
        let r = sqlx::query(
            "INSERT INTO contexts (platform_id, context_id, title, label) VALUES ($1, $2, $3, $4)
             ON CONFLICT (platform_id, context_id) DO UPDATE SET
               title = COALESCE(excluded.title, contexts.title),
               label = COALESCE(excluded.label, contexts.label)
             RETURNING id, platform_id, context_id, title, label",
        )
        .bind(platform_id)
        .bind(context_id)
        .bind(title)
        .bind(label)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Context {
            id: r.try_get("id")?,
            platform_id: r.try_get("platform_id")?,
            context_id: r.try_get("context_id")?,
            title: r.try_get("title")?,
            label: r.try_get("label")?,
        })
    }

    /// Insert or update an activity; fields given as `None` keep their stored value.
    pub async fn upsert_activity(
        conn: &mut AnyConnection,
        context_ref: i64,
        resource_link_id: &str,
        title: Option<&str>,
        points_possible: Option<f64>,
        ltiaas_line_item_id: Option<&str>,
    ) -> Result<Activity> {
        let r = sqlx::query(
            "INSERT INTO activities (context_ref, resource_link_id, title, points_possible, ltiaas_line_item_id)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (context_ref, resource_link_id) DO UPDATE SET
               title = COALESCE(excluded.title, activities.title),
               points_possible = COALESCE(excluded.points_possible, activities.points_possible),
               ltiaas_line_item_id = COALESCE(excluded.ltiaas_line_item_id, activities.ltiaas_line_item_id)
             RETURNING *",
        )
        .bind(context_ref)
        .bind(resource_link_id)
        .bind(title)
        .bind(super::sql::Real(points_possible))
        .bind(ltiaas_line_item_id)
        .fetch_one(&mut *conn)
        .await?;
        activity_from_row(&r)
    }

    /// Insert or update a learner; fields given as `None` keep their stored value.
    /// Also says whether the learner's role changed (their grades' statuses may).
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert_learner(
        conn: &mut AnyConnection,
        platform_id: i64,
        lti_user_id: &str,
        name: Option<&str>,
        email: Option<&str>,
        person_sourcedid: Option<&str>,
        role: Option<Role>,
    ) -> Result<(Learner, bool)> {
        let before: Option<(String,)> =
            sqlx::query_as("SELECT role FROM learners WHERE platform_id = $1 AND lti_user_id = $2")
                .bind(platform_id)
                .bind(lti_user_id)
                .fetch_optional(&mut *conn)
                .await?;
        let r = sqlx::query(
            "INSERT INTO learners (platform_id, lti_user_id, name, email, person_sourcedid, role)
             VALUES ($1, $2, $3, $4, $5, COALESCE($6, 'unknown'))
             ON CONFLICT (platform_id, lti_user_id) DO UPDATE SET
               name = COALESCE(excluded.name, learners.name),
               email = COALESCE(excluded.email, learners.email),
               person_sourcedid = COALESCE(excluded.person_sourcedid, learners.person_sourcedid),
               role = CASE WHEN $7 IS NULL THEN learners.role ELSE excluded.role END
             RETURNING *",
        )
        .bind(platform_id)
        .bind(lti_user_id)
        .bind(name)
        .bind(email)
        .bind(person_sourcedid)
        .bind(role.map(Role::as_str))
        .bind(role.map(Role::as_str))
        .fetch_one(&mut *conn)
        .await?;
        let learner = learner_from_row(&r)?;
        let changed = before.is_some_and(|(old,)| old != learner.role.as_str());
        Ok((learner, changed))
    }

    /// Record where a learner's grade for an activity goes. A newer target
    /// replaces the older one (the newest launch wins).
    pub async fn set_outcome_target(
        conn: &mut AnyConnection,
        key: GradeKey,
        t: &OutcomeTarget,
    ) -> Result<()> {
        Self::set_outcome_targets(conn, &[(key, t.clone())]).await
    }

    pub async fn outcome_target(&self, key: GradeKey) -> Result<Option<OutcomeTarget>> {
        let row = sqlx::query("SELECT * FROM outcome_targets WHERE activity_ref = $1 AND learner_ref = $2")
            .bind(key.activity_ref)
            .bind(key.learner_ref)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(target_from_row).transpose()
    }

    /// Record a local grade value. If it equals the current version nothing is
    /// written and the current version is returned (re-importing the same file
    /// never double-counts); otherwise a new version is added, the history kept,
    /// and the (activity, learner) pair's current grade moves to it.
    pub async fn record_grade(
        conn: &mut AnyConnection,
        key: GradeKey,
        g: &NewGrade,
    ) -> Result<(Grade, bool)> {
        validate_grade(g)?;
        let current = sqlx::query(
            "SELECT * FROM grades WHERE activity_ref = $1 AND learner_ref = $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .fetch_optional(&mut *conn)
        .await?;
        let next_version = match &current {
            Some(r) => {
                let cur = grade_from_row(r)?;
                if cur.score_given == g.score_given
                    && cur.score_maximum == g.score_maximum
                    && cur.comment == g.comment
                    && cur.result_text == g.result_text
                    && cur.result_url == g.result_url
                    && cur.submitted_at == g.submitted_at
                {
                    return Ok((cur, false));
                }
                cur.version + 1
            }
            None => 1,
        };
        let row = sqlx::query(
            "INSERT INTO grades (activity_ref, learner_ref, version, score_given, score_maximum, comment,
               result_text, result_url, submitted_at, recorded_at, source, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             RETURNING *",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .bind(next_version)
        .bind(g.score_given)
        .bind(g.score_maximum)
        .bind(&g.comment)
        .bind(&g.result_text)
        .bind(&g.result_url)
        .bind(&g.submitted_at)
        .bind(now_rfc3339())
        .bind(&g.source)
        .bind(super::actor())
        .fetch_one(&mut *conn)
        .await?;
        let grade = grade_from_row(&row)?;
        // The status is a placeholder until the caller decides it in the same transaction.
        sqlx::query(
            "INSERT INTO current_grades (activity_ref, learner_ref, grade_ref, status) VALUES ($1, $2, $3, 'pending')
             ON CONFLICT (activity_ref, learner_ref) DO UPDATE SET grade_ref = excluded.grade_ref",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .bind(grade.id)
        .execute(&mut *conn)
        .await?;
        Ok((grade, true))
    }

    /// Every version of a grade, newest first.
    pub async fn grade_history(&self, key: GradeKey) -> Result<Vec<Grade>> {
        let rows = sqlx::query(
            "SELECT * FROM grades WHERE activity_ref = $1 AND learner_ref = $2 ORDER BY version DESC",
        )
        .bind(key.activity_ref)
        .bind(key.learner_ref)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grade_from_row).collect()
    }

    /// The current version of every grade, with names and its stored status.
    pub async fn list_grade_rows(&self) -> Result<Vec<GradeRow>> {
        self.list_grade_rows_where(&super::GradeFilter::default()).await
    }

    /// Every activity with its platform, context and counts.
    pub async fn list_activity_rows(&self) -> Result<Vec<ActivityRow>> {
        let rows = sqlx::query(
            "SELECT a.id, p.name AS platform, c.context_id, c.title AS context_title, a.resource_link_id, a.title,
                    a.points_possible,
                    (SELECT COUNT(DISTINCT learner_ref) FROM grades g WHERE g.activity_ref = a.id) AS learners,
                    (SELECT COUNT(*) FROM current_grades cg WHERE cg.activity_ref = a.id) AS grades
             FROM activities a JOIN contexts c ON c.id = a.context_ref JOIN platforms p ON p.id = c.platform_id
             ORDER BY p.name, c.context_id, a.title, a.resource_link_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActivityRow {
                    id: r.try_get("id")?,
                    platform: r.try_get("platform")?,
                    context_id: r.try_get("context_id")?,
                    context_title: r.try_get("context_title")?,
                    resource_link_id: r.try_get("resource_link_id")?,
                    title: r.try_get("title")?,
                    points_possible: r.try_get("points_possible")?,
                    learners: r.try_get("learners")?,
                    grades: r.try_get("grades")?,
                })
            })
            .collect()
    }

    pub async fn grade_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM current_grades")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// The activity of (platform, context, resource link), if the ledger has it.
    pub async fn find_activity(
        &self,
        platform_id: i64,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<Activity>> {
        let row = sqlx::query(
            "SELECT a.* FROM activities a JOIN contexts c ON c.id = a.context_ref
             WHERE c.platform_id = $1 AND c.context_id = $2 AND a.resource_link_id = $3",
        )
        .bind(platform_id)
        .bind(context_id)
        .bind(resource_link_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(activity_from_row).transpose()
    }
}
