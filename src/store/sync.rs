//! What reconcile and sync read and write: the grades they may work on (with
//! everything a plan needs, a page at a time), the journal in batches, attempts
//! left in flight by a process that died, the runs themselves, and the support
//! listings (the attempt timeline, the audit and status exports).

use std::sync::OnceLock;

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::sql::Sql;

use super::imports::shaped;
use super::listing::push_filter;
use super::{GradeFilter, GradeKey, Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{AttemptOperation, AttemptOutcome, Cause, ErrorClass, GradeStatus, PlatformKind, Role};

/// This process, as attempts and runs record it: `pid@host`.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{}@{}", std::process::id(), host_name()))
}

/// Who this process works for, as attempts, imports, grade versions and runs
/// record it: the name given with `--actor` (or `PASSBACK_ACTOR`), else the OS
/// user at this computer (`user@host`).
pub fn actor() -> &'static str {
    ACTOR.get_or_init(|| {
        std::env::var("PASSBACK_ACTOR")
            .ok()
            .and_then(|a| clean_actor(&a).ok())
            .unwrap_or_else(|| format!("{}@{}", os_user(), host_name()))
    })
}

static ACTOR: OnceLock<String> = OnceLock::new();

/// Name the actor for this process (the CLI's `--actor`), before anything is
/// recorded. Refused once something has been recorded under another name.
pub fn set_actor(name: &str) -> Result<()> {
    let name = clean_actor(name)?;
    if ACTOR.get_or_init(|| name.clone()) != &name {
        return Err(Error::internal("the actor was already chosen for this process"));
    }
    Ok(())
}

fn clean_actor(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "an actor is a name of 1 to 100 characters without control characters (e.g. nightly-sync or ana@support)",
        ));
    }
    Ok(name.to_string())
}

/// The OS user running this process (best effort).
fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| {
            #[cfg(unix)]
            {
                // SAFETY: getuid has no preconditions and cannot fail.
                format!("uid{}", unsafe { libc::getuid() })
            }
            #[cfg(not(unix))]
            {
                "user".into()
            }
        })
}

/// This computer's name (best effort, no dependency).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// One current grade as a plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub key: GradeKey,
    pub grade_id: i64,
    pub version: i64,
    pub score_given: f64,
    pub score_maximum: f64,
    pub comment: Option<String>,
    pub result_text: Option<String>,
    pub result_url: Option<String>,
    pub submitted_at: Option<String>,
    /// When this version was recorded.
    pub recorded_at: String,
    pub status: GradeStatus,
    pub status_detail: Option<String>,
    pub platform_id: i64,
    pub platform: String,
    pub transport: PlatformKind,
    pub context_id: String,
    pub resource_link_id: String,
    pub activity_title: Option<String>,
    pub points_possible: Option<f64>,
    pub line_item_id: Option<String>,
    pub lti_user_id: String,
    pub learner_name: Option<String>,
    pub role: Role,
    pub sourcedid: Option<String>,
    pub outcome_url: Option<String>,
    pub ext_outcome_data_values_accepted: Option<String>,
    pub ext_result_total_score_accepted: bool,
    pub ext_submitted_at_accepted: bool,
    pub target_learned_at: Option<String>,
    /// The last attempt for this version (pending reads left out).
    pub last_attempt: Option<LastAttempt>,
    /// What the LMS was last seen to hold (`Some(None)`: no grade), and when.
    pub lms: Option<(Option<f64>, String)>,
}

/// The last attempt for a grade version.
#[derive(Debug, Clone, PartialEq)]
pub struct LastAttempt {
    pub operation: AttemptOperation,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub cause: Option<Cause>,
    /// Finished (or started, while in flight), RFC 3339.
    pub at: String,
}

impl Candidate {
    /// The 0–1 score.
    pub fn score(&self) -> f64 {
        self.score_given / self.score_maximum
    }

    /// What the assignment is worth: the activity's points possible, else the grade's maximum.
    pub fn points(&self) -> f64 {
        self.points_possible
            .filter(|p| *p > 0.0)
            .unwrap_or(self.score_maximum)
    }
}

