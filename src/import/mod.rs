//! Importing what real systems emit: one module per format, each turning its
//! input into the same small set of ledger facts ([`crate::intake::Fact`]), and
//! this engine, which does what every format shares once: detection, decoding
//! (UTF-8 or UTF-16, with or without a BOM), one import batch per file in one
//! transaction, quarantine (or `--strict` rejection) of bad rows with `file:line`
//! reasons that never quote the row, progress, cancellation and the report.
//!
//! Formats: [`tool_csv`] (a tool's grade export), [`edx_log`] (Open edX outcome
//! failures), [`edx_dump`] (Open edX `lti_provider` records), [`caliper`]
//! (Blackboard `LTIEvent`s), [`launches`] (captured LTI 1.1 launches), [`proxy`]
//! (Blackboard proxy-tool requests), [`idtoken`] (LTIAAS ID tokens) and
//! [`gradebook`] (Canvas and Moodle gradebook exports, as LMS-side observations).

pub mod caliper;
pub mod detect;
pub mod edx_dump;
pub mod edx_log;
pub mod gradebook;
pub mod idtoken;
pub mod json;
pub mod launch;
pub mod launches;
pub mod proxy;
pub mod text;
pub mod tool_csv;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::intake::{Batch, Fact, Intake, RowFacts, RowOutcome, RowResult};
use crate::model::{Platform, PlatformKind, RowIssue, RowIssueKind};
use crate::progress::{Flow, Job, Progress, Start, Tally};
use crate::secrets::{SecretRef, Secrets};
use crate::store::{BatchCounts, NewBatch};

/// A file format Passback imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A learning tool's grade export (CSV, columns named by LTI parameters).
    ToolCsv,
    /// Open edX `lti_provider` outcome-failure log lines.
    EdxLog,
    /// Open edX `lti_provider` records (Django dumpdata JSON, or CSV per model).
    EdxDump,
    /// Blackboard Caliper `LTIEvent`s.
    Caliper,
    /// Captured LTI 1.1 launches (form-encoded bodies or JSON maps).
    Launches,
    /// Blackboard proxy-tool requests (MAC-signed).
    Proxy,
    /// LTIAAS ID tokens (`GET /api/idtoken` answers).
    LtiaasIdtoken,
    /// A Canvas gradebook export (what the LMS holds).
    CanvasGradebook,
    /// A Moodle grade export (what the LMS holds).
    MoodleGradebook,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::ToolCsv,
        Format::EdxLog,
        Format::EdxDump,
        Format::Caliper,
        Format::Launches,
        Format::Proxy,
        Format::LtiaasIdtoken,
        Format::CanvasGradebook,
        Format::MoodleGradebook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::ToolCsv => "tool-csv",
            Format::EdxLog => "edx-log",
            Format::EdxDump => "edx-dump",
            Format::Caliper => "caliper",
            Format::Launches => "launches",
            Format::Proxy => "proxy",
            Format::LtiaasIdtoken => "ltiaas-idtoken",
            Format::CanvasGradebook => "canvas-gradebook",
            Format::MoodleGradebook => "moodle-gradebook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// What the format is, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Format::ToolCsv => "tool grade CSV",
            Format::EdxLog => "Open edX outcome-failure log",
            Format::EdxDump => "Open edX lti_provider records",
            Format::Caliper => "Blackboard Caliper LTIEvents",
            Format::Launches => "captured LTI 1.1 launches",
            Format::Proxy => "Blackboard proxy-tool requests",
            Format::LtiaasIdtoken => "LTIAAS ID tokens",
            Format::CanvasGradebook => "Canvas gradebook export",
            Format::MoodleGradebook => "Moodle grade export",
        }
    }
}

/// The digest of a Blackboard proxy-tool MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum MacDigest {
    #[default]
    Md5,
    Sha1,
}

impl MacDigest {
    pub fn as_str(self) -> &'static str {
        match self {
            MacDigest::Md5 => "md5",
            MacDigest::Sha1 => "sha1",
        }
    }

    /// The digest the `--mac` option does not name.
    pub fn other(self) -> Self {
        match self {
            MacDigest::Md5 => MacDigest::Sha1,
            MacDigest::Sha1 => MacDigest::Md5,
        }
    }
}

