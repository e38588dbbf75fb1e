//! Signed authorization requests, JAR ([RFC 9101](https://www.rfc-editor.org/rfc/rfc9101)):
//! the `request` parameter by value, at `/authorize` and at `/par`.
//!
//! The object must be signed by one of the client's registered keys with an
//! algorithm its profile allows (never `none`; exactly its
//! `request_object_signing_alg` when it registered one), name the client as `iss` and
//! `client_id`, the issuer in `aud`, and not be used twice (`jti`). `exp` and
//! `nbf`, no more than the profile's limit apart (60 minutes), are required
//! where the profile requires signed request objects (FAPI 1.0 Part 2 §5.2.2
//! items 13 and 17, FAPI 2.0 Message Signing,
//! [`Policy::requires_request_object_exp_and_nbf`]); elsewhere (RFC 9101, OpenID
//! Connect Core §6.1) they are checked when present: expired, or `nbf` in the
//! future, is refused.
//! Only the parameters inside it count (RFC 9101 §6.3); everything beside it
//! but `client_id` is ignored. Any failure is `invalid_request_object`.

use outband_protocol::jose::{verify_jwt, UnverifiedJwt};
use outband_protocol::ErrorCode;
use serde_json::Value;

use crate::auth::client_keys::client_public_keys;
use crate::auth::numeric_date;
use crate::authorize::request::Params;
use crate::error::{Error, Result};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::ClientRecord;

/// Seconds of clock skew tolerated on the object's times.
const LEEWAY: i64 = 30;

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InvalidRequestObject, format!("request object: {why}"))
}

/// The parameters of the signed `jwt` of `client`, checked as the module says.
pub async fn parameters(state: &AppState, client: &ClientRecord, jwt: &str) -> Result<Params> {
    let policy = Policy::of(client.metadata.profile);
    let kid = UnverifiedJwt::decode(jwt).ok().and_then(|j| j.kid().map(str::to_owned));
    let keys = client_public_keys(state, client, kid.as_deref())
        .await
        .map_err(invalid)?;
    // A client that registered request_object_signing_alg signs with that one only.
    let registered = client.metadata.request_object_signing_alg.map(|alg| [alg]);
    let algs = registered.as_ref().map_or(policy.signing_algs(), |alg| alg.as_slice());
    let claims = verify_jwt(jwt, &keys, algs).map_err(invalid)?.claims;
    let client_id = client.client_id().as_str();
    let issuer = state.settings.issuer.as_str();
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("client_id") != Some(client_id) {
        return Err(invalid("iss and client_id must be the client_id"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid(format!("aud must contain the issuer {issuer}")));
    }
    let time = |name: &str| {
        claims
            .get(name)
            .and_then(numeric_date)
            .ok_or_else(|| invalid(format!("{name} is required")))
    };
    // Required where the profile says so (FAPI); otherwise checked when present
    // (RFC 9101 §10.2, OpenID Connect Core §6.1 require neither).
    let required = policy.requires_request_object_exp_and_nbf();
    let checked = |name: &str| {
        if required || claims.contains_key(name) {
            time(name).map(Some)
        } else {
            Ok(None)
        }
    };
    let (exp, nbf) = (checked("exp")?, checked("nbf")?);
    let now = state.now();
    if exp.is_some_and(|exp| exp + LEEWAY < now) {
        return Err(invalid("it has expired"));
    }
    if nbf.is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err(invalid("it is not valid yet (nbf)"));
    }
    if let (Some(exp), Some(nbf)) = (exp, nbf) {
        if exp - nbf > policy.max_request_object_lifetime() {
            return Err(invalid(format!(
                "exp - nbf exceeds {} seconds",
                policy.max_request_object_lifetime()
            )));
        }
    }
    if let Some(jti) = text("jti") {
        let namespace = format!("request_object:{client_id}");
        // Without `exp`, the `jti` is remembered for the longest lifetime a request object may have.
        let forget_at = exp.unwrap_or(now + policy.max_request_object_lifetime()) + LEEWAY;
        if !state.store.use_jti(&namespace, jti, forget_at).await? {
            return Err(invalid("jti was already used"));
        }
    }
    let mut params = Params::new();
    for (name, value) in claims {
        if matches!(name.as_str(), "iss" | "aud" | "exp" | "nbf" | "iat" | "jti") {
            continue;
        }
        if matches!(name.as_str(), "request" | "request_uri") {
            return Err(invalid(format!("{name} must not be inside a request object")));
        }
        let value = match value {
            Value::String(text) => text,
            Value::Null => continue,
            // Numbers (max_age) and JSON (authorization_details) as their text.
            other => other.to_string(),
        };
        params.insert(name, value);
    }
    Ok(params)
}
