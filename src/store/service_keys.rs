//! LTIAAS service keys (keyring references and capture times, never the keys)
//! and the per-(line item, learner) score clock.

use sqlx::{AnyConnection, Row, any::AnyRow};

use super::Store;
use crate::error::Result;

/// A stored service key: where it lives in the keyring and when it was captured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceKeyRecord {
    pub platform_id: i64,
    /// The Passback platform's name.
    pub platform: String,
    pub context_id: String,
    pub resource_link_id: String,
    /// LTIAAS's id of the LMS registration the launch came from.
    pub ltiaas_platform_id: Option<String>,
    /// Keyring reference (`service/account`); the key itself is only in the keyring.
    pub secret_ref: String,
    /// RFC 3339 UTC with milliseconds.
    pub captured_at: String,
    pub source: String,
}

/// What recording a service key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKeyUpsert {
    /// The row now names this capture.
    pub written: bool,
    /// A keyring reference no row names any more (delete its entry once the
    /// transaction committed): the displaced capture's, or this one's if it lost.
    pub unused_ref: Option<String>,
}

/// A service key about to be recorded.
#[derive(Debug, Clone)]
pub struct ServiceKeyInsert<'a> {
    pub platform_id: i64,
    pub context_id: &'a str,
    pub resource_link_id: &'a str,
    pub ltiaas_platform_id: Option<&'a str>,
    pub secret_ref: &'a str,
    pub captured_at: &'a str,
    pub source: &'a str,
}

fn record_from_row(r: &AnyRow) -> Result<ServiceKeyRecord> {
    Ok(ServiceKeyRecord {
        platform_id: r.try_get("platform_id")?,
        platform: r.try_get("platform")?,
        context_id: r.try_get("context_id")?,
        resource_link_id: r.try_get("resource_link_id")?,
        ltiaas_platform_id: r.try_get("ltiaas_platform_id")?,
        secret_ref: r.try_get("secret_ref")?,
        captured_at: r.try_get("captured_at")?,
        source: r.try_get("source")?,
    })
}

macro_rules! select_keys {
    ($rest:literal) => {
        concat!(
            "SELECT k.platform_id, p.name AS platform, k.context_id, k.resource_link_id,
                    k.ltiaas_platform_id, k.secret_ref, k.captured_at, k.source
             FROM service_keys k JOIN platforms p ON p.id = k.platform_id ",
            $rest
        )
    };
}

