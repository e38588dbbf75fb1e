//! DPoP (RFC 9449) at the token endpoint and at the resource API: binding
//! (`cnf.jkt`, `token_type: DPoP`), every refused proof, server nonces, bound
//! tokens presented as Bearer or with another key, confidential clients'
//! refresh tokens (not bound to the key, RFC 9449 §5), and the replay cache
//! shared by two server nodes.

use outband_protocol::jose::jwk_thumbprint;
use serde_json::json;

use crate::api_support::{bad_proofs, challenge, detail, key, nonce, Call, Token};
use crate::support::TestServer;

/// A `payment_initiation` authorization detail (RFC 9396 needs the `type`).
fn payment(amount: &str, reference: &str) -> serde_json::Value {
    let mut typed = detail(amount, reference);
    typed["type"] = json!("payment_initiation");
    typed
}

const NONCES_REQUIRED: &str = "[tokens]\ndpop_nonce = \"required\"\n[resource]\ndpop_nonce = \"required\"\n";
const CLIENT_CREDENTIALS: &str = "grant_type=client_credentials&scope=payments";

async fn server(config: &str) -> TestServer {
    let server = TestServer::with_config(config).await;
    server.add_pos_client().await;
    server.add_user("alice", None).await;
    server
}

#[tokio::test]
async fn token_endpoint_binds_tokens_to_the_proof_key() {
    let server = server("").await;
    let key = key();
    let reply = server
        .token_with_proof(CLIENT_CREDENTIALS, Some(&server.token_proof(&key, None, &json!({}))))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "DPoP");
    assert!(
        reply.headers.contains_key("dpop-nonce"),
        "every token answer carries a nonce"
    );
    let hash = outband_protocol::AccessToken::new(reply.json["access_token"].as_str().unwrap().to_owned()).hash();
    let stored = server.state.store.token(&hash).await.unwrap().unwrap();
    assert_eq!(stored.cnf_jkt, Some(jwk_thumbprint(key.public_jwk()).unwrap()));
    // Without a proof the same client gets an unbound Bearer token.
    let reply = server.token_with_proof(CLIENT_CREDENTIALS, None).await;
    assert_eq!(reply.json["token_type"], "Bearer", "{}", reply.text);
}

#[tokio::test]
async fn token_endpoint_refuses_every_bad_proof() {
    let server = server("").await;
    let key = key();
    for (what, proof) in bad_proofs(&key, server.state.now(), "POST", "/token", None, None) {
        let reply = server.token_with_proof(CLIENT_CREDENTIALS, Some(&proof)).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_eq!(reply.json["error"], "invalid_dpop_proof", "{what}: {}", reply.text);
    }
    // A proof works once (jti).
    let proof = server.token_proof(&key, None, &json!({}));
    assert_eq!(
        server.token_with_proof(CLIENT_CREDENTIALS, Some(&proof)).await.status,
        200
    );
    let replay = server.token_with_proof(CLIENT_CREDENTIALS, Some(&proof)).await;
    replay.assert_error(400, "invalid_dpop_proof");
    assert!(replay.text.contains("jti"), "{}", replay.text);
}

