//! Verifying the AS-signed request JWT (`typ: outband-ciba-request+jwt`)
//! before anything is shown: signature against the issuer's JWKS (ES256 only),
//! `iss`, `aud` = `urn:outband:device`, `sub` = the account's subject, `typ`,
//! `exp` in the future. Only then does it become a [`VerifiedRequest`].

use outband_protocol::jose::{verify_jwt, Jwk, SigningAlg, UnverifiedJwt};
use serde::Serialize;
use serde_json::Value;

use crate::{Account, AccountId, Error};

/// The `typ` of request JWTs.
pub(crate) const REQUEST_JWT_TYPE: &str = "outband-ciba-request+jwt";
/// Their `aud`.
pub(crate) const DEVICE_AUDIENCE: &str = "urn:outband:device";
/// Longest request id we accept (it goes into a URL path).
const MAX_ID_LEN: usize = 128;

/// A request whose JWT verified: what the user is asked to approve.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedRequest {
    /// The request's public id (`jti`).
    pub id: String,
    /// The account it is for.
    pub account: AccountId,
    /// The exact JWT that was verified (its hash goes into the decision).
    #[serde(skip)]
    pub request_jwt: String,
    /// When it was made (unix seconds).
    pub issued_at: i64,
    /// When it expires (unix seconds).
    pub expires_at: i64,
    /// Who asks.
    pub client_id: String,
    /// The client's display name.
    pub client_name: Option<String>,
    /// The code the terminal shows; show it prominently.
    pub binding_message: Option<String>,
    /// The scope asked for.
    pub scope: Option<String>,
    /// The ACR values asked for.
    pub acr_values: Option<String>,
    /// Whether approving needs the number the terminal shows.
    pub number_matching: bool,
    /// The RAR details as sent.
    pub authorization_details: Option<Value>,
    /// From the first `payment_initiation` entry of `authorization_details`.
    pub payment: Option<PaymentSummary>,
}

/// The payment a request asks to approve.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct PaymentSummary {
    /// `instructedAmount.amount`, e.g. `12.50`.
    pub amount: String,
    /// `instructedAmount.currency`, e.g. `EUR`.
    pub currency: String,
    /// `creditorName`.
    pub creditor_name: Option<String>,
    /// `creditorAccount.iban`.
    pub creditor_iban: Option<String>,
    /// `remittanceInformationUnstructured` (or `remittanceInformation`).
    pub remittance: Option<String>,
}

impl PaymentSummary {
    /// "EUR 12.50".
    pub fn display_amount(&self) -> String {
        format!("{} {}", self.currency, self.amount)
    }

    /// The first `payment_initiation` entry of RAR `details`.
    pub(crate) fn from_details(details: &Value) -> Option<Self> {
        let entry = details
            .as_array()?
            .iter()
            .find(|d| d.get("type").and_then(Value::as_str) == Some("payment_initiation"))?;
        let text = |v: Option<&Value>| match v? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let instructed = entry.get("instructedAmount")?;
        Some(Self {
            amount: text(instructed.get("amount"))?,
            currency: text(instructed.get("currency"))?,
            creditor_name: text(entry.get("creditorName")),
            creditor_iban: text(entry.get("creditorAccount").and_then(|a| a.get("iban"))),
            remittance: text(
                entry
                    .get("remittanceInformationUnstructured")
                    .or_else(|| entry.get("remittanceInformation")),
            ),
        })
    }
}

fn bad(why: impl Into<String>) -> Error {
    Error::Verification(why.into())
}

/// The `kid` of a JWT's header, if any (to know whether the JWKS must be refetched).
pub(crate) fn kid_of(jwt: &str) -> Option<String> {
    UnverifiedJwt::decode(jwt).ok()?.kid().map(str::to_owned)
}

