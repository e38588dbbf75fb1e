//! Reading and checking a backchannel authentication request
//! ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)),
//! given as form parameters or as a signed request object (§7.1.1).

use outband_protocol::jose::verify_jwt;
use outband_protocol::{
    BackchannelAuthenticationRequest, ClientNotificationToken, DeliveryMode, ErrorCode, GrantType, Scope,
};
use serde_json::Value;

use crate::auth::client_keys::client_public_keys;
use crate::error::{Error, Result};
use crate::extract::FormParams;
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::ClientRecord;

/// Parameters that, with `request`, must only appear inside the request object.
const AUTHENTICATION_PARAMETERS: [&str; 12] = [
    "scope",
    "client_notification_token",
    "acr_values",
    "login_hint_token",
    "id_token_hint",
    "login_hint",
    "binding_message",
    "user_code",
    "requested_expiry",
    "authorization_details",
    "grant_management_action",
    "grant_id",
];

/// Longest binding message, in characters: it must fit on a till and a phone screen.
pub const MAX_BINDING_MESSAGE: usize = 64;
/// Seconds of clock skew tolerated on request object times.
const LEEWAY: i64 = 30;

/// How the client identified the user: exactly one of the three hints.
#[derive(Clone, Debug)]
pub enum UserHint {
    /// Username, e-mail or phone.
    LoginHint(String),
    /// An ID token this AS issued to the client.
    IdTokenHint(String),
    /// A JWT signed by the client naming the user.
    LoginHintToken(String),
}

/// A checked authentication request, ready to be turned into a pending request.
#[derive(Clone, Debug)]
pub struct CibaParams {
    /// Requested scope; contains `openid`.
    pub scope: Scope,
    /// Who is asked.
    pub hint: UserHint,
    /// Shown on both devices.
    pub binding_message: Option<String>,
    /// A secret the user knows.
    pub user_code: Option<String>,
    /// Requested lifetime in seconds.
    pub requested_expiry: Option<i64>,
    /// Requested ACRs.
    pub acr_values: Option<String>,
    /// RFC 9396 details (a JSON array).
    pub authorization_details: Option<Value>,
    /// Bearer for ping/push notifications.
    pub client_notification_token: Option<ClientNotificationToken>,
    /// [FAPI Grant Management §5.2](https://openid.net/specs/fapi-grant-management.html)
    /// `grant_management_action` and `grant_id` ([`crate::grant_management`]).
    pub grant_management: Option<crate::grant_management::GrantRequest>,
}

/// The client's delivery mode, refusing clients that may not use CIBA at all.
pub fn delivery_mode(client: &ClientRecord) -> Result<DeliveryMode> {
    if !client.metadata.allows_grant(GrantType::Ciba) {
        return Err(Error::unauthorized_client(
            "client is not registered for the CIBA grant",
        ));
    }
    client
        .metadata
        .backchannel_token_delivery_mode
        .ok_or_else(|| Error::unauthorized_client("client has no backchannel_token_delivery_mode"))
}

/// Reads the request from the form, or from its signed request object.
pub async fn read(state: &AppState, client: &ClientRecord, form: &FormParams) -> Result<CibaParams> {
    let policy = Policy::of(client.metadata.profile);
    let must_sign = client.metadata.backchannel_authentication_request_signing_alg.is_some()
        || policy.requires_signed_ciba_request();
    let raw = match form.get("request") {
        Some(request) => {
            if let Some(extra) = AUTHENTICATION_PARAMETERS.iter().find(|p| form.contains(p)) {
                return Err(Error::invalid_request(format!(
                    "{extra} must be inside the signed request object, not beside it"
                )));
            }
            request_object(state, client, request).await?
        }
        None if must_sign => {
            return Err(Error::invalid_request(
                "this client must send a signed request object (request parameter)",
            ))
        }
        None => form.deserialize::<BackchannelAuthenticationRequest>()?,
    };
    check(client, raw)
}