fn candidate(r: &AnyRow) -> Result<Candidate> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let role: String = r.try_get("role")?;
    let last_attempt = match r.try_get::<Option<String>, _>("last_op")? {
        None => None,
        Some(op) => {
            let outcome: String = r.try_get("last_outcome")?;
            Some(LastAttempt {
                operation: AttemptOperation::parse(&op)
                    .ok_or_else(|| Error::internal(format!("unknown attempt operation {op:?}")))?,
                outcome: AttemptOutcome::parse(&outcome)
                    .ok_or_else(|| Error::internal(format!("unknown attempt outcome {outcome:?}")))?,
                error_class: r
                    .try_get::<Option<String>, _>("last_class")?
                    .as_deref()
                    .and_then(ErrorClass::parse),
                cause: r
                    .try_get::<Option<String>, _>("last_cause")?
                    .as_deref()
                    .and_then(Cause::parse),
                at: r.try_get("last_at")?,
            })
        }
    };
    let lms = r
        .try_get::<Option<String>, _>("lms_at")?
        .map(|at| -> Result<_> { Ok((r.try_get::<Option<f64>, _>("lms_score")?, at)) })
        .transpose()?;
    Ok(Candidate {
        key: GradeKey {
            activity_ref: r.try_get("activity_ref")?,
            learner_ref: r.try_get("learner_ref")?,
        },
        grade_id: r.try_get("grade_id")?,
        version: r.try_get("version")?,
        score_given: r.try_get("score_given")?,
        score_maximum: r.try_get("score_maximum")?,
        comment: r.try_get("comment")?,
        result_text: r.try_get("result_text")?,
        result_url: r.try_get("result_url")?,
        submitted_at: r.try_get("submitted_at")?,
        recorded_at: r.try_get("recorded_at")?,
        status: GradeStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("unknown grade status {status:?}")))?,
        status_detail: r.try_get("status_detail")?,
        platform_id: r.try_get("platform_id")?,
        platform: r.try_get("platform")?,
        transport: PlatformKind::parse(&kind)
            .ok_or_else(|| Error::internal(format!("unknown platform kind {kind:?}")))?,
        context_id: r.try_get("context_id")?,
        resource_link_id: r.try_get("resource_link_id")?,
        activity_title: r.try_get("activity_title")?,
        points_possible: r.try_get("points_possible")?,
        line_item_id: r.try_get("ltiaas_line_item_id")?,
        lti_user_id: r.try_get("lti_user_id")?,
        learner_name: r.try_get("learner_name")?,
        role: Role::parse(&role).unwrap_or(Role::Unknown),
        sourcedid: r.try_get("lis_result_sourcedid")?,
        outcome_url: r.try_get("lis_outcome_service_url")?,
        ext_outcome_data_values_accepted: r.try_get("ext_outcome_data_values_accepted")?,
        ext_result_total_score_accepted: r
            .try_get::<Option<i64>, _>("ext_result_total_score_accepted")?
            .unwrap_or(0)
            != 0,
        ext_submitted_at_accepted: r
            .try_get::<Option<i64>, _>("ext_submitted_at_accepted")?
            .unwrap_or(0)
            != 0,
        target_learned_at: r.try_get("target_learned_at")?,
        last_attempt,
        lms,
    })
}

const CANDIDATE_FROM: &str = "
    FROM current_grades cg
    JOIN grades g ON g.id = cg.grade_ref
    JOIN activities a ON a.id = cg.activity_ref
    JOIN contexts c ON c.id = a.context_ref
    JOIN platforms p ON p.id = c.platform_id
    JOIN learners l ON l.id = cg.learner_ref";

/// How a run ended (what `sync_runs.summary` holds).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub run_id: String,
    pub pid: i64,
    pub host: String,
    pub kind: String,
    pub started_at: String,
    pub heartbeat_at: String,
    pub finished_at: Option<String>,
    pub summary: Option<String>,
}

/// An attempt that was journaled but never finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Dangling {
    pub id: i64,
    pub run_id: Option<String>,
    pub started_at: String,
    pub operation: AttemptOperation,
    pub key: Option<GradeKey>,
}

/// One row of the attempt timeline or the audit export.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct AttemptRow {
    pub attempt_id: i64,
    pub grade_id: Option<i64>,
    pub version: Option<i64>,
    pub platform: Option<String>,
    pub context_id: Option<String>,
    pub resource_link_id: Option<String>,
    pub lti_user_id: Option<String>,
    pub learner_name: Option<String>,
    pub operation: String,
    pub transport: String,
    pub target: String,
    pub origin: String,
    /// Which process sent it (`pid@host`), or the import batch that recorded another system's attempt.
    pub run_id: Option<String>,
    /// The person or job behind it (`--actor`, else `user@host`); empty for attempts
    /// recorded before ledgers kept it.
    pub actor: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub error_class: Option<String>,
    pub cause: Option<String>,
    pub description: Option<String>,
    pub fix_hint: Option<String>,
    /// The local score sent (0–1), for writes.
    pub score_sent: Option<f64>,
    /// What a read found (0–1; `null` = no grade).
    pub read_score: Option<f64>,
    /// What the LMS was last seen to hold before this attempt started (0–1), and
    /// when, so a mistaken bulk write can be reversed.
    pub lms_before: Option<f64>,
    pub lms_before_at: Option<String>,
    pub request_excerpt: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Which attempts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptFilter {
    pub grade_id: Option<i64>,
    pub learner: Option<String>,
    pub platform: Option<String>,
}