/// How to import.
#[derive(Debug, Clone, Default, serde::Deserialize, TS)]
#[serde(default)]
pub struct ImportOptions {
    /// The format, when detection should not decide.
    pub format: Option<Format>,
    /// The platform whose credentials will sign the imported grades.
    pub platform: Option<String>,
    /// Parse and report; write nothing.
    pub dry_run: bool,
    /// Reject the whole file at its first bad row (instead of quarantining rows).
    pub strict: bool,
    /// The URL launches were signed for (captured launches without a `launch_url`).
    pub launch_url: Option<String>,
    /// The proxy tool's shared secret, when not the platform's keyring entry.
    #[serde(skip)]
    #[ts(skip)]
    pub proxy_secret: Option<String>,
    /// The digest of proxy-tool MACs.
    pub mac: MacDigest,
    /// The course a gradebook export belongs to (its `context_id`).
    pub context: Option<String>,
    /// When the gradebook export was made (RFC 3339), if not in its file name.
    pub exported_at: Option<String>,
    /// Store Open edX consumer secrets found in a dump in the keyring of the
    /// matching platform (by default they are dropped).
    pub store_secrets: bool,
    /// What reports and the ledger call the file, when not its path (a file the
    /// window uploaded is staged under a temporary path; this is its own name).
    #[serde(skip)]
    #[ts(skip)]
    pub display_name: Option<String>,
}

/// Counts of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
pub struct ImportCounts {
    /// Records read (rows, events, requests, log records).
    pub read: u64,
    /// Records that changed the ledger.
    pub imported: u64,
    /// Records the ledger already held (or held something newer).
    pub unchanged: u64,
    /// Records rejected for an error in the file.
    pub quarantined: u64,
    /// Records with nothing to import (listed with why).
    pub skipped: u64,
    /// Grades of people who are not learners (imported; not sent by default).
    pub not_learners: u64,
    /// Grades older than the ledger's current version (kept out).
    pub older: u64,
}

/// What an import did with one file.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ImportReport {
    pub file: String,
    pub format: Format,
    /// The import batch (`None` for a dry run or a file refused before reading).
    pub batch_id: Option<i64>,
    /// `imported`, `partial`, `rejected`, `cancelled`, or `dry_run`.
    pub status: String,
    pub platform: Option<String>,
    pub counts: ImportCounts,
    /// Rejected and skipped rows: line, column and reason, never the row.
    pub issues: Vec<RowIssue>,
    /// Issues beyond those listed (all of them are in the ledger: `passback import show`).
    pub issues_not_listed: u64,
    pub notes: Vec<String>,
    pub dry_run: bool,
}

/// What an import reports while it runs.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ImportEvent {
    /// Rows were written (a chunk at a time).
    Rows {
        imported: u64,
        unchanged: u64,
        /// Bytes of the file read so far.
        bytes: u64,
    },
    /// A row was rejected or skipped.
    Issue { file: String, issue: RowIssue },
}

/// How many issues a report lists in full (the ledger keeps all of them).
const LISTED_ISSUES: usize = 1000;

/// Everything a format module reports through while it reads a file.
pub struct Ctx<'a> {
    batch: Batch,
    file: String,
    opts: &'a ImportOptions,
    secrets: &'a Secrets,
    sink: &'a mut (dyn Progress<ImportEvent> + Send),
    counts: ImportCounts,
    issues: Vec<RowIssue>,
    unsaved_issues: Vec<RowIssue>,
    issues_not_listed: u64,
    notes: BTreeMap<String, u64>,
    platforms: Vec<Platform>,
    /// The platform `--platform` named.
    pub platform: Option<Platform>,
    ledger_id: String,
    started: Instant,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stopped: bool,
    /// The platforms the file's facts were about.
    platforms_used: std::collections::BTreeSet<i64>,
    /// Platform secrets read from the keyring during this file (`None`: not there).
    secret_cache: HashMap<i64, Option<String>>,
    /// Service keys this file put in the keyring (each capture under its own account):
    /// deleted again if the import keeps nothing.
    keys_written: Vec<SecretRef>,
}

/// Why an import ended early.
enum Stop {
    /// `--strict`: the first rejected row rejects the file.
    Strict,
    /// Someone cancelled.
    Cancelled,
}

impl<'a> Ctx<'a> {
    pub fn options(&self) -> &ImportOptions {
        self.opts
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn secrets(&self) -> &Secrets {
        self.secrets
    }

    pub fn ledger_id(&self) -> &str {
        &self.ledger_id
    }

    /// The batch writer (format modules that resolve derived facts at the end).
    pub fn batch(&mut self) -> &mut Batch {
        &mut self.batch
    }

    /// Whether the import should stop reading (cancelled, or rejected in strict mode).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    fn tally(&self) -> Tally {
        Tally {
            done: self.counts.read,
            failed: self.counts.quarantined,
            total: None,
            elapsed: self.started.elapsed(),
        }
    }

