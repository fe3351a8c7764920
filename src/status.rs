//! The status rules: one pure function from a grade's facts to its [`GradeStatus`].
//!
//! [`crate::intake`] calls [`decide`] in the same transaction as every fact or
//! attempt that changes a grade, and stores the result in the ledger's
//! `current_grades.status` column, so the CLI and the window filter and page by
//! status in SQL. Reconcile and sync read the stored column; nobody else decides
//! a status.
//!
//! The rules, in order:
//! 1. A write attempt for the current version still in flight, or one interrupted
//!    by a process that stopped before the LMS answered (cause `interrupted`) →
//!    `unknown`: the LMS may or may not hold the value until a read tells.
//! 2. Otherwise the newer of the last finished attempt for the current version and
//!    the last LMS observation decides:
//!    * a write the LMS confirmed → `in_sync`; `processing` → `unknown`;
//!    * a failed attempt (write or read) → `failed`, with the LMS's words — or
//!      `cannot_send` when no outcome target is known any more (sending again
//!      cannot help until one is);
//!    * an observation → `in_sync` when the LMS value equals the local one within
//!      the LMS's rounding (see [`same_score`]), `differs` when it does not, `lms_missing` when the LMS
//!      holds no grade (`cannot_send` instead when Passback could not send one).
//! 3. Nothing known about the LMS: `cannot_send` when no outcome target (LTI 1.1
//!    sourcedid and outcome URL, LTIAAS service key) is known or the person is not a
//!    learner; else `pending`.

use serde::{Deserialize, Serialize};

use crate::model::{
    AttemptFact, AttemptOperation, AttemptOutcome, Cause, GradeFacts, GradeStatus, Observation, PlatformKind,
    Role,
};

/// Bump when the rules below change: the ledger recomputes every stored status
/// the next time it is opened.
pub const RULES_VERSION: i64 = 4;

/// Two scores on the 0–1 scale closer than this are the same grade: LMSs keep
/// scores rounded, and a percentage with two decimals (Canvas on a 100-point
/// assignment) is within half of this of the score sent.
pub const SCORE_TOLERANCE: f64 = 0.0001;

/// How close a read-back must be to the score Passback would send to count as the
/// same grade, for an assignment worth `points` (see [`same_score`]).
const ROUNDING_EXACT: f64 = 1e-9;

/// A status and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub status: GradeStatus,
    pub detail: Option<String>,
}

impl Decided {
    fn new(status: GradeStatus, detail: Option<String>) -> Self {
        Self { status, detail }
    }
}

/// Whether a role's grades are sent by default (learners, and people whose role
/// Passback does not know).
pub fn is_sendable_role(role: Role) -> bool {
    matches!(role, Role::Learner | Role::Other | Role::Unknown)
}

/// Why a grade cannot be sent, if it cannot.
fn cannot_send_reason(f: &GradeFacts) -> Option<String> {
    if !f.has_target {
        if let Some(why) = &f.target_unavailable {
            return Some(why.clone());
        }
        return Some(match f.transport {
            PlatformKind::Lti11 => {
                "no lis_result_sourcedid / outcome URL known: the learner must launch the activity again"
                    .into()
            }
            PlatformKind::Ltiaas => {
                "no LTIAAS service key known for this context: a fresh launch is needed".into()
            }
        });
    }
    if !is_sendable_role(f.role) {
        return Some(format!(
            "this person is a {} in the course, not a learner: Passback sends only learners' grades",
            f.role.as_str().replace('_', " ")
        ));
    }
    None
}

fn is_write(op: AttemptOperation) -> bool {
    matches!(
        op,
        AttemptOperation::Replace | AttemptOperation::Score | AttemptOperation::Delete
    )
}

/// Whether what the LMS holds (`lms`, 0–1) is the local score (`local`, 0–1) as
/// the LMS keeps it, on an assignment worth `points` (the activity's points
/// possible, else the grade's maximum). The stated tolerance:
/// * within [`SCORE_TOLERANCE`] (0.0001, i.e. 0.01 percentage points): Moodle
///   keeps floats, Canvas a percentage on a 100-point assignment; or
/// * exactly the local score rounded to hundredths of a point: Canvas keeps
///   `(points × percentage × 100).round / 100` points, so 1/3 of a 7-point
///   assignment reads back as 2.33 / 7 = 0.332857…, 0.00048 below the score sent.
///
/// The second rule accepts only that rounding, not any value within half a
/// hundredth of a point, so a real difference is never hidden on a small scale.
pub fn same_score(lms: f64, local: f64, points: f64) -> bool {
    if (lms - local).abs() < SCORE_TOLERANCE {
        return true;
    }
    if !(points.is_finite() && points > 0.0) {
        return false;
    }
    let kept = (points * local * 100.0).round() / 100.0 / points;
    (lms - kept).abs() < ROUNDING_EXACT
}

