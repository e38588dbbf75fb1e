use super::*;
use serde_json::json;

fn claims() -> Map<String, Value> {
    json!({"iss": "https://as.example", "sub": "alice"})
        .as_object()
        .unwrap()
        .clone()
}

fn key(alg: SigningAlg) -> SigningKey {
    SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap()
}

#[test]
fn sign_and_verify_every_alg() {
    for alg in SigningAlg::ALL {
        let key = key(alg);
        let token = key.sign(Some("JWT"), &claims()).unwrap();
        let verified = verify_jwt(&token, &[key.public_jwk().clone()], &[alg]).unwrap();
        assert_eq!(verified.claims["sub"], "alice");
        assert_eq!(verified.alg, alg);
        assert_eq!(verified.header["kid"], key.kid());
        assert!(!is_private_jwk(key.public_jwk()));
    }
}

#[test]
fn verify_refuses_algorithms_not_allowed() {
    let key = key(SigningAlg::RS256);
    let token = key.sign(None, &claims()).unwrap();
    let err = verify_jwt(
        &token,
        &[key.public_jwk().clone()],
        &[SigningAlg::PS256, SigningAlg::ES256],
    )
    .unwrap_err();
    assert!(matches!(err, JoseError::AlgorithmNotAllowed(a) if a == "RS256"));
}

#[test]
fn verify_refuses_alg_none() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice"}"#);
    let token = format!("{header}.{body}.");
    let err = verify_jwt(&token, &[], &SigningAlg::ALL).unwrap_err();
    assert!(matches!(err, JoseError::AlgorithmNotAllowed(a) if a == "none"));
}

#[test]
fn verify_refuses_a_key_it_does_not_know() {
    let signer = key(SigningAlg::ES256);
    let other = key(SigningAlg::ES256);
    let token = signer.sign(None, &claims()).unwrap();
    let mut other_public = other.public_jwk().clone();
    other_public.set_key_id(signer.kid());
    assert!(matches!(
        verify_jwt(&token, &[other_public], &[SigningAlg::ES256]),
        Err(JoseError::BadSignature)
    ));
}

/// The public JWK of `key` without its `kid`.
fn without_kid(key: &SigningKey) -> Jwk {
    let mut map: Map<String, Value> = key.public_jwk().as_ref().clone();
    map.remove("kid");
    Jwk::from_map(map).unwrap()
}

#[test]
fn a_kid_is_a_hint_keys_without_one_are_tried_when_none_has_it() {
    // RFC 7515 §4.1.4: a registered key without `kid` verifies a JWS naming one.
    let signer = key(SigningAlg::ES256);
    let token = signer.sign(None, &claims()).unwrap();
    assert!(UnverifiedJwt::decode(&token).unwrap().kid().is_some());
    let other = without_kid(&key(SigningAlg::ES256));
    let verified = verify_jwt(&token, &[other.clone(), without_kid(&signer)], &[SigningAlg::ES256]).unwrap();
    assert_eq!(verified.claims["sub"], "alice");
    // A key with another `kid` is never tried.
    let mut renamed = signer.public_jwk().clone();
    renamed.set_key_id("another");
    assert!(matches!(
        verify_jwt(&token, &[renamed], &[SigningAlg::ES256]),
        Err(JoseError::BadSignature)
    ));
    // When a key carries the `kid`, keys without one are not tried.
    let mut decoy = other;
    decoy.set_key_id(signer.kid());
    assert!(matches!(
        verify_jwt(&token, &[decoy, without_kid(&signer)], &[SigningAlg::ES256]),
        Err(JoseError::BadSignature)
    ));
    // Keys without `kid` must still fit the algorithm.
    assert!(verify_jwt(&token, &[without_kid(&key(SigningAlg::PS256))], &[SigningAlg::ES256]).is_err());
}

#[test]
fn tampered_payload_fails() {
    let key = key(SigningAlg::ES256);
    let token = key.sign(None, &claims()).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://as.example","sub":"mallory"}"#);
    parts[1] = &forged;
    assert!(verify_jwt(&parts.join("."), &[key.public_jwk().clone()], &[SigningAlg::ES256]).is_err());
}

#[test]
fn malformed_tokens_are_errors_not_panics() {
    for junk in ["", ".", "..", "a.b.c", "a.b.c.d", "eyJ.eyJ.", "e30.e30.e30"] {
        assert!(verify_jwt(junk, &[], &SigningAlg::ALL).is_err(), "{junk}");
    }
}

#[test]
fn rfc7638_example_thumbprint() {
    // The example key of RFC 7638 §3.1.
    let jwk = parse_jwk(&json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(
        jwk_thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn half_hash_matches_oidc_example() {
    // OpenID Connect Core A.3: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
    assert_eq!(
        half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_strings_never_panic(token in ".{0,200}") {
        let _ = verify_jwt(&token, &[], &SigningAlg::ALL);
        let _ = UnverifiedJwt::decode(&token);
    }
}
