//! Open edX `lti_provider` records, kept by their Django primary keys, and the
//! joins that turn them into outcome targets: (edX user, course, usage) →
//! consumer key, LTI user id, sourcedid, outcome URL.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::Store;
use crate::error::Result;

/// One record of an `lti_provider` dump.
#[derive(Debug, Clone, PartialEq)]
pub enum EdxRecord {
    Consumer {
        pk: i64,
        consumer_key: String,
        name: Option<String>,
        instance_guid: Option<String>,
    },
    OutcomeService {
        pk: i64,
        url: String,
        consumer_pk: i64,
    },
    LtiUser {
        pk: i64,
        consumer_pk: i64,
        lti_user_id: String,
        edx_user: i64,
    },
    GradedAssignment {
        pk: i64,
        edx_user: i64,
        course_key: String,
        usage_key: String,
        outcome_service_pk: i64,
        sourcedid: String,
        version_number: i64,
    },
}

/// A graded assignment joined to its consumer and LTI user, as far as known.
#[derive(Debug, Clone, PartialEq)]
pub struct EdxAssignment {
    pub edx_user: i64,
    pub course_key: String,
    pub usage_key: String,
    pub consumer_key: Option<String>,
    /// `None` until the LtiUser record of this user and consumer is imported.
    pub lti_user_id: Option<String>,
    pub sourcedid: String,
    pub outcome_url: Option<String>,
}

const JOINED: &str = "SELECT ga.edx_user, ga.course_key, ga.usage_key, c.consumer_key, u.lti_user_id,
                             ga.sourcedid, os.url
                      FROM edx_graded_assignments ga
                      LEFT JOIN edx_outcome_services os ON os.pk = ga.outcome_service_pk
                      LEFT JOIN edx_consumers c ON c.pk = os.consumer_pk
                      LEFT JOIN edx_lti_users u ON u.edx_user = ga.edx_user AND u.consumer_pk = os.consumer_pk";

fn assignment(r: &sqlx::any::AnyRow) -> Result<EdxAssignment> {
    Ok(EdxAssignment {
        edx_user: r.try_get("edx_user")?,
        course_key: r.try_get("course_key")?,
        usage_key: r.try_get("usage_key")?,
        consumer_key: r.try_get("consumer_key")?,
        lti_user_id: r.try_get("lti_user_id")?,
        sourcedid: r.try_get("sourcedid")?,
        outcome_url: r.try_get("url")?,
    })
}

impl Store {
    /// Keep one dump record (a newer dump of the same primary key replaces it).
    pub async fn upsert_edx_record(conn: &mut AnyConnection, rec: &EdxRecord) -> Result<()> {
        let q = match rec {
            EdxRecord::Consumer {
                pk,
                consumer_key,
                name,
                instance_guid,
            } => sqlx::query(
                "INSERT INTO edx_consumers (pk, consumer_key, consumer_name, instance_guid) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (pk) DO UPDATE SET consumer_key = excluded.consumer_key,
                   consumer_name = excluded.consumer_name, instance_guid = excluded.instance_guid",
            )
            .bind(pk)
            .bind(consumer_key)
            .bind(name)
            .bind(instance_guid),
            EdxRecord::OutcomeService { pk, url, consumer_pk } => {
                sqlx::query(
                    "INSERT INTO edx_outcome_services (pk, url, consumer_pk) VALUES ($1, $2, $3)
                     ON CONFLICT (pk) DO UPDATE SET url = excluded.url, consumer_pk = excluded.consumer_pk",
                )
                    .bind(pk)
                    .bind(url)
                    .bind(consumer_pk)
            }
            EdxRecord::LtiUser {
                pk,
                consumer_pk,
                lti_user_id,
                edx_user,
            } => sqlx::query(
                "INSERT INTO edx_lti_users (pk, consumer_pk, lti_user_id, edx_user) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (pk) DO UPDATE SET consumer_pk = excluded.consumer_pk,
                   lti_user_id = excluded.lti_user_id, edx_user = excluded.edx_user",
            )
            .bind(pk)
            .bind(consumer_pk)
            .bind(lti_user_id)
            .bind(edx_user),
            EdxRecord::GradedAssignment {
                pk,
                edx_user,
                course_key,
                usage_key,
                outcome_service_pk,
                sourcedid,
                version_number,
            } => sqlx::query(
                "INSERT INTO edx_graded_assignments
                   (pk, edx_user, course_key, usage_key, outcome_service_pk, sourcedid, version_number)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (pk) DO UPDATE SET edx_user = excluded.edx_user, course_key = excluded.course_key,
                   usage_key = excluded.usage_key, outcome_service_pk = excluded.outcome_service_pk,
                   sourcedid = excluded.sourcedid, version_number = excluded.version_number",
            )
            .bind(pk)
            .bind(edx_user)
            .bind(course_key)
            .bind(usage_key)
            .bind(outcome_service_pk)
            .bind(sourcedid)
            .bind(version_number),
        };
        q.execute(&mut *conn).await?;
        Ok(())
    }

    /// The graded assignments of (edX user, course, usage), joined as far as known.
    pub async fn edx_assignments_of(
        conn: &mut AnyConnection,
        edx_user: i64,
        course_key: &str,
        usage_key: &str,
    ) -> Result<Vec<EdxAssignment>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{JOINED} WHERE ga.edx_user = $1 AND ga.course_key = $2 AND ga.usage_key = $3 ORDER BY ga.pk"
        )))
        .bind(edx_user)
        .bind(course_key)
        .bind(usage_key)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(assignment).collect()
    }

    /// Every graded assignment, joined as far as known (with `resolved_only`, only
    /// those whose consumer and LTI user are known).
    pub async fn edx_assignments(
        conn: &mut AnyConnection,
        resolved_only: bool,
    ) -> Result<Vec<EdxAssignment>> {
        let filter = if resolved_only {
            "WHERE c.consumer_key IS NOT NULL AND u.lti_user_id IS NOT NULL"
        } else {
            ""
        };
        let rows = sqlx::query(AssertSqlSafe(format!("{JOINED} {filter} ORDER BY ga.pk")))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(assignment).collect()
    }

    /// The LTI user id of an Open edX user on a consumer, when its LtiUser record is known.
    pub async fn edx_lti_user(
        conn: &mut AnyConnection,
        consumer_key: &str,
        edx_user: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT u.lti_user_id FROM edx_lti_users u JOIN edx_consumers c ON c.pk = u.consumer_pk
             WHERE c.consumer_key = $1 AND u.edx_user = $2",
        )
        .bind(consumer_key)
        .bind(edx_user)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Give a learner known only by a stand-in id (an Open edX user before its
    /// LtiUser record arrived) their real LTI user id. Returns false when another
    /// learner already has that id (the stand-in is then left as it is).
    pub async fn rename_learner(
        conn: &mut AnyConnection,
        platform_id: i64,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        let taken: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM learners WHERE platform_id = $1 AND lti_user_id = $2")
                .bind(platform_id)
                .bind(to)
                .fetch_optional(&mut *conn)
                .await?;
        if taken.is_some() {
            return Ok(false);
        }
        let done =
            sqlx::query("UPDATE learners SET lti_user_id = $1 WHERE platform_id = $2 AND lti_user_id = $3")
                .bind(to)
                .bind(platform_id)
                .bind(from)
                .execute(&mut *conn)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