pub fn percent(x: f64) -> String {
    let p = format!("{:.2}", x * 100.0);
    let p = p.trim_end_matches('0').trim_end_matches('.');
    format!("{p}%")
}

fn from_observation(f: &GradeFacts, o: &Observation) -> Decided {
    match o.score {
        Some(lms) if same_score(lms, f.score, f.points) => Decided::new(GradeStatus::InSync, None),
        Some(lms) => {
            let mut detail = format!(
                "the LMS holds {} (local {}), seen {} ({})",
                percent(lms),
                percent(f.score),
                o.at,
                o.source
            );
            if lms > f.score {
                detail.push_str("; LMS higher: possible instructor override");
            }
            Decided::new(GradeStatus::Differs, Some(detail))
        }
        None => match cannot_send_reason(f) {
            Some(why) => Decided::new(
                GradeStatus::CannotSend,
                Some(format!("the LMS holds no grade and {why}")),
            ),
            None => Decided::new(
                GradeStatus::LmsMissing,
                Some(format!("the LMS holds no grade (seen {}, {})", o.at, o.source)),
            ),
        },
    }
}

fn from_attempt(a: &AttemptFact) -> Option<Decided> {
    match a.outcome {
        AttemptOutcome::Success if is_write(a.operation) => Some(Decided::new(GradeStatus::InSync, None)),
        // A successful read is an observation; it decides through that.
        AttemptOutcome::Success => None,
        AttemptOutcome::Processing => Some(Decided::new(GradeStatus::Unknown, a.description.clone())),
        AttemptOutcome::Pending => Some(Decided::new(GradeStatus::Unknown, a.description.clone())),
        // Passback stopped before the LMS answered: nobody knows until a read.
        AttemptOutcome::Error if a.cause == Some(Cause::Interrupted) => {
            Some(Decided::new(GradeStatus::Unknown, a.description.clone()))
        }
        AttemptOutcome::Failure | AttemptOutcome::Error => {
            Some(Decided::new(GradeStatus::Failed, a.description.clone()))
        }
    }
}

