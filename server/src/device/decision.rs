//! A device's answer to a request: `POST /device/v1/requests/{id}/decision`
//! with a JWT the device signs with its enrolled key.
//!
//! The JWT binds the answer to exactly what the device showed: `request_hash`
//! is the SHA-256 of the AS-signed request JWT it displayed (binding message,
//! amount, payee: dynamic linking as PSD2 SCA asks). It names the request by its
//! public `request_id`, never by `auth_req_id`: that value is the client's
//! credential for the token endpoint and never leaves the AS towards devices.
//! The verified JWT is kept in the audit log as evidence.

use outband_protocol::jose::{sha256_b64url, verify_jwt, UnverifiedJwt};
use outband_protocol::{ErrorCode, SigningAlg};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::enroll::device_jwk;
use crate::acr::{split, Level};
use crate::auth::dpop::key_for_header;
use crate::ciba::lifecycle;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{CibaDecision, CibaState, DeviceRecord};

/// The `typ` of a decision JWT.
pub const DECISION_JWT_TYPE: &str = "outband-decision+jwt";
/// How far a decision's `iat` may be from our clock, in seconds.
pub const DECISION_IAT_LEEWAY: i64 = 120;
/// The `acr` of an approval made on an enrolled device (unless the request's
/// `acr_values` name another it satisfies, [`crate::acr`]).
pub const DEVICE_ACR: &str = crate::acr::DEVICE;
/// Most `amr` values a decision may carry, and their longest length.
const MAX_AMR: usize = 10;
const MAX_AMR_LEN: usize = 32;
/// Longest `jti` we store.
const MAX_JTI_LEN: usize = 256;

/// `POST /device/v1/requests/{id}/decision` body.
#[derive(Debug, Deserialize)]
pub struct DecisionRequest {
    /// The device-signed decision JWT.
    pub decision_jwt: String,
}

/// `POST /device/v1/requests/{id}/decision` answer.
#[derive(Debug, Serialize)]
pub struct DecisionResponse {
    /// The request.
    pub id: String,
    /// `approved` or `denied`.
    pub state: &'static str,
}

/// What the user chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Approve,
    Deny,
    DenyFraud,
}

impl Choice {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "approve" => Some(Self::Approve),
            "deny" => Some(Self::Deny),
            "deny_fraud" => Some(Self::DenyFraud),
            _ => None,
        }
    }
}

/// The checked claims of a decision JWT.
struct Claims {
    choice: Choice,
    amr: Vec<String>,
    number_match: Option<String>,
}

fn bad(description: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invalid_request(description)
}

/// Verifies the signature with the device's key, accepting only the device's algorithm.
fn verify(device: &DeviceRecord, token: &str) -> Result<Map<String, Value>> {
    let unverified = UnverifiedJwt::decode(token).map_err(|_| bad("decision_jwt is not a JWT"))?;
    if unverified.typ() != Some(DECISION_JWT_TYPE) {
        return Err(bad("decision_jwt: typ must be outband-decision+jwt"));
    }
    let alg = SigningAlg::parse(&device.alg).ok_or_else(|| Error::internal("a device has an unknown alg"))?;
    let jwk = device_jwk(device).ok_or_else(|| Error::internal("a device has an unreadable key"))?;
    let key = key_for_header(&jwk, unverified.kid());
    let verified = verify_jwt(token, &[key], &[alg])
        .map_err(|_| bad(format!("decision_jwt must be signed {alg} by this device's key")))?;
    Ok(verified.claims)
}

/// Checks the claims against the request and the clock (everything but `jti`).
fn check_claims(claims: &Map<String, Value>, request_id: &str, request_jwt: &str, now: i64) -> Result<Claims> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let choice = text("decision")
        .and_then(Choice::parse)
        .ok_or_else(|| bad("decision must be approve, deny or deny_fraud"))?;
    if text("request_id") != Some(request_id) {
        return Err(bad("request_id does not match the request in the URL"));
    }
    if text("request_hash") != Some(sha256_b64url(request_jwt.as_bytes()).as_str()) {
        return Err(bad("request_hash does not match what was sent"));
    }
    let iat = claims
        .get("iat")
        .and_then(crate::auth::numeric_date)
        .ok_or_else(|| bad("iat is missing"))?;
    if (iat - now).abs() > DECISION_IAT_LEEWAY {
        return Err(bad("iat is too far from the server time"));
    }
    let amr = claims
        .get("amr")
        .and_then(Value::as_array)
        .filter(|values| values.len() <= MAX_AMR)
        .and_then(|values| {
            values
                .iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| !s.is_empty() && s.len() <= MAX_AMR_LEN)
                        .map(str::to_owned)
                })
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| bad(format!("amr must be an array of at most {MAX_AMR} short strings")))?;
    let number_match = match claims.get("number_match") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(bad("number_match must be a string")),
    };
    Ok(Claims {
        choice,
        amr,
        number_match,
    })
}

