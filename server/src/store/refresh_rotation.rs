//! Refresh-token rotation with a grace window (`grants::refresh_grace`): a
//! rotated refresh token remembers when it was rotated and the hash of the token
//! that replaced it, so a retry within the window can retire that successor and
//! re-rotate, once. Every decision is one conditional statement.

use super::{column, Store, StoreError, UnixTime};

impl Store {
    /// Retires the active refresh token `hash` as rotated at `now`, replaced by
    /// `successor_hash`. `false` when it was not active (another call rotated or
    /// revoked it first).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn rotate_refresh_token(
        &self,
        hash: &str,
        successor_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE tokens SET revoked = 1, rotated_at = $3, successor_hash = $2 \
             WHERE token_hash = $1 AND kind = 'refresh' AND revoked = 0",
        )
        .bind(hash)
        .bind(successor_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(super::one_row(&result))
    }

    /// For a retired refresh token rotated at or after `rotated_since`: takes
    /// (forgets) its successor and revokes that successor if it was still unused.
    /// `true` only for the one caller that did both; `false` when the token was
    /// rotated earlier, was revoked otherwise, its retry was used already, or the
    /// successor was used or revoked meanwhile.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn take_rotation_retry(&self, hash: &str, rotated_since: UnixTime) -> Result<bool, StoreError> {
        // Read the successor, then take it with a compare-and-swap: of two
        // concurrent retries only one clears the pointer.
        let successor: Option<String> = sqlx::query(
            "SELECT successor_hash FROM tokens WHERE token_hash = $1 AND kind = 'refresh' AND revoked = 1 \
             AND successor_hash IS NOT NULL AND rotated_at >= $2",
        )
        .bind(hash)
        .bind(rotated_since)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| column::<String>(&row, "successor_hash"))
        .transpose()?;
        let Some(successor) = successor else {
            return Ok(false);
        };
        let taken = sqlx::query(
            "UPDATE tokens SET successor_hash = NULL \
             WHERE token_hash = $1 AND successor_hash = $2 AND rotated_at >= $3",
        )
        .bind(hash)
        .bind(successor.as_str())
        .bind(rotated_since)
        .execute(&self.pool)
        .await?;
        if !super::one_row(&taken) {
            return Ok(false);
        }
        let revoked =
            sqlx::query("UPDATE tokens SET revoked = 1 WHERE token_hash = $1 AND kind = 'refresh' AND revoked = 0")
                .bind(successor.as_str())
                .execute(&self.pool)
                .await?;
        Ok(super::one_row(&revoked))
    }
}