impl Store {
    /// One page of the current grades a filter matches, in key order after `after`.
    pub async fn candidates_page(
        &self,
        f: &GradeFilter,
        after: Option<GradeKey>,
        limit: i64,
    ) -> Result<Vec<Candidate>> {
        let mut q: Sql = Sql::new(
            "SELECT cg.activity_ref, cg.learner_ref, cg.status, cg.status_detail,
                    g.id AS grade_id, g.version, g.score_given, g.score_maximum, g.comment, g.result_text,
                    g.result_url, g.submitted_at, g.recorded_at,
                    p.id AS platform_id, p.kind, p.name AS platform,
                    c.context_id, a.resource_link_id, a.title AS activity_title, a.ltiaas_line_item_id,
                    a.points_possible,
                    l.lti_user_id, l.name AS learner_name, l.role,
                    t.lis_result_sourcedid, t.lis_outcome_service_url, t.ext_outcome_data_values_accepted,
                    t.ext_result_total_score_accepted, t.ext_submitted_at_accepted,
                    t.learned_at AS target_learned_at,
                    x.operation AS last_op, x.outcome AS last_outcome, x.error_class AS last_class,
                    x.cause AS last_cause, COALESCE(x.finished_at, x.started_at) AS last_at,
                    o.score AS lms_score, o.observed_at AS lms_at",
        );
        q.push(CANDIDATE_FROM);
        q.push(
            "
             LEFT JOIN outcome_targets t ON t.activity_ref = cg.activity_ref AND t.learner_ref = cg.learner_ref
             LEFT JOIN attempts x ON x.id = (
                 SELECT x2.id FROM attempts x2
                 WHERE x2.grade_ref = cg.grade_ref
                   AND NOT (x2.outcome = 'pending' AND x2.operation IN ('read', 'score_read'))
                 ORDER BY x2.id DESC LIMIT 1)
             LEFT JOIN lms_observations o ON o.id = (
                 SELECT o2.id FROM lms_observations o2
                 WHERE o2.activity_ref = cg.activity_ref AND o2.learner_ref = cg.learner_ref
                 ORDER BY o2.observed_at DESC, o2.id DESC LIMIT 1)
             WHERE 1 = 1",
        );
        if let Some(k) = after {
            q.push(" AND (cg.activity_ref > ")
                .push_bind(k.activity_ref)
                .push(" OR (cg.activity_ref = ")
                .push_bind(k.activity_ref)
                .push(" AND cg.learner_ref > ")
                .push_bind(k.learner_ref)
                .push("))");
        }
        push_filter(&mut q, f);
        q.push(" ORDER BY cg.activity_ref, cg.learner_ref LIMIT ")
            .push_bind(limit);
        q.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(candidate)
            .collect()
    }

