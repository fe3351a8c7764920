//! Support: the attempt timeline, the audit export (every attempt, with the LMS
//! value seen before each write, so a mistaken bulk sync can be reversed) and the
//! status export (the list an instructor asks for). Exports stream from the
//! ledger a page at a time into `FILE.partial` and are renamed into place only
//! when complete; they never hold a secret (excerpts are redacted when journaled).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::Passback;
use crate::error::{Error, ErrorKind, Result};
use crate::model::GradeRow;
use crate::store::{AttemptFilter, AttemptRow, GradeFilter};

/// Attempts per page of the audit export.
const PAGE: i64 = 2000;

/// The columns of the audit export, in order.
pub const AUDIT_COLUMNS: &[&str] = &[
    "attempt_id",
    "started_at",
    "finished_at",
    "who",
    "actor",
    "origin",
    "platform",
    "context_id",
    "resource_link_id",
    "lti_user_id",
    "learner_name",
    "grade_id",
    "version",
    "operation",
    "transport",
    "target",
    "outcome",
    "http_status",
    "error_class",
    "cause",
    "description",
    "score_sent",
    "read_score",
    "lms_before",
    "lms_before_at",
];

/// The columns of the status export, in order.
pub const STATUS_COLUMNS: &[&str] = &[
    "platform",
    "context_id",
    "resource_link_id",
    "activity_title",
    "lti_user_id",
    "learner_name",
    "grade_id",
    "version",
    "score_given",
    "score_maximum",
    "local_percent",
    "lms_percent",
    "lms_seen_at",
    "lms_source",
    "status",
    "status_detail",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}", v * 100.0)).unwrap_or_default()
}

/// A file written beside its destination and renamed into place when complete.
struct Out {
    partial: PathBuf,
    dest: PathBuf,
    csv: csv::Writer<BufWriter<File>>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "cannot write {}: {e}; check the folder exists and is writable",
            path.display()
        ),
    )
}

impl Out {
    fn create(dest: &Path, header: &[&str]) -> Result<Self> {
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|e| io_err(dest, e))?;
        let mut csv = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
        csv.write_record(header).map_err(|e| io_err(dest, e))?;
        Ok(Self {
            partial,
            dest: dest.to_path_buf(),
            csv,
        })
    }

    fn row(&mut self, cells: &[String]) -> Result<()> {
        self.csv.write_record(cells).map_err(|e| io_err(&self.dest, e))
    }

    fn commit(self) -> Result<()> {
        let dest = self.dest.clone();
        let mut inner = self.csv.into_inner().map_err(|e| io_err(&dest, e.error()))?;
        inner.flush().map_err(|e| io_err(&dest, e))?;
        inner.get_ref().sync_all().map_err(|e| io_err(&dest, e))?;
        drop(inner);
        std::fs::rename(&self.partial, &self.dest).map_err(|e| io_err(&dest, e))
    }

    fn abandon(self) {
        let partial = self.partial.clone();
        drop(self.csv);
        let _ = std::fs::remove_file(partial);
    }
}

fn audit_cells(a: &AttemptRow) -> Vec<String> {
    vec![
        a.attempt_id.to_string(),
        a.started_at.clone(),
        opt(&a.finished_at),
        opt(&a.run_id),
        opt(&a.actor),
        a.origin.clone(),
        opt(&a.platform),
        opt(&a.context_id),
        opt(&a.resource_link_id),
        opt(&a.lti_user_id),
        opt(&a.learner_name),
        opt(&a.grade_id),
        opt(&a.version),
        a.operation.clone(),
        a.transport.clone(),
        a.target.clone(),
        a.outcome.clone(),
        opt(&a.http_status),
        opt(&a.error_class),
        opt(&a.cause),
        opt(&a.description),
        opt(&a.score_sent),
        opt(&a.read_score),
        opt(&a.lms_before),
        opt(&a.lms_before_at),
    ]
}

fn status_cells(g: &GradeRow) -> Vec<String> {
    vec![
        g.platform.clone(),
        g.context_id.clone(),
        g.resource_link_id.clone(),
        opt(&g.activity_title),
        g.lti_user_id.clone(),
        opt(&g.learner_name),
        g.grade_id.to_string(),
        g.version.to_string(),
        g.score_given.to_string(),
        g.score_maximum.to_string(),
        percent((g.score_maximum > 0.0).then(|| g.score_given / g.score_maximum)),
        percent(g.lms_score),
        opt(&g.lms_seen_at),
        opt(&g.lms_source),
        g.status.as_str().to_string(),
        opt(&g.status_detail),
    ]
}

/// Which grade's timeline.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, ts_rs::TS)]
#[serde(default)]
pub struct TimelineQuery {
    pub grade_id: i64,
    /// At most this many attempts (default 200).
    pub limit: Option<i64>,
}

/// One attempt of a grade's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, ts_rs::TS)]
pub struct AttemptDetail {
    pub attempt: crate::model::Attempt,
    /// The request as a `curl` command (the signature or key stays redacted).
    pub curl: Option<String>,
}

impl Passback {
    /// The attempt timeline, newest first: redacted excerpts, causes, what was read.
    /// The timeline of one grade (every version of it), newest first: each
    /// attempt with its redacted request and response, and the request as a
    /// `curl` command without secrets.
    pub async fn grade_timeline(&self, q: &TimelineQuery) -> Result<Vec<AttemptDetail>> {
        let limit = q.limit.unwrap_or(200).clamp(1, 1000);
        Ok(self
            .store()
            .attempts_for_pair(q.grade_id, limit)
            .await?
            .into_iter()
            .map(|attempt| AttemptDetail {
                curl: attempt
                    .request_excerpt
                    .as_deref()
                    .and_then(crate::http::curl_from_excerpt),
                attempt,
            })
            .collect())
    }

    pub async fn attempts(&self, filter: &AttemptFilter, limit: i64) -> Result<Vec<AttemptRow>> {
        self.store().attempt_rows(filter, limit.clamp(1, 100_000)).await
    }

    /// Write every attempt, oldest first, to a CSV file (see [`AUDIT_COLUMNS`]).
    /// Returns how many rows were written.
    pub async fn export_audit(&self, dest: &Path) -> Result<u64> {
        let mut out = Out::create(dest, AUDIT_COLUMNS)?;
        let mut after = 0i64;
        let mut n = 0u64;
        let written: Result<()> = async {
            loop {
                let page = self.store().attempt_rows_after(after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.attempt_id;
                for a in &page {
                    out.row(&audit_cells(a))?;
                    n += 1;
                }
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => out.commit().map(|()| n),
            Err(e) => {
                out.abandon();
                Err(e)
            }
        }
    }

    /// Write the current grades a filter matches (e.g. `lms_missing`, `differs`)
    /// with local and LMS values to a CSV file (see [`STATUS_COLUMNS`]).
    pub async fn export_status(&self, filter: &GradeFilter, dest: &Path) -> Result<u64> {
        let mut out = Out::create(dest, STATUS_COLUMNS)?;
        let written = self
            .store()
            .for_each_grade_row(filter, |g| out.row(&status_cells(&g)))
            .await;
        match written {
            Ok(n) => out.commit().map(|()| n),
            Err(e) => {
                out.abandon();
                Err(e)
            }
        }
    }
}
