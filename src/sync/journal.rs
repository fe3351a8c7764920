//! The outbox: every attempt is committed durably (`synchronous = FULL`) before
//! its request leaves, and completed after the answer. One writer task owns a
//! durable connection and commits whatever has queued up since its last commit
//! in one transaction (group commit): a request waits for one commit, never for
//! one per attempt ahead of it.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::failpoint;
use crate::intake::Intake;
use crate::intake::journal::{self, Finished, ScoreClock};
use crate::model::NewAttempt;
use crate::store::{GradeKey, Store};

enum Msg {
    Reserve(Box<ScoreClock>, oneshot::Sender<Result<i64>>),
    Start(Box<NewAttempt>, oneshot::Sender<Result<i64>>),
    Finish(Box<Finished>),
    Flush(oneshot::Sender<()>),
}

/// Most records in one commit.
const GROUP: usize = 512;

/// How long a commit that holds a start waits for more records. The engine
/// journals a grade's attempt before it waits for a free slot of its host, and
/// keeps four grades in progress per slot, so while some wait for their commit
/// others keep the host busy: a request that waits for its commit costs the
/// run no time, and one commit (one fsync, each changed page written once)
/// serves dozens of attempts. Measured (`benches/sync_bench.sh`): 4 ms → about
/// 2,100 commits for 10,000 grades, 30 ms → about 600, the same wall time.
const START_LINGER: std::time::Duration = std::time::Duration::from_millis(30);

/// How long finished attempts wait for company: nothing waits on their commit
/// (an attempt the journal still holds as in flight is resolved by a read after
/// a crash, never resent blind), so they ride along with the next starts.
const FINISH_LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// A fold (observations and statuses of what the commits since the last one
/// finished) runs when this many grades wait for one...
const FOLD_KEYS: usize = 256;

/// ...or when the oldest waiting has waited this long. Statuses lag the journal
/// by at most about this much during a run; a run that stops before folding is
/// folded by the next one's recovery (see [`super::recovery`]).
const FOLD_EVERY: std::time::Duration = std::time::Duration::from_millis(1000);

/// What the commits since the last fold finished and touched.
#[derive(Default)]
struct Unfolded {
    done: Vec<i64>,
    keys: Vec<GradeKey>,
    since: Option<tokio::time::Instant>,
}

impl Unfolded {
    fn add(&mut self, done: impl IntoIterator<Item = i64>, keys: Vec<GradeKey>) {
        self.done.extend(done);
        if !keys.is_empty() {
            self.since.get_or_insert_with(tokio::time::Instant::now);
        }
        self.keys.extend(keys);
    }

    fn due(&self) -> bool {
        self.keys.len() >= FOLD_KEYS || self.since.is_some_and(|t| t.elapsed() >= FOLD_EVERY)
    }

    /// Fold everything waiting, `FOLD_KEYS` grades per transaction (so a commit
    /// that lets requests leave never waits long behind a fold).
    async fn fold(&mut self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        let done = std::mem::take(&mut self.done);
        let mut keys = std::mem::take(&mut self.keys);
        self.since = None;
        keys.sort_unstable_by_key(|k| (k.activity_ref, k.learner_ref));
        keys.dedup();
        journal::fold(conn, &done, Vec::new()).await?;
        for chunk in keys.chunks(FOLD_KEYS) {
            journal::fold(conn, &[], chunk.to_vec()).await?;
        }
        Ok(())
    }
}

/// The journal writer of one run.
pub struct Journal {
    tx: mpsc::Sender<Msg>,
    task: JoinHandle<Result<()>>,
}

fn stopped() -> Error {
    Error::internal("the journal writer stopped")
}