    /// How many current grades a filter matches, by status.
    pub async fn count_by_status(&self, f: &GradeFilter) -> Result<Vec<(GradeStatus, i64)>> {
        let mut q: Sql = Sql::new("SELECT cg.status, COUNT(*) AS n");
        q.push(CANDIDATE_FROM).push(" WHERE 1 = 1");
        push_filter(&mut q, f);
        q.push(" GROUP BY cg.status ORDER BY cg.status");
        q.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let s: String = r.try_get("status")?;
                Ok((
                    GradeStatus::parse(&s).ok_or_else(|| Error::internal(format!("unknown status {s:?}")))?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Attempts journaled but never finished, oldest first.
    pub async fn dangling_attempts(&self) -> Result<Vec<Dangling>> {
        let rows = sqlx::query(
            "SELECT x.id, x.run_id, x.started_at, x.operation, g.activity_ref, g.learner_ref
             FROM attempts x LEFT JOIN grades g ON g.id = x.grade_ref
             WHERE x.finished_at IS NULL AND x.origin = 'passback' ORDER BY x.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let op: String = r.try_get("operation")?;
                let key = match (
                    r.try_get::<Option<i64>, _>("activity_ref")?,
                    r.try_get::<Option<i64>, _>("learner_ref")?,
                ) {
                    (Some(activity_ref), Some(learner_ref)) => Some(GradeKey {
                        activity_ref,
                        learner_ref,
                    }),
                    _ => None,
                };
                Ok(Dangling {
                    id: r.try_get("id")?,
                    run_id: r.try_get("run_id")?,
                    started_at: r.try_get("started_at")?,
                    operation: AttemptOperation::parse(&op)
                        .ok_or_else(|| Error::internal(format!("unknown attempt operation {op:?}")))?,
                    key,
                })
            })
            .collect()
    }

    /// Runs that have not finished, oldest first.
    pub async fn open_runs(conn: &mut AnyConnection) -> Result<Vec<RunRow>> {
        let rows = sqlx::query("SELECT * FROM sync_runs WHERE finished_at IS NULL ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(run_row).collect()
    }

    pub async fn insert_run(conn: &mut AnyConnection, kind: &str) -> Result<i64> {
        let now = now_rfc3339();
        Ok(sqlx::query_scalar::<_, i64>(
            "INSERT INTO sync_runs (run_id, pid, host, kind, started_at, heartbeat_at, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(run_id())
        .bind(i64::from(std::process::id()))
        .bind(host_name())
        .bind(kind)
        .bind(&now)
        .bind(&now)
        .bind(actor())
        .fetch_one(&mut *conn)
        .await?)
    }

    pub async fn heartbeat_run(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET heartbeat_at = $1 WHERE id = $2")
            .bind(now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Close a run (a dead one too, with what is known of it).
    pub async fn finish_run(conn: &mut AnyConnection, id: i64, summary: &str) -> Result<()> {
        sqlx::query("UPDATE sync_runs SET finished_at = $1, summary = $2 WHERE id = $3")
            .bind(now_rfc3339())
            .bind(summary)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn runs(&self, limit: i64) -> Result<Vec<RunRow>> {
        let rows = sqlx::query("SELECT * FROM sync_runs ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_row).collect()
    }

    /// The attempt timeline, newest first (at most `limit`).
    pub async fn attempt_rows(&self, f: &AttemptFilter, limit: i64) -> Result<Vec<AttemptRow>> {
        let mut q = attempt_rows_query();
        if let Some(g) = f.grade_id {
            q.push(" AND x.grade_ref = ").push_bind(g);
        }
        if let Some(l) = &f.learner {
            q.push(" AND l.lti_user_id = ").push_bind(l.clone());
        }
        if let Some(p) = &f.platform {
            q.push(" AND p.name = ").push_bind(p.clone());
        }
        q.push(" ORDER BY x.id DESC LIMIT ").push_bind(limit);
        q.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_row)
            .collect()
    }

    /// Every attempt, oldest first, a page at a time (`after` = the last id seen).
    pub async fn attempt_rows_after(&self, after: i64, limit: i64) -> Result<Vec<AttemptRow>> {
        let mut q = attempt_rows_query();
        q.push(" AND x.id > ")
            .push_bind(after)
            .push(" ORDER BY x.id LIMIT ")
            .push_bind(limit);
        q.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_row)
            .collect()
    }

    /// The latest observation of each of these pairs (for reports).
    pub async fn observations_of(&self, keys: &[GradeKey]) -> Result<Vec<(GradeKey, Option<f64>, String)>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in shaped(keys) {
            let mut q: Sql = Sql::new("SELECT k.column1, k.column2, o.score, o.observed_at FROM ");
            super::bulk::push_keys(&mut q, chunk);
            q.push(format!(
                " AS k {} lms_observations o ON o.id = (
                     SELECT o2.id FROM lms_observations o2
                     WHERE o2.activity_ref = k.column1 AND o2.learner_ref = k.column2
                     ORDER BY o2.observed_at DESC, o2.id DESC LIMIT 1)",
                self.engine.ordered_join()
            ));
            for r in q.build().fetch_all(&self.pool).await? {
                out.push((
                    GradeKey {
                        activity_ref: r.try_get(0)?,
                        learner_ref: r.try_get(1)?,
                    },
                    r.try_get(2)?,
                    r.try_get(3)?,
                ));
            }
        }
        Ok(out)
    }
}

fn run_row(r: &AnyRow) -> Result<RunRow> {
    Ok(RunRow {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        pid: r.try_get("pid")?,
        host: r.try_get("host")?,
        kind: r.try_get("kind")?,
        started_at: r.try_get("started_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        finished_at: r.try_get("finished_at")?,
        summary: r.try_get("summary")?,
    })
}

fn attempt_rows_query() -> Sql {
    Sql::new(
        "SELECT x.id AS attempt_id, x.grade_ref AS grade_id, g.version, p.name AS platform, c.context_id,
                a.resource_link_id, l.lti_user_id, l.name AS learner_name, x.operation, x.transport, x.target,
                x.origin, COALESCE(x.run_id, CASE WHEN x.batch_ref IS NULL THEN NULL
                                                  ELSE 'import batch ' || x.batch_ref END) AS run_id, x.actor,
                x.started_at, x.finished_at, x.outcome, x.http_status, x.error_class, x.cause, x.description,
                x.fix_hint, x.read_score, x.request_excerpt, x.response_excerpt,
                CASE WHEN x.operation IN ('replace', 'score') THEN g.score_given / g.score_maximum END AS score_sent,
                (SELECT o.score FROM lms_observations o
                  WHERE o.activity_ref = x.activity_ref AND o.learner_ref = x.learner_ref
                    AND o.observed_at < x.started_at
                  ORDER BY o.observed_at DESC, o.id DESC LIMIT 1) AS lms_before,
                (SELECT o.observed_at FROM lms_observations o
                  WHERE o.activity_ref = x.activity_ref AND o.learner_ref = x.learner_ref
                    AND o.observed_at < x.started_at
                  ORDER BY o.observed_at DESC, o.id DESC LIMIT 1) AS lms_before_at
         FROM attempts x
         LEFT JOIN grades g ON g.id = x.grade_ref
         LEFT JOIN activities a ON a.id = x.activity_ref
         LEFT JOIN contexts c ON c.id = a.context_ref
         LEFT JOIN platforms p ON p.id = c.platform_id
         LEFT JOIN learners l ON l.id = x.learner_ref
         WHERE 1 = 1",
    )
}

fn attempt_row(r: &AnyRow) -> Result<AttemptRow> {
    Ok(AttemptRow {
        attempt_id: r.try_get("attempt_id")?,
        grade_id: r.try_get("grade_id")?,
        version: r.try_get("version")?,
        platform: r.try_get("platform")?,
        context_id: r.try_get("context_id")?,
        resource_link_id: r.try_get("resource_link_id")?,
        lti_user_id: r.try_get("lti_user_id")?,
        learner_name: r.try_get("learner_name")?,
        operation: r.try_get("operation")?,
        transport: r.try_get("transport")?,
        target: r.try_get("target")?,
        origin: r.try_get("origin")?,
        run_id: r.try_get("run_id")?,
        actor: r.try_get("actor")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        outcome: r.try_get("outcome")?,
        http_status: r.try_get("http_status")?,
        error_class: r.try_get("error_class")?,
        cause: r.try_get("cause")?,
        description: r.try_get("description")?,
        fix_hint: r.try_get("fix_hint")?,
        score_sent: r.try_get("score_sent")?,
        read_score: r.try_get("read_score")?,
        lms_before: r.try_get("lms_before")?,
        lms_before_at: r.try_get("lms_before_at")?,
        request_excerpt: r.try_get("request_excerpt")?,
        response_excerpt: r.try_get("response_excerpt")?,
    })
}

impl Store {
    /// The gradebook export a `--from-export` reconcile compares against: the
    /// newest export observation among the matched grades (its file and when
    /// it was made), or `None` when no export covers them.
    pub async fn latest_export(&self, f: &GradeFilter) -> Result<Option<(String, String)>> {
        let mut q: Sql = Sql::new(
            "SELECT o.source, o.observed_at FROM lms_observations o
             JOIN current_grades cg ON cg.activity_ref = o.activity_ref AND cg.learner_ref = o.learner_ref
             JOIN grades g ON g.id = cg.grade_ref
             JOIN activities a ON a.id = cg.activity_ref
             JOIN contexts c ON c.id = a.context_ref
             JOIN platforms p ON p.id = c.platform_id
             JOIN learners l ON l.id = cg.learner_ref
             WHERE o.batch_ref IS NOT NULL AND o.source LIKE 'export:%'",
        );
        push_filter(&mut q, f);
        q.push(" ORDER BY o.observed_at DESC, o.id DESC LIMIT 1");
        let row = q.build().fetch_optional(&self.pool).await?;
        row.map(|r| {
            let source: String = r.try_get("source")?;
            let at: String = r.try_get("observed_at")?;
            Ok((source.trim_start_matches("export:").to_string(), at))
        })
        .transpose()
    }
}
