//! Signed authorization responses (JARM) in every mode, `form_post`, FAPI 2
//! Message Signing at `/par`, and signed UserInfo. Every signature is checked
//! by josekit against the keys the server publishes at `/jwks`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::{Profile, SigningAlg};
use serde_json::{json, Value};

use crate::browser_support::{authorize_path, redeem, Browser, Live, Page, REDIRECT_URI, VERIFIER, WEB};
use crate::hybrid::{fapi_client, par_with, request_object};
use crate::support::{TestServer, ISSUER, T0};

/// Verifies `jwt` with josekit against the server's `/jwks`; returns its
/// header's `alg` and its claims.
pub async fn verify_with_jwks(live: &Live, jwt: &str) -> (String, Value) {
    let jwks: Value = reqwest::get(format!("{}/jwks", live.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verify_with(&jwks, jwt)
}

/// Verifies `jwt` with josekit against the key set `jwks`; returns its header's
/// `alg` and its claims.
pub fn verify_with(jwks: &Value, jwt: &str) -> (String, Value) {
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
    let (kid, alg) = (header["kid"].as_str().unwrap(), header["alg"].as_str().unwrap());
    let published = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in /jwks"));
    let jwk = josekit::jwk::Jwk::from_map(published.as_object().unwrap().clone()).unwrap();
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
        "PS256" => Box::new(josekit::jws::PS256.verifier_from_jwk(&jwk).unwrap()),
        "RS256" => Box::new(josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap()),
        "ES256" => Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap()),
        "EdDSA" => Box::new(josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap()),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, _) = josekit::jwt::decode_with_verifier(jwt, verifier.as_ref()).unwrap();
    (alg.to_owned(), Value::Object(payload.claims_set().clone()))
}

/// The parameters of a redirect's fragment.
pub fn fragment_params(page: &Page) -> BTreeMap<String, String> {
    let location = page
        .location()
        .unwrap_or_else(|| panic!("no redirect: {} {}", page.status, page.text));
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let url = url::Url::parse(&location).unwrap();
    assert_eq!(url.query(), None, "nothing in the query: {location}");
    url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The `response` JWT of a JARM answer in `mode`, checked to be the only parameter.
fn response_jwt(page: &Page, mode: &str) -> String {
    match mode {
        "form_post.jwt" => {
            assert_eq!(page.status, 200, "{}", page.text);
            assert!(!page.text.contains("name=\"code\""), "{}", page.text);
            page.hidden("response")
        }
        "fragment.jwt" => {
            let params = fragment_params(page);
            assert_eq!(params.keys().collect::<Vec<_>>(), ["response"], "{params:?}");
            params["response"].clone()
        }
        _ => {
            let params = page.redirect_params();
            assert_eq!(params.keys().collect::<Vec<_>>(), ["response"], "{params:?}");
            params["response"].clone()
        }
    }
}

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server
        .add_web_client("web-es", Profile::Oidc, |m| {
            m.authorization_signed_response_alg = Some(SigningAlg::ES256);
        })
        .await;
    server.add_password_user("alice").await;
    server
}

#[tokio::test]
async fn every_jarm_mode_is_signed_and_the_code_works() {
    let server = server().await;
    let live = server.live().await;
    for (client, mode, alg) in [
        (WEB, "jwt", "RS256"),
        (WEB, "query.jwt", "RS256"),
        (WEB, "fragment.jwt", "RS256"),
        (WEB, "form_post.jwt", "RS256"),
        ("web-es", "jwt", "ES256"),
    ] {
        let mut browser = Browser::new(&live);
        let login = browser.get(&authorize_path(client, &[("response_mode", mode)])).await;
        let answer = browser.login_and_approve(&login).await;
        let jwt = response_jwt(&answer, mode);
        let (signed_with, claims) = verify_with_jwks(&live, &jwt).await;
        assert_eq!(
            signed_with, alg,
            "{mode}: JARM default RS256 for oidc, else the registered alg"
        );
        assert_eq!(claims["iss"], ISSUER, "{mode}");
        assert_eq!(claims["aud"], client, "{mode}");
        assert_eq!(claims["state"], "st-123", "{mode}");
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp > T0 && exp <= T0 + 600, "{mode}: short-lived, {exp}");
        let (status, tokens) = redeem(&live, client, claims["code"].as_str().unwrap(), Some(VERIFIER)).await;
        assert_eq!(status, 200, "{mode}: {tokens}");
    }
}

