//! The authorization code grant ([RFC 6749 §4.1.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3)),
//! with PKCE ([RFC 7636 §4.6](https://www.rfc-editor.org/rfc/rfc7636#section-4.6)).
//!
//! Redemption is one conditional update, so a code is redeemed once however
//! many nodes see it. A second redemption is treated as an attack: the tokens
//! the first one issued are revoked (RFC 6749 §4.1.2), through the `grant_id`
//! they all carry. A code whose request had no `code_challenge` refuses a
//! `code_verifier` ([RFC 9700 §2.1.1](https://www.rfc-editor.org/rfc/rfc9700#section-2.1.1)).

use outband_protocol::{GrantType, TokenResponse};
use serde_json::{json, Value};

use crate::auth::AuthenticatedClient;
use crate::authorize::browser::hash;
use crate::authorize::pkce::{self, PkceMethod};
use crate::claims::{user_claims, CodeClaims};
use crate::error::{Error, Result};
use crate::id_token::{issue_id_token_with, IdTokenClaims};
use crate::state::AppState;
use crate::tokens::{issue_user_tokens, AccessGrant, Confirmation, Possession, UserTokens};

/// The parameters of the token request.
#[derive(Clone, Copy, Debug)]
pub struct CodeRequest<'a> {
    /// The code.
    pub code: &'a str,
    /// The `redirect_uri`, which must equal the authorization request's.
    pub redirect_uri: Option<&'a str>,
    /// The PKCE verifier.
    pub code_verifier: Option<&'a str>,
    /// Narrower `authorization_details` for the tokens (RFC 9396 §6.2), JSON text.
    pub authorization_details: Option<&'a str>,
}

/// Redeems a code for tokens bound as `possession` asks.
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    request: CodeRequest<'_>,
    possession: Possession<'_>,
) -> Result<TokenResponse> {
    let client = &auth.client;
    if !client.metadata.allows_grant(GrantType::AuthorizationCode) {
        return Err(Error::unauthorized_client(
            "client is not registered for the authorization_code grant",
        ));
    }
    let code_hash = hash(request.code);
    let Some(code) = state
        .store
        .redeem_authorization_code(&code_hash, client.client_id())
        .await?
    else {
        if let Some(used) = state
            .store
            .authorization_code(&code_hash)
            .await?
            .filter(|c| c.used && c.client_id == *client.client_id())
        {
            let revoked = state.store.revoke_tokens_of_grant(&used.grant_id).await?;
            tracing::warn!(client_id = %client.client_id(), revoked, "an authorization code was presented twice; its tokens are revoked");
            return Err(Error::invalid_grant(
                "code was already used; the tokens issued for it have been revoked",
            ));
        }
        return Err(Error::invalid_grant("unknown code"));
    };
    if code.expires_at <= state.now() {
        return Err(Error::invalid_grant("code has expired"));
    }
    crate::authorize::dpop_binding::check_code_binding(
        code.dpop_jkt.as_deref(),
        possession.proof.map(|p| p.jkt.as_str()),
    )?;
    if request.redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(Error::invalid_grant(
            "redirect_uri must equal the one of the authorization request",
        ));
    }
    match (
        &code.code_challenge,
        code.code_challenge_method.as_deref(),
        request.code_verifier,
    ) {
        (None, _, None) => {}
        (None, _, Some(_)) => {
            return Err(Error::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ))
        }
        (Some(_), _, None) => return Err(Error::invalid_grant("code_verifier is required (PKCE)")),
        (Some(challenge), method, Some(verifier)) => {
            let method = method.and_then(PkceMethod::parse).unwrap_or(PkceMethod::Plain);
            if !pkce::verify(verifier, challenge, method) {
                return Err(Error::invalid_grant("code_verifier does not match the code_challenge"));
            }
        }
    }
    let Some(user) = state.store.user(&code.subject).await?.filter(|u| !u.locked) else {
        return Err(Error::invalid_grant("the user can no longer be issued tokens"));
    };
    let claims = CodeClaims::from_stored(code.claims.as_deref())?;
    let approved: Option<Value> = code
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok());
    let details = crate::grants::narrowing::narrow(request.authorization_details, approved.as_ref(), client)?;
    // Within the approved scope only: `claims` selects, it does not widen (see `crate::claims`).
    let userinfo = claims.request.userinfo_names(&code.scope);
    let grant_id = crate::grant_management::settle(
        state,
        &format!("code:{code_hash}"),
        Some(&code.grant_id),
        crate::grant_management::Approved {
            client_id: client.client_id(),
            subject: &code.subject,
            scope: &code.scope,
            authorization_details: approved.as_ref(),
            userinfo_claims: &userinfo,
        },
    )
    .await?;
    let cnf = Confirmation::of_request(possession);
    let token_type = cnf.token_type();
    let grant = AccessGrant {
        client,
        subject: Some(&code.subject),
        scope: &code.scope,
        authorization_details: details.as_ref(),
        grant_id: Some(&grant_id),
        cnf,
    };
    let UserTokens { access, refresh } = issue_user_tokens(state, grant, Some(&grant_id)).await?;
    let id_token = if code.scope.contains("openid") {
        let amr = json!(["pwd"]);
        // The user claims the `claims` parameter asked for in the ID token, among those the scope releases.
        let names = claims.request.id_token_names(&code.scope);
        let mut extra = user_claims(&user, names.iter().map(String::as_str));
        // The browser session's id (Back-/Front-Channel Logout).
        if let Some(sid) = &code.sid {
            extra.insert("sid".into(), json!(sid));
        }
        // UK Open Banking: the consent named by `openbanking_intent_id` goes back in the ID token.
        if let Some(intent) = crate::consents::authorize::intent_claim(state, &grant_id).await? {
            extra.insert(crate::consents::authorize::INTENT_CLAIM.into(), json!(intent));
        }
        Some(issue_id_token_with(
            state,
            IdTokenClaims {
                client,
                subject: &code.subject,
                auth_time: code.auth_time,
                acr: claims.acr.as_deref(),
                amr: Some(&amr),
                access_token: Some(&access.token),
                refresh_token: None,
                auth_req_id: None,
                nonce: code.nonce.as_deref(),
            },
            extra,
        )?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type,
        expires_in: u64::try_from(access.expires_in).ok(),
        refresh_token: refresh,
        scope: Some(code.scope.clone()),
        id_token,
        authorization_details: details,
        grant_id: crate::grant_management::is_for(client).then_some(grant_id),
    })
}