async fn request_object(
    state: &AppState,
    client: &ClientRecord,
    jwt: &str,
) -> Result<BackchannelAuthenticationRequest> {
    let bad = |why: String| Error::invalid_request(format!("request object: {why}"));
    let policy = Policy::of(client.metadata.profile);
    let algs = match client.metadata.backchannel_authentication_request_signing_alg {
        Some(alg) if policy.signing_algs().contains(&alg) => vec![alg],
        Some(alg) => {
            return Err(bad(format!(
                "{alg} is not allowed under the {} profile",
                client.metadata.profile
            )))
        }
        None => policy.signing_algs().to_vec(),
    };
    let kid = outband_protocol::jose::UnverifiedJwt::decode(jwt)
        .ok()
        .and_then(|j| j.kid().map(str::to_owned));
    let keys = client_public_keys(state, client, kid.as_deref()).await.map_err(bad)?;
    let verified = verify_jwt(jwt, &keys, &algs).map_err(|e| bad(e.to_string()))?;
    let claims = verified.claims;
    let issuer = state.settings.issuer.as_str();
    let client_id = client.client_id().as_str();
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if str_claim("iss") != Some(client_id) {
        return Err(bad("iss must be the client_id".into()));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(bad(format!("aud must contain the issuer {issuer}")));
    }
    let now = state.now();
    let time = |name: &str| {
        claims
            .get(name)
            .and_then(crate::auth::numeric_date)
            .ok_or_else(|| bad(format!("{name} is required")))
    };
    let (exp, iat, nbf) = (time("exp")?, time("iat")?, time("nbf")?);
    if exp + LEEWAY < now {
        return Err(bad("it has expired".into()));
    }
    if nbf > now + LEEWAY || iat > now + LEEWAY {
        return Err(bad("it is not valid yet (nbf or iat in the future)".into()));
    }
    if exp - nbf > policy.max_request_object_lifetime() {
        return Err(bad(format!(
            "exp - nbf exceeds {} seconds",
            policy.max_request_object_lifetime()
        )));
    }
    let jti = str_claim("jti").ok_or_else(|| bad("jti is required".into()))?;
    let first = state
        .store
        .use_jti(&format!("ciba_request:{client_id}"), jti, exp + LEEWAY)
        .await?;
    if !first {
        return Err(bad("jti was already used".into()));
    }
    serde_json::from_value(Value::Object(claims)).map_err(|e| bad(format!("malformed claims: {e}")))
}

