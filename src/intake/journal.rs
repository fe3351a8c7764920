//! The journal in batches, for reconcile and sync: many attempts started and
//! finished in one transaction (one durable commit for all of them), with the
//! statuses they touch re-decided in the same transaction; and the attempts a
//! dead process left in flight, closed as interrupted.

use sqlx::AnyConnection;

use super::refresh_all;
use crate::error::Result;
use crate::model::{AttemptOutcome, AttemptResult, Cause, ErrorClass, NewAttempt};
use crate::store::{GradeKey, Store};

/// A finished attempt to record.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: i64,
    /// The grade it was about, when it was about one (its status is re-decided).
    pub key: Option<GradeKey>,
    pub result: AttemptResult,
    /// When the answer arrived (RFC 3339); `None`: when it is recorded.
    pub at: Option<String>,
}

fn key_of(a: &NewAttempt) -> Option<GradeKey> {
    Some(GradeKey {
        activity_ref: a.activity_ref?,
        learner_ref: a.learner_ref?,
    })
}

/// A request for the next LTIAAS score timestamp of (line item, user), strictly
/// later than any reserved before (see [`crate::intake::Intake::reserve_score_timestamp`]).
#[derive(Debug, Clone)]
pub struct ScoreClock {
    pub platform_id: i64,
    pub line_item_id: String,
    pub lti_user_id: String,
    pub now_ms: i64,
}

/// Record `finishes`, then journal `starts`, in one transaction on `conn`; returns
/// the ids of the started attempts, in order. Nothing is written unless all is.
pub async fn record(
    conn: &mut AnyConnection,
    starts: &[NewAttempt],
    finishes: &[Finished],
) -> Result<Vec<i64>> {
    Ok(record_all(conn, &[], starts, finishes).await?.1)
}

/// [`record`], reserving score timestamps in the same transaction first; returns
/// the timestamps (Unix ms) and the attempt ids, each in order. One writer
/// serves both, so reservations never wait on the journal's write lock.
pub async fn record_all(
    conn: &mut AnyConnection,
    clocks: &[ScoreClock],
    starts: &[NewAttempt],
    finishes: &[Finished],
) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut tx = crate::store::begin_write(conn).await?;
    let (reserved, ids) = write(&mut tx, clocks, starts, finishes).await?;
    let done: Vec<i64> = finishes.iter().map(|f| f.id).collect();
    fold_in(&mut tx, &done, touched(starts, finishes)).await?;
    tx.commit().await?;
    Ok((reserved, ids))
}

/// [`record_all`] without the fold: the attempts alone, committed. What they
/// showed (observations) and the statuses they change are left to [`fold`],
/// which the caller must run for `finishes` and the returned keys — a sync run
/// folds many commits at once; recovery folds what a stopped run left.
pub async fn record_unfolded(
    conn: &mut AnyConnection,
    clocks: &[ScoreClock],
    starts: &[NewAttempt],
    finishes: &[Finished],
) -> Result<(Vec<i64>, Vec<i64>, Vec<GradeKey>)> {
    let mut tx = crate::store::begin_write(conn).await?;
    let (reserved, ids) = write(&mut tx, clocks, starts, finishes).await?;
    tx.commit().await?;
    Ok((reserved, ids, touched(starts, finishes)))
}

/// Record what finished attempts `done` showed the LMS to hold, and re-decide
/// the statuses of `keys`' grades, in one transaction. Safe to repeat.
pub async fn fold(conn: &mut AnyConnection, done: &[i64], keys: Vec<GradeKey>) -> Result<()> {
    let mut tx = crate::store::begin_write(conn).await?;
    fold_in(&mut tx, done, keys).await?;
    tx.commit().await?;
    Ok(())
}

async fn write(
    conn: &mut AnyConnection,
    clocks: &[ScoreClock],
    starts: &[NewAttempt],
    finishes: &[Finished],
) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut reserved = Vec::with_capacity(clocks.len());
    for c in clocks {
        reserved.push(
            Store::next_score_timestamp_ms(conn, c.platform_id, &c.line_item_id, &c.lti_user_id, c.now_ms)
                .await?,
        );
    }
    let done: Vec<(i64, &AttemptResult, Option<&str>)> = finishes
        .iter()
        .map(|f| (f.id, &f.result, f.at.as_deref()))
        .collect();
    Store::close_attempts(conn, &done).await?;
    let ids = Store::start_attempts(conn, starts).await?;
    Ok((reserved, ids))
}

/// The grades whose statuses these starts and finishes may change.
fn touched(starts: &[NewAttempt], finishes: &[Finished]) -> Vec<GradeKey> {
    let mut keys: Vec<GradeKey> = finishes
        .iter()
        .filter_map(|f| f.key)
        .chain(starts.iter().filter_map(key_of))
        .collect();
    keys.sort_unstable_by_key(|k| (k.activity_ref, k.learner_ref));
    keys.dedup();
    keys
}

async fn fold_in(conn: &mut AnyConnection, done: &[i64], mut keys: Vec<GradeKey>) -> Result<()> {
    Store::observe_attempts(conn, done).await?;
    keys.sort_unstable_by_key(|k| (k.activity_ref, k.learner_ref));
    keys.dedup();
    refresh_all(conn, keys).await
}

/// What an attempt interrupted by a process that stopped is recorded as.
pub fn interrupted() -> AttemptResult {
    AttemptResult {
        outcome: AttemptOutcome::Error,
        http_status: None,
        code_major: None,
        description: Some(
            "interrupted: Passback stopped before the LMS answered; reading the LMS tells whether it holds the grade"
                .into(),
        ),
        error_class: Some(ErrorClass::Transient),
        fix_hint: Some("The next sync reads the LMS first, and sends only what it lacks.".into()),
        read_score: None,
        response_excerpt: None,
        cause: Some(Cause::Interrupted),
    }
}