/// Verifies and applies a device's decision on request `id`, exactly once.
pub async fn apply(state: &AppState, device: &DeviceRecord, id: &str, decision_jwt: &str) -> Result<DecisionResponse> {
    let not_found = || Error::new(ErrorCode::NotFound, "no such request");
    let request = state
        .store
        .ciba_request(id)
        .await?
        .filter(|request| request.subject == device.subject)
        .ok_or_else(not_found)?;
    let claims = verify(device, decision_jwt)?;
    let now = state.now();
    let checked = check_claims(&claims, &request.id, &request.request_jwt, now)?;
    let approve = checked.choice == Choice::Approve;
    lifecycle::check_number_match(&request, approve, checked.number_match.as_deref())?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or_else(|| bad("jti is missing or too long"))?;
    let iat = claims.get("iat").and_then(crate::auth::numeric_date).unwrap_or(now);
    if !state
        .store
        .use_jti(&format!("decision:{}", device.id), jti, iat + 2 * DECISION_IAT_LEEWAY)
        .await?
    {
        return Err(bad("decision_jwt was already used (jti)"));
    }
    let decision = CibaDecision {
        approve,
        device_id: Some(device.id.clone()),
        amr: Some(json!(checked.amr).to_string()),
        // CIBA Core §7.1: the first requested acr the device satisfies, else its own.
        acr: approve.then(|| Level::Device.choose(split(request.acr_values.as_deref())).to_owned()),
        deny_reason: match checked.choice {
            Choice::Approve => None,
            Choice::Deny => Some("denied".to_owned()),
            Choice::DenyFraud => Some("fraud".to_owned()),
        },
    };
    let decided = lifecycle::decide(state, &request.id, &decision).await?;
    crate::observability::decision_latency(decided.decided_at.unwrap_or(now) - decided.created_at);
    lifecycle::audit(
        state,
        "device.decision",
        &decided,
        json!({
            "device_id": device.id,
            "decision": claims.get("decision"),
            "amr": checked.amr,
            "decision_jwt": decision_jwt,
        }),
    )
    .await;
    Ok(DecisionResponse {
        id: decided.id,
        state: if decided.state == CibaState::Denied {
            "denied"
        } else {
            "approved"
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn claims_are_checked_against_the_request() {
        let jwt = "header.payload.sig";
        let hash = sha256_b64url(jwt.as_bytes());
        let good = json!({"decision": "deny_fraud", "request_id": "r1", "request_hash": hash, "iat": 1000, "amr": ["hwk", "pin"]});
        let checked = check_claims(&claims(good.clone()), "r1", jwt, 1100).unwrap();
        assert_eq!(checked.choice, Choice::DenyFraud);
        assert_eq!(checked.amr, ["hwk", "pin"]);
        let with = |name: &str, value: Value| {
            let mut c = claims(good.clone());
            c.insert(name.into(), value);
            check_claims(&c, "r1", jwt, 1100).map(|_| ()).unwrap_err().to_string()
        };
        assert!(with("decision", json!("maybe")).contains("decision"));
        assert!(with("request_id", json!("r2")).contains("request_id"));
        assert!(with("request_hash", json!("x")).contains("does not match what was sent"));
        assert!(with("iat", json!(1300)).contains("iat"));
        assert!(with("amr", json!("pin")).contains("amr"));
        assert!(with("amr", json!([1])).contains("amr"));
        assert!(with("number_match", json!({})).contains("number_match"));
        let mut numbered = claims(good);
        numbered.insert("number_match".into(), json!(42));
        assert_eq!(
            check_claims(&numbered, "r1", jwt, 1000)
                .unwrap()
                .number_match
                .as_deref(),
            Some("42")
        );
    }
}
