//! Courses, activities and people of many facts at once: each kind written with
//! one multi-row upsert per chunk (fields given as `None` keep their stored
//! value), so an import of any size costs a statement per chunk, not per row.

use rustc_hash::FxHashMap as HashMap;

use sqlx::{AnyConnection, Row};

use super::sql::Sql;

use super::Store;
use super::imports::shaped;
use crate::error::{Error, Result};
use crate::model::Role;

/// A course to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextUpsert<'a> {
    pub platform_id: i64,
    pub context_id: &'a str,
    pub title: Option<&'a str>,
    pub label: Option<&'a str>,
}

/// An activity to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityUpsert<'a> {
    pub context_ref: i64,
    pub resource_link_id: &'a str,
    pub title: Option<&'a str>,
    pub points_possible: Option<f64>,
    pub line_item_id: Option<&'a str>,
    pub canvas_assignment_id: Option<&'a str>,
}

/// A person to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerUpsert<'a> {
    pub platform_id: i64,
    pub lti_user_id: &'a str,
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub person_sourcedid: Option<&'a str>,
    pub canvas_user_id: Option<&'a str>,
    pub role: Option<Role>,
}

/// A learner written: their id, and whether their role changed (their grades'
/// statuses may have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerWritten {
    pub id: i64,
    pub role_changed: bool,
}

impl Store {
    /// Upsert courses (distinct `(platform_id, context_id)`); their ids by key.
    pub async fn upsert_contexts(
        conn: &mut AnyConnection,
        rows: &[ContextUpsert<'_>],
    ) -> Result<HashMap<(i64, String), i64>> {
        let mut out = HashMap::with_capacity_and_hasher(rows.len(), Default::default());
        for chunk in shaped(rows) {
            let mut q: Sql = Sql::new("INSERT INTO contexts (platform_id, context_id, title, label) ");
            q.push_values(chunk, |mut b, c| {
                b.push_bind(c.platform_id)
                    .push_bind(c.context_id)
                    .push_bind(c.title)
                    .push_bind(c.label);
            });
            q.push(
                " ON CONFLICT (platform_id, context_id) DO UPDATE SET
                   title = COALESCE(excluded.title, contexts.title),
                   label = COALESCE(excluded.label, contexts.label)
                 RETURNING id, platform_id, context_id",
            );
            for r in q.build().fetch_all(&mut *conn).await? {
                out.insert(
                    (r.try_get("platform_id")?, r.try_get("context_id")?),
                    r.try_get("id")?,
                );
            }
        }
        Ok(out)
    }

    /// Upsert activities (distinct `(context_ref, resource_link_id)`); their ids by key.
    pub async fn upsert_activities(
        conn: &mut AnyConnection,
        rows: &[ActivityUpsert<'_>],
    ) -> Result<HashMap<(i64, String), i64>> {
        let mut out = HashMap::with_capacity_and_hasher(rows.len(), Default::default());
        for chunk in shaped(rows) {
            let mut q: Sql = Sql::new(
                "INSERT INTO activities (context_ref, resource_link_id, title, points_possible, ltiaas_line_item_id,
                   canvas_assignment_id) ",
            );
            q.push_values(chunk, |mut b, a| {
                b.push_bind(a.context_ref)
                    .push_bind(a.resource_link_id)
                    .push_bind(a.title)
                    .push_bind(super::sql::Real(a.points_possible))
                    .push_bind(a.line_item_id)
                    .push_bind(a.canvas_assignment_id);
            });
            q.push(
                " ON CONFLICT (context_ref, resource_link_id) DO UPDATE SET
                   title = COALESCE(excluded.title, activities.title),
                   points_possible = COALESCE(excluded.points_possible, activities.points_possible),
                   ltiaas_line_item_id = COALESCE(excluded.ltiaas_line_item_id, activities.ltiaas_line_item_id),
                   canvas_assignment_id = COALESCE(excluded.canvas_assignment_id, activities.canvas_assignment_id)
                 RETURNING id, context_ref, resource_link_id",
            );
            for r in q.build().fetch_all(&mut *conn).await? {
                out.insert(
                    (r.try_get("context_ref")?, r.try_get("resource_link_id")?),
                    r.try_get("id")?,
                );
            }
        }
        Ok(out)
    }

    /// Upsert people (distinct `(platform_id, lti_user_id)`); by key, their id and
    /// whether their role changed.
    pub async fn upsert_learners(
        conn: &mut AnyConnection,
        rows: &[LearnerUpsert<'_>],
    ) -> Result<HashMap<(i64, String), LearnerWritten>> {
        let mut out = HashMap::with_capacity_and_hasher(rows.len(), Default::default());
        for chunk in shaped(rows) {
            // The roles before, to tell a change.
            let mut q: Sql =
                Sql::new("SELECT l.platform_id, l.lti_user_id, l.role FROM learners l JOIN (VALUES ");
            let mut sep = q.separated(", ");
            for l in chunk {
                sep.push("(")
                    .push_bind_unseparated(l.platform_id)
                    .push_unseparated(", ")
                    .push_bind_unseparated(l.lti_user_id)
                    .push_unseparated(")");
            }
            q.push(") AS k ON l.platform_id = k.column1 AND l.lti_user_id = k.column2");
            let mut before: HashMap<(i64, String), String> = HashMap::default();
            for r in q.build().fetch_all(&mut *conn).await? {
                before.insert(
                    (r.try_get("platform_id")?, r.try_get("lti_user_id")?),
                    r.try_get("role")?,
                );
            }
            // A `NULL` role keeps the stored one; a new person's is `unknown` (the
            // column is NOT NULL, and SQLite fills defaults only for omitted columns).
            let values = (0..chunk.len())
                .map(|i| {
                    let n = i * 7;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6,
                        n + 7
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO learners (platform_id, lti_user_id, name, email, person_sourcedid, canvas_user_id, role)
                 SELECT column1, column2, column3, column4, column5, column6, COALESCE(column7, 'unknown')
                 FROM (VALUES {values}) AS v WHERE true
                 ON CONFLICT (platform_id, lti_user_id) DO UPDATE SET
                   name = COALESCE(excluded.name, learners.name),
                   email = COALESCE(excluded.email, learners.email),
                   person_sourcedid = COALESCE(excluded.person_sourcedid, learners.person_sourcedid),
                   canvas_user_id = COALESCE(excluded.canvas_user_id, learners.canvas_user_id),
                   role = CASE WHEN excluded.role = 'unknown' THEN learners.role ELSE excluded.role END
                 RETURNING id, platform_id, lti_user_id, role"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for l in chunk {
                query = query
                    .bind(l.platform_id)
                    .bind(l.lti_user_id)
                    .bind(l.name)
                    .bind(l.email)
                    .bind(l.person_sourcedid)
                    .bind(l.canvas_user_id)
                    .bind(l.role.map(Role::as_str));
            }
            for r in query.fetch_all(&mut *conn).await? {
                let key: (i64, String) = (r.try_get("platform_id")?, r.try_get("lti_user_id")?);
                let role: String = r.try_get("role")?;
                let role_changed = before.get(&key).is_some_and(|old| *old != role);
                out.insert(
                    key,
                    LearnerWritten {
                        id: r.try_get("id")?,
                        role_changed,
                    },
                );
            }
        }
        if out.len() != rows.len() {
            return Err(Error::internal(format!(
                "{} people written, {} returned",
                rows.len(),
                out.len()
            )));
        }
        Ok(out)
    }
}
