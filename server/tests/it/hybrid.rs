//! The hybrid flow `code id_token` (OpenID Connect Core §3.3) and the FAPI 1
//! Advanced rules on authorization requests and responses (§5.2.2).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, GrantType, Profile, Scope, SigningAlg};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::browser_support::{authorize_path, redeem, Browser, Live, CHALLENGE, REDIRECT_URI, VERIFIER, WEB};
use crate::jarm::{fragment_params, verify_with_jwks};
use crate::support::{client_assertion, ClientKey, TestServer, ISSUER, T0};

/// The left half of the SHA-256 of `value`, base64url: `c_hash` and `s_hash`
/// for PS256, ES256 and RS256 ID tokens (Core §3.3.2.11).
fn left_half_sha256(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// A `private_key_jwt` client of `profile` for the code flow, with an ES256 key
/// and an RS256 key registered; returns both.
pub async fn fapi_client(server: &TestServer, id: &str, profile: Profile) -> (ClientKey, SigningKey) {
    let key = server.add_jwt_client(id, SigningAlg::ES256, profile).await;
    let rsa = SigningAlg::RS256.generate_private_jwk().unwrap();
    let rsa = SigningKey::from_private_jwk(&rsa, SigningAlg::RS256).unwrap();
    let mut client = server.state.store.client(&ClientId::new(id)).await.unwrap().unwrap();
    client.metadata.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
    client.metadata.grant_types = vec![GrantType::AuthorizationCode];
    client.metadata.scope = Scope::new("openid payments");
    client.metadata.jwks = Some(json!({"keys": [
        Value::Object(key.key.public_jwk().as_ref().clone()),
        Value::Object(rsa.public_jwk().as_ref().clone()),
    ]}));
    server.state.store.update_client(&client).await.unwrap();
    (key, rsa)
}

/// A request object of `client_id` signed by `key` (`null` overrides remove a claim).
pub fn request_object(key: &SigningKey, client_id: &str, overrides: Value) -> String {
    let mut claims = json!({
        "iss": client_id,
        "client_id": client_id,
        "aud": ISSUER,
        "exp": T0 + 300,
        "nbf": T0,
        "jti": uuid::Uuid::new_v4().to_string(),
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid payments",
        "state": "st-fapi",
        "nonce": "n-fapi",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    key.sign(None, claims.as_object().unwrap()).unwrap()
}

/// `POST /par` as `client_id` (`private_key_jwt`) with `params`.
pub async fn par_with(live: &Live, client_id: &str, key: &ClientKey, params: &[(&str, &str)]) -> (u16, Value) {
    let assertion = client_assertion(key, client_id, T0, json!({}));
    let mut form = vec![
        ("client_id", client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("nonce", "n-fapi"),
    ];
    form.extend_from_slice(params);
    let reply = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

fn signed_path(client_id: &str, object: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request", object)
        .append_pair("redirect_uri", REDIRECT_URI)
        .finish();
    format!("/authorize?{query}")
}

#[tokio::test]
async fn hybrid_answers_with_an_id_token_in_the_fragment() {
    let server = TestServer::new().await;
    server
        .add_web_client(WEB, Profile::Oidc, |m| {
            m.id_token_signed_response_alg = Some(SigningAlg::PS256)
        })
        .await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser
        .get(&authorize_path(WEB, &[("response_type", "code id_token")]))
        .await;
    let params = fragment_params(&browser.login_and_approve(&login).await);
    assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-123", ISSUER));
    let code = &params["code"];
    let (alg, claims) = verify_with_jwks(&live, &params["id_token"]).await;
    assert_eq!(alg, "PS256");
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some(ISSUER), Some(WEB))
    );
    assert_eq!(claims["sub"], "sub-alice");
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["c_hash"], left_half_sha256(code));
    assert_eq!(claims["s_hash"], left_half_sha256("st-123"));
    assert!(claims.get("at_hash").is_none(), "no access token in the front channel");
    // The token endpoint answers as for code, with an ID token of its own.
    let (status, tokens) = redeem(&live, WEB, code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, back) = verify_with_jwks(&live, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(
        (back["nonce"].as_str(), back["sub"].as_str()),
        (Some("n-456"), Some("sub-alice"))
    );
    assert!(back["at_hash"].is_string());

    // form_post carries the same fields; without state there is no s_hash.
    let login = browser
        .get(&authorize_path(
            WEB,
            &[
                ("response_type", "id_token code"),
                ("response_mode", "form_post"),
                ("state", ""),
            ],
        ))
        .await;
    let page = if login.text.contains("Password") {
        browser.login_and_approve(&login).await
    } else {
        browser.decide(&login, "approve").await
    };
    assert_eq!(page.status, 200, "{}", page.text);
    let (_, claims) = verify_with_jwks(&live, &page.hidden("id_token")).await;
    assert_eq!(claims["c_hash"], left_half_sha256(&page.hidden("code")));
    assert!(claims.get("s_hash").is_none());
    assert!(!page.text.contains("name=\"state\""));
}

#[tokio::test]
async fn hybrid_request_rules() {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let hybrid = ("response_type", "code id_token");
    for (extra, error) in [
        (vec![hybrid, ("nonce", "")], "invalid_request"),
        (vec![hybrid, ("scope", "profile")], "invalid_request"),
        (vec![hybrid, ("response_mode", "query")], "invalid_request"),
        (vec![hybrid, ("response_mode", "query.jwt")], "invalid_request"),
    ] {
        // Errors of a hybrid request go to the fragment, never the query.
        let params = fragment_params(&browser.get(&authorize_path(WEB, &extra)).await);
        assert_eq!(params["error"], error, "{extra:?}");
        assert_eq!(params["state"], "st-123", "{extra:?}");
    }
    for response_type in ["token", "id_token", "code token", "code id_token token", "none"] {
        let page = browser
            .get(&authorize_path(WEB, &[("response_type", response_type)]))
            .await;
        assert_eq!(
            page.redirect_params()["error"],
            "unsupported_response_type",
            "{response_type}"
        );
    }
}

#[tokio::test]
async fn fapi1_advanced_needs_signed_requests_and_signed_responses() {
    let server = TestServer::new().await;
    let (key, rsa) = fapi_client(&server, "adv", Profile::Fapi1Advanced).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);

    // Not a request object: invalid_request.
    let plain = browser
        .get(&authorize_path(
            "adv",
            &[("response_type", "code id_token"), ("scope", "openid")],
        ))
        .await;
    assert_eq!(fragment_params(&plain)["error"], "invalid_request");
    // Plain code without JARM: unsupported_response_type.
    let object = request_object(&key.key, "adv", json!({}));
    let page = browser.get(&signed_path("adv", &object)).await;
    let params = page.redirect_params();
    assert_eq!(params["error"], "unsupported_response_type");
    assert_eq!(params["state"], "st-fapi");
    // RS256 is never accepted under FAPI.
    let object = request_object(&rsa, "adv", json!({"response_type": "code id_token"}));
    let page = browser.get(&signed_path("adv", &object)).await;
    // The object cannot be trusted, so the error goes to the query beside it.
    assert_eq!(page.redirect_params()["error"], "invalid_request_object");
    // openid needs a nonce, even with JARM.
    let object = request_object(&key.key, "adv", json!({"response_mode": "jwt", "nonce": null}));
    let page = browser.get(&signed_path("adv", &object)).await;
    let (_, claims) = verify_with_jwks(&live, &page.redirect_params()["response"]).await;
    assert_eq!(claims["error"], "invalid_request");
    // PAR needs the request object too.
    let (status, body) = par_with(
        &live,
        "adv",
        &key,
        &[("response_type", "code id_token"), ("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // code id_token, signed: the ID token is a detached signature over code and state.
    let object = request_object(&key.key, "adv", json!({"response_type": "code id_token"}));
    let login = browser.get(&signed_path("adv", &object)).await;
    let params = fragment_params(&browser.login_and_approve(&login).await);
    let (alg, claims) = verify_with_jwks(&live, &params["id_token"]).await;
    assert_eq!(alg, "PS256", "the FAPI default");
    assert_eq!(claims["nonce"], "n-fapi");
    assert_eq!(claims["c_hash"], left_half_sha256(&params["code"]));
    assert_eq!(claims["s_hash"], left_half_sha256("st-fapi"));

    // code with JARM, pushed with a signed request object.
    let object = request_object(&key.key, "adv", json!({"response_mode": "jwt"}));
    let (status, pushed) = par_with(&live, "adv", &key, &[("request", &object)]).await;
    assert_eq!(status, 201, "{pushed}");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", "adv")
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap())
        .finish();
    let consent = browser.get(&format!("/authorize?{query}")).await;
    let answer = browser.decide(&consent, "approve").await;
    let (alg, claims) = verify_with_jwks(&live, &answer.redirect_params()["response"]).await;
    assert_eq!(alg, "PS256");
    assert_eq!(
        (claims["aud"].as_str(), claims["state"].as_str()),
        (Some("adv"), Some("st-fapi"))
    );
    assert!(claims["code"].is_string());
}
