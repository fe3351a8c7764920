//! What to do with each grade: pure rules from its stored status and facts to a
//! plan (skip it, list it as impossible, or work on it: read first or not), and
//! after a read, whether to write.
//!
//! The rules that protect what the LMS holds:
//! * `in_sync` grades are skipped;
//! * a grade is never written over a higher LMS value (a possible instructor
//!   override) unless `--force-lower`; to know, a grade whose LMS value is unknown
//!   or older than its local version is read before it is written, and
//!   `--force-lower` always reads first;
//! * a permanent failure is tried once and then left alone, by this run and the
//!   next, until a person selects it (`--grade`, `--only failed`, `--only all`) or
//!   the grade's target changes (a new version resets it by itself);
//! * `cannot_send` grades are listed with their reason, never tried.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{AttemptOutcome, Cause, ErrorClass, GradeStatus};
use crate::store::Candidate;

/// Which grades a sync sends (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    Failed,
    Pending,
    LmsMissing,
    Differs,
    All,
}

impl Only {
    fn matches(self, s: GradeStatus) -> bool {
        match self {
            Only::Failed => s == GradeStatus::Failed,
            Only::Pending => matches!(s, GradeStatus::Pending | GradeStatus::Unknown),
            Only::LmsMissing => s == GradeStatus::LmsMissing,
            Only::Differs => s == GradeStatus::Differs,
            Only::All => true,
        }
    }
}

/// What a person chose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Empty: everything a sync sends by default.
    pub only: Vec<Only>,
    /// Grades a person picked (by id): tried whatever their last failure.
    pub grades: Vec<i64>,
    pub force_lower: bool,
}

/// The plan for one grade.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Left as it is (not counted as work).
    Skip(String),
    /// Cannot be sent until someone acts (listed with the reason).
    CannotSend(String),
    /// To send (reading the LMS first when `read_first`).
    Work { read_first: bool },
}

/// After a read, what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterRead {
    /// The LMS already holds the local grade.
    InSync,
    /// The LMS holds more than the local grade: left alone without `--force-lower`.
    LmsHigher(f64),
    Write,
}

fn permanent_failure(c: &Candidate) -> Option<Cause> {
    let a = c.last_attempt.as_ref()?;
    let failed = matches!(a.outcome, AttemptOutcome::Failure | AttemptOutcome::Error);
    (failed && a.error_class == Some(ErrorClass::Permanent)).then(|| a.cause.unwrap_or(Cause::Unknown))
}

/// The target was learned after the last attempt (a fresh launch): worth another try.
fn target_changed_since_attempt(c: &Candidate) -> bool {
    match (&c.target_learned_at, &c.last_attempt) {
        (Some(learned), Some(a)) => learned.as_str() > a.at.as_str(),
        _ => false,
    }
}

/// Whether what the ledger knows of the LMS is current enough to write without reading.
fn lms_known_since_version(c: &Candidate) -> bool {
    match &c.lms {
        Some((_, at)) => at.as_str() >= c.recorded_at.as_str(),
        None => false,
    }
}

fn interrupted(c: &Candidate) -> bool {
    c.last_attempt
        .as_ref()
        .is_some_and(|a| a.outcome == AttemptOutcome::Pending || a.cause == Some(Cause::Interrupted))
}

/// The plan for one grade in a sync.
pub fn plan(c: &Candidate, sel: &Selection) -> Planned {
    if c.status == GradeStatus::CannotSend {
        return Planned::CannotSend(
            c.status_detail
                .clone()
                .unwrap_or_else(|| "no outcome target is known".into()),
        );
    }
    if c.status == GradeStatus::InSync {
        return Planned::Skip("already in sync".into());
    }
    let picked = sel.grades.contains(&c.grade_id);
    if !picked {
        let wanted = if sel.only.is_empty() {
            true
        } else {
            sel.only.iter().any(|o| o.matches(c.status))
        };
        if !wanted {
            return Planned::Skip(format!("not selected ({})", c.status.as_str()));
        }
        let person_chose_failures = sel.only.iter().any(|o| matches!(o, Only::Failed | Only::All));
        if c.status == GradeStatus::Failed
            && let Some(cause) = permanent_failure(c)
            && !person_chose_failures
            && !target_changed_since_attempt(c)
        {
            return Planned::Skip(format!(
                "a permanent failure ({}): retried only when you select it (--grade {} or --only failed) or the \
                 learner launches again",
                cause.as_str(),
                c.grade_id
            ));
        }
    }
    // An LMS value above the local one, seen since this version: leave it.
    if c.status == GradeStatus::Differs
        && !sel.force_lower
        && lms_known_since_version(c)
        && let Some((Some(lms), _)) = c.lms
        && lms > c.score()
    {
        return Planned::Skip(format!(
            "the LMS holds more ({}): possible instructor override; --force-lower writes over it",
            crate::status::percent(lms)
        ));
    }
    let read_first =
        sel.force_lower || !lms_known_since_version(c) || c.status == GradeStatus::Unknown || interrupted(c);
    Planned::Work { read_first }
}

/// Whether an LMS value (0–1) is this grade as the LMS keeps it (its rounding, see
/// [`crate::status::same_score`]).
pub fn same_as(c: &Candidate, lms: f64) -> bool {
    crate::status::same_score(lms, c.score(), c.points())
}

