//! Domain types shared by the store, the CLI and the desktop UI.
//! Names follow the project's vocabulary (ledger, platform, context, activity,
//! learner, outcome target, grade, attempt, status).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// How Passback talks to an LMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PlatformKind {
    /// LTI 1.1 Basic Outcomes: consumer key + secret, allowed outcome hosts.
    Lti11,
    /// LTIAAS service API: base URL + API key.
    Ltiaas,
}

impl PlatformKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Lti11 => "lti11",
            PlatformKind::Ltiaas => "ltiaas",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lti11" => Some(Self::Lti11),
            "ltiaas" => Some(Self::Ltiaas),
            _ => None,
        }
    }
}

/// An LMS connection Passback signs for. Holds a keyring *reference*, never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Platform {
    pub id: i64,
    pub name: String,
    pub kind: PlatformKind,
    /// LTI 1.1 consumer key (not secret).
    pub consumer_key: Option<String>,
    /// LTIAAS base URL.
    pub base_url: Option<String>,
    /// Hosts Passback may sign outcome requests for.
    pub allowed_hosts: Vec<String>,
    /// Whether plain `http://` is allowed to non-loopback hosts.
    pub allow_http: bool,
    /// Where the secret lives in the OS keyring (service/account), for support.
    pub secret_ref: String,
    pub created_at: String,
}

/// What a new LTI 1.1 platform needs (the secret travels separately).
#[derive(Debug, Clone, Deserialize)]
pub struct NewLti11Platform {
    pub name: String,
    pub consumer_key: String,
    pub allowed_hosts: Vec<String>,
    pub allow_http: bool,
}

/// What a new LTIAAS platform needs (the API key travels separately).
#[derive(Debug, Clone, Deserialize)]
pub struct NewLtiaasPlatform {
    pub name: String,
    pub base_url: String,
}

/// A course (LTI `context_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub id: i64,
    pub platform_id: i64,
    pub context_id: String,
    pub title: Option<String>,
    pub label: Option<String>,
}

/// A graded thing in a course (LTI resource link; LTIAAS line item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub id: i64,
    pub context_ref: i64,
    pub resource_link_id: String,
    pub title: Option<String>,
    pub points_possible: Option<f64>,
    pub ltiaas_line_item_id: Option<String>,
}

/// Normalized role of a person in a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Learner,
    Instructor,
    TeachingAssistant,
    ContentDeveloper,
    Administrator,
    Mentor,
    Other,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Instructor => "instructor",
            Role::TeachingAssistant => "teaching_assistant",
            Role::ContentDeveloper => "content_developer",
            Role::Administrator => "administrator",
            Role::Mentor => "mentor",
            Role::Other => "other",
            Role::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "learner" => Role::Learner,
            "instructor" => Role::Instructor,
            "teaching_assistant" => Role::TeachingAssistant,
            "content_developer" => Role::ContentDeveloper,
            "administrator" => Role::Administrator,
            "mentor" => Role::Mentor,
            "other" => Role::Other,
            "unknown" => Role::Unknown,
            _ => return None,
        })
    }
}

/// A person in a context, by LTI `user_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learner {
    pub id: i64,
    pub platform_id: i64,
    pub lti_user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub person_sourcedid: Option<String>,
    pub role: Role,
}

/// Where a learner's grade for an activity goes, and where we learned it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutcomeTarget {
    pub lis_result_sourcedid: Option<String>,
    pub lis_outcome_service_url: Option<String>,
    /// Canvas `ext_outcome_data_values_accepted` (e.g. `url,text`).
    pub ext_outcome_data_values_accepted: Option<String>,
    pub ext_result_total_score_accepted: bool,
    pub ext_submitted_at_accepted: bool,
    pub ext_prioritize_non_tool_grade_accepted: bool,
    pub ext_needs_additional_review_accepted: bool,
    /// Keyring reference of the LTIAAS service key (never the key).
    pub service_key_ref: Option<String>,
    pub learned_at: String,
    /// e.g. `launch:capture.txt:12` or `ltiaas-idtoken`.
    pub learned_from: String,
    /// Why no sourcedid, outcome URL or service key is known, when the source said.
    #[serde(default)]
    pub unavailable_reason: Option<String>,
}

