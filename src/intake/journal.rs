//! The journal in batches, for reconcile and sync: many attempts started and
//! finished in one transaction (one durable commit for all of them), with the
//! statuses they touch re-decided in the same transaction; and the attempts a
//! dead process left in flight, closed as interrupted.

use sqlx::{Connection, SqliteConnection};

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
    conn: &mut SqliteConnection,
    starts: &[NewAttempt],
    finishes: &[Finished],
) -> Result<Vec<i64>> {
    Ok(record_all(conn, &[], starts, finishes).await?.1)
}

/// [`record`], reserving score timestamps in the same transaction first; returns
/// the timestamps (Unix ms) and the attempt ids, each in order. One writer
/// serves both, so reservations never wait on the journal's write lock.
pub async fn record_all(
    conn: &mut SqliteConnection,
    clocks: &[ScoreClock],
    starts: &[NewAttempt],
    finishes: &[Finished],
) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut tx = conn.begin().await?;
    let mut reserved = Vec::with_capacity(clocks.len());
    for c in clocks {
        reserved.push(
            Store::next_score_timestamp_ms(&mut tx, c.platform_id, &c.line_item_id, &c.lti_user_id, c.now_ms)
                .await?,
        );
    }
    let mut keys = Vec::with_capacity(starts.len() + finishes.len());
    let done: Vec<(i64, &AttemptResult, Option<&str>)> = finishes
        .iter()
        .map(|f| (f.id, &f.result, f.at.as_deref()))
        .collect();
    Store::finish_attempts(&mut tx, &done).await?;
    keys.extend(finishes.iter().filter_map(|f| f.key));
    let ids = Store::start_attempts(&mut tx, starts).await?;
    keys.extend(starts.iter().filter_map(key_of));
    keys.sort_unstable_by_key(|k| (k.activity_ref, k.learner_ref));
    keys.dedup();
    refresh_all(&mut tx, keys).await?;
    tx.commit().await?;
    Ok((reserved, ids))
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
