//! The refresh token grant ([RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)),
//! with rotation: every use returns a new refresh token and retires the old
//! one. Presenting a retired refresh token again is treated as theft
//! ([RFC 9700 §4.14.2](https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2)):
//! the whole grant is revoked, except for one retry within a short grace
//! window ([`crate::grants::refresh_grace`]).
//!
//! ## DPoP-bound grants
//! [RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5) binds the
//! refresh tokens of *public* clients to the DPoP key: a public client (a native
//! app, `token_endpoint_auth_method: none`) that sends a proof gets refresh
//! tokens bound to that key, and a refresh then needs a proof signed by the same
//! key (none: `invalid_dpop_proof`; another key: `invalid_grant`) and mints
//! tokens bound to it. A refresh of an unbound grant that carries a proof binds
//! the grant from then on. "Refresh tokens issued to confidential clients ... are
//! not bound to the DPoP proof" (§5): they are bound to the client by its
//! authentication already, so a confidential client may refresh with a proof of
//! another key (its new access token is bound to that key, `cnf.jkt`), or
//! without one (a Bearer token, where its profile allows it).
//!
//! ## Certificate-bound grants
//! A refresh token issued with certificate-bound tokens
//! ([RFC 8705 §3](https://www.rfc-editor.org/rfc/rfc8705#section-3)) keeps the
//! binding: a refresh must come over mutual TLS with the same certificate
//! (another one: `invalid_grant`), and the new tokens are bound to it.

use outband_protocol::{ErrorCode, GrantType, RefreshToken, Scope, TokenEndpointAuthMethod, TokenResponse};
use serde_json::Value;

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::grants::refresh_grace;
use crate::state::AppState;
use crate::store::{TokenKind, TokenRecord};
use crate::tokens::{issue_access_token, record_refresh_token, AccessGrant, Confirmation, Possession};

/// What the new tokens are bound to: a bound refresh token needs a proof of
/// its certificate, and of its DPoP key when the client is `public`; an unbound
/// one is bound to what the request proves ([`Confirmation::of_request`]).
fn binding(record: &TokenRecord, possession: Possession<'_>, public: bool) -> Result<Confirmation> {
    let x5t = match (record.cnf_x5t.as_deref(), possession.certificate) {
        (Some(bound), Some(presented)) if bound == presented => Some(bound.to_owned()),
        (Some(_), Some(_)) => {
            return Err(Error::invalid_grant(
                "this refresh token is bound to another client certificate",
            ))
        }
        (Some(_), None) => {
            return Err(Error::invalid_grant(
                "this refresh token is bound to a client certificate: send the request over mutual TLS with it",
            ))
        }
        (None, _) => Confirmation::of_request(possession).x5t,
    };
    let proof = possession.proof;
    // RFC 9449 §5: only public clients' refresh tokens are bound to the DPoP key.
    let bound_jkt = record.cnf_jkt.as_deref().filter(|_| public);
    let jkt = match (bound_jkt, proof) {
        (Some(_), None) => {
            return Err(Error::new(
                ErrorCode::InvalidDpopProof,
                "this refresh token is bound to a DPoP key: send a DPoP proof signed by that key",
            ))
        }
        (Some(jkt), Some(proof)) if proof.jkt != jkt => {
            return Err(Error::invalid_grant("this refresh token is bound to another DPoP key"))
        }
        (None, Some(proof)) => Some(proof.jkt.clone()),
        (jkt, _) => jkt.map(str::to_owned),
    };
    Ok(Confirmation { jkt, x5t })
}

/// Exchanges a refresh token for new tokens, optionally with a narrower scope.
/// `possession` holds the request's DPoP proof (already verified) and certificate.
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    refresh_token: &RefreshToken,
    requested: Option<Scope>,
    narrow_to: Option<&str>,
    possession: Possession<'_>,
) -> Result<TokenResponse> {
    let client = &auth.client;
    if !client.metadata.allows_grant(GrantType::RefreshToken) {
        return Err(Error::unauthorized_client(
            "client is not registered for the refresh_token grant",
        ));
    }
    let hash = refresh_token.hash();
    let record = state
        .store
        .token(&hash)
        .await?
        .filter(|t| t.kind == TokenKind::Refresh && t.client_id == *client.client_id())
        .ok_or_else(|| Error::invalid_grant("unknown refresh_token"))?;
    // Before anything else: without the key, a bound refresh token neither
    // works nor rotates (so a thief cannot make the grant look replayed).
    let public = client.metadata.token_endpoint_auth_method == TokenEndpointAuthMethod::None;
    let cnf = binding(&record, possession, public)?;
    let grant_id = record
        .grant_id
        .clone()
        .ok_or_else(|| Error::internal("a refresh token without a grant"))?;
    // A retired token is a replay, unless it is a retry within the grace
    // window ([`refresh_grace`]), which retires the successor and re-rotates.
    let retried = if record.revoked {
        match refresh_grace::retry(state, &record).await? {
            Some(successor) => Some(successor),
            None => return Err(refresh_grace::replay(state, &record, &grant_id).await?),
        }
    } else {
        None
    };
    if record.expires_at <= state.now() {
        return Err(Error::invalid_grant("refresh_token has expired"));
    }
    let subject = record
        .subject
        .clone()
        .ok_or_else(|| Error::internal("a refresh token without a user"))?;
    if state.store.user(&subject).await?.is_none_or(|u| u.locked) {
        return Err(Error::invalid_grant("the user can no longer be issued tokens"));
    }
    let scope = match requested {
        Some(scope) if scope.is_subset_of(&record.scope) => scope,
        Some(_) => return Err(Error::invalid_scope("a refresh may narrow the scope, never widen it")),
        None => record.scope.clone(),
    };
    let granted: Option<Value> = record
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    // Checked before rotating, so a bad narrowing leaves the refresh token usable.
    let details = crate::grants::narrowing::narrow(narrow_to, granted.as_ref(), client)?;
    let successor = match retried {
        Some(successor) => successor,
        None => match refresh_grace::rotate(state, &hash).await? {
            Some(successor) => successor,
            // Another request rotated it a moment ago: the same as a replay.
            None => return Err(refresh_grace::replay(state, &record, &grant_id).await?),
        },
    };
    let token_type = cnf.token_type();
    let grant = AccessGrant {
        client,
        subject: Some(&subject),
        scope: &scope,
        authorization_details: details.as_ref(),
        grant_id: Some(&grant_id),
        cnf,
    };
    let refresh = record_refresh_token(state, &grant, &grant_id, successor).await?;
    let access = issue_access_token(state, grant).await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type,
        expires_in: u64::try_from(access.expires_in).ok(),
        refresh_token: Some(refresh),
        scope: Some(scope),
        id_token: None,
        authorization_details: details,
        grant_id: crate::grant_management::is_for(client).then_some(grant_id),
    })
}
