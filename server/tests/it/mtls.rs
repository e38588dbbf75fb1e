//! Mutual TLS (RFC 8705) over real TLS sockets on 127.0.0.1, with certificates
//! made at test time: `tls_client_auth` by subject DN and by SAN,
//! `self_signed_tls_client_auth` with the certificate in the client's JWKS,
//! certificate-bound tokens refused without their certificate, the
//! proxy's certificate header believed only from trusted peers, and the
//! mutual-TLS alias host (`mtls_base_url`): its endpoints served as discovery
//! lists them, client assertions and DPoP proofs naming its URLs, and
//! fractional NumericDates.

use std::net::SocketAddr;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use outband_protocol::{
    ClientId, ClientMetadata, DeliveryMode, GrantType, Profile, Scope, SigningAlg, TokenEndpointAuthMethod as M,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::api_support::key;
use crate::browser_support::{CHALLENGE, REDIRECT_URI};
use crate::device_support::proof;
use crate::support::{client_assertion, ClientKey, TestServer, ISSUER, T0};

const HEADER: &str = "x-ssl-client-cert";
const DN_A: &str = "CN=pos-a,O=Shop\\, Inc.,C=DE";
const SAN_A: &str = "pos-a.shop.test";

/// A certificate and its key, PEM and DER.
struct Cert {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
    key: KeyPair,
}

impl Cert {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.pem, self.key_pem).as_bytes()).unwrap()
    }

    fn x5t(&self) -> String {
        outband_protocol::jose::sha256_b64url(&self.der)
    }
}

/// The test PKI: a CA, the server's certificate, clients A and B (CA-issued)
/// and S (self-signed, with A's subject).
struct Pki {
    ca_pem: String,
    a: Cert,
    b: Cert,
    s: Cert,
    dir: tempfile::TempDir,
}

fn client_params(cn: &str, san: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "DE");
    params.distinguished_name.push(DnType::OrganizationName, "Shop, Inc.");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Outband test client CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issue = |params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        Cert {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            key,
        }
    };
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = issue(server_params);
    let a = issue(client_params("pos-a", SAN_A));
    let b = issue(client_params("pos-b", "pos-b.shop.test"));
    let s_key = KeyPair::generate().unwrap();
    let s_cert = client_params("pos-a", SAN_A).self_signed(&s_key).unwrap();
    let s = Cert {
        pem: s_cert.pem(),
        key_pem: s_key.serialize_pem(),
        der: s_cert.der().to_vec(),
        key: s_key,
    };
    let ca_pem = ca_cert.pem();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), &server.pem).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    Pki { ca_pem, a, b, s, dir }
}

impl Pki {
    /// `[tls]` for a TLS listener that asks for client certificates.
    fn listener_config(&self, trusted_proxies: &str) -> String {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = \"optional\"\n\
             client_cert_header = \"{HEADER}\"\ntrusted_proxies = [{trusted_proxies:?}]\n",
            path("server.pem"),
            path("server.key"),
            path("ca.pem"),
        )
    }

    /// An HTTPS client trusting the test CA, presenting `identity` if given.
    fn client(&self, identity: Option<&Cert>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap());
        if let Some(cert) = identity {
            builder = builder.identity(cert.identity());
        }
        builder.build().unwrap()
    }
}

