//! The browser flows' rows: authorization requests in progress (between the
//! login and consent pages), browser sessions, authorization codes, pushed
//! authorization requests ([RFC 9126](https://www.rfc-editor.org/rfc/rfc9126))
//! and failed-login counters. Callers pass SHA-256 hashes of the secrets
//! (cookie values, form ids, codes, request_uris), never the secrets.
//!
//! Each single use is one statement: a conditional `UPDATE .. WHERE used = 0
//! RETURNING` or a `DELETE .. RETURNING`, so two nodes (or two clicks) never
//! both redeem the same code or complete the same consent.

use outband_protocol::{ClientId, Scope, Subject};
use sqlx::any::AnyRow;

use super::{column, Store, StoreError, UnixTime};

/// An authorization request between `/authorize` and the user's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InteractionRecord {
    /// SHA-256 of the id the pages carry.
    pub id_hash: String,
    /// SHA-256 of the browser cookie it is bound to.
    pub browser_hash: String,
    /// SHA-256 of the CSRF token the pages' forms carry.
    pub csrf_hash: String,
    /// The client asking.
    pub client_id: ClientId,
    /// The validated request, as JSON.
    pub request: String,
    /// The user, once logged in.
    pub subject: Option<Subject>,
    /// When the user logged in.
    pub auth_time: Option<UnixTime>,
    /// When it started.
    pub created_at: UnixTime,
    /// When it is forgotten.
    pub expires_at: UnixTime,
}

/// A logged-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserSessionRecord {
    /// SHA-256 of the session cookie.
    pub session_hash: String,
    /// The user.
    pub subject: Subject,
    /// When the user last authenticated with a password.
    pub auth_time: UnixTime,
    /// When it ends.
    pub expires_at: UnixTime,
    /// The session id of ID tokens issued in this session (`sid`,
    /// [Back-Channel Logout §2.1](https://openid.net/specs/openid-connect-backchannel-1_0.html#ClaimsContents));
    /// `None` for sessions started before it existed.
    pub sid: Option<String>,
}

/// An authorization code ([RFC 6749 §4.1.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The `redirect_uri` of the request (the token request must repeat it).
    pub redirect_uri: String,
    /// The user.
    pub subject: Subject,
    /// Granted scope.
    pub scope: Scope,
    /// The request's `nonce`.
    pub nonce: Option<String>,
    /// PKCE challenge ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)).
    pub code_challenge: Option<String>,
    /// `S256` or `plain`.
    pub code_challenge_method: Option<String>,
    /// Granted authorization details (JSON).
    pub authorization_details: Option<String>,
    /// When the user authenticated.
    pub auth_time: UnixTime,
    /// The grant the tokens will carry (so a replay can revoke them).
    pub grant_id: String,
    /// When it expires.
    pub expires_at: UnixTime,
    /// Whether it was redeemed.
    pub used: bool,
    /// The DPoP key thumbprint the code is bound to ([RFC 9449 §10](https://www.rfc-editor.org/rfc/rfc9449#section-10)):
    /// the token request must carry a proof signed by that key.
    pub dpop_jkt: Option<String>,
    /// The `sid` of the browser session the code was issued in (its ID token carries it).
    pub sid: Option<String>,
    /// The ID token's `acr` and the `claims` request, as JSON ([`crate::claims::CodeClaims`]).
    pub claims: Option<String>,
}

fn interaction_from_row(row: &AnyRow) -> Result<InteractionRecord, StoreError> {
    Ok(InteractionRecord {
        id_hash: column(row, "id_hash")?,
        browser_hash: column(row, "browser_hash")?,
        csrf_hash: column(row, "csrf_hash")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        request: column(row, "request")?,
        subject: column::<Option<String>>(row, "subject")?.map(Subject::new),
        auth_time: column(row, "auth_time")?,
        created_at: column(row, "created_at")?,
        expires_at: column(row, "expires_at")?,
    })
}

