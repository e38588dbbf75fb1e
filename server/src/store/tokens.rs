//! Issued access and refresh tokens, kept by SHA-256 hash so that a database
//! leak does not leak usable tokens. Revocation is a conditional `UPDATE ..
//! WHERE revoked = 0`, so of two concurrent revocations exactly one reports
//! that it revoked the token.

use outband_protocol::{ClientId, Scope, Subject};
use sqlx::any::AnyRow;

use super::{column, flag, one_row, Store, StoreError, TokenKind, TokenRecord, UnixTime};

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let token_hash: String = column(row, "token_hash")?;
    let kind: String = column(row, "kind")?;
    let kind = TokenKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("token {token_hash} has unknown kind {kind:?}")))?;
    Ok(TokenRecord {
        kind,
        jti: column(row, "jti")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        subject: column::<Option<String>>(row, "subject")?.map(Subject::new),
        scope: Scope::new(column::<String>(row, "scope")?),
        authorization_details: column(row, "authorization_details")?,
        grant_id: column(row, "grant_id")?,
        cnf_jkt: column(row, "cnf_jkt")?,
        cnf_x5t: column(row, "cnf_x5t")?,
        issued_at: column(row, "issued_at")?,
        expires_at: column(row, "expires_at")?,
        revoked: column::<i64>(row, "revoked")? != 0,
        token_hash,
    })
}

impl Store {
    /// Records an issued token; [`StoreError::Conflict`] when its hash is known.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %token.client_id, jti = %token.jti), err(level = "debug"))]
    pub async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, jti, client_id, subject, scope, authorization_details, grant_id, \
             cnf_jkt, cnf_x5t, issued_at, expires_at, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(token.token_hash.as_str())
        .bind(token.kind.as_str())
        .bind(token.jti.as_str())
        .bind(token.client_id.as_str())
        .bind(token.subject.as_ref().map(Subject::as_str))
        .bind(token.scope.as_str())
        .bind(token.authorization_details.as_deref())
        .bind(token.grant_id.as_deref())
        .bind(token.cnf_jkt.as_deref())
        .bind(token.cnf_x5t.as_deref())
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(flag(token.revoked))
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as(format!("token {}", token.jti)))?;
        Ok(())
    }

    /// The token with this hash, revoked or expired included (the caller
    /// decides what is active).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, kind, jti, client_id, subject, scope, authorization_details, grant_id, \
             cnf_jkt, cnf_x5t, issued_at, expires_at, revoked FROM tokens WHERE token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The token with this `jti` (the newest, should an id ever repeat).
    #[tracing::instrument(level = "debug", skip_all, fields(jti = %jti), err(level = "debug"))]
    pub async fn token_by_jti(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, kind, jti, client_id, subject, scope, authorization_details, grant_id, \
             cnf_jkt, cnf_x5t, issued_at, expires_at, revoked FROM tokens WHERE jti = $1 \
             ORDER BY issued_at DESC, token_hash LIMIT 1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Revokes one token. `true` only for the call that revoked it: `false`
    /// when it is unknown or was revoked already.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn revoke_token(&self, hash: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE tokens SET revoked = 1 WHERE token_hash = $1 AND revoked = 0")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(one_row(&result))
    }

    /// Revokes every token of a grant (refresh token revocation, code replay);
    /// returns how many were still unrevoked.
    #[tracing::instrument(level = "debug", skip_all, fields(grant_id = %grant_id), err(level = "debug"))]
    pub async fn revoke_tokens_of_grant(&self, grant_id: &str) -> Result<u64, StoreError> {
        let result = sqlx::query("UPDATE tokens SET revoked = 1 WHERE grant_id = $1 AND revoked = 0")
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Revokes every token issued for a user (locking, logout everywhere);
    /// returns how many were still unrevoked.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn revoke_tokens_of_subject(&self, subject: &Subject) -> Result<u64, StoreError> {
        let result = sqlx::query("UPDATE tokens SET revoked = 1 WHERE subject = $1 AND revoked = 0")
            .bind(subject.as_str())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Deletes the tokens that expired before `now`; returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_expired_tokens(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