/// Serves `server` on a fresh 127.0.0.1 port until the returned sender drops.
async fn serve(server: &TestServer) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(outband_server::run(listener, server.state.clone(), async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A client-credentials client with certificate-bound tokens.
fn mtls_client(id: &str, method: M) -> ClientMetadata {
    let mut meta = ClientMetadata::new(ClientId::new(id));
    meta.token_endpoint_auth_method = method;
    meta.grant_types = vec![GrantType::ClientCredentials];
    meta.scope = Scope::new("payments");
    meta.tls_client_certificate_bound_access_tokens = true;
    meta
}

/// `POST {base}/token` for client credentials; returns (status, body).
async fn token(client: &reqwest::Client, base: &str, client_id: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = client
        .post(format!("{base}/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", client_id)]);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `GET /api/payments?reference=none` with `token` as Bearer: (status, body).
async fn resource(client: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/api/payments?reference=none"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_token_bound_to_certificate_a_works_only_with_certificate_a() {
    let pki = pki();
    let server = TestServer::with_config(&pki.listener_config("10.9.9.9/32")).await;
    let mut meta = mtls_client("pos-a", M::TlsClientAuth);
    meta.tls_client_auth_subject_dn = Some(DN_A.into());
    server.add_client(meta, None).await;
    let (addr, _stop) = serve(&server).await;
    let base = format!("https://{addr}");
    let with_a = pki.client(Some(&pki.a));

    let (status, body) = token(&with_a, &base, "pos-a", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_claims(&access)["cnf"], json!({ "x5t#S256": pki.a.x5t() }));

    let introspection = with_a
        .post(format!("{base}/introspect"))
        .form(&[("token", access.as_str()), ("client_id", "pos-a")])
        .send()
        .await
        .unwrap();
    assert_eq!(introspection.status(), 200);
    let introspection: Value = introspection.json().await.unwrap();
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["cnf"], json!({ "x5t#S256": pki.a.x5t() }));

    let (status, body) = resource(&with_a, &base, &access).await;
    assert_eq!((status, body), (200, json!({ "payments": [] })));
    for stolen_with in [pki.client(Some(&pki.b)), pki.client(None)] {
        let (status, body) = resource(&stolen_with, &base, &access).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_token");
    }
    // Cert B claiming A's certificate in the proxy header from an untrusted peer.
    let forged = pki.client(Some(&pki.b));
    let response = forged
        .get(format!("{base}/api/payments?reference=none"))
        .bearer_auth(&access)
        .header(HEADER, escaped(&pki.a.pem))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn tls_client_auth_matches_the_san_and_refuses_other_certificates() {
    let pki = pki();
    let server = TestServer::with_config(&pki.listener_config("10.9.9.9/32")).await;
    let mut by_san = mtls_client("pos-san", M::TlsClientAuth);
    by_san.tls_client_auth_san_dns = Some(SAN_A.into());
    server.add_client(by_san, None).await;
    let mut by_dn = mtls_client("pos-dn", M::TlsClientAuth);
    by_dn.tls_client_auth_subject_dn = Some(DN_A.into());
    server.add_client(by_dn, None).await;
    let (addr, _stop) = serve(&server).await;
    let base = format!("https://{addr}");

    let (status, body) = token(&pki.client(Some(&pki.a)), &base, "pos-san", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        pki.a.x5t()
    );
    for (client_id, cert) in [
        ("pos-san", Some(&pki.b)),
        ("pos-san", None),
        ("pos-dn", Some(&pki.b)),
        // Self-signed with A's very subject and SAN: not issued by the CA.
        ("pos-dn", Some(&pki.s)),
        ("pos-san", Some(&pki.s)),
    ] {
        let (status, body) = token(&pki.client(cert), &base, client_id, &[]).await;
        assert_eq!(status, 401, "{client_id}: {body}");
        assert_eq!(body["error"], "invalid_client", "{client_id}: {body}");
    }
}

#[tokio::test]
async fn self_signed_tls_client_auth_needs_the_certificate_of_the_jwks() {
    let pki = pki();
    let server = TestServer::with_config(&pki.listener_config("10.9.9.9/32")).await;
    let mut meta = mtls_client("pos-self", M::SelfSignedTlsClientAuth);
    meta.jwks = Some(json!({ "keys": [jwk_with_x5c(&pki.s)] }));
    server.add_client(meta, None).await;
    let (addr, _stop) = serve(&server).await;
    let base = format!("https://{addr}");

    let (status, body) = token(&pki.client(Some(&pki.s)), &base, "pos-self", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        pki.s.x5t()
    );
    for cert in [Some(&pki.a), None] {
        let (status, body) = token(&pki.client(cert), &base, "pos-self", &[]).await;
        assert_eq!((status, &body["error"]), (401, &json!("invalid_client")), "{body}");
    }
}

#[tokio::test]
async fn certificate_bound_clients_need_a_certificate_whatever_their_authentication() {
    let pki = pki();
    let server = TestServer::with_config(&pki.listener_config("10.9.9.9/32")).await;
    let mut meta = mtls_client("shop", M::ClientSecretBasic);
    meta.grant_types = vec![GrantType::ClientCredentials];
    server.add_client(meta, Some("pw-shop")).await;
    let no_cert = server
        .post_form("/token", "grant_type=client_credentials", Some(("shop", "pw-shop")))
        .await;
    no_cert.assert_error(400, "invalid_request");

    let (addr, _stop) = serve(&server).await;
    let response = pki
        .client(Some(&pki.b))
        .post(format!("https://{addr}/token"))
        .basic_auth("shop", Some("pw-shop"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        pki.b.x5t()
    );
}

#[tokio::test]
async fn ciba_and_refresh_tokens_keep_the_certificate_binding() {
    let pki = pki();
    let server = TestServer::with_config(&pki.listener_config("10.9.9.9/32")).await;
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    let mut client = server.state.store.client(&ClientId::new("pos")).await.unwrap().unwrap();
    client.metadata.grant_types.push(GrantType::RefreshToken);
    client.metadata.tls_client_certificate_bound_access_tokens = true;
    server.state.store.update_client(&client).await.unwrap();
    server.add_user("alice", None).await;
    let reply = server
        .bc_authorize("pos", "scope=openid%20payments&login_hint=alice")
        .await;
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    server.decide(&auth_req_id, true).await;
    // Without a certificate: refused before the approval is used up.
    server
        .poll("pos", &auth_req_id)
        .await
        .assert_error(400, "invalid_request");

    let (addr, _stop) = serve(&server).await;
    let post = |cert: Option<&Cert>, form: Vec<(&'static str, String)>| {
        let request = pki
            .client(cert)
            .post(format!("https://{addr}/token"))
            .basic_auth("pos", Some("pos-secret"))
            .form(&form);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let grant = ("grant_type", "urn:openid:params:grant-type:ciba".to_owned());
    let (status, tokens) = post(Some(&pki.a), vec![grant, ("auth_req_id", auth_req_id)]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        pki.a.x5t()
    );
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = |token: &str| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token.to_owned()),
        ]
    };

    let (status, body) = post(Some(&pki.b), form(&refresh)).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_grant")), "{body}");
    let (status, body) = post(None, form(&refresh)).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")), "{body}");
    let (status, body) = post(Some(&pki.a), form(&refresh)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        pki.a.x5t()
    );
}

#[tokio::test]
async fn the_proxy_header_is_believed_only_from_trusted_proxies() {
    let pki = pki();
    for (trusted, expect) in [("127.0.0.1/32", 200), ("10.9.9.9/32", 401)] {
        let ca_file = pki.dir.path().join("ca.pem").display().to_string();
        let config = format!(
            "[tls]\nclient_cert_header = \"{HEADER}\"\ntrusted_proxies = [{trusted:?}]\nclient_ca_file = {ca_file:?}\n"
        );
        let server = TestServer::with_config(&config).await;
        let mut meta = mtls_client("pos-a", M::TlsClientAuth);
        meta.tls_client_auth_subject_dn = Some(DN_A.into());
        server.add_client(meta, None).await;
        let (addr, _stop) = serve(&server).await;
        let base = format!("http://{addr}");
        let plain = reqwest::Client::new();
        let (status, body) = token(&plain, &base, "pos-a", &[(HEADER, escaped(&pki.a.pem))]).await;
        assert_eq!(status, expect, "trusted {trusted}: {body}");
        if expect == 200 {
            let access = body["access_token"].as_str().unwrap().to_owned();
            assert_eq!(jwt_claims(&access)["cnf"]["x5t#S256"], pki.a.x5t());
            let with_header = plain
                .get(format!("{base}/api/payments?reference=none"))
                .bearer_auth(&access)
                .header(HEADER, escaped(&pki.a.pem))
                .send()
                .await
                .unwrap();
            assert_eq!(with_header.status(), 200);
            let (status, _) = resource(&plain, &base, &access).await;
            assert_eq!(status, 401, "no header, no certificate");
        } else {
            assert_eq!(body["error"], "invalid_client");
        }
    }
}

#[tokio::test]
async fn discovery_names_the_mtls_aliases_and_methods() {
    let pki = pki();
    let config = format!(
        "{}mtls_base_url = \"https://mtls.as.example.test\"\n",
        pki.listener_config("10.0.0.0/8")
    );
    let server = TestServer::with_config(&config).await;
    let doc = server.get("/.well-known/openid-configuration").await.json;
    assert_eq!(doc["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        doc["mtls_endpoint_aliases"]["token_endpoint"],
        "https://mtls.as.example.test/token"
    );
    assert_eq!(
        doc["mtls_endpoint_aliases"]["backchannel_authentication_endpoint"],
        "https://mtls.as.example.test/bc-authorize"
    );
    let methods = doc["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("tls_client_auth")), "{methods:?}");
    assert!(methods.contains(&json!("self_signed_tls_client_auth")), "{methods:?}");

    let plain = TestServer::new()
        .await
        .get("/.well-known/openid-configuration")
        .await
        .json;
    assert!(plain.get("mtls_endpoint_aliases").is_none());
    assert!(!plain["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("tls_client_auth")));
}

/// URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`.
fn escaped(pem: &str) -> String {
    url::form_urlencoded::byte_serialize(pem.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The public JWK of `cert`'s P-256 key, with the certificate as `x5c`.
fn jwk_with_x5c(cert: &Cert) -> Value {
    let point = cert.key.public_key_raw();
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        "x5c": [STANDARD.encode(&cert.der)],
    })
}

/// The mutual-TLS alias host (RFC 8705 §5): a server whose TLS listener is
/// `[tls] mtls_base_url` (`https://127.0.0.1:<port>`), so the aliases discovery
/// publishes are called as published, as conformance suites do. The issuer
/// stays [`ISSUER`]. Returns the server, the alias base URL and the stop switch.
async fn alias_server(pki: &Pki) -> (TestServer, String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let config = format!("{}mtls_base_url = {base:?}\n", pki.listener_config("10.9.9.9/32"));
    let server = TestServer::with_config(&config).await;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(outband_server::run(listener, server.state.clone(), async move {
        let _ = stopped.await;
    }));
    (server, base, stop)
}

/// `POST url` with `form`, a client assertion and, when given, a DPoP proof: (status, body).
async fn post_with(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    assertion: Option<&str>,
    dpop: Option<&str>,
) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    if let Some(assertion) = assertion {
        form.push(("client_assertion_type", JWT_BEARER));
        form.push(("client_assertion", assertion));
    }
    let mut request = client.post(url).form(&form);
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLIENT_CREDENTIALS: [(&str, &str); 2] = [("grant_type", "client_credentials"), ("scope", "payments")];

#[tokio::test]
async fn the_alias_host_serves_par_and_userinfo_as_discovery_lists_them() {
    let pki = pki();
    let (server, base, _stop) = alias_server(&pki).await;
    let doc: Value = pki
        .client(None)
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected: serde_json::Map<String, Value> = [
        ("token_endpoint", "/token"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("backchannel_authentication_endpoint", "/bc-authorize"),
        ("pushed_authorization_request_endpoint", "/par"),
        ("userinfo_endpoint", "/userinfo"),
    ]
    .into_iter()
    .map(|(name, path)| (name.to_owned(), json!(format!("{base}{path}"))))
    .collect();
    assert_eq!(doc["mtls_endpoint_aliases"], Value::Object(expected), "{doc}");
    assert_eq!(doc["pushed_authorization_request_endpoint"], format!("{ISSUER}/par"));
    let alias = |name: &str| doc["mtls_endpoint_aliases"][name].as_str().unwrap().to_owned();
    let (with_a, with_b) = (pki.client(Some(&pki.a)), pki.client(Some(&pki.b)));

    // PAR at its alias, with tls_client_auth.
    let mut web = mtls_client("web-a", M::TlsClientAuth);
    web.tls_client_auth_subject_dn = Some(DN_A.into());
    web.grant_types = vec![GrantType::AuthorizationCode];
    web.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
    web.scope = Scope::new("openid payments");
    server.add_client(web, None).await;
    let pushed = [
        ("client_id", "web-a"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid payments"),
        ("state", "st-alias"),
        ("nonce", "n-alias"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let par = alias("pushed_authorization_request_endpoint");
    let (status, body) = post_with(&with_a, &par, &pushed, None, None).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["request_uri"]
        .as_str()
        .unwrap()
        .starts_with("urn:ietf:params:oauth:request_uri:"));
    let (status, body) = post_with(&with_b, &par, &pushed, None, None).await;
    assert_eq!((status, &body["error"]), (401, &json!("invalid_client")), "{body}");

    // A certificate-bound token from CIBA, all at the aliases, then UserInfo at its alias.
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    let mut client = server.state.store.client(&ClientId::new("pos")).await.unwrap().unwrap();
    client.metadata.tls_client_certificate_bound_access_tokens = true;
    server.state.store.update_client(&client).await.unwrap();
    let alice = server.add_user("alice", None).await;
    let started = with_a
        .post(alias("backchannel_authentication_endpoint"))
        .basic_auth("pos", Some("pos-secret"))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let auth_req_id = started.json::<Value>().await.unwrap()["auth_req_id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&auth_req_id, true).await;
    let tokens = with_a
        .post(alias("token_endpoint"))
        .basic_auth("pos", Some("pos-secret"))
        .form(&[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), 200);
    let access = tokens.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let userinfo = |client: &reqwest::Client| client.get(alias("userinfo_endpoint")).bearer_auth(&access).send();
    let answer = userinfo(&with_a).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["sub"], alice);
    for stolen_with in [&with_b, &pki.client(None)] {
        let answer = userinfo(stolen_with).await.unwrap();
        assert_eq!(answer.status(), 401);
        assert_eq!(answer.json::<Value>().await.unwrap()["error"], "invalid_token");
    }
}

/// (client key, client id, path, form, `aud`, expected status).
type AssertionCase<'a> = (&'a ClientKey, &'a str, &'a str, &'a [(&'a str, &'a str)], Value, u16);

#[tokio::test]
async fn client_assertions_may_name_the_alias_of_the_endpoint_called_but_not_under_fapi2() {
    let pki = pki();
    let (server, base, _stop) = alias_server(&pki).await;
    let https = pki.client(None);
    let oidc = server
        .add_jwt_client("jwt-oidc", SigningAlg::ES256, Profile::Oidc)
        .await;
    let fapi2 = server
        .add_jwt_client("jwt-fapi2", SigningAlg::ES256, Profile::Fapi2Security)
        .await;
    let revocation = [("token", "not-a-token")];
    let cases: [AssertionCase; 10] = [
        (
            &oidc,
            "jwt-oidc",
            "/token",
            &CLIENT_CREDENTIALS,
            json!(format!("{base}/token")),
            200,
        ),
        (
            &oidc,
            "jwt-oidc",
            "/token",
            &CLIENT_CREDENTIALS,
            json!([format!("{base}/token")]),
            200,
        ),
        (
            &oidc,
            "jwt-oidc",
            "/revoke",
            &revocation,
            json!(format!("{base}/revoke")),
            200,
        ),
        // The token endpoint's alias names the server wherever the assertion is sent.
        (
            &oidc,
            "jwt-oidc",
            "/revoke",
            &revocation,
            json!(format!("{base}/token")),
            200,
        ),
        // Another endpoint's alias, another host, the alias base alone.
        (
            &oidc,
            "jwt-oidc",
            "/token",
            &CLIENT_CREDENTIALS,
            json!(format!("{base}/revoke")),
            401,
        ),
        (
            &oidc,
            "jwt-oidc",
            "/token",
            &CLIENT_CREDENTIALS,
            json!("https://elsewhere.example/token"),
            401,
        ),
        (
            &oidc,
            "jwt-oidc",
            "/token",
            &CLIENT_CREDENTIALS,
            json!(base.clone()),
            401,
        ),
        // FAPI 2: the issuer, as a string, and nothing else (FAPI 2.0 Security Profile §5.3.2.1).
        (
            &fapi2,
            "jwt-fapi2",
            "/revoke",
            &revocation,
            json!(format!("{base}/revoke")),
            401,
        ),
        (
            &fapi2,
            "jwt-fapi2",
            "/revoke",
            &revocation,
            json!(format!("{base}/token")),
            401,
        ),
        (&fapi2, "jwt-fapi2", "/revoke", &revocation, json!(ISSUER), 200),
    ];
    for (key, client_id, path, form, aud, expected) in cases {
        let assertion = client_assertion(key, client_id, T0, json!({ "aud": aud }));
        let (status, body) = post_with(&https, &format!("{base}{path}"), form, Some(&assertion), None).await;
        assert_eq!(status, expected, "{client_id} at {path} with aud {aud}: {body}");
        if expected == 401 {
            assert_eq!(body["error"], "invalid_client", "{body}");
            assert!(body["error_description"].as_str().unwrap().contains("aud"), "{body}");
        }
    }
}

#[tokio::test]
async fn dpop_proofs_may_name_the_alias_of_the_endpoint_called() {
    let pki = pki();
    let (server, base, _stop) = alias_server(&pki).await;
    server.add_pos_client().await;
    let https = pki.client(None);
    let dpop_key = key();
    let token_request = |htu: String| {
        let proof = proof(&dpop_key, T0, "POST", "/token", None, None, &json!({ "htu": htu }));
        let request = https
            .post(format!("{base}/token"))
            .basic_auth("pos", Some("pos-secret"))
            .header("DPoP", proof)
            .form(&CLIENT_CREDENTIALS);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    for htu in [
        format!("{base}/par"),
        "https://elsewhere.example/token".to_owned(),
        format!("{ISSUER}/revoke"),
    ] {
        let (status, body) = token_request(htu.clone()).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_dpop_proof")),
            "{htu}: {body}"
        );
    }
    // The issuer's URL stays good on the alias host (a proxy in front of one server).
    let (status, body) = token_request(format!("{ISSUER}/token")).await;
    assert_eq!((status, &body["token_type"]), (200, &json!("DPoP")), "{body}");
    let (status, body) = token_request(format!("{base}/token")).await;
    assert_eq!((status, &body["token_type"]), (200, &json!("DPoP")), "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();

    let api = |htu: String| {
        let proof = proof(
            &dpop_key,
            T0,
            "GET",
            "/api/payments",
            Some(&access),
            None,
            &json!({ "htu": htu }),
        );
        let request = https
            .get(format!("{base}/api/payments?reference=none"))
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", proof);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = api(format!("{base}/api/payments")).await;
    assert_eq!((status, body), (200, json!({ "payments": [] })));
    for htu in [
        format!("{base}/userinfo"),
        "https://elsewhere.example/api/payments".to_owned(),
    ] {
        let (status, body) = api(htu.clone()).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("invalid_dpop_proof")),
            "{htu}: {body}"
        );
    }
}

#[tokio::test]
async fn fractional_numeric_dates_are_read_in_client_assertions_and_request_objects() {
    let pki = pki();
    let (server, base, _stop) = alias_server(&pki).await;
    let https = pki.client(None);
    let key = server.add_jwt_client("jwt", SigningAlg::ES256, Profile::Oidc).await;
    let at = |offset: f64| json!(T0 as f64 + offset);
    let token = format!("{base}/token");

    let fractional = json!({ "exp": at(60.5), "iat": at(0.25), "nbf": at(-0.75) });
    let assertion = client_assertion(&key, "jwt", T0, fractional);
    let (status, body) = post_with(&https, &token, &CLIENT_CREDENTIALS, Some(&assertion), None).await;
    assert_eq!(status, 200, "{body}");
    // Still checked: an expired fractional exp, a future fractional nbf.
    for (overrides, why) in [
        (json!({ "exp": at(-31.5) }), "expired"),
        (json!({ "nbf": at(31.5) }), "nbf"),
        (json!({ "exp": null }), "no exp"),
    ] {
        let assertion = client_assertion(&key, "jwt", T0, overrides);
        let (status, body) = post_with(&https, &token, &CLIENT_CREDENTIALS, Some(&assertion), None).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("invalid_client")),
            "{why}: {body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }

    // A request object at /par whose exp and nbf are fractional.
    let signer = crate::jar::signer(&server).await;
    let par = format!("{base}/par");
    let push = |object: String| {
        let assertion = client_assertion(&signer, "signer", T0, json!({ "exp": at(60.5) }));
        let https = https.clone();
        let par = par.clone();
        async move {
            let form = [("client_id", "signer"), ("request", object.as_str())];
            post_with(&https, &par, &form, Some(&assertion), None).await
        }
    };
    let object = crate::jar::request_object(&signer.key, json!({ "exp": at(300.5), "nbf": at(0.5) }));
    let (status, body) = push(object).await;
    assert_eq!(status, 201, "{body}");
    let expired = crate::jar::request_object(&signer.key, json!({ "exp": at(-31.5), "nbf": at(-60.5) }));
    let (status, body) = push(expired).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_request_object")),
        "{body}"
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}