fn session_from_row(row: &AnyRow) -> Result<BrowserSessionRecord, StoreError> {
    Ok(BrowserSessionRecord {
        session_hash: column(row, "session_hash")?,
        subject: Subject::new(column::<String>(row, "subject")?),
        auth_time: column(row, "auth_time")?,
        expires_at: column(row, "expires_at")?,
        sid: column(row, "sid")?,
    })
}

fn code_from_row(row: &AnyRow) -> Result<AuthorizationCodeRecord, StoreError> {
    Ok(AuthorizationCodeRecord {
        code_hash: column(row, "code_hash")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        redirect_uri: column(row, "redirect_uri")?,
        subject: Subject::new(column::<String>(row, "subject")?),
        scope: Scope::new(column::<String>(row, "scope")?),
        nonce: column(row, "nonce")?,
        code_challenge: column(row, "code_challenge")?,
        code_challenge_method: column(row, "code_challenge_method")?,
        authorization_details: column(row, "authorization_details")?,
        auth_time: column(row, "auth_time")?,
        grant_id: column(row, "grant_id")?,
        expires_at: column(row, "expires_at")?,
        used: column::<i64>(row, "used")? != 0,
        dpop_jkt: column(row, "dpop_jkt")?,
        sid: column(row, "sid")?,
        claims: column(row, "claims")?,
    })
}

const INTERACTION_COLUMNS: &str =
    "id_hash, browser_hash, csrf_hash, client_id, request, subject, auth_time, created_at, expires_at";
const CODE_COLUMNS: &str = "code_hash, client_id, redirect_uri, subject, scope, nonce, code_challenge, \
                            code_challenge_method, authorization_details, auth_time, grant_id, expires_at, used, dpop_jkt, sid, \
                            claims";