/// After reading what the LMS holds (`None`: no grade), whether to write.
pub fn after_read(c: &Candidate, lms: Option<f64>, force_lower: bool) -> AfterRead {
    match lms {
        Some(v) if same_as(c, v) => AfterRead::InSync,
        Some(v) if v > c.score() && !force_lower => AfterRead::LmsHigher(v),
        _ => AfterRead::Write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttemptOperation, PlatformKind, Role};
    use crate::store::{GradeKey, LastAttempt};

    const T0: &str = "2026-11-20T10:00:00.000Z";
    const T1: &str = "2026-11-21T10:00:00.000Z";
    const T2: &str = "2026-11-22T10:00:00.000Z";

    fn c(status: GradeStatus) -> Candidate {
        Candidate {
            key: GradeKey {
                activity_ref: 1,
                learner_ref: 1,
            },
            grade_id: 7,
            version: 1,
            score_given: 5.0,
            score_maximum: 10.0,
            comment: None,
            result_text: None,
            result_url: None,
            submitted_at: None,
            recorded_at: T1.into(),
            status,
            status_detail: None,
            platform_id: 1,
            platform: "p".into(),
            transport: PlatformKind::Lti11,
            context_id: "c".into(),
            resource_link_id: "r".into(),
            activity_title: None,
            points_possible: None,
            line_item_id: None,
            lti_user_id: "u".into(),
            learner_name: None,
            role: Role::Learner,
            sourcedid: Some("s".into()),
            outcome_url: Some("https://lms.example.edu/o".into()),
            ext_outcome_data_values_accepted: None,
            ext_result_total_score_accepted: false,
            ext_submitted_at_accepted: false,
            target_learned_at: Some(T0.into()),
            last_attempt: None,
            lms: None,
        }
    }

    fn failed(cause: Cause, class: ErrorClass, at: &str) -> Option<LastAttempt> {
        Some(LastAttempt {
            operation: AttemptOperation::Replace,
            outcome: AttemptOutcome::Failure,
            error_class: Some(class),
            cause: Some(cause),
            at: at.into(),
        })
    }

    fn work(read_first: bool) -> Planned {
        Planned::Work { read_first }
    }

    #[test]
    fn statuses_plan_as_the_rules_say() {
        let all = Selection::default();
        assert!(matches!(plan(&c(GradeStatus::InSync), &all), Planned::Skip(_)));
        assert!(matches!(
            plan(&c(GradeStatus::CannotSend), &all),
            Planned::CannotSend(_)
        ));
        // Never read: read first, so a higher LMS value is never overwritten.
        assert_eq!(plan(&c(GradeStatus::Pending), &all), work(true));
        let mut missing = c(GradeStatus::LmsMissing);
        missing.lms = Some((None, T2.into()));
        assert_eq!(
            plan(&missing, &all),
            work(false),
            "read since this version: write"
        );
        missing.lms = Some((None, T0.into()));
        assert_eq!(
            plan(&missing, &all),
            work(true),
            "read before this version: read again"
        );
        let mut unknown = c(GradeStatus::Unknown);
        unknown.lms = Some((None, T2.into()));
        assert_eq!(plan(&unknown, &all), work(true), "in doubt: read");
    }

    #[test]
    fn a_higher_lms_grade_survives_unless_forced() {
        let mut d = c(GradeStatus::Differs);
        d.lms = Some((Some(0.9), T2.into()));
        assert!(
            matches!(plan(&d, &Selection::default()), Planned::Skip(ref why) if why.contains("instructor override"))
        );
        let force = Selection {
            force_lower: true,
            ..Selection::default()
        };
        assert_eq!(plan(&d, &force), work(true), "forced: a fresh read first");
        d.lms = Some((Some(0.2), T2.into()));
        assert_eq!(
            plan(&d, &Selection::default()),
            work(false),
            "lower in the LMS: raise it"
        );
        assert_eq!(after_read(&d, Some(0.5), false), AfterRead::InSync);
        assert_eq!(
            after_read(&d, Some(0.50004), false),
            AfterRead::InSync,
            "LMS rounding"
        );
        assert_eq!(after_read(&d, Some(0.9), false), AfterRead::LmsHigher(0.9));
        assert_eq!(after_read(&d, Some(0.9), true), AfterRead::Write);
        assert_eq!(after_read(&d, None, false), AfterRead::Write);
        assert_eq!(after_read(&d, Some(0.1), false), AfterRead::Write);
    }

    #[test]
    fn permanent_failures_wait_for_a_person_or_a_new_target() {
        let mut f = c(GradeStatus::Failed);
        f.last_attempt = failed(Cause::UnknownSourcedid, ErrorClass::Permanent, T1);
        assert!(
            matches!(plan(&f, &Selection::default()), Planned::Skip(ref why) if why.contains("unknown_sourcedid"))
        );
        let only_failed = Selection {
            only: vec![Only::Failed],
            ..Selection::default()
        };
        assert!(matches!(plan(&f, &only_failed), Planned::Work { .. }));
        let picked = Selection {
            grades: vec![7],
            ..Selection::default()
        };
        assert!(matches!(plan(&f, &picked), Planned::Work { .. }));
        f.target_learned_at = Some(T2.into());
        assert!(
            matches!(plan(&f, &Selection::default()), Planned::Work { .. }),
            "a fresh launch since the failure"
        );
        let mut t = c(GradeStatus::Failed);
        t.last_attempt = failed(Cause::ServerError, ErrorClass::Transient, T1);
        assert!(
            matches!(plan(&t, &Selection::default()), Planned::Work { .. }),
            "transient: tried again"
        );
        let pending_only = Selection {
            only: vec![Only::Pending],
            ..Selection::default()
        };
        assert!(
            matches!(plan(&t, &pending_only), Planned::Skip(_)),
            "--only narrows"
        );
    }
}
