//! Software statements ([RFC 7591 §2.3](https://www.rfc-editor.org/rfc/rfc7591#section-2.3)):
//! a JWT in which a directory (UK Open Banking, Open Finance Brasil, a bank's own
//! PKI) asserts a client's metadata. Its claims take precedence over the body of
//! the registration request.

use outband_protocol::jose::{verify_jwt, JoseError, Jwk, UnverifiedJwt};
use outband_protocol::{ErrorCode, SigningAlg};
use serde_json::{Map, Value};

use crate::error::Error;

/// Seconds of clock skew tolerated on `iat` and `exp`.
const LEEWAY: i64 = 30;

/// JWT claims that describe the statement itself, not the client.
const JWT_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// A verified software statement.
#[derive(Clone, Debug)]
pub struct SoftwareStatement {
    /// The JWT as received.
    pub jwt: String,
    /// Its claims.
    pub claims: Map<String, Value>,
}

impl SoftwareStatement {
    /// The claims that are client metadata (the JWT's own claims removed).
    pub fn metadata(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.claims
            .iter()
            .filter(|(name, _)| !JWT_CLAIMS.contains(&name.as_str()))
    }
}

fn invalid(why: impl Into<String>) -> Error {
    Error::new(
        ErrorCode::InvalidSoftwareStatement,
        format!("software_statement: {}", why.into()),
    )
}

/// Verifies `jwt` against the trusted directory keys: a statement that is not
/// a well-formed, current JWT is `invalid_software_statement`; one no trusted
/// key signed is `unapproved_software_statement`.
pub fn verify(jwt: &str, keys: &[Jwk], now: i64) -> Result<SoftwareStatement, Error> {
    let unapproved = |why: &str| {
        Error::new(
            ErrorCode::UnapprovedSoftwareStatement,
            format!("software_statement: {why}"),
        )
    };
    if keys.is_empty() {
        return Err(unapproved("this server trusts no software statement issuer"));
    }
    let verified = match verify_jwt(jwt, keys, &SigningAlg::ALL) {
        Ok(verified) => verified,
        Err(JoseError::BadSignature) => return Err(unapproved("not signed by a trusted directory key")),
        Err(err) => return Err(invalid(err.to_string())),
    };
    let claims = verified.claims;
    if claims.get("iss").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid("iss (the directory) is required"));
    }
    let time = |name: &str| {
        claims
            .get(name)
            .map(|v| crate::auth::numeric_date(v).ok_or_else(|| invalid(format!("{name} must be a number"))))
    };
    let iat = time("iat").ok_or_else(|| invalid("iat is required"))??;
    if iat > now + LEEWAY {
        return Err(invalid("iat is in the future"));
    }
    if let Some(exp) = time("exp").transpose()? {
        if exp + LEEWAY < now {
            return Err(invalid("it has expired"));
        }
    }
    if let Some(nbf) = time("nbf").transpose()? {
        if nbf > now + LEEWAY {
            return Err(invalid("it is not valid yet (nbf)"));
        }
    }
    Ok(SoftwareStatement {
        jwt: jwt.to_owned(),
        claims,
    })
}

/// A statement stored at registration, read back for an update: it was
/// verified then, and its claims still take precedence.
pub fn stored(jwt: Option<String>, claims: Option<&str>) -> Option<SoftwareStatement> {
    let claims = serde_json::from_str::<Map<String, Value>>(claims?).ok()?;
    Some(SoftwareStatement { jwt: jwt?, claims })
}

/// Reads the `software_statement` member of a request: `None` when absent.
pub fn member(value: Option<Value>, keys: &[Jwk], now: i64) -> Result<Option<SoftwareStatement>, Error> {
    match value {
        None => Ok(None),
        Some(Value::String(jwt)) => {
            UnverifiedJwt::decode(&jwt).map_err(|e| invalid(e.to_string()))?;
            verify(&jwt, keys, now).map(Some)
        }
        Some(_) => Err(invalid("must be a JWT (a string)")),
    }
}
