//! Issuing access tokens: JWTs per [RFC 9068](https://www.rfc-editor.org/rfc/rfc9068)
//! signed by the AS, or opaque random values, as the client is registered for.
//! Either way a row records the token (by hash) so introspection and revocation
//! see it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::{AccessToken, AccessTokenFormat, RefreshToken, Scope, Subject, TokenType};
use rand::RngCore;
use serde_json::{json, Map, Value};

use crate::auth::dpop::DpopProof;
use crate::error::Error;
use crate::state::AppState;
use crate::store::{ClientRecord, TokenKind, TokenRecord};

/// A fresh random value of 256 bits, base64url: for opaque tokens, ids and codes.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a token is bound to ([RFC 7800](https://www.rfc-editor.org/rfc/rfc7800) `cnf`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// DPoP key thumbprint (`jkt`).
    pub jkt: Option<String>,
    /// Certificate thumbprint (`x5t#S256`).
    pub x5t: Option<String>,
}

/// What a token request proves possession of: the key of its DPoP proof, and the
/// client certificate of its TLS connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Possession<'a> {
    /// The request's DPoP proof, already verified.
    pub proof: Option<&'a DpopProof>,
    /// `x5t#S256` of the client certificate the request came with, if any.
    pub certificate: Option<&'a str>,
    /// Whether new tokens are bound to that certificate
    /// ([`crate::auth::mtls::binds_tokens`]); the token endpoint refuses such a
    /// request without a certificate before any grant runs.
    pub bind_certificate: bool,
}

impl Confirmation {
    /// The binding of new tokens for a request proving `possession`: to the key
    /// of its DPoP proof, and to its certificate when the client's tokens are
    /// certificate-bound.
    pub fn of_request(possession: Possession<'_>) -> Self {
        Self {
            jkt: possession.proof.map(|p| p.jkt.clone()),
            x5t: possession
                .certificate
                .filter(|_| possession.bind_certificate)
                .map(str::to_owned),
        }
    }

    /// The binding of a stored token.
    pub fn of_record(record: &TokenRecord) -> Self {
        Self {
            jkt: record.cnf_jkt.clone(),
            x5t: record.cnf_x5t.clone(),
        }
    }

    /// The `token_type` of an access token bound so: `DPoP` when bound to a DPoP
    /// key ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)), `Bearer` otherwise.
    pub fn token_type(&self) -> TokenType {
        if self.jkt.is_some() {
            TokenType::DPoP
        } else {
            TokenType::Bearer
        }
    }

    /// The `cnf` claim, when bound.
    pub fn to_claim(&self) -> Option<Value> {
        let mut cnf = Map::new();
        if let Some(jkt) = &self.jkt {
            cnf.insert("jkt".into(), json!(jkt));
        }
        if let Some(x5t) = &self.x5t {
            cnf.insert("x5t#S256".into(), json!(x5t));
        }
        (!cnf.is_empty()).then_some(Value::Object(cnf))
    }
}

/// What an access token grants.
#[derive(Clone, Debug)]
pub struct AccessGrant<'a> {
    /// The client it is issued to.
    pub client: &'a ClientRecord,
    /// The user, for user-bound grants; `None` for client credentials.
    pub subject: Option<&'a Subject>,
    /// Granted scope.
    pub scope: &'a Scope,
    /// Granted authorization details.
    pub authorization_details: Option<&'a Value>,
    /// The grant it belongs to.
    pub grant_id: Option<&'a str>,
    /// Sender constraint.
    pub cnf: Confirmation,
}

/// An issued access token.
#[derive(Debug)]
pub struct IssuedToken {
    /// The value to hand to the client.
    pub token: AccessToken,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// What was stored.
    pub record: TokenRecord,
}

