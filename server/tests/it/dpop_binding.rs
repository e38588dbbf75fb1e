//! DPoP at the authorization step (RFC 9449 §10): codes bound to `dpop_jkt`
//! or to the key of a DPoP proof sent to `/par` (§10.1), and refresh tokens of
//! public clients bound to the DPoP key (§5). Real pages, real socket.

use outband_protocol::jose::{jwk_thumbprint, SigningKey};
use outband_protocol::Profile;
use serde_json::{json, Value};

use crate::browser_support::{Browser, Live, CHALLENGE};
use crate::device_support::{device_key, proof};
use crate::native_support::{
    native_authorize_path, native_code, params_at, redeem_public, refresh_public, token_proof, APP, LOOPBACK_V6,
};
use crate::support::TestServer;

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_native_client(Profile::Fapi1Baseline).await;
    server.add_password_user("alice").await;
    server
}

fn key() -> SigningKey {
    device_key(outband_protocol::SigningAlg::ES256)
}

fn thumbprint(key: &SigningKey) -> String {
    jwk_thumbprint(key.public_jwk()).unwrap()
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_the_key() {
    let server = server().await;
    let live = server.live().await;
    let (mine, other) = (key(), key());
    let jkt = thumbprint(&mine);
    let bound = [("dpop_jkt", jkt.as_str())];

    let code = native_code(&live, LOOPBACK_V6, &bound).await;
    let (status, body) = redeem_public(&live, &code, LOOPBACK_V6, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "no proof: {body}"
    );

    let code = native_code(&live, LOOPBACK_V6, &bound).await;
    let wrong = token_proof(&server, &other);
    let (status, body) = redeem_public(&live, &code, LOOPBACK_V6, Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "another key: {body}"
    );

    let code = native_code(&live, LOOPBACK_V6, &bound).await;
    let right = token_proof(&server, &mine);
    let (status, tokens) = redeem_public(&live, &code, LOOPBACK_V6, Some(&right)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let access = crate::browser_support::claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["cnf"]["jkt"], jkt);

    // A code without dpop_jkt is not bound: any proof (or none) redeems it.
    let code = native_code(&live, LOOPBACK_V6, &[]).await;
    let (status, _) = redeem_public(&live, &code, LOOPBACK_V6, Some(&token_proof(&server, &other))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_dpop_jkt_is_invalid_request() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let page = browser
        .get(&native_authorize_path(LOOPBACK_V6, &[("dpop_jkt", "not-a-thumbprint")]))
        .await;
    let params = params_at(&page.location().unwrap(), LOOPBACK_V6);
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("dpop_jkt"));
}

/// `POST /par` as the public app with the standard request plus `extra`, and a DPoP header.
async fn push(live: &Live, extra: &[(&str, &str)], dpop: Option<&str>) -> (u16, Value, Option<String>) {
    let mut form = vec![
        ("client_id", APP),
        ("response_type", "code"),
        ("redirect_uri", LOOPBACK_V6),
        ("scope", "openid profile"),
        ("state", "st-native"),
        ("nonce", "n-native"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    form.extend_from_slice(extra);
    let mut request = reqwest::Client::new().post(format!("{}/par", live.base)).form(&form);
    if let Some(dpop) = dpop {
        request = request.header("DPoP", dpop);
    }
    let reply = request.send().await.unwrap();
    let nonce = reply
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (reply.status().as_u16(), reply.json().await.unwrap(), nonce)
}

/// The code of a pushed request (`request_uri`), after alice logs in and approves.
async fn code_of(live: &Live, request_uri: &str) -> String {
    let mut browser = Browser::new(live);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", APP)
        .append_pair("request_uri", request_uri)
        .finish();
    let login = browser.get(&format!("/authorize?{query}")).await;
    let redirect = browser.login_and_approve(&login).await;
    params_at(&redirect.location().unwrap(), LOOPBACK_V6)["code"].clone()
}

fn par_proof(server: &TestServer, key: &SigningKey) -> String {
    proof(key, server.state.now(), "POST", "/par", None, None, &json!({}))
}

#[tokio::test]
async fn a_dpop_proof_at_par_binds_the_code() {
    let server = server().await;
    let live = server.live().await;
    let (mine, other) = (key(), key());

    let (status, body, nonce) = push(&live, &[], Some(&par_proof(&server, &mine))).await;
    assert_eq!(status, 201, "{body}");
    assert!(nonce.is_some(), "/par answers carry a DPoP-Nonce");
    let code = code_of(&live, body["request_uri"].as_str().unwrap()).await;
    let (status, reply) = redeem_public(&live, &code, LOOPBACK_V6, Some(&token_proof(&server, &other))).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("invalid_grant")),
        "{reply}"
    );

    let (_, body, _) = push(&live, &[], Some(&par_proof(&server, &mine))).await;
    let code = code_of(&live, body["request_uri"].as_str().unwrap()).await;
    let (status, reply) = redeem_public(&live, &code, LOOPBACK_V6, None).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{reply}"
    );

    // The proof and a matching dpop_jkt together are fine.
    let jkt = thumbprint(&mine);
    let (_, body, _) = push(&live, &[("dpop_jkt", &jkt)], Some(&par_proof(&server, &mine))).await;
    let code = code_of(&live, body["request_uri"].as_str().unwrap()).await;
    let (status, tokens) = redeem_public(&live, &code, LOOPBACK_V6, Some(&token_proof(&server, &mine))).await;
    assert_eq!((status, tokens["token_type"].as_str()), (200, Some("DPoP")), "{tokens}");

    // dpop_jkt alone at /par binds too.
    let (_, body, _) = push(&live, &[("dpop_jkt", &jkt)], None).await;
    let code = code_of(&live, body["request_uri"].as_str().unwrap()).await;
    let (status, _) = redeem_public(&live, &code, LOOPBACK_V6, Some(&token_proof(&server, &other))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn par_refuses_a_proof_that_does_not_fit() {
    let server = server().await;
    let live = server.live().await;
    let (mine, other) = (key(), key());
    // dpop_jkt names another key than the proof's (RFC 9449 §10.1 "MUST reject").
    let (status, body, _) = push(
        &live,
        &[("dpop_jkt", &thumbprint(&other))],
        Some(&par_proof(&server, &mine)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // A proof for the token endpoint is not one for /par.
    let (status, body, _) = push(&live, &[], Some(&token_proof(&server, &mine))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    // Nor is a malformed one.
    let (status, body, _) = push(&live, &[], Some("not.a.jwt")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
}

#[tokio::test]
async fn public_refresh_tokens_are_bound_to_the_dpop_key() {
    let server = server().await;
    let live = server.live().await;
    let (mine, other) = (key(), key());
    let code = native_code(&live, LOOPBACK_V6, &[]).await;
    let (status, tokens) = redeem_public(&live, &code, LOOPBACK_V6, Some(&token_proof(&server, &mine))).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let (status, body) = refresh_public(&live, refresh, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{body}"
    );
    let (status, body) = refresh_public(&live, refresh, Some(&token_proof(&server, &other))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // Neither attempt used the token up: the key holder still refreshes.
    let (status, body) = refresh_public(&live, refresh, Some(&token_proof(&server, &mine))).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")), "{body}");
}