/// The status of one grade. Pure: the same facts always give the same answer.
pub fn decide(f: &GradeFacts) -> Decided {
    let attempt = f.last_attempt.as_ref();
    // 1. A write in flight: the LMS may hold either value.
    if let Some(a) = attempt
        && a.outcome == AttemptOutcome::Pending
        && is_write(a.operation)
    {
        return Decided::new(GradeStatus::Unknown, a.description.clone());
    }
    // 2. The newer of the last attempt and the last observation decides.
    let observation = f.last_observation.as_ref();
    let by_attempt = attempt
        .and_then(from_attempt)
        .map(|d| match (d.status, cannot_send_reason(f)) {
            (GradeStatus::Failed, Some(why)) => Decided::new(GradeStatus::CannotSend, Some(why)),
            _ => d,
        });
    match (attempt, by_attempt, observation) {
        (Some(a), Some(d), Some(o)) if a.at > o.at => return d,
        (_, _, Some(o)) => return from_observation(f, o),
        (_, Some(d), None) => return d,
        (_, None, None) => {}
    }
    // 3. Nothing known about the LMS.
    match cannot_send_reason(f) {
        Some(why) => Decided::new(GradeStatus::CannotSend, Some(why)),
        None => Decided::new(GradeStatus::Pending, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> GradeFacts {
        GradeFacts {
            transport: PlatformKind::Lti11,
            has_target: true,
            role: Role::Learner,
            score: 0.5,
            points: 10.0,
            last_attempt: None,
            last_observation: None,
            target_unavailable: None,
        }
    }

    fn attempt(op: AttemptOperation, outcome: AttemptOutcome, at: &str) -> Option<AttemptFact> {
        Some(AttemptFact {
            operation: op,
            outcome,
            error_class: None,
            cause: None,
            description: Some(format!("{} {}", op.as_str(), outcome.as_str())),
            at: at.into(),
        })
    }

    fn seen(score: Option<f64>, at: &str) -> Option<Observation> {
        Some(Observation {
            score,
            at: at.into(),
            source: "read".into(),
        })
    }

    const T1: &str = "2026-11-20T10:00:00.000Z";
    const T2: &str = "2026-11-21T10:00:00.000Z";

    #[test]
    fn an_interrupted_write_is_unknown_until_a_later_read() {
        let mut f = facts();
        let mut a = attempt(AttemptOperation::Replace, AttemptOutcome::Error, T1);
        if let Some(a) = a.as_mut() {
            a.cause = Some(Cause::Interrupted);
            a.error_class = Some(crate::model::ErrorClass::Transient);
        }
        f.last_attempt = a.clone();
        assert_eq!(
            decide(&f).status,
            GradeStatus::Unknown,
            "not failed: nobody knows"
        );
        f.last_observation = seen(Some(0.5), T2);
        assert_eq!(
            decide(&f).status,
            GradeStatus::InSync,
            "the read afterwards decides"
        );
        f.last_observation = seen(None, T2);
        assert_eq!(decide(&f).status, GradeStatus::LmsMissing);
        // Any other error stays a failure.
        let mut f = facts();
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Error, T1);
        assert_eq!(decide(&f).status, GradeStatus::Failed);
    }

    #[test]
    fn nothing_known_is_pending_or_cannot_send() {
        assert_eq!(decide(&facts()).status, GradeStatus::Pending);
        let mut f = facts();
        f.has_target = false;
        let d = decide(&f);
        assert_eq!(d.status, GradeStatus::CannotSend);
        assert!(d.detail.unwrap().contains("launch the activity again"));
        f.transport = PlatformKind::Ltiaas;
        assert!(decide(&f).detail.unwrap().contains("service key"));
        f.target_unavailable = Some("the Open edX records were not imported yet".into());
        assert_eq!(
            decide(&f).detail.as_deref(),
            Some("the Open edX records were not imported yet"),
            "a reason the source gave wins over the generic one"
        );
        let mut f = facts();
        f.role = Role::Instructor;
        let d = decide(&f);
        assert_eq!(d.status, GradeStatus::CannotSend);
        assert!(d.detail.unwrap().contains("instructor"), "the role is named");
        f.role = Role::Unknown;
        assert_eq!(decide(&f).status, GradeStatus::Pending, "unknown roles are sent");
    }

    #[test]
    fn attempts_decide_when_nothing_was_observed() {
        let mut f = facts();
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Success, T1);
        assert_eq!(decide(&f).status, GradeStatus::InSync);
        f.last_attempt = attempt(AttemptOperation::Score, AttemptOutcome::Failure, T1);
        let d = decide(&f);
        assert_eq!(d.status, GradeStatus::Failed);
        assert_eq!(d.detail.as_deref(), Some("score failure"));
        f.last_attempt = attempt(AttemptOperation::Read, AttemptOutcome::Error, T1);
        assert_eq!(
            decide(&f).status,
            GradeStatus::Failed,
            "a failed read is a failure"
        );
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Pending, T1);
        assert_eq!(decide(&f).status, GradeStatus::Unknown);
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Processing, T1);
        assert_eq!(decide(&f).status, GradeStatus::Unknown);
        f.last_attempt = attempt(AttemptOperation::Read, AttemptOutcome::Success, T1);
        assert_eq!(
            decide(&f).status,
            GradeStatus::Pending,
            "a read without an observation says nothing"
        );
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Failure, T1);
        f.has_target = false;
        assert_eq!(
            decide(&f).status,
            GradeStatus::CannotSend,
            "a failure without a target: sending again cannot help"
        );
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Success, T1);
        assert_eq!(
            decide(&f).status,
            GradeStatus::InSync,
            "what was confirmed stays confirmed"
        );
    }

    #[test]
    fn observations_compare_on_the_zero_to_one_scale() {
        let mut f = facts();
        f.last_observation = seen(Some(0.50004), T1);
        assert_eq!(decide(&f).status, GradeStatus::InSync);
        f.last_observation = seen(Some(0.4), T1);
        let d = decide(&f);
        assert_eq!(d.status, GradeStatus::Differs);
        assert!(d.detail.as_deref().unwrap().contains("40%"), "{d:?}");
        assert!(!d.detail.unwrap().contains("LMS higher"));
        f.last_observation = seen(Some(0.9), T1);
        assert!(
            decide(&f)
                .detail
                .unwrap()
                .contains("LMS higher: possible instructor override")
        );
        f.last_observation = seen(None, T1);
        assert_eq!(decide(&f).status, GradeStatus::LmsMissing);
        f.has_target = false;
        let d = decide(&f);
        assert_eq!(d.status, GradeStatus::CannotSend);
        assert!(d.detail.unwrap().starts_with("the LMS holds no grade and"));
    }

    #[test]
    fn the_newer_of_attempt_and_observation_decides() {
        let mut f = facts();
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Success, T1);
        f.last_observation = seen(None, T2);
        assert_eq!(
            decide(&f).status,
            GradeStatus::LmsMissing,
            "the LMS lost it later"
        );
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Failure, T2);
        f.last_observation = seen(Some(0.5), T1);
        assert_eq!(decide(&f).status, GradeStatus::Failed);
        f.last_attempt = attempt(AttemptOperation::Replace, AttemptOutcome::Pending, T1);
        assert_eq!(
            decide(&f).status,
            GradeStatus::Unknown,
            "a write in flight wins over anything seen"
        );
    }

    #[test]
    fn percentages_read_naturally() {
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(1.0 / 3.0), "33.33%");
        assert_eq!(percent(0.125), "12.5%");
    }

    /// What Canvas reads back for `score` on an assignment worth `points`
    /// (`Assignment.interpret_grade`: hundredths of a point).
    fn canvas_keeps(score: f64, points: f64) -> f64 {
        let percentage = score * 100.0 / 100.0;
        (points * percentage * 100.0).round() / 100.0 / points
    }

    #[test]
    fn thirds_and_eighths_of_a_seven_point_activity_survive_canvas_rounding() {
        // 0.875 points is kept as 0.88: Ruby rounds half away from zero.
        for (given, expect_kept) in [(7.0 / 3.0, 2.33), (14.0 / 3.0, 4.67), (0.875, 0.88)] {
            let local = given / 7.0;
            let lms = canvas_keeps(local, 7.0);
            assert!(
                (lms * 7.0 - expect_kept).abs() < 1e-9,
                "{given}: kept {}",
                lms * 7.0
            );
            assert!(same_score(lms, local, 7.0), "{given}/7 read back as {lms}");
            // Moodle keeps the float; a 100-point Canvas assignment, two decimals of a percent.
            assert!(same_score(local, local, 7.0));
            assert!(same_score(canvas_keeps(local, 100.0), local, 7.0));
            // Decided through an observation, the same.
            let mut f = facts();
            f.score = local;
            f.points = 7.0;
            f.last_observation = seen(Some(lms), T1);
            assert_eq!(decide(&f).status, GradeStatus::InSync, "{given}/7");
        }
        // The rounding is 0.00048 below 1/3 and 0.00071 above 0.125: more than the plain tolerance.
        assert!((canvas_keeps(1.0 / 3.0, 7.0) - 1.0 / 3.0).abs() > SCORE_TOLERANCE);
        assert!((canvas_keeps(0.125, 7.0) - 0.125).abs() > SCORE_TOLERANCE);
    }

    #[test]
    fn a_real_difference_is_never_taken_for_rounding() {
        let local = 1.0 / 3.0;
        // A hundredth of a point away from Canvas's rounding on 7 points: a different grade.
        assert!(!same_score(2.32 / 7.0, local, 7.0));
        assert!(!same_score(2.34 / 7.0, local, 7.0));
        // Within half a hundredth of a point but not the rounding: different.
        assert!(!same_score(2.331 / 7.0, local, 7.0));
        // Half a percent off on a 1-point assignment: different.
        assert!(!same_score(0.338, local, 1.0));
        assert!(same_score(0.33, local, 1.0), "1 point: Canvas keeps 0.33");
        // Unknown or nonsense points: only the plain tolerance.
        assert!(!same_score(2.33 / 7.0, local, 0.0));
        assert!(!same_score(2.33 / 7.0, local, f64::NAN));
        let mut f = facts();
        f.score = local;
        f.points = 7.0;
        f.last_observation = seen(Some(2.32 / 7.0), T1);
        assert_eq!(decide(&f).status, GradeStatus::Differs);
    }
}
