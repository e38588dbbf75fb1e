//! Finding the user a CIBA request is for, from exactly one hint
//! ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)).

use outband_protocol::jose::verify_jwt;
use outband_protocol::{ErrorCode, Subject};
use serde_json::Value;

use crate::auth::client_keys::client_public_keys;
use crate::ciba::request::UserHint;
use crate::error::{Error, Result};
use crate::keys::SERVER_ALGS;
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{ClientRecord, UserRecord};

fn unknown_user() -> Error {
    Error::new(ErrorCode::UnknownUserId, "no user matches the hint")
}

/// The user a hint names. Locked users are refused with `access_denied` (403).
pub async fn resolve(state: &AppState, client: &ClientRecord, hint: &UserHint) -> Result<UserRecord> {
    let user = match hint {
        UserHint::LoginHint(hint) => state.store.user_by_login_hint(hint.trim()).await?,
        UserHint::IdTokenHint(token) => {
            let subject = id_token_subject(state, client, token)?;
            state.store.user(&subject).await?
        }
        UserHint::LoginHintToken(token) => login_hint_token_user(state, client, token).await?,
    };
    let user = user.ok_or_else(unknown_user)?;
    if user.locked {
        return Err(
            Error::new(ErrorCode::AccessDenied, "the user cannot be asked").with_status(http::StatusCode::FORBIDDEN)
        );
    }
    Ok(user)
}

/// An ID token this AS issued to this client; expired is fine (it is only a hint).
fn id_token_subject(state: &AppState, client: &ClientRecord, token: &str) -> Result<Subject> {
    let bad = |why: &str| Error::invalid_request(format!("id_token_hint: {why}"));
    let verified = verify_jwt(token, &state.keys.public_keys(), &SERVER_ALGS)
        .map_err(|_| bad("not an ID token of this server"))?;
    let claims = &verified.claims;
    if claims.get("iss").and_then(Value::as_str) != Some(state.settings.issuer.as_str()) {
        return Err(bad("issued by another server"));
    }
    let client_id = client.client_id().as_str();
    let for_client = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !for_client {
        return Err(bad("issued to another client"));
    }
    claims
        .get("sub")
        .and_then(Value::as_str)
        .map(Subject::new)
        .ok_or_else(|| bad("has no sub"))
}

/// A JWT signed by the client whose `sub_id` ([RFC 9493](https://www.rfc-editor.org/rfc/rfc9493))
/// names the user: formats `email`, `phone_number`, `iss_sub` (our issuer) and `opaque` (a username).
async fn login_hint_token_user(state: &AppState, client: &ClientRecord, token: &str) -> Result<Option<UserRecord>> {
    let bad = |why: String| Error::invalid_request(format!("login_hint_token: {why}"));
    let kid = outband_protocol::jose::UnverifiedJwt::decode(token)
        .ok()
        .and_then(|j| j.kid().map(str::to_owned));
    let keys = client_public_keys(state, client, kid.as_deref()).await.map_err(bad)?;
    let algs = Policy::of(client.metadata.profile).signing_algs();
    let verified = verify_jwt(token, &keys, algs).map_err(|e| bad(e.to_string()))?;
    let claims = &verified.claims;
    let exp = claims
        .get("exp")
        .and_then(crate::auth::numeric_date)
        .ok_or_else(|| bad("exp is required".into()))?;
    if exp <= state.now() {
        return Err(Error::new(
            ErrorCode::ExpiredLoginHintToken,
            "login_hint_token has expired",
        ));
    }
    let sub_id = claims.get("sub_id").ok_or_else(|| bad("sub_id is required".into()))?;
    let field = |name: &str| sub_id.get(name).and_then(Value::as_str);
    match field("format") {
        Some("email") => Ok(state
            .store
            .user_by_login_hint(field("email").ok_or_else(unknown_user)?)
            .await?),
        Some("phone_number") => Ok(state
            .store
            .user_by_login_hint(field("phone_number").ok_or_else(unknown_user)?)
            .await?),
        Some("opaque") => Ok(state
            .store
            .user_by_login_hint(field("id").ok_or_else(unknown_user)?)
            .await?),
        Some("iss_sub") if field("iss") == Some(state.settings.issuer.as_str()) => Ok(state
            .store
            .user(&Subject::new(field("sub").ok_or_else(unknown_user)?))
            .await?),
        Some("iss_sub") => Err(unknown_user()),
        Some(other) => Err(bad(format!("sub_id format {other} is not supported"))),
        None => Err(bad("sub_id has no format".into())),
    }
}
