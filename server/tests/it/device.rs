//! The device channel: enrollment, device access tokens and the DPoP checks of
//! RFC 9449 at the token endpoint and the device API, and the pending list.

use axum::body::Body;
use axum::http::{header, Method, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::{jwk_thumbprint, verify_jwt, UnverifiedJwt};
use outband_protocol::{DeliveryMode, SigningAlg};
use outband_server::store::AuditQuery;
use serde_json::json;

use crate::device_support::{device_key, nonce_of, proof, public_jwk, token_request};
use crate::support::{TestServer, ISSUER};

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    server.add_user("bob", None).await;
    server
}

#[tokio::test]
async fn enrollment_stores_the_key_and_a_hashed_credential() {
    let server = server().await;
    let code = server.invite("alice", 600).await;
    let key = device_key(SigningAlg::ES256);
    let reply = server.enroll(&code, public_jwk(&key), "Alice's laptop").await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert!(nonce_of(&reply).is_some(), "every device answer carries a DPoP nonce");
    assert_eq!(reply.json["subject"], "sub-alice");
    assert_eq!(reply.json["username"], "alice");
    assert_eq!(reply.json["issuer"], ISSUER);
    let id = reply.json["device_id"].as_str().unwrap();
    let credential = reply.json["device_credential"].as_str().unwrap();
    assert!(credential.len() >= 43, "256 bits");

    let stored = server.state.store.device(id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Alice's laptop");
    assert_eq!(stored.alg, "ES256");
    assert_eq!(stored.jkt, jwk_thumbprint(key.public_jwk()).unwrap());
    assert_ne!(stored.credential_hash, credential, "only the hash is stored");
    assert!(!stored.public_jwk.contains("\"d\""));
    let audit = server
        .state
        .store
        .audit(&AuditQuery {
            subject: Some("sub-alice".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.event == "device.enrolled" && e.detail["device_id"] == id));
    assert!(!format!("{audit:?}").contains(credential));

    // An EdDSA key works too, and a typed code may carry dashes and lower case.
    let code = server.invite("alice", 600).await;
    let typed = code
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join("-");
    let ed = device_key(SigningAlg::EdDSA);
    let reply = server.enroll(&typed, public_jwk(&ed), "phone").await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let stored = server
        .state
        .store
        .device(reply.json["device_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.alg, "EdDSA");
}

#[tokio::test]
async fn used_expired_and_unknown_codes_get_one_answer() {
    let server = server().await;
    let code = server.invite("alice", 600).await;
    let first = server
        .enroll(&code, public_jwk(&device_key(SigningAlg::ES256)), "a")
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let used = server
        .enroll(&code, public_jwk(&device_key(SigningAlg::ES256)), "b")
        .await;
    used.assert_error(400, "invalid_grant");

    let expiring = server.invite("alice", 60).await;
    server.clock.advance(61);
    let expired = server
        .enroll(&expiring, public_jwk(&device_key(SigningAlg::ES256)), "c")
        .await;
    expired.assert_error(400, "invalid_grant");

    let unknown = server
        .enroll(
            "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345",
            public_jwk(&device_key(SigningAlg::ES256)),
            "d",
        )
        .await;
    unknown.assert_error(400, "invalid_grant");
    assert_eq!(used.json, expired.json, "no oracle");
    assert_eq!(used.json, unknown.json, "no oracle");
}

#[tokio::test]
async fn private_unsupported_and_duplicate_keys_are_refused() {
    let server = server().await;
    let code = server.invite("alice", 600).await;
    let private = SigningAlg::ES256.generate_private_jwk().unwrap();
    let reply = server
        .enroll(&code, serde_json::Value::Object(private.as_ref().clone()), "x")
        .await;
    reply.assert_error(400, "invalid_request");
    assert!(reply.text.contains("public"), "{}", reply.text);
    let rsa = device_key(SigningAlg::PS256);
    server
        .enroll(&code, public_jwk(&rsa), "x")
        .await
        .assert_error(400, "invalid_request");
    server
        .enroll(
            &code,
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
            "x",
        )
        .await
        .assert_error(400, "invalid_request");
    let key = device_key(SigningAlg::ES256);
    server
        .enroll(&code, public_jwk(&key), "")
        .await
        .assert_error(400, "invalid_request");
    // A refused key does not use up the code.
    let reply = server.enroll(&code, public_jwk(&key), "laptop").await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    let again = server.invite("alice", 600).await;
    let duplicate = server.enroll(&again, public_jwk(&key), "laptop 2").await;
    duplicate.assert_error(400, "invalid_request");
    assert!(duplicate.text.contains("already enrolled"), "{}", duplicate.text);
    // Malformed bodies are OAuth errors too.
    let reply = server
        .send(
            Request::post("/device/v1/enroll")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    reply.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn device_tokens_need_a_fresh_proof_by_the_device_key() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let token = device.token.clone().unwrap();
    let stored = server
        .state
        .store
        .device_token(&outband_protocol::AccessToken::new(token.as_str()).hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.device_id, device.id);
    let now = server.state.now();
    assert_eq!(stored.expires_at, now + 300);

    // Without a nonce: use_dpop_nonce with a fresh nonce, then success with it.
    let no_nonce = proof(&device.key, now, "POST", "/device/v1/token", None, None, &json!({}));
    let reply = token_request(&server, &device.credential, Some(&no_nonce)).await;
    reply.assert_error(400, "use_dpop_nonce");
    let nonce = nonce_of(&reply).expect("a DPoP-Nonce header");
    let with_nonce = proof(
        &device.key,
        now,
        "POST",
        "/device/v1/token",
        None,
        Some(&nonce),
        &json!({}),
    );
    let reply = token_request(&server, &device.credential, Some(&with_nonce)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["token_type"], "DPoP");
    assert_eq!(reply.json["expires_in"], 300);
    assert!(nonce_of(&reply).is_some());
    // The same proof again.
    token_request(&server, &device.credential, Some(&with_nonce))
        .await
        .assert_error(400, "invalid_dpop_proof");

    let bad = |overrides: serde_json::Value| {
        proof(
            &device.key,
            now,
            "POST",
            "/device/v1/token",
            None,
            Some(&nonce),
            &overrides,
        )
    };
    for (what, proof) in [
        ("htm", bad(json!({"htm": "GET"}))),
        ("htu", bad(json!({"htu": format!("{ISSUER}/device/v1/requests")}))),
        ("htu host", bad(json!({"htu": "https://evil.example/device/v1/token"}))),
        ("stale iat", bad(json!({"iat": now - 61}))),
        ("future iat", bad(json!({"iat": now + 61}))),
        ("no jti", bad(json!({"jti": null}))),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let reply = token_request(&server, &device.credential, Some(&proof)).await;
        assert_eq!(reply.json["error"], "invalid_dpop_proof", "{what}: {}", reply.text);
        assert_eq!(reply.status, 400, "{what}");
    }
    // The htu compares normalised: case and default port do not matter.
    let normalised = bad(json!({"htu": "HTTPS://AS.example.test:443/device/v1/token?x=1"}));
    assert_eq!(
        token_request(&server, &device.credential, Some(&normalised))
            .await
            .status,
        200
    );

    // alg none, with a well-formed header and claims.
    let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(&device.key)});
    let claims =
        json!({"htm": "POST", "htu": format!("{ISSUER}/device/v1/token"), "iat": now, "jti": "none-1", "nonce": nonce});
    let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!("{}.{}.", encode(&header), encode(&claims));
    token_request(&server, &device.credential, Some(&none))
        .await
        .assert_error(400, "invalid_dpop_proof");
    // No proof at all.
    token_request(&server, &device.credential, None)
        .await
        .assert_error(400, "invalid_dpop_proof");

    // A valid proof by another key: the credential alone is not enough.
    let other = device_key(SigningAlg::ES256);
    let stranger = proof(&other, now, "POST", "/device/v1/token", None, Some(&nonce), &json!({}));
    let reply = token_request(&server, &device.credential, Some(&stranger)).await;
    reply.assert_error(401, "invalid_client");
    // An unknown credential.
    let reply = token_request(&server, "not-a-credential", Some(&bad(json!({})))).await;
    reply.assert_error(401, "invalid_client");

    // A form body works as well.
    let form = bad(json!({}));
    let reply = server
        .send(
            Request::post("/device/v1/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("DPoP", form)
                .body(Body::from(format!("device_credential={}", device.credential)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Nonces go stale after five minutes.
    server.clock.advance(301);
    let stale = proof(
        &device.key,
        server.state.now(),
        "POST",
        "/device/v1/token",
        None,
        Some(&nonce),
        &json!({}),
    );
    let reply = token_request(&server, &device.credential, Some(&stale)).await;
    reply.assert_error(400, "use_dpop_nonce");
    device.nonce = nonce_of(&reply);
    // A revoked device gets nothing.
    assert!(server
        .state
        .store
        .revoke_device(&device.id, server.state.now())
        .await
        .unwrap());
    let reply = device.fetch_token(&server).await;
    reply.assert_error(401, "invalid_client");
    assert_eq!(reply.json["error_description"], "device revoked");
}

#[tokio::test]
async fn the_device_api_needs_dpop_with_ath_and_a_nonce() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    assert_eq!(
        device
            .call(&server, Method::GET, "/device/v1/requests", None)
            .await
            .status,
        200
    );
    let token = device.token.clone().unwrap();
    let path = "/device/v1/requests";
    let send = |auth: String, proof: Option<String>| {
        let mut request = Request::get(path).header(header::AUTHORIZATION, auth);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        server.send(request.body(Body::empty()).unwrap())
    };
    let challenge =
        |reply: &crate::support::Reply| reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();

    // No ath.
    let no_ath = device.proof(&server, "GET", path, &json!({"ath": null}));
    let reply = send(format!("DPoP {token}"), Some(no_ath)).await;
    reply.assert_error(401, "invalid_dpop_proof");
    assert!(
        challenge(&reply).starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{}",
        challenge(&reply)
    );
    // The token as a Bearer token.
    let reply = send(
        format!("Bearer {token}"),
        Some(device.proof(&server, "GET", path, &json!({}))),
    )
    .await;
    reply.assert_error(401, "invalid_token");
    assert!(challenge(&reply).starts_with("DPoP "));
    // No proof.
    send(format!("DPoP {token}"), None)
        .await
        .assert_error(401, "invalid_dpop_proof");
    // No nonce: use_dpop_nonce in the challenge, a nonce in the header.
    let no_nonce = device.proof(&server, "GET", path, &json!({"nonce": null}));
    let reply = send(format!("DPoP {token}"), Some(no_nonce)).await;
    reply.assert_error(401, "use_dpop_nonce");
    assert!(challenge(&reply).contains("error=\"use_dpop_nonce\""));
    assert!(nonce_of(&reply).is_some());
    // A proof by another key with the right ath and nonce.
    let other = device_key(SigningAlg::ES256);
    let stranger = proof(
        &other,
        server.state.now(),
        "GET",
        path,
        Some(&token),
        device.nonce.as_deref(),
        &json!({}),
    );
    send(format!("DPoP {token}"), Some(stranger))
        .await
        .assert_error(401, "invalid_dpop_proof");
    // Wrong htm at the API.
    let wrong = device.proof(&server, "POST", path, &json!({}));
    send(format!("DPoP {token}"), Some(wrong))
        .await
        .assert_error(401, "invalid_dpop_proof");
    // An unknown token.
    let unknown = proof(
        &device.key,
        server.state.now(),
        "GET",
        path,
        Some("nope"),
        device.nonce.as_deref(),
        &json!({}),
    );
    send("DPoP nope".into(), Some(unknown))
        .await
        .assert_error(401, "invalid_token");

    // Tokens expire after 300 s (the nonce after 300 s too: get both anew).
    server.clock.advance(250);
    assert_eq!(device.call(&server, Method::GET, path, None).await.status, 200);
    server.clock.advance(51);
    let reply = device.call(&server, Method::GET, path, None).await;
    reply.assert_error(401, "invalid_token");
    assert!(reply.text.contains("expired"), "{}", reply.text);
    assert_eq!(device.fetch_token(&server).await.status, 200);
    assert_eq!(device.call(&server, Method::GET, path, None).await.status, 200);
    let seen = server.state.store.device(&device.id).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, Some(server.state.now()));
    // Only the pending list exists.
    let reply = device
        .call(&server, Method::GET, "/device/v1/requests?state=approved", None)
        .await;
    reply.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn the_pending_list_shows_the_users_requests_as_signed_jwts() {
    let server = server().await;
    let mut alice = server.enrolled_device("alice").await;
    let mut bob = server.enrolled_device("bob").await;
    assert!(alice.pending(&server).await.is_empty());
    let reply = server
        .bc_authorize(
            "pos",
            "scope=openid%20payments&login_hint=alice&binding_message=CAFE-7Q2K",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    let record = server.ciba_request(&auth_req_id).await;

    let pending = alice.pending(&server).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], record.id.as_str());
    assert_eq!(pending[0]["expires_at"], record.expires_at);
    let jwt = pending[0]["request_jwt"].as_str().unwrap();
    let verified = verify_jwt(jwt, &server.jwks().await, &[SigningAlg::ES256]).unwrap();
    assert_eq!(verified.claims["binding_message"], "CAFE-7Q2K");
    assert_eq!(verified.claims["sub"], "sub-alice");
    assert_eq!(verified.claims["aud"], "urn:outband:device");
    assert_eq!(
        UnverifiedJwt::decode(jwt).unwrap().typ(),
        Some("outband-ciba-request+jwt")
    );
    assert!(
        !pending[0].to_string().contains(&auth_req_id),
        "devices never see auth_req_id"
    );
    assert!(bob.pending(&server).await.is_empty(), "bob sees nothing of alice's");

    server.decide(&auth_req_id, false).await;
    assert!(alice.pending(&server).await.is_empty());
}

#[tokio::test]
async fn malformed_input_never_gets_a_server_error() {
    let server = server().await;
    let device = server.enrolled_device("alice").await;
    let token = device.token.clone().unwrap();
    let encode = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let odd_proofs = [
        "a.b.c".to_owned(),
        "...".to_owned(),
        format!(
            "{}.{}.AAAA",
            encode(json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": {"kty": "RSA", "n": "AA", "e": "AQAB"}})),
            encode(json!({}))
        ),
        format!(
            "{}.{}.AAAA",
            encode(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": "not a jwk"})),
            encode(json!([]))
        ),
        format!(
            "{}.{}.AAAA",
            encode(json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "%%"}})),
            encode(json!({"iat": "soon"}))
        ),
        "é".repeat(2000),
    ];
    let mut requests = Vec::new();
    for body in ["", "[]", "null", "{\"activation_code\":1}", "{\"activation_code\":\"x\",\"public_jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"!!\",\"y\":\"??\"},\"name\":\"n\"}"] {
        for content_type in ["application/json", "application/x-www-form-urlencoded", "text/plain"] {
            for path in ["/device/v1/enroll", "/device/v1/token"] {
                requests.push(
                    Request::post(path)
                        .header(header::CONTENT_TYPE, content_type)
                        .body(Body::from(body))
                        .unwrap(),
                );
            }
        }
    }
    for proof in &odd_proofs {
        let Ok(value) = axum::http::HeaderValue::from_str(proof) else {
            continue;
        };
        requests.push(
            Request::post("/device/v1/token")
                .header(header::CONTENT_TYPE, "application/json")
                .header("DPoP", value.clone())
                .body(Body::from(json!({"device_credential": device.credential}).to_string()))
                .unwrap(),
        );
        for (method, path) in [
            (Method::GET, "/device/v1/requests?state=%FF"),
            (Method::GET, "/device/v1/events"),
            (Method::POST, "/device/v1/requests/%FF%FE/decision"),
            (Method::DELETE, "/device/v1/device"),
        ] {
            requests.push(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::AUTHORIZATION, format!("DPoP {token}"))
                    .header("DPoP", value.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{\"decision_jwt\": 5}"))
                    .unwrap(),
            );
        }
    }
    for request in requests {
        let what = format!("{} {}", request.method(), request.uri());
        let reply = server.send(request).await;
        assert!(
            reply.status.is_client_error(),
            "{what}: {} {}",
            reply.status,
            reply.text
        );
        assert!(reply.json["error"].is_string(), "{what}: {}", reply.text);
    }
    // Garbage decision JWTs from a properly authenticated device.
    let mut device = device;
    let (auth_req_id, id) = {
        let reply = server.bc_authorize("pos", "scope=openid&login_hint=alice").await;
        let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
        let id = server.ciba_request(&auth_req_id).await.id;
        (auth_req_id, id)
    };
    for jwt in ["", "x", "a.b.c", &odd_proofs[2], &"A".repeat(10_000)] {
        let reply = device.post_decision(&server, &id, jwt).await;
        reply.assert_error(400, "invalid_request");
    }
    server
        .poll("pos", &auth_req_id)
        .await
        .assert_error(400, "authorization_pending");
}