    fn report_results(&mut self, results: Vec<RowResult>) {
        if results.is_empty() {
            return;
        }
        let mut imported = 0;
        let mut unchanged = 0;
        for r in results {
            if r.line == 0 {
                // Derived rows (e.g. targets resolved from a dump) are not file rows.
                continue;
            }
            if r.older {
                self.counts.older += 1;
            }
            match r.outcome {
                RowOutcome::Imported => imported += 1,
                RowOutcome::Unchanged => unchanged += 1,
            }
        }
        self.counts.imported += imported;
        self.counts.unchanged += unchanged;
        let event = ImportEvent::Rows {
            imported,
            unchanged,
            bytes: self.bytes.load(std::sync::atomic::Ordering::Relaxed),
        };
        let tally = self.tally();
        if self.sink.item(&tally, &event) == Flow::Stop {
            self.stopped = true;
        }
    }

    /// One record read with the facts it carries. Returns whether to go on.
    pub async fn row(&mut self, line: u64, facts: Vec<Fact>) -> Result<bool> {
        if let Some((column, c)) = control_character(&facts) {
            let reason = format!("{column} contains a control character (U+{:04X})", u32::from(c));
            return self.reject(line, Some(column), reason).await;
        }
        if holds_nul(&facts) {
            let reason = "a value contains a NUL character (U+0000), which the ledger cannot store";
            return self.reject(line, None, reason.to_string()).await;
        }
        if let Some(reason) = invalid_grade(&facts) {
            // Caught here for every format: the ledger would refuse it and end the file.
            return self.reject(line, None, reason).await;
        }
        if dated_in_the_future(&facts, time::OffsetDateTime::now_utc().unix_timestamp()) {
            // An older observation never becomes current: one grade dated years ahead
            // would keep every real grade of its learner and activity out.
            return self
                .reject(
                    line,
                    None,
                    "the grade is dated more than a day in the future (check the year and the time zone)",
                )
                .await;
        }
        self.counts.read += 1;
        if facts.iter().any(|f| matches!(f, Fact::Grade { place, .. }
            if place.person.as_ref().and_then(|p| p.role).is_some_and(|r| !crate::status::is_sendable_role(r))))
        {
            self.counts.not_learners += 1;
        }
        self.platforms_used
            .extend(facts.iter().filter_map(Fact::platform_id));
        let results = self.batch.push(RowFacts { line, facts }).await?;
        self.report_results(results);
        Ok(!self.stopped)
    }

    /// Facts derived at the end of a file (not a row of it).
    pub async fn derived(&mut self, facts: Vec<Fact>) -> Result<()> {
        self.platforms_used
            .extend(facts.iter().filter_map(Fact::platform_id));
        let results = self.batch.push(RowFacts { line: 0, facts }).await?;
        self.report_results(results);
        Ok(())
    }

    fn issue(&mut self, issue: RowIssue) -> Result<bool> {
        let tally = self.tally();
        let event = ImportEvent::Issue {
            file: self.file.clone(),
            issue: issue.clone(),
        };
        if self.sink.item(&tally, &event) == Flow::Stop {
            self.stopped = true;
        }
        if self.issues.len() < LISTED_ISSUES {
            self.issues.push(issue.clone());
        } else {
            self.issues_not_listed += 1;
        }
        self.unsaved_issues.push(issue);
        Ok(!self.stopped)
    }

    /// A record with an error: quarantined (or, with `--strict`, the file is rejected).
    /// The reason names the problem, never the record's content.
    pub async fn reject(
        &mut self,
        line: u64,
        column: Option<&str>,
        reason: impl Into<String>,
    ) -> Result<bool> {
        self.counts.read += 1;
        self.counts.quarantined += 1;
        let issue = RowIssue {
            line,
            column: column.map(str::to_string),
            kind: RowIssueKind::Rejected,
            reason: reason.into(),
        };
        if self.opts.strict {
            self.stopped = true;
            self.unsaved_issues.push(issue.clone());
            self.issues.push(issue);
            return Ok(false);
        }
        self.issue(issue)
    }

    /// A record with nothing to import (not an error), listed with why.
    pub async fn skip(&mut self, line: u64, column: Option<&str>, reason: impl Into<String>) -> Result<bool> {
        self.counts.read += 1;
        self.counts.skipped += 1;
        self.issue(RowIssue {
            line,
            column: column.map(str::to_string),
            kind: RowIssueKind::Skipped,
            reason: reason.into(),
        })
    }