/// A new local grade value (the ledger assigns the version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewGrade {
    pub score_given: f64,
    pub score_maximum: f64,
    pub comment: Option<String>,
    pub result_text: Option<String>,
    pub result_url: Option<String>,
    pub submitted_at: Option<String>,
    /// Where the value came from (`cli`, an import file, …).
    pub source: String,
}

/// One version of a grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    pub id: i64,
    pub activity_ref: i64,
    pub learner_ref: i64,
    pub version: i64,
    pub score_given: f64,
    pub score_maximum: f64,
    pub comment: Option<String>,
    pub result_text: Option<String>,
    pub result_url: Option<String>,
    pub submitted_at: Option<String>,
    pub recorded_at: String,
    pub source: String,
    /// When the source says the grade was given (an older one never becomes current).
    pub observed_at: Option<String>,
}

/// A grade's standing against the LMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum GradeStatus {
    Pending,
    InSync,
    LmsMissing,
    Differs,
    Failed,
    CannotSend,
    Unknown,
}

impl GradeStatus {
    pub const ALL: [GradeStatus; 7] = [
        GradeStatus::Pending,
        GradeStatus::InSync,
        GradeStatus::LmsMissing,
        GradeStatus::Differs,
        GradeStatus::Failed,
        GradeStatus::CannotSend,
        GradeStatus::Unknown,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GradeStatus::Pending => "pending",
            GradeStatus::InSync => "in_sync",
            GradeStatus::LmsMissing => "lms_missing",
            GradeStatus::Differs => "differs",
            GradeStatus::Failed => "failed",
            GradeStatus::CannotSend => "cannot_send",
            GradeStatus::Unknown => "unknown",
        }
    }
}

/// A row of the grades listing: the current version of a grade with names and status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct GradeRow {
    pub grade_id: i64,
    pub platform: String,
    pub context_id: String,
    pub resource_link_id: String,
    pub activity_title: Option<String>,
    pub lti_user_id: String,
    pub learner_name: Option<String>,
    pub version: i64,
    pub score_given: f64,
    pub score_maximum: f64,
    pub recorded_at: String,
    pub status: GradeStatus,
    /// Why the status is what it is (last error description, or what is missing).
    pub status_detail: Option<String>,
    /// What the LMS was last seen to hold, on the 0–1 scale (`null`: no grade there,
    /// or never seen: see `lms_seen_at`).
    pub lms_score: Option<f64>,
    /// When the LMS value was seen (a read, or a gradebook export's time); `null`: never.
    pub lms_seen_at: Option<String>,
    /// Where it was seen: `read`, or the gradebook export's file name.
    pub lms_source: Option<String>,
}

/// A row of the activities listing, with grade counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ActivityRow {
    pub id: i64,
    pub platform: String,
    pub context_id: String,
    pub context_title: Option<String>,
    pub resource_link_id: String,
    pub title: Option<String>,
    pub points_possible: Option<f64>,
    pub learners: i64,
    pub grades: i64,
}

/// Everything the main window shows on open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Overview {
    pub db_path: String,
    /// `ledger`, or `demo` for the demo workspace.
    pub workspace: String,
    /// The sandbox LMS the demo workspace talks to.
    pub sandbox_url: Option<String>,
    pub platforms: Vec<Platform>,
    pub activities: Vec<ActivityRow>,
    pub grade_count: i64,
    /// Opened read-only, not trusted yet: the window offers "Trust this ledger" and
    /// no action that writes or sends.
    pub read_only: bool,
}

/// What kind of request an attempt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOperation {
    Replace,
    Read,
    Delete,
    Score,
    ScoreRead,
}