impl Store {
    /// Records an authorization request in progress.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %record.client_id), err(level = "debug"))]
    pub async fn insert_interaction(&self, record: &InteractionRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO authorization_interactions ({INTERACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(record.id_hash.as_str())
        .bind(record.browser_hash.as_str())
        .bind(record.csrf_hash.as_str())
        .bind(record.client_id.as_str())
        .bind(record.request.as_str())
        .bind(record.subject.as_ref().map(Subject::as_str))
        .bind(record.auth_time)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("an interaction with this id"))?;
        Ok(())
    }

    /// The unexpired interaction with this id hash.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn interaction(&self, id_hash: &str, now: UnixTime) -> Result<Option<InteractionRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM authorization_interactions WHERE id_hash = $1 AND expires_at > $2"
        ))
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(interaction_from_row).transpose()
    }

    /// Records who logged in for an interaction; `false` when it is gone.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn set_interaction_user(
        &self,
        id_hash: &str,
        subject: &Subject,
        auth_time: UnixTime,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE authorization_interactions SET subject = $2, auth_time = $3 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(subject.as_str())
                .bind(auth_time)
                .execute(&self.pool)
                .await?;
        Ok(super::one_row(&result))
    }

    /// Replaces an interaction's CSRF token hash; `false` when it is gone.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn set_interaction_csrf(&self, id_hash: &str, csrf_hash: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE authorization_interactions SET csrf_hash = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(csrf_hash)
            .execute(&self.pool)
            .await?;
        Ok(super::one_row(&result))
    }

    /// Ends an interaction (the user decided); `true` only for the call that ended it.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn finish_interaction(&self, id_hash: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM authorization_interactions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(super::one_row(&result))
    }

    /// Records a browser session.
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %record.subject), err(level = "debug"))]
    pub async fn insert_browser_session(&self, record: &BrowserSessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO browser_sessions (session_hash, subject, auth_time, expires_at, sid) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(record.session_hash.as_str())
        .bind(record.subject.as_str())
        .bind(record.auth_time)
        .bind(record.expires_at)
        .bind(record.sid.as_deref())
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("a session with this id"))?;
        Ok(())
    }

    /// The unexpired session with this hash.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn browser_session(
        &self,
        session_hash: &str,
        now: UnixTime,
    ) -> Result<Option<BrowserSessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT session_hash, subject, auth_time, expires_at, sid FROM browser_sessions \
             WHERE session_hash = $1 AND expires_at > $2",
        )
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Ends the session with this hash (sign-out); whether there was one.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn delete_browser_session(&self, session_hash: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM browser_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(&self.pool)
            .await?;
        Ok(super::one_row(&result))
    }

    /// Every session of `subject` except the one with hash `keep`, expired or
    /// not (a password change signs the user out elsewhere: each is ended
    /// after its clients are told, [`Store::end_browser_session`]).
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn other_browser_sessions(
        &self,
        subject: &Subject,
        keep: &str,
    ) -> Result<Vec<BrowserSessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_hash, subject, auth_time, expires_at, sid FROM browser_sessions \
             WHERE subject = $1 AND session_hash <> $2 ORDER BY expires_at, session_hash",
        )
        .bind(subject.as_str())
        .bind(keep)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Records an issued authorization code.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %code.client_id), err(level = "debug"))]
    pub async fn insert_authorization_code(&self, code: &AuthorizationCodeRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(code.code_hash.as_str())
        .bind(code.client_id.as_str())
        .bind(code.redirect_uri.as_str())
        .bind(code.subject.as_str())
        .bind(code.scope.as_str())
        .bind(code.nonce.as_deref())
        .bind(code.code_challenge.as_deref())
        .bind(code.code_challenge_method.as_deref())
        .bind(code.authorization_details.as_deref())
        .bind(code.auth_time)
        .bind(code.grant_id.as_str())
        .bind(code.expires_at)
        .bind(super::flag(code.used))
        .bind(code.dpop_jkt.as_deref())
        .bind(code.sid.as_deref())
        .bind(code.claims.as_deref())
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("an authorization code with this value"))?;
        Ok(())
    }

    /// Marks the code of `client_id` used and returns it; `None` when it is
    /// unknown, another client's, or was used already (only one caller wins).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        client_id: &ClientId,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE authorization_codes SET used = 1 WHERE code_hash = $1 AND client_id = $2 AND used = 0 \
             RETURNING {CODE_COLUMNS}"
        ))
        .bind(code_hash)
        .bind(client_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    /// The code with this hash, used or not.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn authorization_code(&self, code_hash: &str) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    /// Records a pushed authorization request (`request` is its JSON).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn insert_pushed_request(
        &self,
        uri_hash: &str,
        client_id: &ClientId,
        request: &str,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pushed_authorization_requests (uri_hash, client_id, request, expires_at, used) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(uri_hash)
        .bind(client_id.as_str())
        .bind(request)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("a pushed request with this request_uri"))?;
        Ok(())
    }

    /// Uses up the unexpired pushed request of `client_id` and returns its
    /// JSON; `None` when unknown, another client's, expired or used.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn take_pushed_request(
        &self,
        uri_hash: &str,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "UPDATE pushed_authorization_requests SET used = 1 \
             WHERE uri_hash = $1 AND client_id = $2 AND used = 0 AND expires_at > $3 RETURNING request",
        )
        .bind(uri_hash)
        .bind(client_id.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|row| column(row, "request")).transpose()
    }

    /// Deletes expired interactions, sessions and pushed requests, and codes
    /// expired before `codes_before` (kept a while longer, so a late replay still
    /// revokes what the code issued); returns how many rows went.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_expired_browser_rows(&self, now: UnixTime, codes_before: UnixTime) -> Result<u64, StoreError> {
        let mut purged = 0;
        for (statement, before) in [
            ("DELETE FROM authorization_interactions WHERE expires_at < $1", now),
            ("DELETE FROM browser_sessions WHERE expires_at < $1", now),
            ("DELETE FROM session_clients WHERE expires_at < $1", now),
            ("DELETE FROM pushed_authorization_requests WHERE expires_at < $1", now),
            ("DELETE FROM authorization_codes WHERE expires_at < $1", codes_before),
        ] {
            purged += sqlx::query(statement)
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(purged)
    }

    /// The failed logins counted for `key_hash` since `window_start`.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn login_failures(&self, key_hash: &str, window_start: UnixTime) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT failures FROM login_failures WHERE key_hash = $1 AND window_start > $2")
            .bind(key_hash)
            .bind(window_start)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .as_ref()
            .map(|row| column(row, "failures"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Counts one failed login for `key_hash` at `now`: a counter whose window
    /// began before `window_start` starts over. Forgets stale counters on the way.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn record_login_failure(
        &self,
        key_hash: &str,
        now: UnixTime,
        window_start: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
            .bind(window_start)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO login_failures (key_hash, window_start, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (key_hash) DO UPDATE SET failures = login_failures.failures + 1",
        )
        .bind(key_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the failed logins of `key_hash` (after a successful login).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn clear_login_failures(&self, key_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key_hash = $1")
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_store;

    fn code(hash: &str) -> AuthorizationCodeRecord {
        AuthorizationCodeRecord {
            code_hash: hash.into(),
            client_id: ClientId::new("web"),
            redirect_uri: "https://client.example/cb".into(),
            subject: Subject::new("sub-alice"),
            scope: Scope::new("openid"),
            nonce: Some("n".into()),
            code_challenge: Some("c".into()),
            code_challenge_method: Some("S256".into()),
            authorization_details: None,
            auth_time: 100,
            grant_id: "g".into(),
            expires_at: 160,
            used: false,
            dpop_jkt: None,
            sid: Some("sid-1".into()),
            claims: Some(r#"{"acr":"urn:outband:acr:pwd"}"#.into()),
        }
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_under_concurrency() {
        let store = fresh_store().await;
        store.insert_authorization_code(&code("h")).await.unwrap();
        let web = ClientId::new("web");
        assert!(store
            .redeem_authorization_code("h", &ClientId::new("other"))
            .await
            .unwrap()
            .is_none());
        let attempts = (0..8).map(|_| store.redeem_authorization_code("h", &web));
        let winners = futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| r.as_ref().unwrap().is_some())
            .count();
        assert_eq!(winners, 1);
        let stored = store.authorization_code("h").await.unwrap().unwrap();
        assert!(stored.used);
        assert_eq!(stored.nonce.as_deref(), Some("n"));
        assert_eq!(store.purge_expired_browser_rows(1000, 161).await.unwrap(), 1);
        assert!(store.authorization_code("h").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn pushed_requests_are_single_use_and_expire() {
        let store = fresh_store().await;
        let web = ClientId::new("web");
        store.insert_pushed_request("u", &web, "{}", 160).await.unwrap();
        store.insert_pushed_request("v", &web, "{}", 160).await.unwrap();
        assert!(store
            .take_pushed_request("u", &ClientId::new("other"), 100)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store.take_pushed_request("u", &web, 100).await.unwrap().as_deref(),
            Some("{}")
        );
        assert!(store.take_pushed_request("u", &web, 100).await.unwrap().is_none());
        assert!(
            store.take_pushed_request("v", &web, 160).await.unwrap().is_none(),
            "expired"
        );
    }

    #[tokio::test]
    async fn login_failures_count_within_their_window() {
        let store = fresh_store().await;
        for _ in 0..3 {
            store.record_login_failure("k", 1000, 100).await.unwrap();
        }
        assert_eq!(store.login_failures("k", 100).await.unwrap(), 3);
        assert_eq!(store.login_failures("k", 1000).await.unwrap(), 0, "outside the window");
        // A failure after the window starts the count over.
        store.record_login_failure("k", 2000, 1000).await.unwrap();
        assert_eq!(store.login_failures("k", 1000).await.unwrap(), 1);
        store.clear_login_failures("k").await.unwrap();
        assert_eq!(store.login_failures("k", 0).await.unwrap(), 0);
    }
}