    /// A note for the report, counted when repeated (e.g. "unknown consumer key K").
    pub fn note(&mut self, note: impl Into<String>) {
        *self.notes.entry(note.into()).or_insert(0) += 1;
    }

    /// The platform of an LTI 1.1 consumer key: `--platform` when given (and its key
    /// matches), else the platform with that key.
    pub fn platform_for_consumer_key(&self, key: &str) -> std::result::Result<Platform, String> {
        if let Some(p) = &self.platform {
            return match p.consumer_key.as_deref() {
                Some(k) if k == key => Ok(p.clone()),
                Some(k) => Err(format!(
                    "consumer key {key:?} is not the key of platform {:?} ({k:?})",
                    p.name
                )),
                None => Err(format!(
                    "platform {:?} is an LTIAAS platform, not an LTI 1.1 consumer",
                    p.name
                )),
            };
        }
        let matching: Vec<&Platform> = self
            .platforms
            .iter()
            .filter(|p| p.kind == PlatformKind::Lti11 && p.consumer_key.as_deref() == Some(key))
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(format!(
                "unknown consumer key {key:?}: add its platform with `passback platform add-lti11 --name NAME \
                 --consumer-key {key} --allow-host HOST` (reading the secret from stdin), then import again"
            )),
            many => Err(format!(
                "{} platforms use consumer key {key:?}; choose one with --platform",
                many.len()
            )),
        }
    }

    /// The header row of a CSV file and its line. `None` when there is none to use:
    /// an unreadable header is rejected (by line and reason), an empty file noted.
    pub async fn header_record(
        &mut self,
        records: &mut text::CsvRecords,
    ) -> Result<Option<(u64, csv::StringRecord)>> {
        match records.next() {
            Some(Ok(h)) => Ok(Some(h)),
            Some(Err(e)) => {
                self.reject(
                    e.line,
                    None,
                    format!("the header row cannot be read ({})", e.reason),
                )
                .await?;
                Ok(None)
            }
            None => {
                self.note("the file is empty");
                Ok(None)
            }
        }
    }

    /// The next record of a CSV file and its line; an unreadable one is rejected
    /// and passed over. `None` at the end, or when the import should stop.
    pub async fn next_record(
        &mut self,
        records: &mut text::CsvRecords,
    ) -> Result<Option<(u64, csv::StringRecord)>> {
        loop {
            match records.next() {
                None => return Ok(None),
                Some(Ok(record)) => return Ok(Some(record)),
                Some(Err(e)) => {
                    let reason = format!("unreadable row ({})", e.reason);
                    if !self.reject(e.line, None, reason).await? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The next record a reader of JSON or form-encoded records gives; one that
    /// cannot be read is rejected and passed over. `None` at the end, when the file
    /// cannot be read any further, or when the import should stop.
    pub async fn next_of<T>(
        &mut self,
        records: &mut (impl Iterator<Item = std::result::Result<T, json::JsonIssue>> + ?Sized),
    ) -> Result<Option<T>> {
        loop {
            match records.next() {
                None => return Ok(None),
                Some(Ok(r)) => return Ok(Some(r)),
                Some(Err(e)) => {
                    let go_on = self.reject(e.line, None, e.reason).await?;
                    if e.fatal || !go_on {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The platform `--platform` named, else those the file's facts were about.
    fn platform_names(&self) -> Option<String> {
        if let Some(p) = &self.platform {
            return Some(p.name.clone());
        }
        let names: Vec<&str> = self
            .platforms
            .iter()
            .filter(|p| self.platforms_used.contains(&p.id))
            .map(|p| p.name.as_str())
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// The platform `--platform` named, else the ledger's only platform, or why
    /// the row needs one.
    pub fn require_platform(&self, what: &str) -> std::result::Result<Platform, String> {
        self.sole_platform(None, what)
    }

    /// The platform `--platform` named, else the ledger's only platform of `kind`
    /// (of any kind with `None`), or why the row needs one.
    pub fn sole_platform(
        &self,
        kind: Option<PlatformKind>,
        what: &str,
    ) -> std::result::Result<Platform, String> {
        if let Some(p) = &self.platform {
            return Ok(p.clone());
        }
        let fits: Vec<&Platform> = self
            .platforms
            .iter()
            .filter(|p| kind.is_none_or(|k| p.kind == k))
            .collect();
        if let [one] = fits.as_slice() {
            return Ok((*one).clone());
        }
        let names: Vec<&str> = fits.iter().map(|p| p.name.as_str()).collect();
        Err(if names.is_empty() {
            format!(
                "{what} does not name its platform and the ledger has none: add one with `passback platform \
                 add-lti11` or `add-ltiaas`, then import with --platform NAME"
            )
        } else {
            format!(
                "{what} does not name its platform: import with --platform NAME (one of: {})",
                names.join(", ")
            )
        })
    }

    /// The only LTIAAS platform, or the one `--platform` named.
    pub fn ltiaas_platform(&self) -> std::result::Result<Platform, String> {
        if let Some(p) = &self.platform {
            return if p.kind == PlatformKind::Ltiaas {
                Ok(p.clone())
            } else {
                Err(format!(
                    "platform {:?} is an LTI 1.1 platform; LTIAAS ID tokens need an LTIAAS platform",
                    p.name
                ))
            };
        }
        let ltiaas: Vec<&Platform> = self
            .platforms
            .iter()
            .filter(|p| p.kind == PlatformKind::Ltiaas)
            .collect();
        match ltiaas.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err("the ledger has no LTIAAS platform: add one with `passback platform add-ltiaas`, then import again".into()),
            _ => Err("the ledger has several LTIAAS platforms: choose one with --platform".into()),
        }
    }

    /// Put a service key this file carries in the keyring, bound to `hosts`, before
    /// the ledger names it. Remembered, so that an import that keeps nothing also
    /// leaves nothing in the keyring.
    pub async fn store_service_key(&mut self, r: &SecretRef, key: &str, hosts: &[String]) -> Result<()> {
        self.secrets.set_bound(r, key, hosts).await?;
        self.keys_written.push(r.clone());
        Ok(())
    }

    /// The platform's secret from the keyring, if it is there (read once per file).
    pub async fn platform_secret(&mut self, p: &Platform) -> Option<String> {
        if let Some(known) = self.secret_cache.get(&p.id) {
            return known.clone();
        }
        // Only this ledger's own entries: an imported file never reaches another's.
        let secret = match SecretRef::parse_owned(&p.secret_ref, &self.ledger_id) {
            // Read only to verify signatures here, never sent: any binding will do.
            Ok(r) => self.secrets.get_bound(&r).await.ok().map(|b| b.secret),
            Err(_) => None,
        };
        self.secret_cache.insert(p.id, secret.clone());
        secret
    }

    async fn save_issues(&mut self) -> Result<()> {
        let issues = std::mem::take(&mut self.unsaved_issues);
        self.batch.save_issues(&issues).await
    }
}

/// Why a grade among `facts` is one the ledger refuses (an infinite or negative
/// score, no maximum, …), so the row is rejected by line instead of the ledger ending
/// the whole file.
fn invalid_grade(facts: &[Fact]) -> Option<String> {
    facts.iter().find_map(|f| match f {
        Fact::Grade { grade, .. } => crate::store::validate_grade(grade).err().map(|e| e.message),
        _ => None,
    })
}

/// The first identifier in `facts` with a control character in it (a NUL, an
/// escape, a line break), by its LTI name, and the character: damage, never an id
/// the LMS gave, and it would be stored, listed and sent as it is.
fn control_character(facts: &[Fact]) -> Option<(&'static str, char)> {
    use crate::store::EdxRecord;
    let mut ids: Vec<(&'static str, &str)> = Vec::new();
    for f in facts {
        match f {
            Fact::ServiceKey {
                context_id,
                resource_link_id,
                ..
            } => {
                ids.push(("context_id", context_id));
                ids.push(("resource_link_id", resource_link_id));
            }
            Fact::Edx(EdxRecord::LtiUser { lti_user_id, .. }) => {
                ids.push(("lti_user_id", lti_user_id));
            }
            Fact::Edx(EdxRecord::GradedAssignment {
                course_key,
                usage_key,
                sourcedid,
                ..
            }) => {
                ids.push(("course_key", course_key));
                ids.push(("usage_key", usage_key));
                ids.push(("lis_result_sourcedid", sourcedid));
            }
            Fact::Edx(EdxRecord::Consumer { consumer_key, .. }) => {
                ids.push(("consumer_key", consumer_key));
            }
            Fact::Edx(EdxRecord::OutcomeService { url, .. }) => {
                ids.push(("lis_outcome_service_url", url));
            }
            // The rest name a place (below).
            _ => {}
        }
        if let Some(p) = f.place() {
            if let Some(c) = &p.context {
                ids.push(("context_id", &c.context_id));
            }
            if let Some(a) = &p.activity {
                ids.push(("resource_link_id", &a.resource_link_id));
            }
            if let Some(person) = &p.person {
                ids.push(("user_id", &person.lti_user_id));
            }
        }
        let target = match f {
            Fact::Target { target, .. }
            | Fact::Launch {
                target: Some(target), ..
            } => Some(target),
            _ => None,
        };
        if let Some(t) = target {
            if let Some(s) = &t.lis_result_sourcedid {
                ids.push(("lis_result_sourcedid", s));
            }
            if let Some(u) = &t.lis_outcome_service_url {
                ids.push(("lis_outcome_service_url", u));
            }
        }
    }
    ids.into_iter()
        .find_map(|(name, id)| id.chars().find(|c| c.is_control()).map(|c| (name, c)))
}

/// Whether any text of `facts` holds a NUL character (U+0000): SQLite would keep
/// it, PostgreSQL cannot store it in text, so on either engine the row is
/// refused rather than the whole file failing on a team ledger. The facts'
/// `Debug` form writes a NUL as `\0` and a backslash as `\\`, so one pass over
/// it finds every text field without listing them.
fn holds_nul(facts: &[Fact]) -> bool {
    let shown = format!("{facts:?}");
    let mut chars = shown.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next() == Some('0') {
            return true;
        }
    }
    false
}

/// Whether a grade in `facts` is observed more than a day after `now` (Unix
/// seconds): time zones put honest times up to 14 hours ahead, never a day.
fn dated_in_the_future(facts: &[Fact], now: i64) -> bool {
    facts.iter().any(|f| match f {
        Fact::Grade {
            observed_at: Some(at),
            ..
        } => text::unix_seconds(at).is_some_and(|t| t > now + 24 * 60 * 60),
        _ => false,
    })
}

/// `sha256:<hex>` of a file, and its size.
fn file_hash(path: &Path) -> Result<(String, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((format!("sha256:{hex}"), n))
}

/// Import one file: detect its format, read it in one transaction, and report.
pub async fn import_file(
    intake: &Intake,
    secrets: &Secrets,
    path: &Path,
    opts: &ImportOptions,
    sink: &mut (dyn Progress<ImportEvent> + Send),
) -> Result<ImportReport> {
    let display = opts
        .display_name
        .clone()
        .unwrap_or_else(|| path.display().to_string());
    let open_error =
        |e: std::io::Error| Error::new(crate::error::ErrorKind::Io, format!("cannot read {display}: {e}"));
    let size = std::fs::metadata(path).map_err(open_error)?.len();
    // The file's hash is for the batch record: worked out beside the import.
    let hashing = (!opts.dry_run).then(|| {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || file_hash(&path))
    });
    let hash_of = |display: String| async move {
        hashing
            .ok_or_else(|| Error::internal("a dry run has no batch record to hash for"))?
            .await
            .map_err(|e| Error::internal(format!("hashing {display} stopped: {e}")))?
            .map(|(hash, _)| hash)
            .map_err(|e| match e.kind {
                crate::error::ErrorKind::Io => Error::new(
                    crate::error::ErrorKind::Io,
                    format!("cannot read {display}: {}", e.message),
                ),
                _ => e,
            })
    };
    let hash = "sha256:…".to_string();
    let format = match opts.format {
        Some(f) => f,
        None => detect::detect(path).map_err(open_error)?.ok_or_else(|| {
            Error::invalid(format!(
                "{display}: cannot tell what this file is; give --format (one of: {})",
                Format::ALL.map(|f| f.as_str()).join(", ")
            ))
        })?,
    };
    let store = intake.store();
    let platforms = store.list_platforms().await?;
    let platform = match &opts.platform {
        Some(name) => Some(store.platform_by_name(name).await?),
        None => None,
    };
    let ledger_id = store.ledger_id().await?;
    let record = NewBatch {
        file_name: &display,
        file_hash: &hash,
        file_bytes: size as i64,
        format: format.as_str(),
        platform_ref: platform.as_ref().map(|p| p.id),
    };
    let batch = intake.begin_batch((!opts.dry_run).then_some(&record)).await?;
    sink.begin(&Start {
        job: Job::Import,
        title: format!("{display} ({})", format.describe()),
        total: Some(size),
    });
    let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut ctx = Ctx {
        batch,
        file: display.clone(),
        opts,
        secrets,
        sink,
        counts: ImportCounts::default(),
        issues: Vec::new(),
        unsaved_issues: Vec::new(),
        issues_not_listed: 0,
        notes: BTreeMap::new(),
        platforms,
        platform,
        ledger_id,
        started: Instant::now(),
        bytes: bytes.clone(),
        stopped: false,
        platforms_used: Default::default(),
        secret_cache: HashMap::new(),
        keys_written: Vec::new(),
    };
    let input = text::Input::open(path, bytes).map_err(open_error)?;
    let ran = match format {
        Format::ToolCsv => tool_csv::run(&mut ctx, input).await,
        Format::EdxLog => edx_log::run(&mut ctx, input).await,
        Format::EdxDump => edx_dump::run(&mut ctx, input).await,
        Format::Caliper => caliper::run(&mut ctx, input).await,
        Format::Launches => launches::run(&mut ctx, input).await,
        Format::Proxy => proxy::run(&mut ctx, input).await,
        Format::LtiaasIdtoken => idtoken::run(&mut ctx, input).await,
        Format::CanvasGradebook => gradebook::run_canvas(&mut ctx, input, path).await,
        Format::MoodleGradebook => gradebook::run_moodle(&mut ctx, input, path).await,
    };
    // A failure of the ledger itself ends the import with nothing written.
    if let Err(e) = ran {
        let _ = ctx.batch.rollback().await;
        ctx.secrets.forget(&ctx.keys_written).await;
        return Err(e);
    }
    let stop = if opts.strict && ctx.counts.quarantined > 0 {
        Some(Stop::Strict)
    } else if ctx.stopped {
        Some(Stop::Cancelled)
    } else {
        None
    };
    let notes: Vec<String> = ctx
        .notes
        .iter()
        .map(|(n, k)| {
            if *k > 1 {
                format!("{n} ({k} rows)")
            } else {
                n.clone()
            }
        })
        .collect();
    let batch_counts = |c: &ImportCounts| BatchCounts {
        read: c.read as i64,
        imported: c.imported as i64,
        unchanged: c.unchanged as i64,
        quarantined: c.quarantined as i64,
        skipped: c.skipped as i64,
    };
    let mut report = ImportReport {
        file: display.clone(),
        format,
        batch_id: None,
        status: String::new(),
        platform: ctx.platform_names(),
        counts: ctx.counts,
        issues: Vec::new(),
        issues_not_listed: ctx.issues_not_listed,
        notes,
        dry_run: opts.dry_run,
    };
    let batch_id = ctx.batch.batch_id();
    let tally = ctx.tally();
    ctx.sink.finish(&tally);
    match stop {
        Some(Stop::Strict) | Some(Stop::Cancelled) => {
            let status = if matches!(stop, Some(Stop::Strict)) {
                "rejected"
            } else {
                "cancelled"
            };
            // Nothing of the file is kept: the whole transaction goes.
            let issues = std::mem::take(&mut ctx.unsaved_issues);
            ctx.secrets.forget(&ctx.keys_written).await;
            let Ctx { batch, counts, .. } = ctx;
            batch.rollback().await?;
            report.counts.imported = 0;
            report.counts.unchanged = 0;
            report.status = status.into();
            if !opts.dry_run {
                // The batch's own record stays, so `import list` shows what happened.
                let mut kept = batch_counts(&counts);
                kept.imported = 0;
                kept.unchanged = 0;
                let hash = hash_of(display.clone()).await?;
                let record = NewBatch {
                    file_hash: &hash,
                    ..record
                };
                let id = intake
                    .record_batch_that_kept_nothing(&record, status, &kept, &report.notes, &issues)
                    .await?;
                report.batch_id = Some(id);
            }
            report.issues = issues.into_iter().take(LISTED_ISSUES).collect();
        }
        None => {
            let flushed = ctx.batch.flush().await?;
            ctx.report_results(flushed);
            ctx.save_issues().await?;
            report.counts = ctx.counts;
            report.status = if opts.dry_run {
                "dry_run".into()
            } else if ctx.counts.quarantined > 0 {
                "partial".into()
            } else {
                "imported".into()
            };
            let status = report.status.clone();
            ctx.batch
                .finish_record(&status, &batch_counts(&ctx.counts), &report.notes)
                .await?;
            if !opts.dry_run {
                let hash = hash_of(display.clone()).await?;
                let only = match ctx.platforms_used.iter().collect::<Vec<_>>().as_slice() {
                    [one] => Some(**one),
                    _ => None,
                };
                ctx.batch.set_file(hash, only).await?;
            }
            report.issues = std::mem::take(&mut ctx.issues);
            let Ctx {
                batch,
                secrets,
                ledger_id,
                ..
            } = ctx;
            if opts.dry_run {
                batch.rollback().await?;
            } else {
                let (_, unused) = batch.commit_returning_unused_keys().await?;
                // Displaced by a newer capture, or captures of this file that lost.
                secrets.forget_unused(&unused, &ledger_id).await;
                report.batch_id = batch_id;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{ActivityOwned, ContextOwned, PersonOwned, PlaceOwned};
    use crate::model::NewGrade;

    fn grade(context_id: &str, user: &str) -> Fact {
        Fact::Grade {
            place: PlaceOwned {
                platform_id: 1,
                context: Some(ContextOwned {
                    context_id: context_id.into(),
                    ..ContextOwned::default()
                }),
                activity: Some(ActivityOwned {
                    resource_link_id: "quiz-1".into(),
                    ..ActivityOwned::default()
                }),
                person: Some(PersonOwned {
                    lti_user_id: user.into(),
                    ..PersonOwned::default()
                }),
            },
            grade: NewGrade {
                score_given: 1.0,
                score_maximum: 2.0,
                comment: Some("two lines:\nfine in a comment".into()),
                result_text: None,
                result_url: None,
                submitted_at: None,
                source: "test".into(),
            },
            observed_at: None,
        }
    }

    #[test]
    fn a_grade_the_ledger_would_refuse_is_that_rows_reason() {
        assert_eq!(invalid_grade(&[grade("bio-101", "u-ada")]), None);
        for (given, max, why) in [
            (f64::INFINITY, 10.0, "score given"),
            (-1.0, 10.0, "score given"),
            (1.0, 0.0, "score maximum"),
            (1.0, f64::NAN, "score maximum"),
        ] {
            let mut f = grade("bio-101", "u-ada");
            if let Fact::Grade { grade, .. } = &mut f {
                grade.score_given = given;
                grade.score_maximum = max;
            }
            let reason = invalid_grade(&[f]).expect("refused");
            assert!(reason.contains(why), "{given}/{max}: {reason}");
        }
    }

    #[test]
    fn ids_with_control_characters_are_found_by_their_lti_name() {
        assert_eq!(control_character(&[grade("bio-101", "u-ada")]), None);
        assert_eq!(
            control_character(&[grade("bio-101", "u-\u{1b}ada")]),
            Some(("user_id", '\u{1b}'))
        );
        assert_eq!(
            control_character(&[grade("bio-101\0", "u-ada")]),
            Some(("context_id", '\0'))
        );
        let edx = Fact::Edx(crate::store::EdxRecord::LtiUser {
            pk: 1,
            consumer_pk: 1,
            lti_user_id: "u\r\n".into(),
            edx_user: 17,
        });
        assert_eq!(control_character(&[edx]), Some(("lti_user_id", '\r')));
    }

    #[test]
    fn a_nul_anywhere_in_a_rows_text_is_found_and_a_backslash_zero_is_not() {
        assert!(!holds_nul(&[grade("bio-101", "u-ada")]));
        let with = |comment: &str| {
            let mut f = grade("bio-101", "u-ada");
            if let Fact::Grade { grade, .. } = &mut f {
                grade.comment = Some(comment.into());
            }
            f
        };
        assert!(holds_nul(&[with("ok\0then")]));
        assert!(holds_nul(&[grade("bio-101", "u-ada"), with("\0")]));
        assert!(!holds_nul(&[with(r"a literal \0 and \\0 is text")]));
        assert!(!holds_nul(&[with("tabs\tand\nnewlines")]));
    }

    #[test]
    fn a_grade_dated_more_than_a_day_ahead_is_found() {
        let at = |t: &str| match grade("c", "u") {
            Fact::Grade { place, grade, .. } => Fact::Grade {
                place,
                grade,
                observed_at: Some(t.into()),
            },
            other => other,
        };
        // 2026-11-20T10:00:00Z
        let now = 1_795_168_800;
        assert!(!dated_in_the_future(&[grade("c", "u")], now), "no time");
        assert!(!dated_in_the_future(&[at("2026-11-20T10:00:00.000Z")], now));
        assert!(
            !dated_in_the_future(&[at("2026-11-21T09:59:59.000Z")], now),
            "a time zone ahead"
        );
        assert!(dated_in_the_future(&[at("2026-11-21T10:00:01.000Z")], now));
        assert!(dated_in_the_future(&[at("9999-12-31T23:59:59.000Z")], now));
    }
}