/// Issues, records and returns an access token.
pub async fn issue_access_token(state: &AppState, grant: AccessGrant<'_>) -> Result<IssuedToken, Error> {
    let settings = &state.settings;
    let now = state.now();
    let lifetime = settings.access_token_lifetime;
    let jti = random_token();
    let value = match grant.client.metadata.access_token_format {
        AccessTokenFormat::Opaque => random_token(),
        AccessTokenFormat::Jwt => {
            let client_id = grant.client.client_id().as_str();
            let mut claims = Map::new();
            claims.insert("iss".into(), json!(settings.issuer));
            claims.insert("sub".into(), json!(grant.subject.map_or(client_id, |s| s.as_str())));
            claims.insert("aud".into(), json!(settings.access_token_audience));
            claims.insert("client_id".into(), json!(client_id));
            claims.insert("iat".into(), json!(now));
            claims.insert("exp".into(), json!(now + lifetime));
            claims.insert("jti".into(), json!(jti));
            if !grant.scope.is_empty() {
                claims.insert("scope".into(), json!(grant.scope.as_str()));
            }
            if let Some(details) = grant.authorization_details {
                claims.insert("authorization_details".into(), details.clone());
            }
            if let Some(grant_id) = grant.grant_id {
                claims.insert("grant_id".into(), json!(grant_id));
            }
            if let Some(cnf) = grant.cnf.to_claim() {
                claims.insert("cnf".into(), cnf);
            }
            let key = state
                .keys
                .signer(settings.access_token_alg)
                .ok_or_else(|| Error::internal(format!("no {} signing key", settings.access_token_alg)))?;
            key.sign(Some("at+jwt"), &claims)
                .map_err(|e| Error::internal(e.to_string()))?
        }
    };
    let token = AccessToken::new(value);
    let record = TokenRecord {
        token_hash: token.hash(),
        kind: TokenKind::Access,
        jti,
        client_id: grant.client.client_id().clone(),
        subject: grant.subject.cloned(),
        scope: grant.scope.clone(),
        authorization_details: grant.authorization_details.map(Value::to_string),
        grant_id: grant.grant_id.map(str::to_owned),
        cnf_jkt: grant.cnf.jkt.clone(),
        cnf_x5t: grant.cnf.x5t.clone(),
        issued_at: now,
        expires_at: now + lifetime,
        revoked: false,
    };
    state.store.insert_token(&record).await?;
    Ok(IssuedToken {
        token,
        expires_in: lifetime,
        record,
    })
}

/// An access token, and a refresh token when the client may have one.
#[derive(Debug)]
pub struct UserTokens {
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token, for clients registered for the `refresh_token` grant.
    pub refresh: Option<RefreshToken>,
}

/// Issues the tokens of a user grant: an access token, plus a refresh token
/// when the client is registered for the `refresh_token` grant. Both carry the
/// same `grant_id` (a new one unless given), so revoking the refresh token
/// revokes what it minted.
pub async fn issue_user_tokens(
    state: &AppState,
    mut grant: AccessGrant<'_>,
    grant_id: Option<&str>,
) -> Result<UserTokens, Error> {
    if !grant
        .client
        .metadata
        .allows_grant(outband_protocol::GrantType::RefreshToken)
    {
        let access = issue_access_token(state, grant).await?;
        return Ok(UserTokens { access, refresh: None });
    }
    let grant_id = grant_id.map_or_else(random_token, str::to_owned);
    grant.grant_id = Some(&grant_id);
    let refresh = issue_refresh_token(state, &grant, &grant_id).await?;
    let access = issue_access_token(state, grant).await?;
    Ok(UserTokens {
        access,
        refresh: Some(refresh),
    })
}

/// Issues and records a refresh token for a user grant. Refresh tokens are
/// always opaque; `grant_id` ties them to the access tokens they mint, so
/// revoking one revokes the grant.
pub async fn issue_refresh_token(
    state: &AppState,
    grant: &AccessGrant<'_>,
    grant_id: &str,
) -> Result<RefreshToken, Error> {
    record_refresh_token(state, grant, grant_id, RefreshToken::new(random_token())).await
}

/// Records `token` (a fresh random value the caller made, e.g. to name it as
/// a rotated token's successor first) as a refresh token of `grant_id`.
pub async fn record_refresh_token(
    state: &AppState,
    grant: &AccessGrant<'_>,
    grant_id: &str,
    token: RefreshToken,
) -> Result<RefreshToken, Error> {
    let now = state.now();
    let record = TokenRecord {
        token_hash: token.hash(),
        kind: TokenKind::Refresh,
        jti: random_token(),
        client_id: grant.client.client_id().clone(),
        subject: grant.subject.cloned(),
        scope: grant.scope.clone(),
        authorization_details: grant.authorization_details.map(Value::to_string),
        grant_id: Some(grant_id.to_owned()),
        // RFC 9449 §5: a DPoP key binds the refresh tokens of public clients
        // only, so only theirs record it (and introspection shows it).
        cnf_jkt: grant.cnf.jkt.clone().filter(|_| {
            grant.client.metadata.token_endpoint_auth_method == outband_protocol::TokenEndpointAuthMethod::None
        }),
        cnf_x5t: grant.cnf.x5t.clone(),
        issued_at: now,
        expires_at: now + state.settings.refresh_token_lifetime,
        revoked: false,
    };
    state.store.insert_token(&record).await?;
    Ok(token)
}

/// The stored record of a token value, when it is active now: known, not
/// revoked, not expired.
pub async fn active_token(state: &AppState, value: &str) -> Result<Option<TokenRecord>, Error> {
    let hash = outband_protocol::jose::sha256_b64url(value.as_bytes());
    let now = state.now();
    Ok(state
        .store
        .token(&hash)
        .await?
        .filter(|t| !t.revoked && t.expires_at > now))
}
