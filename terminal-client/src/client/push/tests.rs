use outband_protocol::jose::{half_hash_for, SigningKey};
use outband_protocol::{AccessToken, RefreshToken, TokenType};
use serde_json::json;

use super::*;

const ISSUER: &str = "https://as.example";
const NOW: i64 = 1_800_000_000;

fn key(alg: SigningAlg) -> SigningKey {
    SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap()
}

fn tokens(id_token: String, refresh: Option<&str>) -> TokenResponse {
    TokenResponse {
        access_token: AccessToken::new("at-123"),
        token_type: TokenType::Bearer,
        expires_in: Some(300),
        refresh_token: refresh.map(RefreshToken::new),
        scope: None,
        id_token: Some(id_token),
        authorization_details: None,
        grant_id: None,
    }
}

fn id_token(key: &SigningKey, overrides: Value) -> String {
    let mut claims = json!({
        "iss": ISSUER,
        "sub": "sub-alice",
        "aud": "pos-1",
        "iat": NOW,
        "exp": NOW + 300,
        "urn:openid:params:jwt:claim:auth_req_id": "req-1",
        "at_hash": half_hash_for(key.alg(), "at-123"),
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    key.sign(Some("JWT"), claims.as_object().unwrap()).unwrap()
}

fn check(keys: &[Jwk], tokens: &TokenResponse) -> Result<Map<String, Value>, VerifyIdTokenError> {
    let auth_req_id = AuthReqId::new("req-1");
    verify_push_id_token(
        tokens,
        keys,
        &IdTokenExpectations {
            issuer: ISSUER,
            client_id: "pos-1",
            auth_req_id: &auth_req_id,
            algs: &SigningAlg::ALL,
            now: NOW,
        },
    )
}

#[test]
fn a_good_id_token_passes_for_each_alg() {
    for alg in [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256] {
        let key = key(alg);
        let claims = check(&[key.public_jwk().clone()], &tokens(id_token(&key, json!({})), None)).unwrap();
        assert_eq!(claims["sub"], "sub-alice", "{alg}");
    }
}

#[test]
fn tampered_id_tokens_are_refused() {
    let key = key(SigningAlg::ES256);
    let keys = [key.public_jwk().clone()];
    let refused = |overrides: Value| check(&keys, &tokens(id_token(&key, overrides), None)).unwrap_err();
    assert_eq!(
        refused(json!({"iss": "https://evil.example"})),
        VerifyIdTokenError::Issuer("https://evil.example".into())
    );
    assert_eq!(refused(json!({"aud": "other-client"})), VerifyIdTokenError::Audience);
    assert_eq!(
        refused(json!({"aud": ["pos-1", "other"]})),
        VerifyIdTokenError::Audience,
        "azp needed"
    );
    assert!(check(
        &keys,
        &tokens(id_token(&key, json!({"aud": ["pos-1", "x"], "azp": "pos-1"})), None)
    )
    .is_ok());
    assert_eq!(refused(json!({"exp": NOW - 120})), VerifyIdTokenError::Expired);
    assert_eq!(refused(json!({"exp": null})), VerifyIdTokenError::Expired);
    assert_eq!(
        refused(json!({"urn:openid:params:jwt:claim:auth_req_id": "req-2"})),
        VerifyIdTokenError::AuthReqId
    );
    assert_eq!(
        refused(json!({"urn:openid:params:jwt:claim:auth_req_id": null})),
        VerifyIdTokenError::AuthReqId
    );
    assert_eq!(refused(json!({"at_hash": "AAAA"})), VerifyIdTokenError::AtHash);
    assert_eq!(refused(json!({"at_hash": null})), VerifyIdTokenError::AtHash);

    let stranger = self::key(SigningAlg::ES256);
    assert!(matches!(
        check(&keys, &tokens(id_token(&stranger, json!({})), None)),
        Err(VerifyIdTokenError::Signature(_))
    ));
    // A valid token whose payload was edited afterwards.
    let good = id_token(&key, json!({}));
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({"iss": ISSUER, "aud": "pos-1", "exp": NOW + 300}).to_string(),
    );
    parts[1] = &forged_payload;
    assert!(matches!(
        check(&keys, &tokens(parts.join("."), None)),
        Err(VerifyIdTokenError::Signature(_))
    ));
    let mut none = tokens(good, None);
    none.id_token = None;
    assert_eq!(check(&keys, &none).unwrap_err(), VerifyIdTokenError::Missing);
}

#[test]
fn a_refresh_token_must_match_rt_hash() {
    let key = key(SigningAlg::ES256);
    let keys = [key.public_jwk().clone()];
    let rt_hash = half_hash_for(SigningAlg::ES256, "rt-9");
    let with_hash = id_token(&key, json!({ "urn:openid:params:jwt:claim:rt_hash": rt_hash }));
    assert!(check(&keys, &tokens(with_hash.clone(), Some("rt-9"))).is_ok());
    assert_eq!(
        check(&keys, &tokens(with_hash, Some("rt-other"))).unwrap_err(),
        VerifyIdTokenError::RtHash
    );
    assert_eq!(
        check(&keys, &tokens(id_token(&key, json!({})), Some("rt-9"))).unwrap_err(),
        VerifyIdTokenError::RtHash
    );
}
