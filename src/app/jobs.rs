//! Long work the window starts and watches: a reconcile or a sync runs as a
//! job in the background of the process that holds the ledger (the desktop
//! shell, or `passback ui-server`). The job reports through the same
//! [`Progress`] sink every engine uses; this one records what it is told as a
//! numbered list of [`JobEvent`]s that any number of watchers follow — the
//! desktop shell forwards them to the window over IPC, the browser bridge
//! streams them as NDJSON, `job_events` pages them for a caller that polls.
//! `cancel_job` is the window's Cancel: the engine finishes what is in flight
//! and starts nothing new.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use ts_rs::TS;

use super::Passback;
use super::sync::{ReconcileRequest, SyncReport, SyncRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::import::{ImportEvent, ImportOptions, ImportReport};
use crate::model::RowIssue;
use crate::progress::{Flow, Job, Progress, Start, Tally};
use crate::sync::engine::{Ended, GradeResult};

/// A job's handle, as the window holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct JobStarted {
    pub job_id: u64,
}

/// Which job to cancel, or whose events to read.
#[derive(Debug, Clone, Copy, Default, Deserialize, TS)]
#[serde(default)]
pub struct JobQuery {
    pub job_id: u64,
    /// Events from this number on (0: from the first).
    pub after: u64,
}

/// Counts so far, with what a person wants to see.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
pub struct JobTally {
    /// Grades finished: sent, checked, left alone or failed (not those a
    /// Cancel stopped before they were tried).
    pub done: u64,
    pub failed: u64,
    pub total: Option<u64>,
    pub remaining: Option<u64>,
    /// Grades per second so far.
    pub rate: f64,
    pub elapsed_secs: f64,
    /// Seconds left at the rate so far.
    pub eta_secs: Option<f64>,
}

impl JobTally {
    /// The engine's tally, with the grades a Cancel stopped (`not_tried`) kept
    /// out of "done": after a Cancel they are still to do.
    fn of(t: &Tally, not_tried: u64) -> Self {
        let done = t.done.saturating_sub(not_tried);
        Self {
            done,
            failed: t.failed,
            total: t.total,
            remaining: t.total.map(|n| n.saturating_sub(done)),
            rate: {
                let secs = t.elapsed.as_secs_f64();
                if secs > 0.0 { done as f64 / secs } else { 0.0 }
            },
            elapsed_secs: t.elapsed.as_secs_f64(),
            eta_secs: t.eta().map(|d| d.as_secs_f64()),
        }
    }
}

impl From<&Tally> for JobTally {
    fn from(t: &Tally) -> Self {
        Self::of(t, 0)
    }
}

/// One thing a job said.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEvent {
    /// The job began: what it is and how many grades it will go through.
    Begin {
        job: String,
        title: String,
        total: Option<u64>,
    },
    /// Counts so far (at most a few a second).
    Progress { tally: JobTally },
    /// A grade that did not end well (the first [`FAILED_KEPT`] of a job).
    Failed { result: GradeResult },
    /// A file's row was rejected or skipped (the first [`ISSUES_KEPT`] of an import).
    Issue { issue: RowIssue },
    /// The job ended; the report says how.
    Finished { report: SyncReport },
    /// An import ended (or its preview, for a dry run); the report says how.
    Imported { report: ImportReport },
    /// The job could not run.
    Error { kind: ErrorKind, message: String },
}

impl JobEvent {
    fn ends(&self) -> bool {
        matches!(
            self,
            JobEvent::Finished { .. } | JobEvent::Imported { .. } | JobEvent::Error { .. }
        )
    }
}

/// A page of a job's events.
#[derive(Debug, Clone, Serialize, TS)]
pub struct JobFeed {
    pub events: Vec<JobEvent>,
    /// The number of the next event: ask with `after` = this for the rest.
    pub next: u64,
    pub finished: bool,
}

/// How many failed grades a job keeps as events (the summary counts them all).
pub const FAILED_KEPT: usize = 500;

/// How many row issues an import job keeps as events (the report lists more).
pub const ISSUES_KEPT: usize = 200;

/// How often a job reports its counts.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// How many ended jobs are remembered for late watchers.
const ENDED_KEPT: usize = 16;

struct JobState {
    events: Mutex<Vec<JobEvent>>,
    /// The number of events so far, for watchers to wait on.
    count: watch::Sender<u64>,
    cancel: AtomicBool,
}

