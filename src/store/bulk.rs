//! Many facts at once, for imports: the current grades and targets of many
//! (activity, learner) pairs in one query, grade versions, targets, observations,
//! attempts and launches written with multi-row statements, and the statuses of
//! many grades decided and stored together. Intake's batch writer drives these.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use sqlx::{AnyConnection, Row};

use super::sql::Sql;

use super::imports::shaped;
use super::ledger::{grade_from_row, target_from_row};
use super::{GradeKey, Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{
    AttemptFact, AttemptOperation, AttemptOutcome, AttemptResult, ErrorClass, Grade, GradeFacts, GradeStatus,
    NewGrade, Observation, OutcomeTarget, PlatformKind, Role,
};

/// The status a grade has in the ledger now (as stored text).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStatus {
    pub status: String,
    pub detail: Option<String>,
}

/// A grade version to add.
#[derive(Debug, Clone)]
pub struct GradeInsert<'a> {
    pub key: GradeKey,
    pub version: i64,
    pub grade: &'a NewGrade,
    pub observed_at: Option<&'a str>,
    /// The import batch adding it.
    pub batch_ref: Option<i64>,
}

/// An LMS observation to record.
#[derive(Debug, Clone)]
pub struct ObservationInsert<'a> {
    pub key: GradeKey,
    pub score: Option<f64>,
    pub observed_at: &'a str,
    pub source: &'a str,
    pub batch_ref: Option<i64>,
}

/// An attempt another system made (an Open edX failure log), finished when recorded.
#[derive(Debug, Clone)]
pub struct ExternalAttemptInsert<'a> {
    /// The grade version it was for: the pair's version `version`.
    pub key: GradeKey,
    pub version: i64,
    /// The version was in the ledger before this statement's batch of rows (only
    /// then can the attempt have been recorded before).
    pub version_existed: bool,
    pub origin: &'a str,
    pub operation: AttemptOperation,
    pub transport: PlatformKind,
    pub target: &'a str,
    pub at: &'a str,
    pub result: &'a AttemptResult,
    /// The import batch recording it.
    pub batch_ref: Option<i64>,
}

/// A launch to record.
#[derive(Debug, Clone)]
pub struct LaunchInsert<'a> {
    pub context_ref: Option<i64>,
    pub activity_ref: Option<i64>,
    pub learner_ref: i64,
    pub role: Role,
    pub consumer_key: Option<&'a str>,
    pub launched_at: &'a str,
    pub source: &'a str,
    pub verified: bool,
    pub verification_note: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub batch_ref: Option<i64>,
}

pub(super) fn push_keys(q: &mut Sql, keys: &[GradeKey]) {
    q.push("(VALUES ");
    let mut sep = q.separated(", ");
    for k in keys {
        sep.push("(")
            .push_bind_unseparated(k.activity_ref)
            .push_unseparated(", ")
            .push_bind_unseparated(k.learner_ref)
            .push_unseparated(")");
    }
    q.push(")");
}

