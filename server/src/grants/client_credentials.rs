//! The client credentials grant ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)):
//! a client acting on its own behalf. No refresh token (§4.4.3), no ID token.

use outband_protocol::{GrantType, Scope, TokenResponse};

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tokens::{issue_access_token, AccessGrant, Confirmation, Possession};

/// Scopes that only make sense with an end-user, never granted to a client alone.
const USER_SCOPES: [&str; 5] = ["openid", "profile", "email", "phone", "offline_access"];

/// Issues a token for `requested` scope (the registered scope when absent),
/// bound as `possession` asks ([`Confirmation::of_request`]).
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    requested: Option<Scope>,
    possession: Possession<'_>,
) -> Result<TokenResponse> {
    let client = &auth.client;
    if auth.method == outband_protocol::TokenEndpointAuthMethod::None {
        // RFC 6749 §4.4: "MUST only be used by confidential clients".
        return Err(Error::unauthorized_client(
            "a public client cannot use the client_credentials grant",
        ));
    }
    if !client.metadata.allows_grant(GrantType::ClientCredentials) {
        return Err(Error::unauthorized_client(
            "client is not registered for the client_credentials grant",
        ));
    }
    let registered = &client.metadata.scope;
    let scope = match requested {
        Some(scope) => {
            if !scope.is_well_formed() {
                return Err(Error::invalid_scope(
                    "scope contains characters RFC 6749 §3.3 does not allow",
                ));
            }
            if let Some(user_scope) = scope.iter().find(|s| USER_SCOPES.contains(s)) {
                return Err(Error::invalid_scope(format!(
                    "{user_scope} needs an end-user and cannot be granted with client_credentials"
                )));
            }
            if let Some(extra) = scope.iter().find(|s| !registered.contains(s)) {
                return Err(Error::invalid_scope(format!(
                    "client is not registered for scope {extra}"
                )));
            }
            scope
        }
        None => Scope::from_iter(registered.iter().filter(|s| !USER_SCOPES.contains(s))),
    };
    let cnf = Confirmation::of_request(possession);
    let token_type = cnf.token_type();
    let issued = issue_access_token(
        state,
        AccessGrant {
            client,
            subject: None,
            scope: &scope,
            authorization_details: None,
            grant_id: None,
            cnf,
        },
    )
    .await?;
    Ok(TokenResponse {
        access_token: issued.token,
        token_type,
        expires_in: u64::try_from(issued.expires_in).ok(),
        refresh_token: None,
        scope: (!scope.is_empty()).then_some(scope),
        id_token: None,
        authorization_details: None,
        grant_id: None,
    })
}