fn check(client: &ClientRecord, raw: BackchannelAuthenticationRequest) -> Result<CibaParams> {
    let scope = raw
        .scope
        .ok_or_else(|| Error::invalid_request("missing parameter scope"))?;
    if !scope.contains("openid") {
        return Err(Error::invalid_scope("scope must contain openid"));
    }
    if !scope.is_well_formed() {
        return Err(Error::invalid_scope(
            "scope contains characters RFC 6749 §3.3 does not allow",
        ));
    }
    if let Some(extra) = scope
        .iter()
        .find(|s| *s != "openid" && !client.metadata.scope.contains(s))
    {
        return Err(Error::invalid_scope(format!(
            "client is not registered for scope {extra}"
        )));
    }
    let hints = [
        raw.login_hint.map(|h| UserHint::LoginHint(h.into_string())),
        raw.id_token_hint.map(UserHint::IdTokenHint),
        raw.login_hint_token.map(UserHint::LoginHintToken),
    ];
    let mut given = hints.into_iter().flatten();
    let hint = match (given.next(), given.next()) {
        (Some(hint), None) => hint,
        (None, _) => {
            return Err(Error::invalid_request(
                "one of login_hint, id_token_hint or login_hint_token is required",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid_request(
                "give only one of login_hint, id_token_hint or login_hint_token",
            ))
        }
    };
    let binding_message = raw
        .binding_message
        .map(|m| m.into_string())
        .map(check_binding_message)
        .transpose()?;
    let requested_expiry = raw.requested_expiry.map(|v| positive_integer(&v)).transpose()?;
    let authorization_details = raw
        .authorization_details
        .map(|details| {
            let details = crate::rar::parse(details)?;
            crate::rar::check(&details, client.metadata.authorization_details_types.as_deref())?;
            Ok::<_, Error>(details)
        })
        .transpose()?;
    if binding_message.is_none()
        && authorization_details.is_none()
        && Policy::of(client.metadata.profile).requires_ciba_binding_message()
    {
        return Err(Error::invalid_request(format!(
            "the {} profile needs a binding_message when the request has no authorization_details",
            client.metadata.profile
        )));
    }
    let grant_management =
        crate::grant_management::parse(raw.grant_management_action.as_deref(), raw.grant_id.as_deref(), client)?;
    let mode = delivery_mode(client)?;
    let token = raw.client_notification_token;
    match &token {
        None if matches!(mode, DeliveryMode::Ping | DeliveryMode::Push) => {
            return Err(Error::invalid_request(
                "client_notification_token is required in ping and push mode",
            ))
        }
        None => {}
        Some(t) => check_notification_token(t.secret())?,
    }
    Ok(CibaParams {
        scope,
        hint,
        binding_message,
        user_code: raw.user_code,
        requested_expiry,
        acr_values: raw.acr_values,
        authorization_details,
        client_notification_token: token,
        grant_management,
    })
}

/// The binding message policy: at most [`MAX_BINDING_MESSAGE`] characters after
/// trimming, no control characters (it is shown verbatim on two screens).
fn check_binding_message(message: String) -> Result<String> {
    let trimmed = message.trim();
    let bad = |why: &str| Error::new(ErrorCode::InvalidBindingMessage, why.to_owned());
    if trimmed.is_empty() {
        return Err(bad("binding_message is empty"));
    }
    if trimmed.chars().count() > MAX_BINDING_MESSAGE {
        return Err(bad("binding_message is longer than 64 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(bad("binding_message contains control characters"));
    }
    Ok(trimmed.to_owned())
}

/// Longest `client_notification_token`, in characters (CIBA Core §7.1).
const MAX_NOTIFICATION_TOKEN: usize = 1024;

/// CIBA Core §7.1: at most [`MAX_NOTIFICATION_TOKEN`] characters of
/// [RFC 6750 §2.1](https://www.rfc-editor.org/rfc/rfc6750#section-2.1) `b64token`,
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`, the only
/// tokens that fit in the `Authorization: Bearer` header of the notification.
fn check_notification_token(token: &str) -> Result<()> {
    if token.len() > MAX_NOTIFICATION_TOKEN {
        return Err(Error::invalid_request(format!(
            "client_notification_token is longer than {MAX_NOTIFICATION_TOKEN} characters"
        )));
    }
    let body = token.trim_end_matches('=');
    let b64token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/');
    if body.is_empty() || !body.chars().all(b64token_char) {
        return Err(Error::invalid_request(
            "client_notification_token must be an RFC 6750 b64token: letters, digits and -._~+/, \
             then optional trailing =",
        ));
    }
    Ok(())
}

fn positive_integer(value: &Value) -> Result<i64> {
    let number = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    };
    number
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid_request("requested_expiry must be a positive integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_message_rules() {
        assert_eq!(
            check_binding_message("  CAFE-7Q2K · EUR 12.50 ".into()).unwrap(),
            "CAFE-7Q2K · EUR 12.50"
        );
        assert!(check_binding_message("x".repeat(65)).is_err());
        assert!(check_binding_message("line\nbreak".into()).is_err());
        assert!(check_binding_message("   ".into()).is_err());
    }

    #[test]
    fn notification_tokens_are_b64tokens() {
        for good in ["abc", "a-b.c_d~e+f/g", "YWJj==", "x=", &"t".repeat(1024)] {
            assert!(check_notification_token(good).is_ok(), "{good}");
        }
        for bad in ["", "=", "==abc", "a b", "a\tb", "tök", "a=b", "a,b", &"t".repeat(1025)] {
            assert!(check_notification_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requested_expiry_accepts_numbers_and_digit_strings() {
        assert_eq!(positive_integer(&serde_json::json!(120)).unwrap(), 120);
        assert_eq!(positive_integer(&serde_json::json!("90")).unwrap(), 90);
        assert!(positive_integer(&serde_json::json!("-1")).is_err());
        assert!(positive_integer(&serde_json::json!("soon")).is_err());
        assert!(positive_integer(&serde_json::json!(0)).is_err());
    }
}