/// Verifies `jwt` for `account` against the issuer's `keys` at time `now`.
pub(crate) fn verify(jwt: &str, keys: &[Jwk], account: &Account, now: i64) -> Result<VerifiedRequest, Error> {
    let unverified = UnverifiedJwt::decode(jwt).map_err(|e| bad(format!("not a JWT ({e})")))?;
    if unverified.typ() != Some(REQUEST_JWT_TYPE) {
        return Err(bad(format!("typ must be {REQUEST_JWT_TYPE}")));
    }
    let verified = verify_jwt(jwt, keys, &[SigningAlg::ES256])
        .map_err(|e| bad(format!("the signature is not the issuer's ({e})")))?;
    let claims = verified.claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let iss = text("iss").ok_or_else(|| bad("no iss"))?;
    if iss.trim_end_matches('/') != account.issuer.as_str().trim_end_matches('/') {
        return Err(bad(format!("iss {iss} is not the issuer {}", account.issuer)));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == DEVICE_AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(DEVICE_AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return Err(bad(format!("aud must be {DEVICE_AUDIENCE}")));
    }
    if text("sub").as_deref() != Some(account.subject.as_str()) {
        return Err(bad("sub is not this account's user"));
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let expires_at = number("exp").ok_or_else(|| bad("no exp"))?;
    if expires_at <= now {
        return Err(bad("the request has expired"));
    }
    let id = text("jti").ok_or_else(|| bad("no jti"))?;
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad("the request id is malformed"));
    }
    let client_id = text("client_id").ok_or_else(|| bad("no client_id"))?;
    let authorization_details = claims.get("authorization_details").filter(|v| !v.is_null()).cloned();
    Ok(VerifiedRequest {
        payment: authorization_details.as_ref().and_then(PaymentSummary::from_details),
        id,
        account: account.id.clone(),
        request_jwt: jwt.to_owned(),
        issued_at: number("iat").unwrap_or(now),
        expires_at,
        client_id,
        client_name: text("client_name"),
        binding_message: text("binding_message"),
        scope: text("scope"),
        acr_values: text("acr_values"),
        number_matching: claims.get("number_matching").and_then(Value::as_bool).unwrap_or(false),
        authorization_details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::jose::SigningKey;
    use serde_json::{json, Map};

    fn account() -> Account {
        Account {
            id: AccountId("d1".into()),
            issuer: url::Url::parse("https://as.example.com").unwrap(),
            username: "alice".into(),
            subject: "sub-alice".into(),
            device_name: "laptop".into(),
            alg: crate::KeyAlg::Es256,
            enrolled_at: 0,
            key_storage: crate::KeyStorage::File,
            revoked: false,
        }
    }

    fn claims_for(overrides: Value) -> Map<String, Value> {
        let mut claims = json!({
            "iss": "https://as.example.com", "aud": DEVICE_AUDIENCE, "sub": "sub-alice", "jti": "r1",
            "iat": 1000, "exp": 1120, "client_id": "pos", "client_name": "Corner Café",
            "binding_message": "CAFE-7Q2K", "number_matching": false,
            "authorization_details": [{"type": "payment_initiation",
                "instructedAmount": {"amount": "12.50", "currency": "EUR"}, "creditorName": "Corner Café",
                "creditorAccount": {"iban": "DE89370400440532013000"}, "remittanceInformationUnstructured": "R1"}],
        });
        for (k, v) in overrides.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims.as_object().unwrap().clone()
    }

    #[test]
    fn requests_verify_only_when_everything_fits() {
        let key = SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256)
            .unwrap();
        let keys = [key.public_jwk().clone()];
        let jwt = key.sign(Some(REQUEST_JWT_TYPE), &claims_for(json!({}))).unwrap();
        let request = verify(&jwt, &keys, &account(), 1000).unwrap();
        assert_eq!(request.binding_message.as_deref(), Some("CAFE-7Q2K"));
        let payment = request.payment.unwrap();
        assert_eq!(payment.display_amount(), "EUR 12.50");
        assert_eq!(payment.creditor_iban.as_deref(), Some("DE89370400440532013000"));
        assert_eq!(payment.remittance.as_deref(), Some("R1"));
        assert!(matches!(
            verify(&jwt, &keys, &account(), 1120),
            Err(Error::Verification(_))
        ));
        for bad_claims in [
            json!({"iss": "https://evil.example.com"}),
            json!({"aud": "someone-else"}),
            json!({"sub": "sub-bob"}),
            json!({"jti": "../x"}),
        ] {
            let jwt = key
                .sign(Some(REQUEST_JWT_TYPE), &claims_for(bad_claims.clone()))
                .unwrap();
            assert!(verify(&jwt, &keys, &account(), 1000).is_err(), "{bad_claims}");
        }
        let wrong_typ = key.sign(Some("JWT"), &claims_for(json!({}))).unwrap();
        assert!(verify(&wrong_typ, &keys, &account(), 1000).is_err());
        let other = SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256)
            .unwrap();
        assert!(verify(&jwt, &[other.public_jwk().clone()], &account(), 1000).is_err());
    }
}