impl AttemptOperation {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "replace" => Self::Replace,
            "read" => Self::Read,
            "delete" => Self::Delete,
            "score" => Self::Score,
            "score_read" => Self::ScoreRead,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOperation::Replace => "replace",
            AttemptOperation::Read => "read",
            AttemptOperation::Delete => "delete",
            AttemptOperation::Score => "score",
            AttemptOperation::ScoreRead => "score_read",
        }
    }
}

/// Why an attempt failed, which decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Transient,
    Auth,
    Permanent,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Auth => "auth",
            ErrorClass::Permanent => "permanent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "transient" => Some(Self::Transient),
            "auth" => Some(Self::Auth),
            "permanent" => Some(Self::Permanent),
            _ => None,
        }
    }
}

/// Why an attempt ended as it did: a stable code beside the human description,
/// which summaries, the window and audits group by. New codes may be added; a
/// code's meaning never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The LMS confirmed.
    Ok,
    /// The LMS accepted the request for later processing.
    Processing,
    // transient
    /// HTTP 5xx.
    ServerError,
    /// HTTP 429, or Canvas's `403 Forbidden (Rate Limit Exceeded)`.
    RateLimited,
    /// No answer in time.
    Timeout,
    /// Could not connect, or the connection broke.
    ConnectionFailed,
    /// The answer was cut off or malformed XML.
    MalformedAnswer,
    /// The answer names another request (`imsx_messageRefIdentifier`).
    MismatchedAnswer,
    /// The LMS said to try again later (e.g. Canvas `no_submission_created`).
    LmsBusy,
    /// Passback stopped before the LMS answered; a read decides.
    Interrupted,
    // auth
    /// The LMS rejected the OAuth signature or body hash.
    SignatureRejected,
    /// The LMS rejected the request time: this computer's clock is off.
    ClockSkew,
    /// The LMS does not know the consumer key.
    ConsumerKeyUnknown,
    /// The LMS saw the nonce before.
    NonceReplayed,
    /// Outcomes are disabled for the tool or the LMS (HTTP 403).
    OutcomesDisabled,
    /// LTIAAS rejected the API key.
    ApiKeyRejected,
    /// The LTIAAS service key (or ltik) expired: a fresh launch is needed.
    ServiceKeyStale,
    // permanent
    /// The LMS does not know the `lis_result_sourcedid` (or LTIAAS user).
    UnknownSourcedid,
    /// The person is not (or no longer) a student in the course.
    NotAStudent,
    /// The course is concluded or closed for grading.
    CourseClosed,
    /// The assignment was deleted or unlinked from the tool.
    AssignmentInvalid,
    /// The assignment has no points possible.
    NoPointsPossible,
    /// The activity does not accept grades.
    NotAcceptingGrades,
    /// The LMS rejected the score value.
    BadScore,
    /// The LMS rejected a timestamp (submittedAt, LTIAAS score time).
    BadTimestamp,
    /// The LMS rejected the Content-Type.
    ContentType,
    /// The LMS answered with a redirect (never followed for signed requests).
    Redirected,
    /// The URL did not answer like an outcome service (HTML page, 404).
    NotAnOutcomeService,
    /// The LMS's answer contradicts itself (e.g. success with an error status).
    ContradictoryAnswer,
    /// The request could not be built or was refused as invalid.
    InvalidRequest,
    /// The LMS refused with words Passback does not recognise.
    LmsRefused,
    /// Nothing more specific is known.
    Unknown,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Ok => "ok",
            Cause::Processing => "processing",
            Cause::ServerError => "server_error",
            Cause::RateLimited => "rate_limited",
            Cause::Timeout => "timeout",
            Cause::ConnectionFailed => "connection_failed",
            Cause::MalformedAnswer => "malformed_answer",
            Cause::MismatchedAnswer => "mismatched_answer",
            Cause::LmsBusy => "lms_busy",
            Cause::Interrupted => "interrupted",
            Cause::SignatureRejected => "signature_rejected",
            Cause::ClockSkew => "clock_skew",
            Cause::ConsumerKeyUnknown => "consumer_key_unknown",
            Cause::NonceReplayed => "nonce_replayed",
            Cause::OutcomesDisabled => "outcomes_disabled",
            Cause::ApiKeyRejected => "api_key_rejected",
            Cause::ServiceKeyStale => "service_key_stale",
            Cause::UnknownSourcedid => "unknown_sourcedid",
            Cause::NotAStudent => "not_a_student",
            Cause::CourseClosed => "course_closed",
            Cause::AssignmentInvalid => "assignment_invalid",
            Cause::NoPointsPossible => "no_points_possible",
            Cause::NotAcceptingGrades => "not_accepting_grades",
            Cause::BadScore => "bad_score",
            Cause::BadTimestamp => "bad_timestamp",
            Cause::ContentType => "content_type",
            Cause::Redirected => "redirected",
            Cause::NotAnOutcomeService => "not_an_outcome_service",
            Cause::ContradictoryAnswer => "contradictory_answer",
            Cause::InvalidRequest => "invalid_request",
            Cause::LmsRefused => "lms_refused",
            Cause::Unknown => "unknown",
        }
    }

    pub const ALL: [Cause; 32] = [
        Cause::Ok,
        Cause::Processing,
        Cause::ServerError,
        Cause::RateLimited,
        Cause::Timeout,
        Cause::ConnectionFailed,
        Cause::MalformedAnswer,
        Cause::MismatchedAnswer,
        Cause::LmsBusy,
        Cause::Interrupted,
        Cause::SignatureRejected,
        Cause::ClockSkew,
        Cause::ConsumerKeyUnknown,
        Cause::NonceReplayed,
        Cause::OutcomesDisabled,
        Cause::ApiKeyRejected,
        Cause::ServiceKeyStale,
        Cause::UnknownSourcedid,
        Cause::NotAStudent,
        Cause::CourseClosed,
        Cause::AssignmentInvalid,
        Cause::NoPointsPossible,
        Cause::NotAcceptingGrades,
        Cause::BadScore,
        Cause::BadTimestamp,
        Cause::ContentType,
        Cause::Redirected,
        Cause::NotAnOutcomeService,
        Cause::ContradictoryAnswer,
        Cause::InvalidRequest,
        Cause::LmsRefused,
        Cause::Unknown,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The cause a verdict has when its protocol named none.
    pub fn default_for(outcome: AttemptOutcome, class: Option<ErrorClass>) -> Self {
        match (outcome, class) {
            (AttemptOutcome::Success, _) => Cause::Ok,
            (AttemptOutcome::Processing, _) => Cause::Processing,
            (AttemptOutcome::Pending, _) => Cause::Interrupted,
            (_, Some(ErrorClass::Transient)) => Cause::ServerError,
            (_, Some(ErrorClass::Auth)) => Cause::SignatureRejected,
            _ => Cause::Unknown,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Pending,
    Success,
    Processing,
    Failure,
    Error,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Pending => "pending",
            AttemptOutcome::Success => "success",
            AttemptOutcome::Processing => "processing",
            AttemptOutcome::Failure => "failure",
            AttemptOutcome::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "success" => Self::Success,
            "processing" => Self::Processing,
            "failure" => Self::Failure,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// A journaled request, before it leaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAttempt {
    pub grade_ref: Option<i64>,
    pub activity_ref: Option<i64>,
    pub learner_ref: Option<i64>,
    pub operation: AttemptOperation,
    pub transport: PlatformKind,
    /// The outcome URL or line item the request went to.
    pub target: String,
    pub message_identifier: Option<String>,
    /// Redacted: never contains secrets or signatures.
    pub request_excerpt: Option<String>,
}

/// How a journaled request ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub outcome: AttemptOutcome,
    pub http_status: Option<u16>,
    pub code_major: Option<String>,
    pub description: Option<String>,
    pub error_class: Option<ErrorClass>,
    pub fix_hint: Option<String>,
    pub read_score: Option<f64>,
    pub response_excerpt: Option<String>,
    /// The stable code of why (see [`Cause`]).
    pub cause: Option<Cause>,
}

/// A journaled request with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Attempt {
    pub id: i64,
    pub grade_ref: Option<i64>,
    pub operation: String,
    pub transport: String,
    pub target: String,
    pub message_identifier: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: AttemptOutcome,
    pub http_status: Option<i64>,
    pub code_major: Option<String>,
    pub description: Option<String>,
    pub error_class: Option<ErrorClass>,
    pub fix_hint: Option<String>,
    pub read_score: Option<f64>,
    pub request_excerpt: Option<String>,
    pub response_excerpt: Option<String>,
    pub cause: Option<Cause>,
}