#[tokio::test]
async fn errors_are_signed_too() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    // An error found while validating: in the mode the request asked for.
    let page = browser
        .get(&authorize_path(
            WEB,
            &[("response_mode", "jwt"), ("scope", "openid admin")],
        ))
        .await;
    let (_, claims) = verify_with_jwks(&live, &response_jwt(&page, "query.jwt")).await;
    assert_eq!(claims["error"], "invalid_scope");
    assert_eq!(
        (claims["state"].as_str(), claims["aud"].as_str()),
        (Some("st-123"), Some(WEB))
    );
    assert!(claims.get("code").is_none());
    // The user says no: access_denied, in a signed fragment.
    let login = browser
        .get(&authorize_path(WEB, &[("response_mode", "fragment.jwt")]))
        .await;
    let after_login = browser.login(&login, "alice", crate::browser_support::PASSWORD).await;
    let consent = browser.get(&after_login.location().unwrap()).await;
    let denied = browser.decide(&consent, "deny").await;
    let (_, claims) = verify_with_jwks(&live, &response_jwt(&denied, "fragment.jwt")).await;
    assert_eq!(claims["error"], "access_denied");
    assert_eq!(claims["iss"], ISSUER);
}

#[tokio::test]
async fn form_post_is_a_self_submitting_form_that_works_without_javascript() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser
        .get(&authorize_path(WEB, &[("response_mode", "form_post")]))
        .await;
    let page = browser.login_and_approve(&login).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.location().is_none());
    assert!(
        page.text
            .contains(&format!("<form method=\"post\" action=\"{REDIRECT_URI}\">")),
        "{}",
        page.text
    );
    assert_eq!(page.hidden("state"), "st-123");
    assert_eq!(page.hidden("iss"), ISSUER);
    assert!(page.text.contains("<noscript>") && page.text.contains("<button type=\"submit\">"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action https://client.example"), "{csp}");
    assert_eq!(page.headers["cache-control"], "no-store");
    let (status, tokens) = redeem(&live, WEB, &page.hidden("code"), Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    // Errors go the same way.
    let refused = browser
        .get(&authorize_path(
            WEB,
            &[("response_mode", "form_post"), ("scope", "admin")],
        ))
        .await;
    assert_eq!(refused.hidden("error"), "invalid_scope");
}

#[tokio::test]
async fn fapi2_message_signing_needs_a_signed_request_at_par_and_gets_jarm() {
    let server = TestServer::new().await;
    let (key, _) = fapi_client(&server, "ms", Profile::Fapi2MessageSigning).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let (status, body) = par_with(&live, "ms", &key, &[("response_type", "code"), ("scope", "openid")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let object = request_object(&key.key, "ms", json!({"response_mode": "jwt"}));
    let (status, body) = par_with(&live, "ms", &key, &[("request", &object)]).await;
    assert_eq!(status, 201, "{body}");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", "ms")
        .append_pair("request_uri", body["request_uri"].as_str().unwrap())
        .finish();
    let mut browser = Browser::new(&live);
    let login = browser.get(&format!("/authorize?{query}")).await;
    let answer = browser.login_and_approve(&login).await;
    let (alg, claims) = verify_with_jwks(&live, &response_jwt(&answer, "query.jwt")).await;
    assert_eq!(alg, "PS256", "FAPI default");
    assert_eq!(
        (claims["aud"].as_str(), claims["state"].as_str()),
        (Some("ms"), Some("st-fapi"))
    );
    assert!(claims["code"].is_string());
}

#[tokio::test]
async fn signed_userinfo_when_registered() {
    let server = TestServer::new().await;
    server
        .add_web_client(WEB, Profile::Oidc, |m| {
            m.userinfo_signed_response_alg = Some(SigningAlg::ES256);
        })
        .await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_path(WEB, &[])).await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    let (_, tokens) = redeem(&live, WEB, &params["code"], Some(VERIFIER)).await;
    let reply = reqwest::Client::new()
        .get(format!("{}/userinfo", live.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/jwt");
    let jwt = reply.text().await.unwrap();
    let (alg, claims) = verify_with_jwks(&live, &jwt).await;
    assert_eq!(alg, "ES256");
    assert_eq!(claims["sub"], "sub-alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(
        (claims["iss"].as_str(), claims["aud"].as_str()),
        (Some(ISSUER), Some(WEB))
    );
}
