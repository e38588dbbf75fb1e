//! The server's signing keys, in generations: generation 1 is created on the
//! first start, each rotation adds the next one and retires the previous.
//!
//! Several nodes may start (or rotate) at the same moment. Each would make its
//! own fresh keys, but only one set may win, or nodes would sign with keys the
//! others do not publish. The `key_generations` table settles it: a generation
//! is claimed with `INSERT .. ON CONFLICT DO NOTHING` in the same transaction
//! that stores its keys, so exactly one caller sees `rows_affected == 1`, and
//! the losers roll back and read the winner's keys.

use outband_protocol::SigningAlg;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::{column, one_row, KeyRecord, Store, StoreError, UnixTime};

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let kid: String = column(row, "kid")?;
    let alg: String = column(row, "alg")?;
    let alg = SigningAlg::parse(&alg)
        .ok_or_else(|| StoreError::Corrupt(format!("signing key {kid} has unknown alg {alg:?}")))?;
    Ok(KeyRecord {
        alg,
        generation: column(row, "generation")?,
        public_jwk: column(row, "public_jwk")?,
        private_jwk_sealed: column(row, "private_jwk_sealed")?,
        created_at: column(row, "created_at")?,
        retired_at: column(row, "retired_at")?,
        publish_until: column(row, "publish_until")?,
        kid,
    })
}

/// The generation every key of `keys` belongs to; an error when they disagree,
/// `None` when there are no keys.
fn generation_of(keys: &[KeyRecord]) -> Result<Option<(i64, UnixTime)>, StoreError> {
    let Some(first) = keys.first() else {
        return Ok(None);
    };
    if keys.iter().any(|key| key.generation != first.generation) {
        return Err(StoreError::Database(sqlx::Error::InvalidArgument(
            "the keys of one generation must all carry that generation".to_owned(),
        )));
    }
    let created_at = keys.iter().map(|key| key.created_at).min().unwrap_or(first.created_at);
    Ok(Some((first.generation, created_at)))
}

async fn insert_keys(conn: &mut AnyConnection, keys: &[KeyRecord]) -> Result<(), StoreError> {
    for key in keys {
        sqlx::query(
            "INSERT INTO signing_keys \
             (kid, alg, generation, public_jwk, private_jwk_sealed, created_at, retired_at, publish_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.generation)
        .bind(key.public_jwk.as_str())
        .bind(key.private_jwk_sealed.as_str())
        .bind(key.created_at)
        .bind(key.retired_at)
        .bind(key.publish_until)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::conflict_as(format!("signing key {}", key.kid)))?;
    }
    Ok(())
}

impl Store {
    /// Every stored key (current, and retired but still published), newest generation first.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn signing_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, generation, public_jwk, private_jwk_sealed, created_at, retired_at, publish_until \
             FROM signing_keys ORDER BY generation DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Stores `keys` (which must all be generation 1) as generation 1, unless a
    /// generation exists already. `true` when these keys were stored; `false`
    /// when another node got there first (read its keys with [`Store::signing_keys`]).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn create_first_key_generation(&self, keys: &[KeyRecord]) -> Result<bool, StoreError> {
        let Some((generation, created_at)) = generation_of(keys)? else {
            return Ok(false);
        };
        if generation != 1 {
            return Err(StoreError::Database(sqlx::Error::InvalidArgument(format!(
                "the first key generation is 1, not {generation}"
            ))));
        }
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so on SQLite the transaction takes the write
        // lock (waiting out `busy_timeout`) before it reads anything.
        let claimed = sqlx::query(
            "INSERT INTO key_generations (generation, created_at) \
             SELECT 1, $1 WHERE NOT EXISTS (SELECT 1 FROM key_generations) ON CONFLICT DO NOTHING",
        )
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        if !one_row(&claimed) {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_keys(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds generation `new[0].generation` (which must be the current maximum
    /// + 1; all of `new` must carry it) and, in the same transaction, retires
    /// every key of older generations: `retired_at = now`, published until
    /// `publish_until`. `false` (and nothing changed) when that generation is not
    /// the next one any more, i.e. another node rotated first.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn rotate_keys(
        &self,
        new: &[KeyRecord],
        now: UnixTime,
        publish_until: UnixTime,
    ) -> Result<bool, StoreError> {
        let Some((generation, _)) = generation_of(new)? else {
            return Ok(false);
        };
        let mut tx = self.pool.begin().await?;
        // Claims the generation only if it is the next one. Two nodes rotating at
        // once both compute the same next number; the primary key lets one win.
        let claimed = sqlx::query(
            "INSERT INTO key_generations (generation, created_at) \
             SELECT $1, $2 WHERE $1 = (SELECT COALESCE(MAX(generation), 0) + 1 FROM key_generations) \
             ON CONFLICT DO NOTHING",
        )
        .bind(generation)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if !one_row(&claimed) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1, publish_until = $2 \
             WHERE retired_at IS NULL AND generation < $3",
        )
        .bind(now)
        .bind(publish_until)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        insert_keys(&mut tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes retired keys whose publication ended before `now`; returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_unpublished_keys(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND publish_until < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
