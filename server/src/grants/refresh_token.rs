//! The refresh token grant ([RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)),
//! with rotation: every use returns a new refresh token and retires the old
//! one. Presenting a retired refresh token again is treated as theft
//! ([RFC 9700 §4.14.2](https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2)):
//! the whole grant is revoked.

use outband_protocol::{GrantType, RefreshToken, Scope, TokenResponse, TokenType};
use serde_json::Value;

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::TokenKind;
use crate::tokens::{issue_user_tokens, AccessGrant, Confirmation, UserTokens};

/// Exchanges a refresh token for new tokens, optionally with a narrower scope.
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    refresh_token: &RefreshToken,
    requested: Option<Scope>,
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
    let grant_id = record
        .grant_id
        .clone()
        .ok_or_else(|| Error::internal("a refresh token without a grant"))?;
    if record.revoked {
        let revoked = state.store.revoke_tokens_of_grant(&grant_id).await?;
        tracing::warn!(client_id = %client.client_id(), revoked, "a retired refresh token was presented again; grant revoked");
        return Err(Error::invalid_grant(
            "refresh_token was already used; the grant has been revoked",
        ));
    }
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
    if !state.store.revoke_token(&hash).await? {
        // Another request rotated it a moment ago: the same as a replay.
        state.store.revoke_tokens_of_grant(&grant_id).await?;
        return Err(Error::invalid_grant(
            "refresh_token was already used; the grant has been revoked",
        ));
    }
    let details: Option<Value> = record
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let grant = AccessGrant {
        client,
        subject: Some(&subject),
        scope: &scope,
        authorization_details: details.as_ref(),
        grant_id: None,
        cnf: Confirmation {
            jkt: record.cnf_jkt.clone(),
            x5t: record.cnf_x5t.clone(),
        },
    };
    let UserTokens { access, refresh } = issue_user_tokens(state, grant, Some(&grant_id)).await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: if record.cnf_jkt.is_some() {
            TokenType::DPoP
        } else {
            TokenType::Bearer
        },
        expires_in: u64::try_from(access.expires_in).ok(),
        refresh_token: refresh,
        scope: Some(scope),
        id_token: None,
        authorization_details: details,
        grant_id: None,
    })
}
