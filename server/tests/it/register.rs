//! Dynamic client registration (RFC 7591) and client configuration (RFC 7592).

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::jose::SigningKey;
use outband_protocol::{AccessToken, ClientId, ClientMetadata, ClientSecret, SigningAlg};
use outband_server::state::client_record;
use serde_json::{json, Value};

use crate::support::{client_assertion, ClientKey, Reply, TestServer, ISSUER, T0};

const REGISTRATION: &str = "[registration]\nenabled = true\n";

async fn call(server: &TestServer, method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    server.send(request.body(body).unwrap()).await
}

async fn register(server: &TestServer, body: &Value) -> Reply {
    call(server, "POST", "/register", Some(body), None).await
}

fn secret_client() -> Value {
    json!({
        "client_name": "Corner Café",
        "grant_types": ["client_credentials"],
        "scope": "payments accounts",
        "token_endpoint_auth_method": "client_secret_basic",
        "logo_uri": "https://shop.example/logo.png",
        "software_version": "4.2",
    })
}

fn es256_key() -> SigningKey {
    SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256).unwrap()
}

fn public_jwks(key: &SigningKey) -> Value {
    json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] })
}

async fn client_credentials(server: &TestServer, id: &str, secret: &str) -> Reply {
    server
        .post_form(
            "/token",
            "grant_type=client_credentials&scope=payments",
            Some((id, secret)),
        )
        .await
}

#[tokio::test]
async fn registration_is_off_unless_enabled() {
    let server = TestServer::new().await;
    register(&server, &secret_client()).await.assert_error(404, "not_found");
    let discovery = server.get("/.well-known/openid-configuration").await.json;
    assert!(discovery.get("registration_endpoint").is_none());
    let on = TestServer::with_config(REGISTRATION).await;
    let discovery = on.get("/.well-known/openid-configuration").await.json;
    assert_eq!(discovery["registration_endpoint"], format!("{ISSUER}/register"));
}

#[tokio::test]
async fn a_registered_client_gets_tokens_and_the_same_record_as_the_cli() {
    let server = TestServer::with_config(REGISTRATION).await;
    let reply = register(&server, &secret_client()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    let body = &reply.json;
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    assert!(id.len() >= 22 && secret.len() >= 22, "{body}");
    assert_eq!(body["client_id_issued_at"], T0);
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["registration_client_uri"], format!("{ISSUER}/register/{id}"));
    assert_eq!(body["client_name"], "Corner Café");
    assert_eq!(body["scope"], "payments accounts");
    assert_eq!(body["grant_types"], json!(["client_credentials"]));
    assert_eq!(body["profile"], "oidc");
    assert_eq!(body["logo_uri"], "https://shop.example/logo.png");
    assert!(
        body.get("software_version").is_none(),
        "unknown metadata is not echoed: {body}"
    );
    let token = body["registration_access_token"].as_str().unwrap();

    // The record is what the CLI would have stored for the same metadata and secret.
    let stored = server.state.store.client(&ClientId::new(id)).await.unwrap().unwrap();
    let metadata: ClientMetadata = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(stored, client_record(metadata, Some(&ClientSecret::new(secret)), T0));
    let registration = server
        .state
        .store
        .registration(&ClientId::new(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registration.access_token_hash, AccessToken::new(token).hash());
    assert_ne!(registration.access_token_hash, token, "stored hashed");

    let tokens = client_credentials(&server, id, secret).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.json["scope"], "payments");
}

