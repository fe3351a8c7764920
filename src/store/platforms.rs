//! Platforms and their allowed outcome hosts.

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::{Store, now_rfc3339};
use crate::error::{Error, Result};
use crate::model::{Platform, PlatformKind};

/// A platform row about to be inserted.
#[derive(Debug, Clone)]
pub struct PlatformInsert<'a> {
    pub name: &'a str,
    pub kind: PlatformKind,
    pub consumer_key: Option<&'a str>,
    pub base_url: Option<&'a str>,
    pub allowed_hosts: &'a [String],
    pub allow_http: bool,
    pub secret_ref: &'a str,
}

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

fn platform_from_row(row: &AnyRow, hosts: Vec<String>) -> Result<Platform> {
    let kind: String = row.try_get("kind")?;
    Ok(Platform {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: PlatformKind::parse(&kind)
            .ok_or_else(|| Error::internal(format!("unknown platform kind {kind:?} in the ledger")))?,
        consumer_key: row.try_get("consumer_key")?,
        base_url: row.try_get("base_url")?,
        allowed_hosts: hosts,
        allow_http: row.try_get::<i64, _>("allow_http")? != 0,
        secret_ref: row.try_get("secret_ref")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn begin(&self) -> Result<Tx> {
        // A write transaction (see [`super::begin_write`]).
        Ok(match self.engine {
            super::Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            super::Engine::Postgres => self.pool.begin().await?,
        })
    }

    /// A transaction that takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// check and the write it decides cannot be split by another writer.
    /// (PostgreSQL: a transaction-scoped advisory lock on this ledger's schema,
    /// taken first, does the same for every writer that asks for it.)
    pub async fn begin_immediate(&self) -> Result<Tx> {
        match self.engine {
            super::Engine::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            super::Engine::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.passback-writer'))")
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Insert a platform inside `conn` (a transaction the caller commits once the
    /// secret is safely in the keyring).
    pub async fn insert_platform(conn: &mut AnyConnection, p: &PlatformInsert<'_>) -> Result<i64> {
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM platforms WHERE name = $1")
            .bind(p.name)
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_some() {
            return Err(Error::conflict(format!(
                "a platform named {:?} already exists; pick another --name or remove it first with `passback platform remove {}`",
                p.name, p.name
            )));
        }
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO platforms (name, kind, consumer_key, base_url, allow_http, secret_ref, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(p.name)
        .bind(p.kind.as_str())
        .bind(p.consumer_key)
        .bind(p.base_url)
        .bind(p.allow_http as i64)
        .bind(p.secret_ref)
        .bind(now_rfc3339())
        .fetch_one(&mut *conn)
        .await?;
        for host in p.allowed_hosts {
            sqlx::query(
                "INSERT INTO platform_allowed_hosts (platform_id, host) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
                .bind(id)
                .bind(host)
                .execute(&mut *conn)
                .await?;
        }
        Ok(id)
    }

    async fn hosts_of(&self, platform_id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT host FROM platform_allowed_hosts WHERE platform_id = $1 ORDER BY host")
                .bind(platform_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(h,)| h).collect())
    }

    pub async fn list_platforms(&self) -> Result<Vec<Platform>> {
        let rows = sqlx::query("SELECT * FROM platforms ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            out.push(platform_from_row(row, self.hosts_of(id).await?)?);
        }
        Ok(out)
    }

    pub async fn platform_by_name(&self, name: &str) -> Result<Platform> {
        let row = sqlx::query("SELECT * FROM platforms WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no platform named {name:?}; `passback platform list` shows the platforms in this ledger"
                ))
            })?;
        let id: i64 = row.try_get("id")?;
        platform_from_row(&row, self.hosts_of(id).await?)
    }

    /// How much ledger data hangs off a platform (contexts, grades).
    pub async fn platform_usage(&self, platform_id: i64) -> Result<(i64, i64)> {
        let (contexts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM contexts WHERE platform_id = $1")
            .bind(platform_id)
            .fetch_one(&self.pool)
            .await?;
        let (grades,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM grades g JOIN activities a ON a.id = g.activity_ref
             JOIN contexts c ON c.id = a.context_ref WHERE c.platform_id = $1",
        )
        .bind(platform_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((contexts, grades))
    }

    /// Keyring references of every service key learned under a platform.
    pub async fn service_key_refs(&self, platform_id: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT t.service_key_ref FROM outcome_targets t
             JOIN activities a ON a.id = t.activity_ref JOIN contexts c ON c.id = a.context_ref
             WHERE c.platform_id = $1 AND t.service_key_ref IS NOT NULL
             UNION
             SELECT secret_ref FROM service_keys WHERE platform_id = $2",
        )
        .bind(platform_id)
        .bind(platform_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(r,)| r).collect())
    }

    /// Change a platform's connection details in `conn` (its name, kind and keyring
    /// reference stay): the consumer key or base URL, plain http, and the allowed
    /// hosts, which are replaced as a whole.
    pub async fn update_platform(
        conn: &mut AnyConnection,
        platform_id: i64,
        consumer_key: Option<&str>,
        base_url: Option<&str>,
        allow_http: bool,
        allowed_hosts: &[String],
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE platforms SET consumer_key = $1, base_url = $2, allow_http = $3 WHERE id = $4",
        )
        .bind(consumer_key)
        .bind(base_url)
        .bind(allow_http as i64)
        .bind(platform_id)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("the platform was removed meanwhile"));
        }
        sqlx::query("DELETE FROM platform_allowed_hosts WHERE platform_id = $1")
            .bind(platform_id)
            .execute(&mut *conn)
            .await?;
        for host in allowed_hosts {
            sqlx::query(
                "INSERT INTO platform_allowed_hosts (platform_id, host) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
                .bind(platform_id)
                .bind(host)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Point a platform at another keyring reference: what a crafted ledger does
    /// (tests of the refusal; nothing in Passback writes a reference but its own).
    #[cfg(test)]
    pub(crate) async fn point_secret_ref_for_test(&self, platform: &str, secret_ref: &str) -> Result<()> {
        sqlx::query("UPDATE platforms SET secret_ref = $1 WHERE name = $2")
            .bind(secret_ref)
            .bind(platform)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Delete a platform and everything under it (contexts, activities, learners,
    /// targets, grades, attempts) in `conn`.
    pub async fn delete_platform(conn: &mut AnyConnection, platform_id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM platforms WHERE id = $1")
            .bind(platform_id)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("the platform was already removed"));
        }
        Ok(())
    }
}
