//! Copying a whole ledger into another (a personal SQLite ledger into a team's
//! PostgreSQL one): every row of every table, ids kept, in one transaction on the
//! destination, and safe to run again.

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Row};

use super::engine::{self, ColumnInfo, Engine};
use super::sql::{Real, Sql};
use super::{Store, begin_write};
use crate::error::{Error, ErrorKind, Result};

/// The ledger's tables in an order that puts every table after the ones its
/// foreign keys name. Claims are not copied (they belong to runs of the source).
const TABLES: &[&str] = &[
    "ledger_meta",
    "platforms",
    "platform_allowed_hosts",
    "contexts",
    "activities",
    "learners",
    "outcome_targets",
    "import_batches",
    "grades",
    "current_grades",
    "service_keys",
    "ltiaas_score_clock",
    "sync_runs",
    "attempts",
    "lms_observations",
    "import_issues",
    "batch_target_changes",
    "launches",
    "edx_consumers",
    "edx_outcome_services",
    "edx_lti_users",
    "edx_graded_assignments",
];

/// Tables a copy leaves out.
const NOT_COPIED: &[&str] = &["grade_claims"];

/// Rows per statement.
const CHUNK: usize = 256;

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CopyReport {
    /// Per table: rows the source has, rows written now (the rest were there already).
    pub tables: Vec<(String, u64, u64)>,
    /// The ledger id, which the destination has now (part of every keyring account name).
    pub ledger_id: String,
    /// The destination was empty and took the source's ledger id (or had it already).
    pub ledger_id_kept: bool,
    /// Whether the destination already held this ledger (a second copy).
    pub again: bool,
    /// Platforms whose secret each person stores in their own keyring.
    pub platforms: Vec<String>,
    /// LTIAAS service keys the source's keyring holds (captured again elsewhere).
    pub service_keys: u64,
}

impl Store {
    /// Copy every row of this ledger into `to` (see the module doc). `to` must be
    /// empty (a new team ledger) or a copy of this same ledger (a copy run again,
    /// which writes only what is missing); both at the same schema version.
    /// `progress` hears each table as it is done.
    pub async fn copy_into(
        &self,
        to: &Store,
        mut progress: impl FnMut(&str, u64, u64),
    ) -> Result<CopyReport> {
        let (from_v, to_v) = (self.schema_version().await?, to.schema_version().await?);
        if from_v != to_v {
            return Err(Error::invalid(format!(
                "the ledgers are at different schema versions ({from_v} and {to_v}): open both with this \
                 Passback first."
            )));
        }
        let mut src = self.pool.acquire().await?;
        let mut dst_conn = to.pool.acquire().await?;
        let all = engine::tables(&mut src).await?;
        if let Some(t) = all
            .iter()
            .find(|t| !TABLES.contains(&t.as_str()) && !NOT_COPIED.contains(&t.as_str()))
        {
            return Err(Error::internal(format!(
                "the ledger copy does not know table {t}"
            )));
        }
        let id = self.ledger_id().await?;
        let their_id = to.ledger_id().await?;
        let mut dst = begin_write(&mut dst_conn).await?;
        let holds = |t: &'static str| format!("SELECT COUNT(*) FROM {t}");
        let mut occupied = 0;
        for t in ["platforms", "grades", "attempts", "import_batches"] {
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(holds(t)))
                .fetch_one(&mut *dst)
                .await?;
            occupied += n;
        }
        let again = their_id == id;
        if !again && occupied > 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the destination already holds another ledger (id {their_id}): copy into an empty database, \
                     or into a copy of this same ledger (id {id})."
                ),
            ));
        }
        Store::set_meta_in(&mut dst, "ledger_id", &id).await?;
        let mut report = CopyReport {
            ledger_id: id,
            ledger_id_kept: true,
            again,
            ..CopyReport::default()
        };
        for table in TABLES {
            if !all.iter().any(|t| t == table) {
                continue;
            }
            let columns = engine::columns(&mut src, table).await?;
            let (read, written) = copy_table(&mut src, &mut dst, table, &columns).await?;
            progress(table, read, written);
            report.tables.push((table.to_string(), read, written));
        }
        if Engine::of(&dst) == Engine::Postgres {
            // Rows came with their ids: new rows must be numbered after them.
            for table in TABLES {
                let has_id = engine::columns(&mut dst, table)
                    .await?
                    .iter()
                    .any(|c| c.name == "id");
                if has_id {
                    let sql = format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) \
                         FROM {table}"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *dst).await?;
                }
            }
        }
        dst.commit().await?;
        report.platforms = sqlx::query_scalar("SELECT name FROM platforms ORDER BY name")
            .fetch_all(&mut *src)
            .await?;
        let (keys,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM service_keys")
            .fetch_one(&mut *src)
            .await?;
        report.service_keys = keys as u64;
        Ok(report)
    }
}

/// One table's rows into `dst`; returns (rows read, rows written).
async fn copy_table(
    src: &mut AnyConnection,
    dst: &mut AnyConnection,
    table: &str,
    columns: &[ColumnInfo],
) -> Result<(u64, u64)> {
    let list: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let list = list.join(", ");
    let order = match columns.iter().filter(|c| c.pk > 0).count() {
        0 => String::new(),
        _ => {
            let mut pk: Vec<&ColumnInfo> = columns.iter().filter(|c| c.pk > 0).collect();
            pk.sort_by_key(|c| c.pk);
            let names: Vec<&str> = pk.iter().map(|c| c.name.as_str()).collect();
            format!(" ORDER BY {}", names.join(", "))
        }
    };
    let no_key = columns.iter().all(|c| c.pk == 0);
    let mut written = 0;
    if no_key {
        // Rows without a key (a batch's issues) are replaced whole per batch:
        // the source is the truth for the batches it has.
        let batches: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT batch_ref FROM {table}"
        )))
        .fetch_all(&mut *src)
        .await?;
        for chunk in batches.chunks(CHUNK) {
            let mut q = Sql::new(format!("DELETE FROM {table} WHERE batch_ref IN ("));
            let mut sep = q.separated(", ");
            for b in chunk {
                sep.push_bind(*b);
            }
            q.push(")");
            q.build().execute(&mut *dst).await?;
        }
    }
    let select = format!("SELECT {list} FROM {table}{order}");
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *src);
    let mut read = 0;
    let mut pending: Vec<sqlx::any::AnyRow> = Vec::with_capacity(CHUNK);
    loop {
        let next = rows.try_next().await?;
        let done = next.is_none();
        if let Some(r) = next {
            read += 1;
            pending.push(r);
        }
        if pending.len() == CHUNK || (done && !pending.is_empty()) {
            let mut q = Sql::new(format!("INSERT INTO {table} ({list}) "));
            let mut failed = None;
            q.push_values(pending.iter(), |mut b, r| {
                for (i, c) in columns.iter().enumerate() {
                    let bound = match c.class.as_str() {
                        "integer" => r.try_get::<Option<i64>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                        "real" => r.try_get::<Option<f64>, _>(i).map(|v| {
                            b.push_bind(Real(v));
                        }),
                        "blob" => r.try_get::<Option<Vec<u8>>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                        _ => r.try_get::<Option<String>, _>(i).map(|v| {
                            b.push_bind(v);
                        }),
                    };
                    if let Err(e) = bound {
                        failed.get_or_insert(e);
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
            q.push(" ON CONFLICT DO NOTHING");
            written += q.build().execute(&mut *dst).await?.rows_affected();
            pending.clear();
        }
        if done {
            break;
        }
    }
    Ok((read, written))
}