impl Store {
    /// The service key recorded for (platform, context, resource link), if any.
    pub async fn service_key(
        &self,
        platform_id: i64,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<ServiceKeyRecord>> {
        let row = sqlx::query(select_keys!(
            "WHERE k.platform_id = $1 AND k.context_id = $2 AND k.resource_link_id = $3"
        ))
        .bind(platform_id)
        .bind(context_id)
        .bind(resource_link_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// [`Store::service_key`] inside a transaction.
    pub async fn service_key_in(
        conn: &mut AnyConnection,
        platform_id: i64,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<ServiceKeyRecord>> {
        let row = sqlx::query(select_keys!(
            "WHERE k.platform_id = $1 AND k.context_id = $2 AND k.resource_link_id = $3"
        ))
        .bind(platform_id)
        .bind(context_id)
        .bind(resource_link_id)
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Record a service key unless a newer capture is already recorded (newest
    /// wins; equal capture times replace). Says whether the row was written and which
    /// keyring reference no row names any more: the one this capture displaced, or,
    /// when it lost, its own. Run inside the transaction that records the capture, so
    /// two captures racing each learn exactly what they left unused.
    pub async fn upsert_service_key(
        conn: &mut AnyConnection,
        k: &ServiceKeyInsert<'_>,
    ) -> Result<ServiceKeyUpsert> {
        let before: Option<(String,)> = sqlx::query_as(
            "SELECT secret_ref FROM service_keys WHERE platform_id = $1 AND context_id = $2 AND resource_link_id = $3",
        )
        .bind(k.platform_id)
        .bind(k.context_id)
        .bind(k.resource_link_id)
        .fetch_optional(&mut *conn)
        .await?;
        let done = sqlx::query(
            "INSERT INTO service_keys (platform_id, context_id, resource_link_id, ltiaas_platform_id, secret_ref,
               captured_at, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (platform_id, context_id, resource_link_id) DO UPDATE SET
               ltiaas_platform_id = COALESCE(excluded.ltiaas_platform_id, service_keys.ltiaas_platform_id),
               secret_ref = excluded.secret_ref,
               captured_at = excluded.captured_at,
               source = excluded.source
             WHERE excluded.captured_at >= service_keys.captured_at",
        )
        .bind(k.platform_id)
        .bind(k.context_id)
        .bind(k.resource_link_id)
        .bind(k.ltiaas_platform_id)
        .bind(k.secret_ref)
        .bind(k.captured_at)
        .bind(k.source)
        .execute(&mut *conn)
        .await?;
        let written = done.rows_affected() == 1;
        let unused_ref = match (written, before) {
            (true, Some((old,))) if old != k.secret_ref => Some(old),
            (true, _) => None,
            // Lost, but the row names the very same entry: it is in use.
            (false, Some((old,))) if old == k.secret_ref => None,
            (false, _) => Some(k.secret_ref.to_string()),
        };
        Ok(ServiceKeyUpsert { written, unused_ref })
    }

    /// Every recorded service key (optionally of one platform), oldest capture first.
    pub async fn list_service_keys(&self, platform_id: Option<i64>) -> Result<Vec<ServiceKeyRecord>> {
        let rows = sqlx::query(select_keys!(
            "WHERE $1 IS NULL OR k.platform_id = $2
             ORDER BY k.captured_at, p.name, k.context_id, k.resource_link_id"
        ))
        .bind(platform_id)
        .bind(platform_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Reserve the timestamp (Unix ms) for the next score sent for (line item,
    /// user): `now_ms`, or one millisecond after the last one reserved when the
    /// clock has not moved past it (or went backwards). Atomic, so two senders
    /// never get the same value.
    pub async fn next_score_timestamp_ms(
        conn: &mut AnyConnection,
        platform_id: i64,
        line_item_id: &str,
        lti_user_id: &str,
        now_ms: i64,
    ) -> Result<i64> {
        let (ms,): (i64,) = sqlx::query_as(
            "INSERT INTO ltiaas_score_clock (platform_id, line_item_id, lti_user_id, last_timestamp_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (platform_id, line_item_id, lti_user_id) DO UPDATE SET
               last_timestamp_ms = CASE WHEN excluded.last_timestamp_ms > ltiaas_score_clock.last_timestamp_ms
                                        THEN excluded.last_timestamp_ms
                                        ELSE ltiaas_score_clock.last_timestamp_ms + 1 END
             RETURNING last_timestamp_ms",
        )
        .bind(platform_id)
        .bind(line_item_id)
        .bind(lti_user_id)
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?;
        Ok(ms)
    }

    /// The LTIAAS line item remembered on the activity (platform, context, resource link), if any.
    pub async fn ltiaas_line_item_of(
        &self,
        platform_id: i64,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT a.ltiaas_line_item_id FROM activities a JOIN contexts c ON c.id = a.context_ref
             WHERE c.platform_id = $1 AND c.context_id = $2 AND a.resource_link_id = $3",
        )
        .bind(platform_id)
        .bind(context_id)
        .bind(resource_link_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(v,)| v).filter(|s| !s.is_empty()))
    }

    /// The last score timestamp reserved for (line item, user), if any (Unix ms).
    pub async fn last_score_timestamp_ms(
        &self,
        platform_id: i64,
        line_item_id: &str,
        lti_user_id: &str,
    ) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT last_timestamp_ms FROM ltiaas_score_clock
             WHERE platform_id = $1 AND line_item_id = $2 AND lti_user_id = $3",
        )
        .bind(platform_id)
        .bind(line_item_id)
        .bind(lti_user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v,)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PlatformKind;
    use crate::store::PlatformInsert;

    async fn store_with_platform() -> (Store, i64) {
        let s = Store::open_in_memory().await.unwrap();
        let mut tx = s.begin().await.unwrap();
        let id = Store::insert_platform(
            &mut tx,
            &PlatformInsert {
                name: "l",
                kind: PlatformKind::Ltiaas,
                consumer_key: None,
                base_url: Some("https://x.ltiaas.com"),
                allowed_hosts: &["x.ltiaas.com".to_string()],
                allow_http: false,
                secret_ref: "passback/p",
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (s, id)
    }

    async fn upsert(s: &Store, k: &ServiceKeyInsert<'_>) -> Result<bool> {
        let mut c = s.pool().acquire().await.unwrap();
        Ok(Store::upsert_service_key(&mut c, k).await?.written)
    }

    async fn upsert_unused(s: &Store, k: &ServiceKeyInsert<'_>) -> Option<String> {
        let mut c = s.pool().acquire().await.unwrap();
        Store::upsert_service_key(&mut c, k).await.unwrap().unused_ref
    }

    #[tokio::test]
    async fn each_capture_learns_which_keyring_reference_nothing_names_any_more() {
        let (s, pid) = store_with_platform().await;
        let first = insert(pid, "passback/a", "2026-01-02T00:00:00.000Z");
        assert_eq!(upsert_unused(&s, &first).await, None, "nothing displaced");
        // An older capture loses: its own entry is the unused one.
        let older = insert(pid, "passback/b", "2026-01-01T00:00:00.000Z");
        assert_eq!(upsert_unused(&s, &older).await.as_deref(), Some("passback/b"));
        // A newer one displaces the recorded one.
        let newer = insert(pid, "passback/c", "2026-01-03T00:00:00.000Z");
        assert_eq!(upsert_unused(&s, &newer).await.as_deref(), Some("passback/a"));
        assert_eq!(
            s.service_key(pid, "c1", "r1").await.unwrap().unwrap().secret_ref,
            "passback/c"
        );
        // The same reference again (an older ledger's fixed account) leaves nothing unused.
        let same = insert(pid, "passback/c", "2026-01-04T00:00:00.000Z");
        assert_eq!(upsert_unused(&s, &same).await, None);
    }

    async fn next_ms(s: &Store, pid: i64, line_item: &str, user: &str, now: i64) -> Result<i64> {
        let mut c = s.pool().acquire().await.unwrap();
        Store::next_score_timestamp_ms(&mut c, pid, line_item, user, now).await
    }

    fn insert<'a>(pid: i64, secret_ref: &'a str, at: &'a str) -> ServiceKeyInsert<'a> {
        ServiceKeyInsert {
            platform_id: pid,
            context_id: "c1",
            resource_link_id: "r1",
            ltiaas_platform_id: Some("lms-1"),
            secret_ref,
            captured_at: at,
            source: "ltiaas-idtoken",
        }
    }

    #[tokio::test]
    async fn newest_capture_wins() {
        let (s, pid) = store_with_platform().await;
        assert!(s.service_key(pid, "c1", "r1").await.unwrap().is_none());
        assert!(
            upsert(&s, &insert(pid, "passback/k", "2026-01-02T00:00:00.000Z"))
                .await
                .unwrap()
        );
        assert!(
            !upsert(&s, &insert(pid, "passback/k", "2026-01-01T00:00:00.000Z"))
                .await
                .unwrap(),
            "an older capture does not replace a newer one"
        );
        assert_eq!(
            s.service_key(pid, "c1", "r1").await.unwrap().unwrap().captured_at,
            "2026-01-02T00:00:00.000Z"
        );
        let mut newer = insert(pid, "passback/k", "2026-01-03T00:00:00.000Z");
        newer.ltiaas_platform_id = None;
        assert!(upsert(&s, &newer).await.unwrap());
        let k = s.service_key(pid, "c1", "r1").await.unwrap().unwrap();
        assert_eq!(k.captured_at, "2026-01-03T00:00:00.000Z");
        assert_eq!(
            k.ltiaas_platform_id.as_deref(),
            Some("lms-1"),
            "kept when not given"
        );
        assert_eq!(k.platform, "l");
        assert_eq!(s.list_service_keys(Some(pid)).await.unwrap().len(), 1);
        assert_eq!(s.list_service_keys(None).await.unwrap().len(), 1);
        assert!(s.list_service_keys(Some(pid + 1)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn score_timestamps_strictly_increase_per_line_item_and_user() {
        let (s, pid) = store_with_platform().await;
        assert_eq!(next_ms(&s, pid, "li", "u", 1000).await.unwrap(), 1000);
        assert_eq!(next_ms(&s, pid, "li", "u", 1000).await.unwrap(), 1001);
        assert_eq!(
            next_ms(&s, pid, "li", "u", 900).await.unwrap(),
            1002,
            "a clock going backwards still moves forward"
        );
        assert_eq!(next_ms(&s, pid, "li", "u", 5000).await.unwrap(), 5000);
        assert_eq!(
            next_ms(&s, pid, "li", "other", 1000).await.unwrap(),
            1000,
            "per user"
        );
        assert_eq!(
            next_ms(&s, pid, "li2", "u", 1000).await.unwrap(),
            1000,
            "per line item"
        );
        assert_eq!(
            s.last_score_timestamp_ms(pid, "li", "u").await.unwrap(),
            Some(5000)
        );
        assert_eq!(s.last_score_timestamp_ms(pid, "nope", "u").await.unwrap(), None);
    }
}
