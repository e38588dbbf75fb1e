//! Enrolling an authenticator: an operator (or, later, the account page) makes a
//! one-time activation code for a user ([`invite`]); the app posts it with its
//! fresh public key ([`enroll`]) and gets a device id and a long-lived device
//! credential back.
//!
//! Codes are 28 Crockford base32 characters (140 random bits), shown in groups
//! of four so a person can type one; [`normalize_code`] forgives dashes,
//! spaces, lower case and the look-alikes `O`/`I`/`L`. Only their SHA-256 is
//! stored, and using one is a single conditional update.

use outband_protocol::jose::{is_private_jwk, jwk_thumbprint, parse_jwk, Jwk, SigningKey};
use outband_protocol::{ActivationCode, SigningAlg, Subject};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::DeviceCredential;
use crate::error::{Error, Result};
use crate::keys::KeySet;
use crate::state::AppState;
use crate::store::{ActivationCodeRecord, AuditEvent, DeviceRecord, Store, StoreError};

/// Lifetime of an activation code when none is given, in seconds.
pub const DEFAULT_CODE_TTL: i64 = 600;
/// Shortest lifetime an operator may give a code.
pub const MIN_CODE_TTL: i64 = 60;
/// Longest lifetime an operator may give a code (a day).
pub const MAX_CODE_TTL: i64 = 86_400;
/// Characters in a code.
const CODE_LEN: usize = 28;
/// Crockford's base32 alphabet: no I, L, O or U.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Longest device name.
const MAX_NAME_LEN: usize = 100;
/// The one answer for unknown, used and expired codes (no oracle).
const BAD_CODE: &str = "the activation code is not valid (unknown, used or expired)";

/// A fresh activation code (140 random bits).
pub fn new_code() -> ActivationCode {
    let mut rng = rand::thread_rng();
    let code: String = (0..CODE_LEN)
        .filter_map(|_| CODE_ALPHABET.choose(&mut rng).map(|&b| char::from(b)))
        .collect();
    ActivationCode::new(code)
}

/// A code as typed or scanned, in the form that was hashed.
pub fn normalize_code(code: &ActivationCode) -> ActivationCode {
    let canonical: String = code
        .secret()
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    ActivationCode::new(canonical)
}

