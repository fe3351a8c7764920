//! Claims: which run (reconcile or sync) is working on which grade, as leases
//! (see migration 0008). Taking claims runs in the caller's transaction, which
//! holds the ledger's write lock (`Store::begin_immediate`), so what it reads of
//! other runs' claims is what it overwrites.

use sqlx::{AnyConnection, Row};

use super::bulk::push_keys;
use super::imports::shaped;
use super::sql::Sql;
use super::{GradeKey, Store};
use crate::error::Result;

/// What taking claims on some grades came to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Claimed {
    /// Grades this run holds now (newly, renewed, or taken over).
    pub held: Vec<GradeKey>,
    /// Of those, the ones taken over from a run whose lease had expired, with that
    /// run's process (`pid@host`) and start time: what it left in flight on them
    /// must be closed before they are worked on.
    pub taken_over: Vec<(GradeKey, String, String)>,
    /// Grades another run holds (its lease runs until the time given).
    pub elsewhere: Vec<(GradeKey, String)>,
}

impl Store {
    /// Claim `keys` for run `run` until `expires_at`: the ones no run holds, the
    /// ones this run holds, and the ones whose claim expired before `now` (RFC 3339
    /// UTC, the ledger's format, which sorts as time does).
    pub async fn claim_grades(
        conn: &mut AnyConnection,
        run: i64,
        keys: &[GradeKey],
        now: &str,
        expires_at: &str,
    ) -> Result<Claimed> {
        let mut out = Claimed::default();
        for chunk in shaped(keys) {
            // Who holds them now.
            let mut q = Sql::new(
                "SELECT k.column1 AS activity_ref, k.column2 AS learner_ref, c.run_ref, c.expires_at,
                        r.run_id, r.started_at
                 FROM ",
            );
            push_keys(&mut q, chunk);
            q.push(
                " AS k JOIN grade_claims c ON c.activity_ref = k.column1 AND c.learner_ref = k.column2
                 JOIN sync_runs r ON r.id = c.run_ref",
            );
            let mut taken: std::collections::HashMap<GradeKey, (String, String)> = Default::default();
            let mut busy: std::collections::HashSet<GradeKey> = Default::default();
            for r in q.build().fetch_all(&mut *conn).await? {
                let key = GradeKey {
                    activity_ref: r.try_get("activity_ref")?,
                    learner_ref: r.try_get("learner_ref")?,
                };
                let holder: i64 = r.try_get("run_ref")?;
                let until: String = r.try_get("expires_at")?;
                if holder == run {
                    continue;
                }
                if until.as_str() >= now {
                    busy.insert(key);
                    out.elsewhere.push((key, until));
                } else {
                    taken.insert(key, (r.try_get("run_id")?, r.try_get("started_at")?));
                }
            }
            let wanted: Vec<GradeKey> = chunk.iter().filter(|k| !busy.contains(k)).copied().collect();
            if wanted.is_empty() {
                continue;
            }
            let mut q =
                Sql::new("INSERT INTO grade_claims (activity_ref, learner_ref, run_ref, expires_at) ");
            q.push_values(&wanted, |mut b, k| {
                b.push_bind(k.activity_ref)
                    .push_bind(k.learner_ref)
                    .push_bind(run)
                    .push_bind(expires_at.to_string());
            });
            q.push(
                " ON CONFLICT (activity_ref, learner_ref) DO UPDATE
                   SET run_ref = excluded.run_ref, expires_at = excluded.expires_at
                   WHERE grade_claims.run_ref = excluded.run_ref OR grade_claims.expires_at < ",
            )
            .push_bind(now.to_string())
            .push(" RETURNING activity_ref, learner_ref");
            for r in q.build().fetch_all(&mut *conn).await? {
                let key = GradeKey {
                    activity_ref: r.try_get("activity_ref")?,
                    learner_ref: r.try_get("learner_ref")?,
                };
                if let Some((run_id, started_at)) = taken.remove(&key) {
                    out.taken_over.push((key, run_id, started_at));
                }
                out.held.push(key);
            }
        }
        Ok(out)
    }

    /// Extend every claim run `run` holds until `expires_at` (its heartbeat).
    pub async fn renew_claims(&self, run: i64, expires_at: &str) -> Result<u64> {
        Ok(
            sqlx::query("UPDATE grade_claims SET expires_at = $1 WHERE run_ref = $2")
                .bind(expires_at)
                .bind(run)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Let go of run `run`'s claims on `keys` (all of them with `None`).
    pub async fn release_claims(&self, run: i64, keys: Option<&[GradeKey]>) -> Result<u64> {
        let Some(keys) = keys else {
            return Ok(sqlx::query("DELETE FROM grade_claims WHERE run_ref = $1")
                .bind(run)
                .execute(&self.pool)
                .await?
                .rows_affected());
        };
        let mut n = 0;
        for chunk in shaped(keys) {
            let mut q = Sql::new("DELETE FROM grade_claims WHERE run_ref = ");
            q.push_bind(run)
                .push(" AND (activity_ref, learner_ref) IN (SELECT column1, column2 FROM ");
            push_keys(&mut q, chunk);
            q.push(" AS k)");
            n += q.build().execute(&self.pool).await?.rows_affected();
        }
        Ok(n)
    }

    /// Which of these attempts have not finished.
    pub async fn unfinished_attempts(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for chunk in shaped(ids) {
            let mut q = Sql::new("SELECT id FROM attempts WHERE finished_at IS NULL AND id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            q.push(")");
            out.extend(q.build_query_scalar::<i64>().fetch_all(&mut *conn).await?);
        }
        Ok(out)
    }

    /// Attempts process `run_id` left in flight on these grades.
    pub async fn pending_attempts_of(
        conn: &mut AnyConnection,
        run_id: &str,
        keys: &[GradeKey],
    ) -> Result<Vec<(i64, GradeKey)>> {
        let mut out = Vec::new();
        for chunk in shaped(keys) {
            let mut q = Sql::new("SELECT x.id, k.column1 AS activity_ref, k.column2 AS learner_ref FROM ");
            push_keys(&mut q, chunk);
            q.push(
                " AS k JOIN attempts x ON x.activity_ref = k.column1 AND x.learner_ref = k.column2
                 WHERE x.finished_at IS NULL AND x.origin = 'passback' AND x.run_id = ",
            )
            .push_bind(run_id.to_string());
            for r in q.build().fetch_all(&mut *conn).await? {
                out.push((
                    r.try_get("id")?,
                    GradeKey {
                        activity_ref: r.try_get("activity_ref")?,
                        learner_ref: r.try_get("learner_ref")?,
                    },
                ));
            }
        }
        Ok(out)
    }
}