/// A file read into the ledger, with what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ImportBatch {
    pub id: i64,
    pub file_name: String,
    /// `sha256:<hex>` of the file's bytes.
    pub file_hash: String,
    pub file_bytes: i64,
    pub format: String,
    /// The platform whose grades the file fed, when one was chosen or matched.
    pub platform: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `imported`, `partial` (some rows quarantined), `rejected` (nothing kept),
    /// `cancelled`, `undone`.
    pub status: String,
    pub rows_read: i64,
    pub rows_imported: i64,
    pub rows_unchanged: i64,
    pub rows_quarantined: i64,
    pub rows_skipped: i64,
    pub notes: Vec<String>,
    /// Who imported it (`--actor`, else `user@host`); empty before ledgers kept it.
    pub actor: Option<String>,
}

/// A row an import rejected (quarantined) or skipped: where and why, never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RowIssue {
    pub line: u64,
    pub column: Option<String>,
    pub kind: RowIssueKind,
    pub reason: String,
}

/// Whether a row was rejected (an error in the file) or skipped (nothing to import).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum RowIssueKind {
    Rejected,
    Skipped,
}

impl RowIssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowIssueKind::Rejected => "rejected",
            RowIssueKind::Skipped => "skipped",
        }
    }
}

/// Health report for `passback doctor` and the About panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DoctorReport {
    pub passback_version: String,
    pub engine_version: String,
    pub db_path: String,
    pub schema_version: i64,
    pub schema_latest: i64,
    pub ledger_id: String,
    pub keyring_ok: bool,
    pub keyring_detail: String,
}