/// `ABCD-EFGH-...`: a code as shown to a person.
pub fn grouped(code: &ActivationCode) -> String {
    let chars: Vec<char> = code.secret().chars().collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// An invitation to enroll a device.
pub struct Invitation {
    /// The code (shown once; only its hash is stored).
    pub code: ActivationCode,
    /// `outband://enroll?issuer=..&code=..&kid=..&jkt=..`.
    pub link: String,
    /// When the code stops working (unix seconds).
    pub expires_at: i64,
}

/// Makes and stores an activation code for `subject`, valid for `ttl` seconds.
pub async fn invite(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    subject: &Subject,
    ttl: i64,
    now: i64,
) -> Result<Invitation> {
    if !(MIN_CODE_TTL..=MAX_CODE_TTL).contains(&ttl) {
        return Err(Error::invalid_request(format!(
            "the code lifetime must be between {MIN_CODE_TTL} and {MAX_CODE_TTL} seconds"
        )));
    }
    let signer = keys
        .signer(SigningAlg::ES256)
        .ok_or_else(|| Error::internal("no ES256 signing key"))?;
    let code = new_code();
    let record = ActivationCodeRecord {
        code_hash: code.hash(),
        subject: subject.clone(),
        created_at: now,
        expires_at: now + ttl,
        used_at: None,
    };
    store.insert_activation_code(&record).await?;
    let link = enrollment_link(issuer, &code, &signer)?;
    Ok(Invitation {
        code,
        link,
        expires_at: record.expires_at,
    })
}

/// The `outband://enroll` link. `kid` and `jkt` name the AS's ES256 key, so the
/// app can refuse an impostor AS: the key `kid` in `{issuer}/jwks` must have
/// the thumbprint `jkt`, and request JWTs must verify with it.
pub fn enrollment_link(issuer: &str, code: &ActivationCode, signer: &SigningKey) -> Result<String> {
    let jkt = jwk_thumbprint(signer.public_jwk()).map_err(|e| Error::internal(e.to_string()))?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("issuer", issuer)
        .append_pair("code", code.secret())
        .append_pair("kid", signer.kid())
        .append_pair("jkt", &jkt)
        .finish();
    Ok(format!("outband://enroll?{query}"))
}

/// `POST /device/v1/enroll` body.
#[derive(Deserialize)]
pub struct EnrollRequest {
    /// The activation code, as typed or scanned.
    pub activation_code: ActivationCode,
    /// The device's fresh public key: ES256 (EC P-256) or EdDSA (Ed25519).
    pub public_jwk: Value,
    /// A name for the device shown in listings ("Alice's laptop").
    pub name: String,
}

/// `POST /device/v1/enroll` answer (201).
#[derive(Serialize)]
pub struct EnrollResponse {
    /// The new device's id.
    pub device_id: String,
    /// The long-lived device credential; only its hash is stored.
    pub device_credential: DeviceCredential,
    /// The user's subject.
    pub subject: Subject,
    /// The user's login name.
    pub username: String,
    /// The issuer the device enrolled with.
    pub issuer: String,
}

/// A device key checked for enrollment.
struct DeviceKey {
    alg: SigningAlg,
    /// The public JWK with only the members RFC 7638 hashes.
    jwk: Map<String, Value>,
    jkt: String,
}

/// Checks the device's key: public, ES256 on P-256 or EdDSA on Ed25519, usable.
fn check_key(value: &Value) -> Result<DeviceKey> {
    let bad = |why: &str| Error::invalid_request(format!("public_jwk: {why}"));
    let jwk = parse_jwk(value).map_err(|_| bad("not a JWK"))?;
    if is_private_jwk(&jwk) {
        return Err(bad("must be a public key; never send the private key"));
    }
    let alg = match (jwk.key_type(), jwk.curve()) {
        ("EC", Some("P-256")) => SigningAlg::ES256,
        ("OKP", Some("Ed25519")) => SigningAlg::EdDSA,
        _ => return Err(bad("must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key")),
    };
    if jwk.algorithm().is_some_and(|a| a != alg.as_str()) {
        return Err(bad("alg does not fit the key type"));
    }
    if jwk.key_use().is_some_and(|u| u != "sig") {
        return Err(bad("use must be sig"));
    }
    let usable = match alg {
        SigningAlg::EdDSA => josekit::jws::EdDSA.verifier_from_jwk(&jwk).is_ok(),
        _ => josekit::jws::ES256.verifier_from_jwk(&jwk).is_ok(),
    };
    if !usable {
        return Err(bad("is not a valid key"));
    }
    let jkt = jwk_thumbprint(&jwk).map_err(|_| bad("has no thumbprint"))?;
    let members: &[&str] = if alg == SigningAlg::ES256 {
        &["kty", "crv", "x", "y"]
    } else {
        &["kty", "crv", "x"]
    };
    let jwk = members
        .iter()
        .filter_map(|m| Some(((*m).to_owned(), jwk.parameter(m)?.clone())))
        .collect();
    Ok(DeviceKey { alg, jwk, jkt })
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid_request(format!(
            "name must be 1 to {MAX_NAME_LEN} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// Enrolls a device: checks the key and name, uses the code (once), stores the
/// device. A key that is already enrolled is refused after the code was used, so
/// such a device needs a new code (a correct app never reuses a key).
pub async fn enroll(state: &AppState, request: EnrollRequest) -> Result<EnrollResponse> {
    let key = check_key(&request.public_jwk)?;
    let name = check_name(&request.name)?;
    let now = state.now();
    let code = normalize_code(&request.activation_code);
    let subject = state
        .store
        .consume_activation_code(&code.hash(), now)
        .await?
        .ok_or_else(|| Error::invalid_grant(BAD_CODE))?;
    let user = state
        .store
        .user(&subject)
        .await?
        .filter(|user| !user.locked)
        .ok_or_else(|| Error::invalid_grant(BAD_CODE))?;
    let credential = DeviceCredential::generate();
    let device = DeviceRecord {
        id: uuid::Uuid::new_v4().to_string(),
        subject: subject.clone(),
        name,
        alg: key.alg.as_str().to_owned(),
        public_jwk: Value::Object(key.jwk).to_string(),
        jkt: key.jkt,
        credential_hash: credential.hash(),
        created_at: now,
        last_seen_at: None,
        revoked_at: None,
    };
    match state.store.insert_device(&device).await {
        Ok(()) => {}
        Err(StoreError::Conflict(what)) if what.contains("jkt") => {
            return Err(Error::invalid_request("public_jwk: this key is already enrolled"));
        }
        Err(err) => return Err(err.into()),
    }
    audit(
        state,
        "device.enrolled",
        &device,
        json!({ "device_id": device.id, "name": device.name, "alg": device.alg, "jkt": device.jkt }),
    )
    .await;
    Ok(EnrollResponse {
        device_id: device.id,
        device_credential: credential,
        subject,
        username: user.username,
        issuer: state.settings.issuer.clone(),
    })
}

/// Records an audit event about a device; a failure to write it is logged, never fatal.
pub async fn audit(state: &AppState, event: &str, device: &DeviceRecord, detail: Value) {
    let entry = AuditEvent {
        id: 0,
        at: state.now(),
        event: event.to_owned(),
        client_id: None,
        subject: Some(device.subject.to_string()),
        request_id: None,
        detail,
    };
    if let Err(err) = state.store.append_audit(&entry).await {
        tracing::warn!(error = %err, "could not write the audit log");
    }
}

/// The device's public key as stored, for verifying its signatures.
pub fn device_jwk(device: &DeviceRecord) -> Option<Jwk> {
    serde_json::from_str::<Value>(&device.public_jwk)
        .ok()
        .and_then(|value| parse_jwk(&value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_long_typeable_and_forgiving() {
        let code = new_code();
        assert_eq!(code.secret().len(), CODE_LEN);
        assert!(code.secret().bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert_ne!(new_code(), code);
        let shown = grouped(&code);
        assert_eq!(shown.len(), CODE_LEN + CODE_LEN / 4 - 1);
        assert_eq!(normalize_code(&ActivationCode::new(shown.to_lowercase())), code);
        assert_eq!(normalize_code(&ActivationCode::new("ab0o-1il x")).secret(), "AB00111X");
    }

    #[test]
    fn keys_must_be_public_p256_or_ed25519() {
        let es = SigningAlg::ES256.generate_private_jwk().unwrap();
        assert!(check_key(&Value::Object(es.as_ref().clone())).is_err(), "private");
        let public = outband_protocol::jose::public_jwk(&es).unwrap();
        let key = check_key(&Value::Object(public.as_ref().clone())).unwrap();
        assert_eq!(key.alg, SigningAlg::ES256);
        assert_eq!(key.jkt, jwk_thumbprint(&public).unwrap());
        assert_eq!(key.jwk.len(), 4);
        let ed = outband_protocol::jose::public_jwk(&SigningAlg::EdDSA.generate_private_jwk().unwrap()).unwrap();
        assert_eq!(
            check_key(&Value::Object(ed.as_ref().clone())).unwrap().alg,
            SigningAlg::EdDSA
        );
        let rsa = outband_protocol::jose::public_jwk(&SigningAlg::PS256.generate_private_jwk().unwrap()).unwrap();
        assert!(check_key(&Value::Object(rsa.as_ref().clone())).is_err(), "RSA");
        let bad_point = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
        assert!(check_key(&bad_point).is_err());
        assert!(check_key(&json!("a string")).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  Alice's laptop ").unwrap(), "Alice's laptop");
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
    }
}