impl JobState {
    fn push(&self, e: JobEvent) {
        let mut events = self.events.lock().expect("job events");
        events.push(e);
        let n = events.len() as u64;
        drop(events);
        self.count.send_replace(n);
    }

    fn feed(&self, after: u64) -> JobFeed {
        let events = self.events.lock().expect("job events");
        let from = (after as usize).min(events.len());
        JobFeed {
            events: events[from..].to_vec(),
            next: events.len() as u64,
            finished: events.last().is_some_and(JobEvent::ends),
        }
    }
}

/// The jobs of one open ledger.
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<HashMap<u64, Arc<JobState>>>,
    /// Ended jobs, oldest first (the rest are forgotten).
    ended: Mutex<Vec<u64>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

impl Jobs {
    fn get(&self, id: u64) -> Result<Arc<JobState>> {
        self.jobs
            .lock()
            .expect("jobs")
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no job {id} (it ended long ago, or never ran here)")))
    }

    fn running(&self) -> bool {
        self.jobs.lock().expect("jobs").values().any(|j| {
            !j.events
                .lock()
                .expect("job events")
                .last()
                .is_some_and(JobEvent::ends)
        })
    }

    fn create(&self) -> (u64, Arc<JobState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let state = Arc::new(JobState {
            events: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            cancel: AtomicBool::new(false),
        });
        self.jobs.lock().expect("jobs").insert(id, state.clone());
        (id, state)
    }

    fn ended(&self, id: u64) {
        let mut ended = self.ended.lock().expect("ended jobs");
        ended.push(id);
        if ended.len() > ENDED_KEPT {
            let old = ended.remove(0);
            self.jobs.lock().expect("jobs").remove(&old);
        }
    }
}

/// The sink a job's engine reports to.
struct JobSink {
    state: Arc<JobState>,
    last: Option<Instant>,
    failed_kept: usize,
    /// Grades a Cancel stopped before they were tried.
    not_tried: u64,
}

impl JobSink {
    fn tally(&mut self, t: &Tally, force: bool) {
        if force || self.last.is_none_or(|l| l.elapsed() >= PROGRESS_EVERY) {
            self.last = Some(Instant::now());
            self.state.push(JobEvent::Progress {
                tally: JobTally::of(t, self.not_tried),
            });
        }
    }
}

impl Progress<GradeResult> for JobSink {
    fn begin(&mut self, start: &Start) {
        self.state.push(JobEvent::Begin {
            job: match start.job {
                Job::Import => "import",
                Job::Reconcile => "reconcile",
                Job::Sync => "sync",
            }
            .into(),
            title: start.title.clone(),
            total: start.total,
        });
    }

    fn item(&mut self, tally: &Tally, item: &GradeResult) -> Flow {
        if item.ended == Ended::Stopped {
            self.not_tried += 1;
        }
        if matches!(item.ended, Ended::Failed | Ended::Stopped) && self.failed_kept < FAILED_KEPT {
            self.failed_kept += 1;
            self.state.push(JobEvent::Failed { result: item.clone() });
        }
        let done = tally.total.is_some_and(|t| tally.done >= t);
        self.tally(tally, done);
        if self.state.cancel.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn finish(&mut self, tally: &Tally) {
        self.tally(tally, true);
    }
}

/// A file the window hands over to import: its name (the format is detected
/// from it and its content) and its text.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(default)]
pub struct ImportUpload {
    pub file_name: String,
    pub content: String,
    pub options: ImportOptions,
}

/// A file to import where it is, by path (the desktop's file dialog or a file dropped
/// on the window): read in place, byte for byte, whatever its size or encoding.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct ImportPath {
    pub path: String,
    pub options: ImportOptions,
}

/// The sink an import job's engine reports to.
struct ImportSink {
    state: Arc<JobState>,
    last: Option<Instant>,
    issues_kept: usize,
}

impl Progress<ImportEvent> for ImportSink {
    fn begin(&mut self, start: &Start) {
        self.state.push(JobEvent::Begin {
            job: "import".into(),
            title: start.title.clone(),
            total: start.total,
        });
    }

