//! Starting a run safely: the journal of a process that died mid-run recovered
//! before anything is sent.
//!
//! A run is an open row in `sync_runs` while it works. Runs on one ledger (two
//! people, or a person and the nightly job) work side by side: each claims the
//! grades it works on (`grade_claims`, see `engine::Claims`), so they split the
//! work and never have a grade in flight twice. A run whose process died is
//! closed, and every attempt such a process left in flight is closed as
//! `interrupted` — its grade becomes `unknown`, and the next plan reads it before
//! sending anything (the LMS may or may not hold it). Its claims expire, and the
//! run that takes those grades first does the same for them.

use std::time::Duration;

use crate::error::Result;
use crate::intake::Intake;
use crate::store::{GradeKey, RunRow, host_name, run_id};

/// How long a run on another computer is trusted without a heartbeat.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(120);

/// How often a run says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// Whether process `pid` on this computer is alive (`None`: cannot tell).
pub fn process_alive(pid: i64) -> Option<bool> {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return Some(false);
        };
        if pid <= 0 {
            return Some(false);
        }
        // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
        let rc = unsafe { libc::kill(pid, 0) };
        if rc == 0 {
            return Some(true);
        }
        Some(std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        None
    }
}

fn age(rfc3339: &str) -> Option<Duration> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    let d = time::OffsetDateTime::now_utc() - t;
    Some(Duration::from_secs_f64(d.as_seconds_f64().max(0.0)))
}

/// Whether the process behind `run_id` (`pid@host`, heartbeat at `heartbeat`) may still be running.
pub fn may_be_alive(run_id: &str, heartbeat: Option<&str>) -> bool {
    if run_id == crate::store::run_id() {
        return true;
    }
    let here = host_name();
    if let Some((pid, host)) = run_id.split_once('@')
        && host == here
        && let Ok(pid) = pid.parse::<i64>()
        && let Some(alive) = process_alive(pid)
    {
        return alive;
    }
    // Another computer (or no way to tell): trust a fresh heartbeat.
    heartbeat.and_then(age).is_some_and(|a| a < HEARTBEAT_STALE)
}

/// Record a new run of `kind` (`reconcile` or `sync`) and recover what dead runs
/// left behind. Returns the run's id.
pub async fn begin(intake: &Intake, kind: &str) -> Result<i64> {
    let mut stopped: Vec<RunRow> = Vec::new();
    let mut working: std::collections::HashSet<String> = Default::default();
    let id = intake
        .open_run(kind, |open: &[RunRow]| {
            let (alive, dead): (Vec<&RunRow>, Vec<&RunRow>) = open
                .iter()
                .partition(|r| may_be_alive(&r.run_id, Some(&r.heartbeat_at)));
            working = alive.iter().map(|r| r.run_id.clone()).collect();
            for r in alive {
                tracing::info!(
                    other = %r.run_id, kind = %r.kind, since = %r.started_at,
                    "another run is working on this ledger: the two split the grades"
                );
            }
            stopped = dead.iter().map(|r| (*r).clone()).collect();
            Ok(dead.iter().map(|r| r.id).collect())
        })
        .await?;
    // A run folds what its attempts showed (observations, statuses) a moment
    // after committing them; one that stopped may have left some unfolded.
    for r in &stopped {
        intake.fold_stopped_run(&r.run_id, &r.started_at).await?;
    }
    // Attempts a dead process left in flight (journaled, never answered).
    let dangling = intake.store().dangling_attempts().await?;
    let dead: Vec<(i64, Option<GradeKey>)> = dangling
        .iter()
        .filter(|d| match &d.run_id {
            // A run working now (on another computer, its heartbeat fresh) keeps
            // its attempts in flight.
            Some(r) => r != run_id() && !working.contains(r) && !may_be_alive(r, None),
            // Journaled before processes were recorded: only a dead process can have left it.
            None => true,
        })
        .map(|d| (d.id, d.key))
        .collect();
    if !dead.is_empty() {
        tracing::warn!(
            attempts = dead.len(),
            "closing attempts a stopped process left in flight"
        );
        intake.close_interrupted(&dead).await?;
    }
    // With what they left recovered, the grades the stopped runs had claimed are
    // free now (a run already working takes them when the claims expire; one
    // starting after a crash should not wait for that).
    for r in &stopped {
        intake.store().release_claims(r.id, None).await?;
    }
    Ok(id)
}

/// Keep telling other runs this one is alive, and renewing its claims for
/// `lease`, until the returned handle is aborted.
pub fn heartbeat(intake: &Intake, run: i64, lease: Duration) -> tokio::task::JoinHandle<()> {
    let store = intake.store().clone();
    // Renew well before a claim could lapse: a third of the lease.
    let every = HEARTBEAT_EVERY.min(lease / 3).max(Duration::from_millis(200));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = store.heartbeat_run(run).await {
                tracing::warn!(error = %e.message, "cannot record the run's heartbeat");
            }
            if let Err(e) = store.renew_claims(run, &crate::store::rfc3339_after(lease)).await {
                tracing::warn!(error = %e.message, "cannot renew the run's claims");
            }
        }
    })
}