impl Journal {
    pub async fn open(store: &Store) -> Result<Self> {
        let mut conn = store.durable_connection().await?;
        let (tx, mut rx) = mpsc::channel::<Msg>(4 * GROUP);
        let task = tokio::spawn(async move {
            let mut first_error: Option<Error> = None;
            let mut unfolded = Unfolded::default();
            while let Some(m) = rx.recv().await {
                let mut batch = vec![m];
                let opened = tokio::time::Instant::now();
                loop {
                    while batch.len() < GROUP {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    if batch.len() >= GROUP || batch.iter().any(|m| matches!(m, Msg::Flush(_))) {
                        break;
                    }
                    let linger = if batch
                        .iter()
                        .any(|m| matches!(m, Msg::Start(..) | Msg::Reserve(..)))
                    {
                        START_LINGER
                    } else {
                        FINISH_LINGER
                    };
                    match tokio::time::timeout_at(opened + linger, rx.recv()).await {
                        Ok(Some(m)) => batch.push(m),
                        // Closed (the run ends) or the wait is over: commit now.
                        Ok(None) | Err(_) => break,
                    }
                }
                let mut clocks = Vec::new();
                let mut clock_replies = Vec::new();
                let mut starts = Vec::new();
                let mut replies = Vec::new();
                let mut finishes = Vec::new();
                let mut flushes = Vec::new();
                for m in batch {
                    match m {
                        Msg::Reserve(c, reply) => {
                            clocks.push(*c);
                            clock_replies.push(reply);
                        }
                        Msg::Start(a, reply) => {
                            starts.push(*a);
                            replies.push(reply);
                        }
                        Msg::Finish(f) => finishes.push(*f),
                        Msg::Flush(reply) => flushes.push(reply),
                    }
                }
                if first_error.is_some() {
                    for r in replies.into_iter().chain(clock_replies) {
                        let _ = r.send(Err(stopped()));
                    }
                    continue;
                }
                let done: Vec<i64> = finishes.iter().map(|f| f.id).collect();
                match journal::record_unfolded(&mut conn, &clocks, &starts, &finishes).await {
                    Ok((reserved, ids, keys)) => {
                        unfolded.add(done, keys);
                        if !ids.is_empty() {
                            failpoint::hit("after_journal_commit");
                        }
                        for (r, ms) in clock_replies.into_iter().zip(reserved) {
                            let _ = r.send(Ok(ms));
                        }
                        for (r, id) in replies.into_iter().zip(ids) {
                            let _ = r.send(Ok(id));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e.message, "the journal could not be written");
                        for r in replies.into_iter().chain(clock_replies) {
                            let _ = r.send(Err(Error::new(e.kind, e.message.clone())));
                        }
                        first_error = Some(e);
                    }
                }
                if first_error.is_none()
                    && (unfolded.due() || !flushes.is_empty())
                    && let Err(e) = unfolded.fold(&mut conn).await
                {
                    tracing::error!(error = %e.message, "the journal could not record what the LMS answered");
                    first_error = Some(e);
                }
                for f in flushes {
                    let _ = f.send(());
                }
            }
            if first_error.is_none()
                && let Err(e) = unfolded.fold(&mut conn).await
            {
                first_error = Some(e);
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        Ok(Self { tx, task })
    }

    /// Reserve the next LTIAAS score timestamp (committed with the next group).
    pub async fn reserve_score_timestamp(&self, c: ScoreClock) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Reserve(Box::new(c), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Journal an attempt; returns once it is durable, with its id.
    pub async fn started(&self, a: NewAttempt) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Start(Box::new(a), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Record how an attempt ended (committed with the next group).
    pub async fn finished(&self, f: Finished) -> Result<()> {
        self.tx
            .send(Msg::Finish(Box::new(f)))
            .await
            .map_err(|_| stopped())
    }

    /// Wait until everything sent so far is committed.
    pub async fn flush(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Msg::Flush(reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }

    /// Commit what is queued and stop.
    pub async fn close(self) -> Result<()> {
        drop(self.tx);
        self.task
            .await
            .map_err(|e| Error::internal(format!("the journal writer failed: {e}")))?
    }
}

/// Where a transport reserves what must never repeat across attempts (LTIAAS
/// score timestamps): the ledger directly for one attempt, or a run's journal
/// writer, which batches them with its commits.
#[derive(Clone, Copy)]
pub enum Reservations<'a> {
    Direct(&'a Intake),
    Journal(&'a Journal),
}

impl Reservations<'_> {
    pub async fn score_timestamp(&self, c: ScoreClock) -> Result<i64> {
        match self {
            Self::Direct(intake) => {
                intake
                    .reserve_score_timestamp(c.platform_id, &c.line_item_id, &c.lti_user_id, c.now_ms)
                    .await
            }
            Self::Journal(j) => j.reserve_score_timestamp(c).await,
        }
    }
}