    fn item(&mut self, tally: &Tally, item: &ImportEvent) -> Flow {
        if let ImportEvent::Issue { issue, .. } = item
            && self.issues_kept < ISSUES_KEPT
        {
            self.issues_kept += 1;
            self.state.push(JobEvent::Issue { issue: issue.clone() });
        }
        if self.last.is_none_or(|l| l.elapsed() >= PROGRESS_EVERY) {
            self.last = Some(Instant::now());
            self.state.push(JobEvent::Progress { tally: tally.into() });
        }
        if self.state.cancel.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn finish(&mut self, tally: &Tally) {
        self.state.push(JobEvent::Progress { tally: tally.into() });
    }
}

/// A private folder for one uploaded file, removed when dropped.
struct Upload {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Upload {
    fn write(job: u64, u: &ImportUpload) -> Result<Self> {
        // Only the file's own name: never a path the page chose.
        let name = std::path::Path::new(&u.file_name)
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or("upload.txt")
            .to_string();
        let dir = std::env::temp_dir().join(format!("passback-import-{}-{job}", std::process::id()));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&dir)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot stage the file to import: {e}")))?;
        let path = dir.join(name);
        let staged = Self { dir, path };
        std::fs::write(&staged.path, u.content.as_bytes())
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot stage the file to import: {e}")))?;
        Ok(staged)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a job runs.
enum Work {
    Sync(SyncRequest),
    Reconcile(ReconcileRequest),
    Import(ImportUpload),
    ImportPath(ImportPath),
}

impl Passback {
    /// Whether a job the window started is still running on this ledger.
    pub fn has_running_jobs(&self) -> bool {
        self.jobs().running()
    }
}

impl Passback {
    /// Start a sync in the background; follow it with [`Passback::job_events`]
    /// or [`Passback::watch_job`]. Refused while another job of this window runs
    /// (the ledger's run lock also refuses one from another process).
    pub async fn start_sync(&self, req: SyncRequest) -> Result<JobStarted> {
        if req.dry_run {
            return Err(Error::invalid(
                "a dry run answers at once: ask plan_sync instead of starting a job",
            ));
        }
        self.start_job(Work::Sync(req))
    }

    /// Import a file the window was given (chosen or dropped), in the
    /// background: with `options.dry_run`, a preview that writes nothing.
    pub async fn start_import(&self, upload: ImportUpload) -> Result<JobStarted> {
        if upload.content.is_empty() {
            return Err(Error::invalid(format!(
                "{} is empty: nothing to import",
                upload.file_name
            )));
        }
        self.start_job(Work::Import(upload))
    }

    /// Import the file at a path in the background (the desktop's file dialog and
    /// drops give paths): no copy and no size limit, the bytes as they are on disk.
    pub async fn start_import_path(&self, req: ImportPath) -> Result<JobStarted> {
        let path = std::path::Path::new(&req.path);
        if !path.is_file() {
            return Err(Error::not_found(format!(
                "there is no file at {}: choose the file again.",
                req.path
            )));
        }
        self.start_job(Work::ImportPath(req))
    }

    /// Start a reconcile (reads only) in the background.
    pub async fn start_reconcile(&self, req: ReconcileRequest) -> Result<JobStarted> {
        self.start_job(Work::Reconcile(req))
    }

    fn start_job(&self, work: Work) -> Result<JobStarted> {
        let jobs = self.jobs();
        if jobs.running() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "a check or send is already running: wait for it to finish, or cancel it",
            ));
        }
        let (id, state) = jobs.create();
        let pb = self.clone();
        tokio::spawn(async move {
            let mut sink = JobSink {
                state: state.clone(),
                last: None,
                failed_kept: 0,
                not_tried: 0,
            };
            let ended = match &work {
                Work::Sync(req) => pb
                    .sync(req, &mut sink)
                    .await
                    .map(|report| JobEvent::Finished { report }),
                Work::Reconcile(req) => pb
                    .reconcile(req, &mut sink)
                    .await
                    .map(|report| JobEvent::Finished { report }),
                Work::Import(upload) => match Upload::write(id, upload) {
                    // `staged` lives until the import ends (dropping it removes the file).
                    Ok(staged) => pb.import_job(&state, &staged.path, &upload.options).await,
                    Err(e) => Err(e),
                },
                Work::ImportPath(req) => {
                    pb.import_job(&state, std::path::Path::new(&req.path), &req.options)
                        .await
                }
            };
            state.push(ended.unwrap_or_else(|e| JobEvent::Error {
                kind: e.kind,
                message: e.message,
            }));
            pb.jobs().ended(id);
        });
        Ok(JobStarted { job_id: id })
    }