impl DoctorReport {
    pub fn healthy(&self) -> bool {
        self.keyring_ok && self.schema_version == self.schema_latest
    }
}

/// The last attempt linked to a grade's current version (a fact the status rules read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptFact {
    pub operation: AttemptOperation,
    pub outcome: AttemptOutcome,
    pub error_class: Option<ErrorClass>,
    pub cause: Option<Cause>,
    pub description: Option<String>,
    /// When the attempt finished (started, while in flight), RFC 3339 UTC.
    pub at: String,
}

/// What the LMS was last seen to hold for a grade (a read, or a gradebook export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The LMS's score on the 0–1 scale; `None` when it holds no grade.
    pub score: Option<f64>,
    /// When the LMS held it, RFC 3339 UTC.
    pub at: String,
    /// Where it was seen (`read`, `export:<file>`).
    pub source: String,
}

/// Everything the status of one grade depends on (see `crate::status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeFacts {
    pub transport: PlatformKind,
    /// LTI 1.1: a sourcedid and an outcome URL are known; LTIAAS: a service key is
    /// known for the activity.
    pub has_target: bool,
    pub role: Role,
    /// The current version's score on the 0–1 scale.
    pub score: f64,
    /// What the assignment is worth: the activity's points possible, else the
    /// grade's maximum (how the LMS rounds, see [`crate::status::same_score`]).
    pub points: f64,
    /// The last attempt for the current version, reads in flight left out.
    pub last_attempt: Option<AttemptFact>,
    pub last_observation: Option<Observation>,
    /// Why no target is known, when the source said (shown instead of the generic reason).
    pub target_unavailable: Option<String>,
}