#[tokio::test]
async fn a_private_key_jwt_client_registers_without_a_secret_and_authenticates() {
    let server = TestServer::with_config(REGISTRATION).await;
    let key = es256_key();
    let reply = register(
        &server,
        &json!({
            "grant_types": ["client_credentials", "urn:openid:params:grant-type:ciba"],
            "backchannel_token_delivery_mode": "poll",
            "scope": "payments",
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": public_jwks(&key),
            "profile": "fapi-ciba",
            "authorization_details_types": ["payment_initiation"],
        }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(reply.json.get("client_secret").is_none());
    assert!(reply.json.get("client_secret_expires_at").is_none());
    assert_eq!(reply.json["authorization_details_types"], json!(["payment_initiation"]));
    assert_eq!(reply.json["profile"], "fapi-ciba");

    let oidc = register(
        &server,
        &json!({
            "grant_types": ["client_credentials"], "scope": "payments",
            "token_endpoint_auth_method": "private_key_jwt", "jwks": public_jwks(&key),
            "client_uri": "https://shop.example/", "logo_uri": "https://shop.example/logo.png",
            "policy_uri": "https://shop.example/privacy", "tos_uri": "https://shop.example/terms",
            "contacts": ["ops@shop.example"], "subject_type": "public",
        }),
    )
    .await;
    assert_eq!(oidc.status, 201, "{}", oidc.text);
    // RFC 7591 §3.2.1: the registered metadata comes back.
    for (field, value) in [
        ("client_uri", json!("https://shop.example/")),
        ("logo_uri", json!("https://shop.example/logo.png")),
        ("policy_uri", json!("https://shop.example/privacy")),
        ("tos_uri", json!("https://shop.example/terms")),
        ("contacts", json!(["ops@shop.example"])),
        ("subject_type", json!("public")),
    ] {
        assert_eq!(oidc.json[field], value, "{field}: {}", oidc.text);
    }
    let id = oidc.json["client_id"].as_str().unwrap();
    let assertion = client_assertion(&ClientKey { key }, id, T0, json!({ "aud": format!("{ISSUER}/token") }));
    let body = format!(
        "grant_type=client_credentials&scope=payments&client_id={id}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    );
    let tokens = server.post_form("/token", &body, None).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
}

#[tokio::test]
async fn a_client_registered_without_scope_gets_the_supported_scopes() {
    let server = TestServer::with_config(REGISTRATION).await;
    server.add_user("alice", None).await;
    // As the OpenID conformance suite's FAPI-CIBA dynamic clients do: no `scope`.
    let reply = register(
        &server,
        &json!({
            "grant_types": ["urn:openid:params:grant-type:ciba"],
            "backchannel_token_delivery_mode": "poll",
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let discovery = server.get("/.well-known/openid-configuration").await.json;
    let supported: Vec<&str> = discovery["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(supported.contains(&"profile"), "{supported:?}");
    assert_eq!(reply.json["scope"], supported.join(" "));
    let id = reply.json["client_id"].as_str().unwrap();
    let secret = reply.json["client_secret"].as_str().unwrap();
    let stored = server.state.store.client(&ClientId::new(id)).await.unwrap().unwrap();
    assert_eq!(stored.metadata.scope.as_str(), supported.join(" "));

    let started = server
        .post_form(
            "/bc-authorize",
            "scope=openid%20profile%20email&login_hint=alice",
            Some((id, secret)),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert!(started.json["auth_req_id"].is_string());

    // A scope given is kept as it is.
    let explicit = register(
        &server,
        &json!({
            "grant_types": ["urn:openid:params:grant-type:ciba"],
            "backchannel_token_delivery_mode": "poll",
            "scope": "openid",
        }),
    )
    .await;
    assert_eq!(explicit.status, 201, "{}", explicit.text);
    assert_eq!(explicit.json["scope"], "openid");
    let (id, secret) = (
        explicit.json["client_id"].as_str().unwrap(),
        explicit.json["client_secret"].as_str().unwrap(),
    );
    server
        .post_form(
            "/bc-authorize",
            "scope=openid%20profile&login_hint=alice",
            Some((id, secret)),
        )
        .await
        .assert_error(400, "invalid_scope");
}

#[tokio::test]
async fn every_metadata_error_names_the_field() {
    let server = TestServer::with_config(REGISTRATION).await;
    let jwks = public_jwks(&es256_key());
    let jwt_client = |extra: Value| {
        let mut body = json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks.clone(),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            json!({"profile": "fapi2-security", "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
            "token_endpoint_auth_method: client_secret_basic is not allowed under the fapi2-security profile",
        ),
        (
            jwt_client(json!({"profile": "fapi1-advanced", "token_endpoint_auth_signing_alg": "RS256"})),
            "invalid_client_metadata",
            "token_endpoint_auth_signing_alg: RS256",
        ),
        (
            jwt_client(json!({"token_endpoint_auth_signing_alg": "none"})),
            "invalid_client_metadata",
            "token_endpoint_auth_signing_alg:",
        ),
        (
            jwt_client(json!({"profile": "fapi1-advanced", "id_token_signed_response_alg": "RS256"})),
            "invalid_client_metadata",
            "id_token_signed_response_alg: RS256",
        ),
        (
            jwt_client(json!({"profile": "fapi1-advanced", "authorization_signed_response_alg": "RS256"})),
            "invalid_client_metadata",
            "authorization_signed_response_alg: RS256",
        ),
        (
            jwt_client(json!({"profile": "fapi2-message-signing", "userinfo_signed_response_alg": "RS256"})),
            "invalid_client_metadata",
            "userinfo_signed_response_alg: RS256",
        ),
        (
            jwt_client(json!({"profile": "fapi2-message-signing", "introspection_signed_response_alg": "RS256"})),
            "invalid_client_metadata",
            "introspection_signed_response_alg: RS256",
        ),
        (
            jwt_client(json!({"profile": "fapi2-security", "request_object_signing_alg": "RS256"})),
            "invalid_client_metadata",
            "request_object_signing_alg: RS256",
        ),
        (
            jwt_client(json!({"response_types": ["code", "token"]})),
            "invalid_client_metadata",
            "response_types: \"token\"",
        ),
        (
            jwt_client(json!({"userinfo_signed_response_alg": "none"})),
            "invalid_client_metadata",
            "userinfo_signed_response_alg:",
        ),
        (
            jwt_client(json!({
                "profile": "fapi-ciba", "grant_types": ["urn:openid:params:grant-type:ciba"],
                "backchannel_token_delivery_mode": "push",
                "backchannel_client_notification_endpoint": "https://shop.example/cb",
            })),
            "invalid_client_metadata",
            "backchannel_token_delivery_mode: push is not allowed under the fapi-ciba profile",
        ),
        (
            jwt_client(json!({"grant_types": ["urn:openid:params:grant-type:ciba"]})),
            "invalid_client_metadata",
            "backchannel_token_delivery_mode: required",
        ),
        (
            jwt_client(json!({"profile": "fapi1-advanced", "redirect_uris": ["http://shop.example/cb"]})),
            "invalid_redirect_uri",
            "redirect_uris: http://shop.example/cb must be https under the fapi1-advanced profile",
        ),
        (
            jwt_client(json!({"redirect_uris": ["https://shop.example/cb#frag"]})),
            "invalid_redirect_uri",
            "redirect_uris: https://shop.example/cb#frag must not have a fragment",
        ),
        (
            jwt_client(json!({"redirect_uris": ["not a url"]})),
            "invalid_redirect_uri",
            "redirect_uris[0]:",
        ),
        (
            jwt_client(json!({"scope": "payments introspection"})),
            "invalid_client_metadata",
            "scope: introspection cannot be registered here",
        ),
        (
            jwt_client(json!({"logo_uri": "http://shop.example/logo.png"})),
            "invalid_client_metadata",
            "logo_uri: http://shop.example/logo.png must be an absolute https URL",
        ),
        (
            jwt_client(json!({"logo_uri": "https://a.example;sandbox/l.png"})),
            "invalid_client_metadata",
            "logo_uri: https://a.example;sandbox/l.png must be an absolute https URL",
        ),
        (
            jwt_client(json!({"logo_uri": "https://*.example/l.png"})),
            "invalid_client_metadata",
            "logo_uri: https://*.example/l.png must be an absolute https URL",
        ),
        (
            jwt_client(json!({"tos_uri": "terms.html"})),
            "invalid_client_metadata",
            "tos_uri: terms.html must be an absolute https URL",
        ),
        (
            jwt_client(json!({"contacts": ["nobody"]})),
            "invalid_client_metadata",
            "contacts: \"nobody\" is not an e-mail address",
        ),
        (
            jwt_client(json!({"subject_type": "pairwise"})),
            "invalid_client_metadata",
            "subject_type: \"pairwise\" is not supported",
        ),
        (
            jwt_client(json!({"grant_types": ["authorization_code"]})),
            "invalid_redirect_uri",
            "redirect_uris: required for the authorization_code grant",
        ),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
            "redirect_uris: required for the authorization_code grant",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
            "jwks: private_key_jwt needs the client's public keys",
        ),
        (
            jwt_client(json!({"jwks_uri": "https://shop.example/jwks"})),
            "invalid_client_metadata",
            "jwks_uri: give jwks or jwks_uri, not both",
        ),
        (
            json!({"token_endpoint_auth_method": "magic"}),
            "invalid_client_metadata",
            "token_endpoint_auth_method:",
        ),
        (
            json!({"grant_types": ["password"]}),
            "invalid_client_metadata",
            "grant_types[0]:",
        ),
        (
            json!({"grant_types": ["client_credentials"], "authorization_details_types": ["crypto_transfer"]}),
            "invalid_client_metadata",
            "authorization_details_types: unknown type \"crypto_transfer\"",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "tls_client_auth",
                   "tls_client_auth_subject_dn": "CN=shop"}),
            "invalid_client_metadata",
            "token_endpoint_auth_method: tls_client_auth is not supported by this server",
        ),
        (
            jwt_client(json!({
                "grant_types": ["urn:openid:params:grant-type:ciba"], "backchannel_token_delivery_mode": "ping",
                "backchannel_client_notification_endpoint": "http://10.0.0.7/cb",
            })),
            "invalid_client_metadata",
            "backchannel_client_notification_endpoint: plain http is not allowed",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                   "jwks_uri": "https://169.254.169.254/keys"}),
            "invalid_client_metadata",
            "jwks_uri: 169.254.169.254 is a",
        ),
        (
            json!({"grant_types": []}),
            "invalid_client_metadata",
            "grant_types: at least one grant type is required",
        ),
    ];
    for (body, code, description) in cases {
        let reply = register(&server, &body).await;
        reply.assert_error(400, code);
        let text = reply.json["error_description"].as_str().unwrap();
        assert!(text.starts_with(description), "{body}: {text}");
    }
    let not_an_object = call(&server, "POST", "/register", Some(&json!(["client_credentials"])), None).await;
    not_an_object.assert_error(400, "invalid_client_metadata");
    let form = server.post_form("/register", "client_name=x", None).await;
    form.assert_error(400, "invalid_request");
    assert!(server.state.store.list_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_initial_access_token_gates_registration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("initial-access-token");
    let initial = "an-initial-access-token-of-at-least-32-characters";
    std::fs::write(&path, format!("{initial}\n")).unwrap();
    let server = TestServer::with_config(&format!(
        "{REGISTRATION}initial_access_token_file = {:?}\n",
        path.display().to_string()
    ))
    .await;
    let missing = register(&server, &secret_client()).await;
    missing.assert_error(401, "invalid_token");
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"outband\"");
    let wrong = call(
        &server,
        "POST",
        "/register",
        Some(&secret_client()),
        Some("not-the-token"),
    )
    .await;
    wrong.assert_error(401, "invalid_token");
    assert!(wrong.headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    let right = call(&server, "POST", "/register", Some(&secret_client()), Some(initial)).await;
    assert_eq!(right.status, 201, "{}", right.text);
}

/// A directory's software statement over `claims` (with `iss` and `iat` unless overridden).
fn statement(key: &SigningKey, claims: Value) -> String {
    let mut all = json!({ "iss": "https://directory.example", "iat": T0 - 10, "software_id": "shop-app" });
    for (k, v) in claims.as_object().unwrap() {
        if v.is_null() {
            all.as_object_mut().unwrap().remove(k);
        } else {
            all[k] = v.clone();
        }
    }
    key.sign(None, all.as_object().unwrap()).unwrap()
}

#[tokio::test]
async fn software_statements_are_required_verified_and_win_over_the_body() {
    let directory = es256_key();
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("directory.jwks");
    std::fs::write(&jwks_path, public_jwks(&directory).to_string()).unwrap();
    let server = TestServer::with_config(&format!(
        "{REGISTRATION}software_statement_jwks_file = {:?}\nrequire_software_statement = true\n",
        jwks_path.display().to_string()
    ))
    .await;
    register(&server, &secret_client())
        .await
        .assert_error(400, "invalid_software_statement");

    let approved = statement(
        &directory,
        json!({ "client_name": "Directory Name", "scope": "payments", "grant_types": ["client_credentials"] }),
    );
    let mut body = secret_client();
    body["client_name"] = json!("Body Name");
    body["scope"] = json!("payments accounts refunds");
    body["software_statement"] = json!(approved);
    let reply = register(&server, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["client_name"], "Directory Name");
    assert_eq!(reply.json["scope"], "payments");
    assert_eq!(reply.json["software_statement"], approved);
    let id = reply.json["client_id"].as_str().unwrap().to_owned();
    let query = outband_server::store::AuditQuery {
        client_id: Some(id),
        limit: 10,
        ..Default::default()
    };
    let events = server.state.store.audit(&query).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "client.registered");
    assert_eq!(events[0].detail["software_statement_iss"], "https://directory.example");
    assert!(reply.json.get("software_id").is_none());

    let stranger = es256_key();
    let cases = [
        (statement(&stranger, json!({})), "unapproved_software_statement"),
        (
            statement(&directory, json!({ "exp": T0 - 3600 })),
            "invalid_software_statement",
        ),
        (
            statement(&directory, json!({ "iat": T0 + 3600 })),
            "invalid_software_statement",
        ),
        (
            statement(&directory, json!({ "iss": null })),
            "invalid_software_statement",
        ),
        (
            "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.".to_owned(),
            "invalid_software_statement",
        ),
        ("not-a-jwt".to_owned(), "invalid_software_statement"),
    ];
    for (jwt, code) in cases {
        let mut body = secret_client();
        body["software_statement"] = json!(jwt);
        let reply = register(&server, &body).await;
        reply.assert_error(400, code);
        assert!(reply.json["error_description"]
            .as_str()
            .unwrap()
            .starts_with("software_statement:"));
    }
    assert_eq!(server.state.store.list_clients().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_registration_access_token_reads_rotates_and_deletes() {
    let server = TestServer::with_config(REGISTRATION).await;
    let created = register(&server, &secret_client()).await.json;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let token = created["registration_access_token"].as_str().unwrap().to_owned();
    let uri = format!("/register/{id}");

    // Read: only with the token, and an unknown client looks the same as a wrong token.
    call(&server, "GET", &uri, None, None)
        .await
        .assert_error(401, "invalid_token");
    call(&server, "GET", &uri, None, Some("wrong"))
        .await
        .assert_error(401, "invalid_token");
    call(&server, "GET", "/register/nobody", None, Some(&token))
        .await
        .assert_error(401, "invalid_token");
    call(&server, "GET", "/register/%FF", None, Some(&token))
        .await
        .assert_error(400, "invalid_request");
    let read = call(&server, "GET", &uri, None, Some(&token)).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json["client_name"], "Corner Café");
    assert_eq!(read.json["registration_client_uri"], format!("{ISSUER}{uri}"));
    assert!(read.json.get("client_secret").is_none() && read.json.get("registration_access_token").is_none());

    // Update: the client_id must be given, the secret cannot be chosen, the token rotates.
    let mut update = secret_client();
    update["client_name"] = json!("Corner Café & Bakery");
    update["scope"] = json!("payments");
    call(&server, "PUT", &uri, Some(&update), Some(&token))
        .await
        .assert_error(400, "invalid_client_metadata");
    update["client_id"] = json!(id);
    update["client_secret"] = json!("my-own-secret");
    let chosen = call(&server, "PUT", &uri, Some(&update), Some(&token)).await;
    chosen.assert_error(400, "invalid_client_metadata");
    assert!(chosen.json["error_description"]
        .as_str()
        .unwrap()
        .starts_with("client_secret"));
    update["client_secret"] = json!(secret);
    let updated = call(&server, "PUT", &uri, Some(&update), Some(&token)).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["client_name"], "Corner Café & Bakery");
    assert!(updated.json.get("client_secret").is_none(), "the secret stays");
    let rotated = updated.json["registration_access_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, token);
    call(&server, "GET", &uri, None, Some(&token))
        .await
        .assert_error(401, "invalid_token");
    call(&server, "PUT", &uri, Some(&update), Some(&token))
        .await
        .assert_error(401, "invalid_token");
    let stored = server
        .state
        .store
        .client(&ClientId::new(id.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.metadata.client_name.as_deref(), Some("Corner Café & Bakery"));
    assert_eq!(stored.created_at, T0);

    // Delete: the client and its tokens are gone.
    let issued = client_credentials(&server, &id, &secret).await;
    assert_eq!(issued.status, 200, "the old secret still works: {}", issued.text);
    let access_token = issued.json["access_token"].as_str().unwrap().to_owned();
    server
        .add_secret_client(
            "rs",
            "rs-secret",
            outband_protocol::TokenEndpointAuthMethod::ClientSecretBasic,
            "introspection",
        )
        .await;
    let introspect = |token: String| {
        let server = &server;
        async move {
            let body = format!("token={token}");
            server
                .post_form("/introspect", &body, Some(("rs", "rs-secret")))
                .await
                .json["active"]
                .clone()
        }
    };
    assert_eq!(introspect(access_token.clone()).await, true);
    call(&server, "DELETE", &uri, None, Some(&token))
        .await
        .assert_error(401, "invalid_token");
    let deleted = call(&server, "DELETE", &uri, None, Some(&rotated)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(server
        .state
        .store
        .client(&ClientId::new(id.as_str()))
        .await
        .unwrap()
        .is_none());
    assert!(server
        .state
        .store
        .registration(&ClientId::new(id.as_str()))
        .await
        .unwrap()
        .is_none());
    assert_eq!(introspect(access_token).await, false);
    call(&server, "GET", &uri, None, Some(&rotated))
        .await
        .assert_error(401, "invalid_token");
    client_credentials(&server, &id, &secret)
        .await
        .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn clients_made_elsewhere_cannot_be_managed_and_switching_to_a_secret_issues_one() {
    let server = TestServer::with_config(REGISTRATION).await;
    server
        .add_secret_client(
            "cli-client",
            "cli-secret",
            outband_protocol::TokenEndpointAuthMethod::ClientSecretBasic,
            "",
        )
        .await;
    call(&server, "GET", "/register/cli-client", None, Some("anything"))
        .await
        .assert_error(401, "invalid_token");

    let key = es256_key();
    let created = register(
        &server,
        &json!({"grant_types": ["client_credentials"], "scope": "payments",
                "token_endpoint_auth_method": "private_key_jwt", "jwks": public_jwks(&key)}),
    )
    .await
    .json;
    let id = created["client_id"].as_str().unwrap();
    let token = created["registration_access_token"].as_str().unwrap();
    let switched = call(
        &server,
        "PUT",
        &format!("/register/{id}"),
        Some(&json!({"client_id": id, "grant_types": ["client_credentials"], "scope": "payments"})),
        Some(token),
    )
    .await;
    assert_eq!(switched.status, 200, "{}", switched.text);
    assert_eq!(switched.json["token_endpoint_auth_method"], "client_secret_basic");
    assert!(switched.json.get("jwks").is_none(), "omitted metadata is removed");
    let secret = switched.json["client_secret"].as_str().unwrap();
    let tokens = client_credentials(&server, id, secret).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
}

#[tokio::test]
async fn of_two_updates_with_one_token_only_one_wins() {
    let server = TestServer::with_config(REGISTRATION).await;
    let created = register(&server, &secret_client()).await.json;
    let id = created["client_id"].as_str().unwrap();
    let token = created["registration_access_token"].as_str().unwrap();
    let uri = format!("/register/{id}");
    let mut update = secret_client();
    update["client_id"] = json!(id);
    let (a, b) = tokio::join!(
        call(&server, "PUT", &uri, Some(&update), Some(token)),
        call(&server, "PUT", &uri, Some(&update), Some(token)),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
    let winner = if a.status == 200 { &a } else { &b };
    let current = winner.json["registration_access_token"].as_str().unwrap();
    let registration = server
        .state
        .store
        .registration(&ClientId::new(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registration.access_token_hash, AccessToken::new(current).hash());
}

#[tokio::test]
async fn every_profile_registers_a_private_key_jwt_client() {
    let server = TestServer::with_config(REGISTRATION).await;
    let key = es256_key();
    for (profile, alg) in [
        ("oidc", "ES256"),
        ("fapi1-baseline", "ES256"),
        ("fapi1-advanced", "PS256"),
        ("fapi2-security", "ES256"),
        ("fapi2-message-signing", "EdDSA"),
        ("fapi-ciba", "PS256"),
        ("openbanking-br", "PS256"),
    ] {
        let reply = register(
            &server,
            &json!({
                "profile": profile,
                "grant_types": ["client_credentials", "refresh_token"],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": alg,
                "id_token_signed_response_alg": "PS256",
                "jwks": public_jwks(&key),
                "redirect_uris": ["https://shop.example/cb"],
            }),
        )
        .await;
        assert_eq!(reply.status, 201, "{profile}: {}", reply.text);
        assert_eq!(reply.json["profile"], profile);
        assert_eq!(reply.json["token_endpoint_auth_signing_alg"], alg);
    }
    let brazil_es256 = register(
        &server,
        &json!({"profile": "openbanking-br", "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES256",
                "jwks": public_jwks(&key)}),
    )
    .await;
    brazil_es256.assert_error(400, "invalid_client_metadata");
    assert_eq!(server.state.store.list_clients().await.unwrap().len(), 7);
}

#[test]
fn the_cli_sets_and_checks_authorization_details_types() {
    let env = crate::cli_support::CliEnv::new();
    env.ok(&[
        "clients",
        "add",
        "--id",
        "pos-1",
        "--authorization-details-type",
        "payment_initiation",
    ]);
    let shown = crate::cli_support::json(&env.ok(&["clients", "show", "pos-1"]));
    assert_eq!(shown["authorization_details_types"], json!(["payment_initiation"]));
    let err = env.fails(&[
        "clients",
        "add",
        "--id",
        "pos-2",
        "--authorization-details-type",
        "crypto_transfer",
    ]);
    assert!(err.contains("authorization_details_types: unknown type"), "{err}");
}