    /// Import the file at `path` for a job, reporting to it; the report shows the
    /// file's own name.
    async fn import_job(
        &self,
        state: &Arc<JobState>,
        path: &std::path::Path,
        options: &ImportOptions,
    ) -> Result<JobEvent> {
        let mut sink = ImportSink {
            state: state.clone(),
            last: None,
            issues_kept: 0,
        };
        let mut opts = options.clone();
        opts.display_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        self.import_file(path, &opts, &mut sink)
            .await
            .map(|report| JobEvent::Imported { report })
    }

    /// Ask a job to stop: what is in flight finishes (and is journaled), nothing
    /// new starts. Answers whether the job was still running.
    pub async fn cancel_job(&self, q: &JobQuery) -> Result<bool> {
        let state = self.jobs().get(q.job_id)?;
        let running = !state.feed(0).finished;
        state.cancel.store(true, Ordering::SeqCst);
        Ok(running)
    }

    /// A job's events from number `after` on, without waiting.
    pub async fn job_events(&self, q: &JobQuery) -> Result<JobFeed> {
        Ok(self.jobs().get(q.job_id)?.feed(q.after))
    }

    /// Follow a job: `each` gets every event from number `after` on, as it
    /// happens, until the job ends or `each` answers [`Flow::Stop`].
    pub async fn watch_job(&self, q: &JobQuery, mut each: impl FnMut(&JobEvent) -> Flow) -> Result<()> {
        let state = self.jobs().get(q.job_id)?;
        let mut seen = state.count.subscribe();
        let mut next = q.after;
        loop {
            let feed = state.feed(next);
            next = feed.next;
            for e in &feed.events {
                if each(e) == Flow::Stop {
                    return Ok(());
                }
            }
            if feed.finished {
                return Ok(());
            }
            if seen.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_reports_until_it_ends_and_one_job_runs_at_a_time() {
        // A file ledger: a sync's journal needs a connection of its own.
        let dir = tempfile::tempdir().unwrap();
        let pb = Passback::open(&dir.path().join("l.sqlite"), crate::secrets::Secrets::in_memory())
            .await
            .unwrap();
        let missing = pb
            .job_events(&JobQuery { job_id: 99, after: 0 })
            .await
            .unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        let dry = SyncRequest {
            dry_run: true,
            ..SyncRequest::default()
        };
        assert_eq!(pb.start_sync(dry).await.unwrap_err().kind, ErrorKind::Invalid);

        let started = pb.start_sync(SyncRequest::default()).await.unwrap();
        let q = JobQuery {
            job_id: started.job_id,
            after: 0,
        };
        let mut seen = Vec::new();
        pb.watch_job(&q, |e| {
            seen.push(e.clone());
            Flow::Continue
        })
        .await
        .unwrap();
        let last = seen.last().expect("events");
        let JobEvent::Finished { report } = last else {
            panic!("the last event ends the job: {seen:?}");
        };
        assert_eq!(report.run.job, "sync");
        assert_eq!(report.run.plan.matched, 0);
        // Polling from the start gives the same events; from the end, none.
        let feed = pb.job_events(&q).await.unwrap();
        let json = |e: &[JobEvent]| serde_json::to_value(e).unwrap();
        assert_eq!(json(&feed.events), json(&seen));
        assert!(feed.finished);
        let rest = pb
            .job_events(&JobQuery {
                after: feed.next,
                ..q
            })
            .await
            .unwrap();
        assert!(rest.events.is_empty() && rest.next == feed.next);
        // Cancelling an ended job says it was not running.
        assert!(!pb.cancel_job(&q).await.unwrap());
        // A new job may start once the first ended; ids are not reused.
        let second = pb.start_reconcile(ReconcileRequest::default()).await.unwrap();
        assert_ne!(second.job_id, started.job_id);
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::model::NewLti11Platform;

    /// A ledger file in a temporary folder with one LTI 1.1 platform, `canvas`.
    async fn ledger_with_canvas() -> (tempfile::TempDir, Passback) {
        let dir = tempfile::tempdir().unwrap();
        let pb = Passback::open(&dir.path().join("l.sqlite"), crate::secrets::Secrets::in_memory())
            .await
            .unwrap();
        pb.add_lti11_platform(
            NewLti11Platform {
                name: "canvas".into(),
                consumer_key: "ck".into(),
                allowed_hosts: vec!["lms.example.edu".into()],
                allow_http: false,
            },
            "secret",
        )
        .await
        .unwrap();
        (dir, pb)
    }

    async fn run(pb: &Passback, upload: ImportUpload) -> Vec<JobEvent> {
        let started = pb.start_import(upload).await.unwrap();
        events(pb, started).await
    }

    /// Every event of a job, until it ends.
    async fn events(pb: &Passback, started: JobStarted) -> Vec<JobEvent> {
        let mut seen = Vec::new();
        pb.watch_job(
            &JobQuery {
                job_id: started.job_id,
                after: 0,
            },
            |e| {
                seen.push(e.clone());
                Flow::Continue
            },
        )
        .await
        .unwrap();
        seen
    }

    #[tokio::test]
    async fn a_file_is_imported_by_path_in_place_whatever_its_encoding() {
        let (dir, pb) = ledger_with_canvas().await;
        // UTF-16 with a byte order mark: a browser's File.text() would have mangled it.
        let text = "context_id,resource_link_id,user_id,score_given,score_maximum\r\nc1,rl-1,u-1,7,10\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let file = dir.path().join("Export (UTF-16).csv");
        std::fs::write(&file, &bytes).unwrap();
        let started = pb
            .start_import_path(ImportPath {
                path: file.display().to_string(),
                options: ImportOptions {
                    platform: Some("canvas".into()),
                    ..ImportOptions::default()
                },
            })
            .await
            .unwrap();
        let seen = events(&pb, started).await;
        let Some(JobEvent::Imported { report }) = seen.last() else {
            panic!("an import ends with its report: {seen:?}");
        };
        assert_eq!(report.counts.imported, 1);
        assert_eq!(report.file, "Export (UTF-16).csv");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "the file is read in place, unchanged"
        );
        let e = pb
            .start_import_path(ImportPath {
                path: dir.path().join("gone.csv").display().to_string(),
                options: ImportOptions::default(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn an_uploaded_file_is_previewed_then_imported_with_its_row_issues() {
        let (_dir, pb) = ledger_with_canvas().await;
        let content = "context_id,resource_link_id,user_id,score_given,score_maximum\n\
                       c1,rl-1,u-1,7,10\n\
                       c1,rl-1,u-2,eleven,10\n\
                       c1,rl-1,u-3,9,10\n";
        let upload = |dry_run| ImportUpload {
            file_name: "../../etc/grades.csv".into(),
            content: content.into(),
            options: ImportOptions {
                platform: Some("canvas".into()),
                dry_run,
                ..ImportOptions::default()
            },
        };
        // The preview writes nothing and names the bad row.
        let preview = run(&pb, upload(true)).await;
        let Some(JobEvent::Imported { report }) = preview.last() else {
            panic!("an import ends with its report: {preview:?}");
        };
        assert!(report.dry_run);
        assert_eq!((report.counts.read, report.counts.quarantined), (3, 1));
        assert_eq!(report.file, "grades.csv", "only the file's own name is used");
        let issue = preview
            .iter()
            .find_map(|e| match e {
                JobEvent::Issue { issue } => Some(issue.clone()),
                _ => None,
            })
            .expect("the rejected row is an event");
        assert_eq!(issue.line, 3);
        assert_eq!(pb.store().list_grade_rows().await.unwrap().len(), 0);

        let done = run(&pb, upload(false)).await;
        let Some(JobEvent::Imported { report }) = done.last() else {
            panic!("an import ends with its report: {done:?}");
        };
        assert_eq!(report.counts.imported, 2);
        assert!(report.batch_id.is_some());
        assert_eq!(pb.store().list_grade_rows().await.unwrap().len(), 2);
        // Nothing is left staged.
        let staged: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("passback-import-{}-", std::process::id()))
            })
            .collect();
        assert!(staged.is_empty(), "{staged:?}");

        let empty = pb.start_import(ImportUpload::default()).await.unwrap_err();
        assert_eq!(empty.kind, ErrorKind::Invalid);
    }
}