impl Store {
    /// The Canvas user id a launch carried (`custom_canvas_user_id`).
    pub async fn set_learner_canvas_id(conn: &mut AnyConnection, learner: i64, id: &str) -> Result<()> {
        sqlx::query("UPDATE learners SET canvas_user_id = $1 WHERE id = $2")
            .bind(id)
            .bind(learner)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The Canvas assignment id a launch carried (`custom_canvas_assignment_id`).
    pub async fn set_activity_canvas_id(conn: &mut AnyConnection, activity: i64, id: &str) -> Result<()> {
        sqlx::query("UPDATE activities SET canvas_assignment_id = $1 WHERE id = $2")
            .bind(id)
            .bind(activity)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Record where many grades go (see [`Store::set_outcome_target`]); a pair
    /// given twice takes its last target.
    pub async fn set_outcome_targets(
        conn: &mut AnyConnection,
        rows: &[(GradeKey, OutcomeTarget)],
    ) -> Result<()> {
        let mut last: HashMap<GradeKey, usize> =
            HashMap::with_capacity_and_hasher(rows.len(), Default::default());
        for (i, (k, _)) in rows.iter().enumerate() {
            last.insert(*k, i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_unstable();
        for chunk in shaped(&order) {
            let mut q: Sql = Sql::new(
                "INSERT INTO outcome_targets (activity_ref, learner_ref, lis_result_sourcedid, lis_outcome_service_url,
                   ext_outcome_data_values_accepted, ext_result_total_score_accepted, ext_submitted_at_accepted,
                   ext_prioritize_non_tool_grade_accepted, ext_needs_additional_review_accepted, service_key_ref,
                   learned_at, learned_from, unavailable_reason) ",
            );
            q.push_values(chunk, |mut b, i| {
                let (k, t) = &rows[*i];
                b.push_bind(k.activity_ref)
                    .push_bind(k.learner_ref)
                    .push_bind(t.lis_result_sourcedid.clone())
                    .push_bind(t.lis_outcome_service_url.clone())
                    .push_bind(t.ext_outcome_data_values_accepted.clone())
                    .push_bind(t.ext_result_total_score_accepted as i64)
                    .push_bind(t.ext_submitted_at_accepted as i64)
                    .push_bind(t.ext_prioritize_non_tool_grade_accepted as i64)
                    .push_bind(t.ext_needs_additional_review_accepted as i64)
                    .push_bind(t.service_key_ref.clone())
                    .push_bind(t.learned_at.clone())
                    .push_bind(t.learned_from.clone())
                    .push_bind(t.unavailable_reason.clone());
            });
            q.push(
                " ON CONFLICT (activity_ref, learner_ref) DO UPDATE SET
                   lis_result_sourcedid = excluded.lis_result_sourcedid,
                   lis_outcome_service_url = excluded.lis_outcome_service_url,
                   ext_outcome_data_values_accepted = excluded.ext_outcome_data_values_accepted,
                   ext_result_total_score_accepted = excluded.ext_result_total_score_accepted,
                   ext_submitted_at_accepted = excluded.ext_submitted_at_accepted,
                   ext_prioritize_non_tool_grade_accepted = excluded.ext_prioritize_non_tool_grade_accepted,
                   ext_needs_additional_review_accepted = excluded.ext_needs_additional_review_accepted,
                   service_key_ref = excluded.service_key_ref,
                   learned_at = excluded.learned_at,
                   learned_from = excluded.learned_from,
                   unavailable_reason = excluded.unavailable_reason",
            );
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The current grade of each pair that has one.
    pub async fn current_grades_of(
        conn: &mut AnyConnection,
        keys: &[GradeKey],
    ) -> Result<HashMap<GradeKey, Grade>> {
        let mut out = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
        for chunk in shaped(keys) {
            // The keys drive the join (`(a, b) IN (VALUES …)` would scan the table).
            let mut q: Sql = Sql::new("SELECT g.* FROM ");
            push_keys(&mut q, chunk);
            q.push(
                " AS k JOIN current_grades cg ON cg.activity_ref = k.column1 AND cg.learner_ref = k.column2
                 JOIN grades g ON g.id = cg.grade_ref",
            );
            for r in q.build().fetch_all(&mut *conn).await? {
                let g = grade_from_row(&r)?;
                out.insert(
                    GradeKey {
                        activity_ref: g.activity_ref,
                        learner_ref: g.learner_ref,
                    },
                    g,
                );
            }
        }
        Ok(out)
    }

    /// Add grade versions.
    pub async fn insert_grades(conn: &mut AnyConnection, rows: &[GradeInsert<'_>]) -> Result<()> {
        let recorded_at = now_rfc3339();
        for chunk in shaped(rows) {
            let mut q: Sql = Sql::new(
                "INSERT INTO grades (activity_ref, learner_ref, version, score_given, score_maximum, comment,
                   result_text, result_url, submitted_at, recorded_at, source, observed_at, batch_ref, actor) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.key.activity_ref)
                    .push_bind(r.key.learner_ref)
                    .push_bind(r.version)
                    .push_bind(r.grade.score_given)
                    .push_bind(r.grade.score_maximum)
                    .push_bind(r.grade.comment.clone())
                    .push_bind(r.grade.result_text.clone())
                    .push_bind(r.grade.result_url.clone())
                    .push_bind(r.grade.submitted_at.clone())
                    .push_bind(recorded_at.clone())
                    .push_bind(r.grade.source.clone())
                    .push_bind(r.observed_at.map(str::to_string))
                    .push_bind(r.batch_ref)
                    .push_bind(super::actor());
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Make these versions (`(pair, version)`) the current grades of their pairs
    /// (statuses are decided after).
    pub async fn set_current_grades(conn: &mut AnyConnection, rows: &[(GradeKey, i64)]) -> Result<()> {
        for chunk in shaped(rows) {
            let mut q: Sql = Sql::new(
                "INSERT INTO current_grades (activity_ref, learner_ref, grade_ref, status)
                 SELECT g.activity_ref, g.learner_ref, g.id, 'pending' FROM (",
            );
            q.push_values(chunk, |mut b, (k, version)| {
                b.push_bind(k.activity_ref)
                    .push_bind(k.learner_ref)
                    .push_bind(*version);
            });
            q.push(
                ") AS k JOIN grades g ON g.activity_ref = k.column1 AND g.learner_ref = k.column2
                                     AND g.version = k.column3
                 WHERE true
                 ON CONFLICT (activity_ref, learner_ref) DO UPDATE SET grade_ref = excluded.grade_ref",
            );
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The outcome target of each pair that has one.
    pub async fn targets_of(
        conn: &mut AnyConnection,
        keys: &[GradeKey],
    ) -> Result<HashMap<GradeKey, OutcomeTarget>> {
        let mut out = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
        for chunk in shaped(keys) {
            let mut q: Sql = Sql::new("SELECT t.* FROM ");
            push_keys(&mut q, chunk);
            q.push(
                " AS k JOIN outcome_targets t ON t.activity_ref = k.column1 AND t.learner_ref = k.column2",
            );
            for r in q.build().fetch_all(&mut *conn).await? {
                let key = GradeKey {
                    activity_ref: r.try_get("activity_ref")?,
                    learner_ref: r.try_get("learner_ref")?,
                };
                out.insert(key, target_from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Record LMS observations.
    pub async fn insert_observations(conn: &mut AnyConnection, rows: &[ObservationInsert<'_>]) -> Result<()> {
        for chunk in shaped(rows) {
            let mut q: Sql = Sql::new(
                "INSERT INTO lms_observations (activity_ref, learner_ref, score, observed_at, source, batch_ref) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.key.activity_ref)
                    .push_bind(r.key.learner_ref)
                    .push_bind(super::sql::Real(r.score))
                    .push_bind(r.observed_at)
                    .push_bind(r.source)
                    .push_bind(r.batch_ref);
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The newest observation of a pair, if any (to skip recording the same thing twice).
    pub async fn latest_observations_of(
        conn: &mut AnyConnection,
        keys: &[GradeKey],
    ) -> Result<HashMap<GradeKey, Observation>> {
        let mut out = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
        for chunk in shaped(keys) {
            let mut q: Sql = Sql::new(
                "SELECT o.activity_ref, o.learner_ref, o.score, o.observed_at, o.source FROM lms_observations o
                 WHERE o.id IN (SELECT (SELECT y.id FROM lms_observations y
                                        WHERE y.activity_ref = k.column1 AND y.learner_ref = k.column2
                                        ORDER BY y.observed_at DESC, y.id DESC LIMIT 1)
                                FROM ",
            );
            push_keys(&mut q, chunk);
            q.push(" AS k)");
            for r in q.build().fetch_all(&mut *conn).await? {
                out.insert(
                    GradeKey {
                        activity_ref: r.try_get("activity_ref")?,
                        learner_ref: r.try_get("learner_ref")?,
                    },
                    Observation {
                        score: r.try_get("score")?,
                        at: r.try_get("observed_at")?,
                        source: r.try_get("source")?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Record attempts another system made, each for a grade version given by
    /// its pair and version; says which were new. An attempt is one system's try
    /// at one time (to the millisecond its log gives): recorded before, or twice
    /// in `rows`, it is recorded once.
    pub async fn insert_external_attempts(
        conn: &mut AnyConnection,
        rows: &[ExternalAttemptInsert<'_>],
    ) -> Result<Vec<bool>> {
        // Which are already in the ledger (only a version held before can have one).
        let mut known = vec![false; rows.len()];
        let maybe: Vec<usize> = (0..rows.len()).filter(|i| rows[*i].version_existed).collect();
        for chunk in shaped(&maybe) {
            let mut q: Sql = Sql::new("SELECT k.column6 AS i FROM (");
            q.push_values(chunk, |mut b, i| {
                let a = &rows[*i];
                b.push_bind(a.key.activity_ref)
                    .push_bind(a.key.learner_ref)
                    .push_bind(a.version)
                    .push_bind(a.origin)
                    .push_bind(a.at)
                    .push_bind(*i as i64);
            });
            // CROSS JOIN keeps the keys the outer loop: SQLite 3.51 would otherwise
            // scan every attempt against a small VALUES table.
            let join = super::Engine::of(conn).ordered_join();
            q.push(format!(
                ") AS k {join} grades g ON g.activity_ref = k.column1 AND g.learner_ref = k.column2
                                           AND g.version = k.column3
                 {join} attempts x ON x.grade_ref = g.id AND x.origin <> 'passback' AND x.origin = k.column4
                                AND x.started_at = k.column5"
            ));
            for r in q.build().fetch_all(&mut *conn).await? {
                known[r.try_get::<i64, _>("i")? as usize] = true;
            }
        }
        let mut seen = HashSet::with_capacity_and_hasher(rows.len(), Default::default());
        let fresh: Vec<usize> = (0..rows.len())
            .filter(|i| {
                let a = &rows[*i];
                let id = (a.key, a.version, a.origin, a.at);
                !known[*i] && seen.insert(id)
            })
            .collect();
        for chunk in shaped(&fresh) {
            let mut q: Sql = Sql::new(
                "INSERT INTO attempts (grade_ref, activity_ref, learner_ref, operation, transport, target,
                   started_at, finished_at, outcome, http_status, code_major, description, error_class, fix_hint,
                   read_score, response_excerpt, origin, batch_ref, cause, actor)
                 SELECT g.id, k.column1, k.column2, k.column4, k.column5, k.column6, k.column7, k.column7,
                        k.column8, k.column9, k.column10, k.column11, k.column12, k.column13, k.column14,
                        k.column15, k.column16, k.column17, k.column18, ",
            );
            // Who imported the other system's log.
            q.push_bind(super::actor()).push(" FROM (");
            q.push_values(chunk, |mut b, i| {
                let a = &rows[*i];
                let r = a.result;
                b.push_bind(a.key.activity_ref)
                    .push_bind(a.key.learner_ref)
                    .push_bind(a.version)
                    .push_bind(a.operation.as_str())
                    .push_bind(a.transport.as_str())
                    .push_bind(a.target)
                    .push_bind(a.at)
                    .push_bind(r.outcome.as_str())
                    .push_bind(r.http_status.map(i64::from))
                    .push_bind(r.code_major.clone())
                    .push_bind(r.description.clone())
                    .push_bind(r.error_class.map(ErrorClass::as_str))
                    .push_bind(r.fix_hint.clone())
                    .push_bind(super::sql::Real(r.read_score))
                    .push_bind(r.response_excerpt.clone())
                    .push_bind(a.origin)
                    .push_bind(a.batch_ref)
                    .push_bind(r.cause.map(crate::model::Cause::as_str));
            });
            q.push(
                ") AS k JOIN grades g ON g.activity_ref = k.column1 AND g.learner_ref = k.column2
                                     AND g.version = k.column3
                 WHERE true ON CONFLICT DO NOTHING",
            );
            let done = q.build().execute(&mut *conn).await?.rows_affected();
            if done != chunk.len() as u64 {
                return Err(Error::internal(format!(
                    "{} attempts to record, {done} recorded",
                    chunk.len()
                )));
            }
        }
        let mut new = vec![false; rows.len()];
        for i in fresh {
            new[i] = true;
        }
        Ok(new)
    }

    /// Record launches; says which were new (a launch recorded before, or twice
    /// in `rows`, is recorded once).
    pub async fn insert_launches(conn: &mut AnyConnection, rows: &[LaunchInsert<'_>]) -> Result<Vec<bool>> {
        let mut known = vec![false; rows.len()];
        let all: Vec<usize> = (0..rows.len()).collect();
        for chunk in shaped(&all) {
            let mut q: Sql = Sql::new("SELECT k.column5 AS i FROM (");
            q.push_values(chunk, |mut b, i| {
                let l = &rows[*i];
                b.push_bind(l.learner_ref)
                    .push_bind(l.context_ref.unwrap_or(0))
                    .push_bind(l.activity_ref.unwrap_or(0))
                    .push_bind(l.launched_at)
                    .push_bind(*i as i64);
            });
            q.push(
                ") AS k JOIN launches l ON l.learner_ref = k.column1 AND COALESCE(l.context_ref, 0) = k.column2
                                       AND COALESCE(l.activity_ref, 0) = k.column3 AND l.launched_at = k.column4",
            );
            for r in q.build().fetch_all(&mut *conn).await? {
                known[r.try_get::<i64, _>("i")? as usize] = true;
            }
        }
        let mut seen = HashSet::with_capacity_and_hasher(rows.len(), Default::default());
        let fresh: Vec<usize> = (0..rows.len())
            .filter(|i| {
                let l = &rows[*i];
                !known[*i] && seen.insert((l.learner_ref, l.context_ref, l.activity_ref, l.launched_at))
            })
            .collect();
        for chunk in shaped(&fresh) {
            let mut q: Sql = Sql::new(
                "INSERT INTO launches (context_ref, activity_ref, learner_ref, role, consumer_key, launched_at, source,
                   verification, verification_note, locale, direction, batch_ref) ",
            );
            q.push_values(chunk, |mut b, i| {
                let l = &rows[*i];
                b.push_bind(l.context_ref)
                    .push_bind(l.activity_ref)
                    .push_bind(l.learner_ref)
                    .push_bind(l.role.as_str())
                    .push_bind(l.consumer_key)
                    .push_bind(l.launched_at)
                    .push_bind(l.source)
                    .push_bind(if l.verified { "verified" } else { "unverified" })
                    .push_bind(l.verification_note)
                    .push_bind(l.locale)
                    .push_bind(l.direction)
                    .push_bind(l.batch_ref);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *conn).await?;
        }
        let mut new = vec![false; rows.len()];
        for i in fresh {
            new[i] = true;
        }
        Ok(new)
    }

    /// What the statuses of these pairs' current grades depend on (pairs without a
    /// grade are left out).
    pub async fn grade_facts_many(
        conn: &mut AnyConnection,
        keys: &[GradeKey],
    ) -> Result<Vec<(GradeKey, GradeFacts, StoredStatus)>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in shaped(keys) {
            let mut q: Sql = Sql::new(
                "SELECT cg.activity_ref, cg.learner_ref, g.score_given, g.score_maximum, a.points_possible,
                        p.kind, l.role,
                        t.lis_result_sourcedid, t.lis_outcome_service_url, t.service_key_ref, t.unavailable_reason,
                        CASE WHEN EXISTS (SELECT 1 FROM service_keys sk WHERE sk.platform_id = c.platform_id
                                  AND sk.context_id = c.context_id AND sk.resource_link_id = a.resource_link_id)
                          THEN 1 ELSE 0 END AS activity_has_key,
                        x.operation, x.outcome, x.error_class, x.cause, x.description,
                        COALESCE(x.finished_at, x.started_at) AS attempt_at,
                        o.score AS lms_score, o.observed_at, o.source AS lms_source,
                        cg.status AS stored_status, cg.status_detail AS stored_detail
                 FROM ",
            );
            push_keys(&mut q, chunk);
            q.push(
                " AS k
                 JOIN current_grades cg ON cg.activity_ref = k.column1 AND cg.learner_ref = k.column2
                 JOIN grades g ON g.id = cg.grade_ref
                 JOIN activities a ON a.id = cg.activity_ref
                 JOIN contexts c ON c.id = a.context_ref
                 JOIN platforms p ON p.id = c.platform_id
                 JOIN learners l ON l.id = cg.learner_ref
                 LEFT JOIN outcome_targets t ON t.activity_ref = cg.activity_ref AND t.learner_ref = cg.learner_ref
                 LEFT JOIN attempts x ON x.id = (
                     SELECT x2.id FROM attempts x2
                     WHERE x2.grade_ref = cg.grade_ref
                       AND NOT (x2.outcome = 'pending' AND x2.operation IN ('read', 'score_read'))
                     ORDER BY x2.id DESC LIMIT 1)
                 LEFT JOIN lms_observations o ON o.id = (
                     SELECT o2.id FROM lms_observations o2
                     WHERE o2.activity_ref = cg.activity_ref AND o2.learner_ref = cg.learner_ref
                     ORDER BY o2.observed_at DESC, o2.id DESC LIMIT 1)",
            );
            for r in q.build().fetch_all(&mut *conn).await? {
                let key = GradeKey {
                    activity_ref: r.try_get("activity_ref")?,
                    learner_ref: r.try_get("learner_ref")?,
                };
                let kind: String = r.try_get("kind")?;
                let transport = PlatformKind::parse(&kind).ok_or_else(|| {
                    Error::internal(format!("unknown platform kind {kind:?} in the ledger"))
                })?;
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
                let last_attempt = match r.try_get::<Option<String>, _>("operation")? {
                    None => None,
                    Some(op) => {
                        let outcome: String = r.try_get("outcome")?;
                        let class: Option<String> = r.try_get("error_class")?;
                        Some(AttemptFact {
                            operation: AttemptOperation::parse(&op).ok_or_else(|| {
                                Error::internal(format!("unknown attempt operation {op:?}"))
                            })?,
                            outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| {
                                Error::internal(format!("unknown attempt outcome {outcome:?}"))
                            })?,
                            error_class: class.as_deref().and_then(ErrorClass::parse),
                            cause: r
                                .try_get::<Option<String>, _>("cause")?
                                .as_deref()
                                .and_then(crate::model::Cause::parse),
                            description: r.try_get("description")?,
                            at: r.try_get("attempt_at")?,
                        })
                    }
                };
                let last_observation = match r.try_get::<Option<String>, _>("observed_at")? {
                    None => None,
                    Some(at) => Some(Observation {
                        score: r.try_get("lms_score")?,
                        at,
                        source: r.try_get("lms_source")?,
                    }),
                };
                let role: String = r.try_get("role")?;
                let given: f64 = r.try_get("score_given")?;
                let maximum: f64 = r.try_get("score_maximum")?;
                out.push((
                    key,
                    GradeFacts {
                        transport,
                        has_target,
                        role: Role::parse(&role).unwrap_or(Role::Unknown),
                        score: given / maximum,
                        points: r
                            .try_get::<Option<f64>, _>("points_possible")?
                            .filter(|p| *p > 0.0)
                            .unwrap_or(maximum),
                        last_attempt,
                        last_observation,
                        target_unavailable: r.try_get("unavailable_reason")?,
                    },
                    StoredStatus {
                        status: r.try_get("stored_status")?,
                        detail: r.try_get("stored_detail")?,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Store many decided statuses.
    pub async fn set_statuses(
        conn: &mut AnyConnection,
        rows: &[(GradeKey, GradeStatus, Option<String>)],
    ) -> Result<()> {
        for chunk in shaped(rows) {
            let mut q: Sql = Sql::new(
                "UPDATE current_grades SET status = v.column3, status_detail = v.column4 FROM (VALUES ",
            );
            let mut sep = q.separated(", ");
            for (k, status, detail) in chunk {
                sep.push("(")
                    .push_bind_unseparated(k.activity_ref)
                    .push_unseparated(", ")
                    .push_bind_unseparated(k.learner_ref)
                    .push_unseparated(", ")
                    .push_bind_unseparated(status.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(detail.clone())
                    .push_unseparated(")");
            }
            q.push(
                ") AS v WHERE current_grades.activity_ref = v.column1 AND current_grades.learner_ref = v.column2",
            );
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}
