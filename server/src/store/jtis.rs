//! The replay cache for JWT ids (`client_assertion`, request objects, DPoP
//! proofs): a `jti` is accepted once per namespace until it expires.
//!
//! "Have I seen it?" followed by "remember it" would let two nodes both accept
//! the same assertion between the two steps. Instead the insert is the check:
//! `INSERT .. ON CONFLICT DO NOTHING` touches one row for the first caller and
//! none for every later one, whichever node they run on.

use super::{one_row, Store, StoreError, UnixTime};

impl Store {
    /// Records `jti` in `namespace` (e.g. `client_assertion:<client_id>`), kept
    /// until `expires_at`. `true` the first time, `false` on every replay.
    #[tracing::instrument(level = "debug", skip_all, fields(namespace = %namespace), err(level = "debug"))]
    pub async fn use_jti(&self, namespace: &str, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO used_jtis (namespace, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(namespace)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Forgets the ids that expired before `now` (a replay of those fails the
    /// `exp` check anyway); returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_expired_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM used_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