#[tokio::test]
async fn token_endpoint_nonces() {
    let server = server(NONCES_REQUIRED).await;
    let key = key();
    // No nonce: use_dpop_nonce, and the nonce to use in DPoP-Nonce.
    let reply = server
        .token_with_proof(CLIENT_CREDENTIALS, Some(&server.token_proof(&key, None, &json!({}))))
        .await;
    reply.assert_error(400, "use_dpop_nonce");
    let fresh = nonce(&reply);
    // Not one of ours.
    let forged = server.token_proof(&key, Some("made-up"), &json!({}));
    server
        .token_with_proof(CLIENT_CREDENTIALS, Some(&forged))
        .await
        .assert_error(400, "use_dpop_nonce");
    let reply = server
        .token_with_proof(
            CLIENT_CREDENTIALS,
            Some(&server.token_proof(&key, Some(&fresh), &json!({}))),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "DPoP");
    // Stale after its lifetime: refused, with a new one to use.
    server.clock.advance(outband_server::auth::dpop::NONCE_LIFETIME + 1);
    let reply = server
        .token_with_proof(
            CLIENT_CREDENTIALS,
            Some(&server.token_proof(&key, Some(&fresh), &json!({}))),
        )
        .await;
    reply.assert_error(400, "use_dpop_nonce");
    assert!(reply.text.contains("stale"), "{}", reply.text);
    let renewed = nonce(&reply);
    assert_ne!(renewed, fresh, "nonces rotate");
    let reply = server
        .token_with_proof(
            CLIENT_CREDENTIALS,
            Some(&server.token_proof(&key, Some(&renewed), &json!({}))),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// RFC 9449 §5: a confidential client's refresh token is not bound to the DPoP
/// key (client authentication binds it); each refresh binds the new access
/// token to the key of its own proof. (Public clients' refresh tokens are:
/// `dpop_binding::public_refresh_tokens_are_bound_to_the_dpop_key`.)
#[tokio::test]
async fn confidential_refresh_tokens_are_not_bound_to_the_dpop_key() {
    let server = server("").await;
    let token = server.payment_token(&[payment("12.50", "REF-1")]).await;
    let first = jwk_thumbprint(token.key.as_ref().unwrap().public_jwk()).unwrap();
    let refresh = token.refresh.clone().expect("the POS may refresh");
    // Introspection does not claim a binding the refresh does not enforce.
    let introspected = server
        .post_form("/introspect", &format!("token={refresh}"), Some(("pos", "pos-secret")))
        .await;
    assert_eq!(introspected.json["active"], true, "{}", introspected.text);
    assert!(introspected.json.get("cnf").is_none(), "{}", introspected.text);
    // A proof of another key than the grant's: a new DPoP token bound to that key.
    let other = key();
    let other_jkt = jwk_thumbprint(other.public_jwk()).unwrap();
    assert_ne!(other_jkt, first);
    let reply = server
        .token_with_proof(
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            Some(&server.token_proof(&other, None, &json!({}))),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "DPoP");
    let access = reply.json["access_token"].as_str().unwrap();
    assert_eq!(crate::browser_support::claims(access)["cnf"]["jkt"], other_jkt.as_str());
    let hash = outband_protocol::AccessToken::new(access.to_owned()).hash();
    let stored = server.state.store.token(&hash).await.unwrap().unwrap();
    assert_eq!(stored.cnf_jkt.as_deref(), Some(other_jkt.as_str()));
    // Without a proof: an unbound Bearer token (the `oidc` profile allows it).
    let rotated = reply.json["refresh_token"].as_str().unwrap();
    let reply = server
        .token_with_proof(&format!("grant_type=refresh_token&refresh_token={rotated}"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "Bearer");
    let access = reply.json["access_token"].as_str().unwrap();
    assert!(crate::browser_support::claims(access).get("cnf").is_none(), "{access}");
}

#[tokio::test]
async fn payments_api_refuses_every_bad_proof() {
    let server = server("").await;
    let token = server.payment_token(&[payment("12.50", "REF-1")]).await;
    let path = "/api/payments?reference=REF-1";
    let bad = bad_proofs(
        token.key.as_ref().unwrap(),
        server.state.now(),
        "GET",
        "/api/payments",
        Some(&token.access),
        None,
    );
    for (what, proof) in bad {
        let call = Call {
            raw_proof: Some(proof),
            ..Call::default()
        };
        let reply = server.api("GET", path, Some(&token), None, call).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        assert_eq!(reply.json["error"], "invalid_dpop_proof", "{what}: {}", reply.text);
        assert!(
            challenge(&reply).starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{what}: {}",
            challenge(&reply)
        );
        assert!(reply.headers.contains_key("x-fapi-interaction-id"), "{what}");
    }
    // No proof at all.
    let call = Call {
        no_proof: true,
        ..Call::default()
    };
    server
        .api("GET", path, Some(&token), None, call)
        .await
        .assert_error(401, "invalid_dpop_proof");
    // The success path; the query is not part of htu.
    let reply = server.api("GET", path, Some(&token), None, Call::default()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["payments"], json!([]));
}

#[tokio::test]
async fn payments_api_refuses_replays_bearer_and_other_keys() {
    let server = server("").await;
    let token = server.payment_token(&[payment("12.50", "REF-1")]).await;
    let path = "/api/payments?reference=REF-1";
    // A replayed proof.
    let proof = crate::device_support::proof(
        token.key.as_ref().unwrap(),
        server.state.now(),
        "GET",
        "/api/payments",
        Some(&token.access),
        None,
        &json!({}),
    );
    let once = |p: &str| Call {
        raw_proof: Some(p.to_owned()),
        ..Call::default()
    };
    assert_eq!(
        server.api("GET", path, Some(&token), None, once(&proof)).await.status,
        200
    );
    let replay = server.api("GET", path, Some(&token), None, once(&proof)).await;
    replay.assert_error(401, "invalid_dpop_proof");
    assert!(replay.text.contains("jti"), "{}", replay.text);

    // The bound token presented as Bearer (a stolen token without the key).
    let bearer = Call {
        scheme: Some("Bearer"),
        no_proof: true,
        ..Call::default()
    };
    let reply = server.api("GET", path, Some(&token), None, bearer).await;
    reply.assert_error(401, "invalid_token");
    assert!(
        challenge(&reply).starts_with("DPoP error=\"invalid_token\""),
        "{}",
        challenge(&reply)
    );

    // The token with a valid proof by another key.
    let thief = key();
    let stolen = Call {
        key: Some(&thief),
        ..Call::default()
    };
    let reply = server.api("GET", path, Some(&token), None, stolen).await;
    reply.assert_error(401, "invalid_dpop_proof");
    assert!(reply.text.contains("bound"), "{}", reply.text);

    // An unbound (Bearer) token presented with the DPoP scheme is refused as well.
    let auth_req_id = server
        .approved_request("alice", "openid payments", &json!([payment("1.00", "REF-2")]))
        .await;
    let bearer_token = server.redeem(&auth_req_id, None).await;
    let as_dpop = Call {
        scheme: Some("DPoP"),
        key: Some(&thief),
        ..Call::default()
    };
    server
        .api("GET", path, Some(&bearer_token), None, as_dpop)
        .await
        .assert_error(401, "invalid_token");
    // As Bearer it works.
    assert_eq!(
        server
            .api("GET", path, Some(&bearer_token), None, Call::default())
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn payments_api_nonces() {
    let server = server(NONCES_REQUIRED).await;
    // A nonce that will be stale once the clock moved on.
    let stale = nonce(&server.token_with_proof(CLIENT_CREDENTIALS, None).await);
    server.clock.advance(outband_server::auth::dpop::NONCE_LIFETIME + 1);
    let key = key();
    let reply = server
        .token_with_proof(
            CLIENT_CREDENTIALS,
            Some(&server.token_proof(&key, Some(&stale), &json!({}))),
        )
        .await;
    reply.assert_error(400, "use_dpop_nonce");
    let reply = server
        .token_with_proof(
            CLIENT_CREDENTIALS,
            Some(&server.token_proof(&key, Some(&nonce(&reply)), &json!({}))),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = Token {
        access: reply.json["access_token"].as_str().unwrap().to_owned(),
        refresh: None,
        key: Some(key),
    };
    let path = "/api/payments?reference=REF-1";
    // Missing nonce: 401 use_dpop_nonce in the challenge, a nonce in DPoP-Nonce.
    let reply = server.api("GET", path, Some(&token), None, Call::default()).await;
    reply.assert_error(401, "use_dpop_nonce");
    assert!(
        challenge(&reply).contains("error=\"use_dpop_nonce\""),
        "{}",
        challenge(&reply)
    );
    let fresh = nonce(&reply);
    fn with_nonce(n: &str) -> Call<'_> {
        Call {
            nonce: Some(n),
            ..Call::default()
        }
    }
    // A stale nonce.
    let reply = server.api("GET", path, Some(&token), None, with_nonce(&stale)).await;
    reply.assert_error(401, "use_dpop_nonce");
    assert!(reply.text.contains("stale"), "{}", reply.text);
    // The fresh one.
    let reply = server.api("GET", path, Some(&token), None, with_nonce(&fresh)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// Two nodes sharing one PostgreSQL: a proof used on one is a replay on the
/// other. (SQLite is one node by design; the test is skipped there.)
#[tokio::test]
async fn replay_is_caught_across_two_nodes_sharing_postgres() {
    if std::env::var(outband_server::store::testing::BACKEND_VAR).as_deref() != Ok("postgres") {
        eprintln!("skipped: needs OUTBAND_TEST_BACKEND=postgres");
        return;
    }
    let node_a = server(NONCES_REQUIRED).await;
    let node_b = node_a.second_node().await;
    let key = key();
    // A nonce made by node A is good on node B (sealed with the shared key file).
    let nonce_a = nonce(&node_a.token_with_proof(CLIENT_CREDENTIALS, None).await);
    let proof = node_a.token_proof(&key, Some(&nonce_a), &json!({}));
    let on_b = node_b.token_with_proof(CLIENT_CREDENTIALS, Some(&proof)).await;
    assert_eq!(on_b.status, 200, "{}", on_b.text);
    let on_a = node_a.token_with_proof(CLIENT_CREDENTIALS, Some(&proof)).await;
    on_a.assert_error(400, "invalid_dpop_proof");
    assert!(on_a.text.contains("jti"), "{}", on_a.text);
    let token = Token {
        access: on_b.json["access_token"].as_str().unwrap().to_owned(),
        refresh: None,
        key: Some(key),
    };
    // The same at the resource API: the token from node B works on node A once per proof.
    let proof = crate::device_support::proof(
        token.key.as_ref().unwrap(),
        node_a.state.now(),
        "GET",
        "/api/payments",
        Some(&token.access),
        Some(&nonce_a),
        &json!({}),
    );
    let raw = |p: &str| Call {
        raw_proof: Some(p.to_owned()),
        ..Call::default()
    };
    let path = "/api/payments?reference=X";
    assert_eq!(
        node_a.api("GET", path, Some(&token), None, raw(&proof)).await.status,
        200
    );
    node_b
        .api("GET", path, Some(&token), None, raw(&proof))
        .await
        .assert_error(401, "invalid_dpop_proof");
}

#[tokio::test]
async fn discovery_names_the_dpop_algs() {
    let server = server("").await;
    let reply = server.get("/.well-known/openid-configuration").await;
    assert_eq!(
        reply.json["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "PS256"])
    );
}

/// RFC 9449 §8: after `use_dpop_nonce` a client resends the same request with a
/// new proof. The refused attempt must not use up its client assertion, else the
/// retry fails as an assertion replay (`invalid_client`).
#[tokio::test]
async fn a_nonce_retry_may_resend_the_same_client_assertion() {
    let server = server(NONCES_REQUIRED).await;
    let client = server
        .add_jwt_client(
            "signer",
            outband_protocol::SigningAlg::ES256,
            outband_protocol::Profile::Oidc,
        )
        .await;
    let assertion = crate::support::client_assertion(&client, "signer", server.state.now(), json!({}));
    let body = format!(
        "{CLIENT_CREDENTIALS}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
         &client_assertion={assertion}"
    );
    let key = key();
    let send = |proof: String| {
        let request = axum::http::Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("DPoP", proof)
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        server.send(request)
    };
    let first = send(server.token_proof(&key, None, &json!({}))).await;
    first.assert_error(400, "use_dpop_nonce");
    let retry = send(server.token_proof(&key, Some(&nonce(&first)), &json!({}))).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.json["token_type"], "DPoP");
    // The assertion is single use all the same.
    let replay = send(server.token_proof(&key, Some(&nonce(&retry)), &json!({}))).await;
    replay.assert_error(401, "invalid_client");
}
