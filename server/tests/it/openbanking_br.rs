//! The Open Finance Brasil profile (`openbanking-br`) end to end: a client
//! authenticated by its certificate (`tls_client_auth`, the certificate coming
//! from a trusted TLS-terminating proxy on 127.0.0.1 as mtls.rs shows) creates a
//! payment consent, pushes a PS256-signed request object naming it in the
//! `consent:{consentId}` scope, the user approves it in the browser (JARM
//! response), and the certificate-bound token pays once, consuming the consent.
//! The profile refuses other algorithms, a request without a consent scope and
//! resource calls without a UUID `x-fapi-interaction-id`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, ClientMetadata, GrantType, Profile, Scope, SigningAlg, TokenEndpointAuthMethod};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};

use crate::browser_support::{claims, Browser, Live, CHALLENGE, PASSWORD, REDIRECT_URI, VERIFIER};
use crate::consent_support::{consent_path, payment, payment_body, CONSENTS};
use crate::support::{TestServer, ISSUER, T0};

const HEADER: &str = "x-ssl-client-cert";
const CLIENT: &str = "tpp-br";
const DN: &str = "CN=tpp-br,O=TPP Brasil,C=BR";
const INTERACTION: &str = "0f3c2b1a-9e8d-4c7b-a6f5-e4d3c2b1a098";

/// The server (behind a trusted proxy that passes client certificates on), the
/// client's request-object key and its certificate (URL-encoded PEM).
struct Brazil {
    server: TestServer,
    live: Live,
    key: SigningKey,
    jwk: josekit::jwk::Jwk,
    cert: String,
    _dir: tempfile::TempDir,
}

pub fn certificates() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Brazil test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut params = CertificateParams::new(vec!["tpp-br.example".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "BR");
    params.distinguished_name.push(DnType::OrganizationName, "TPP Brasil");
    params.distinguished_name.push(DnType::CommonName, "tpp-br");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem())
}

async fn brazil() -> Brazil {
    let (ca_pem, cert_pem) = certificates();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let config = format!(
        "[tls]\nclient_cert_header = \"{HEADER}\"\ntrusted_proxies = [\"127.0.0.1/32\"]\nclient_ca_file = {:?}\n",
        ca_file.display().to_string()
    );
    let server = TestServer::with_config(&config).await;
    let jwk = SigningAlg::PS256.generate_private_jwk().unwrap();
    let key = SigningKey::from_private_jwk(&jwk, SigningAlg::PS256).unwrap();
    let mut meta = ClientMetadata::new(ClientId::new(CLIENT));
    meta.client_name = Some("TPP Brasil".into());
    meta.profile = Profile::OpenbankingBr;
    meta.token_endpoint_auth_method = TokenEndpointAuthMethod::TlsClientAuth;
    meta.tls_client_auth_subject_dn = Some(DN.into());
    meta.tls_client_certificate_bound_access_tokens = true;
    meta.scope = Scope::new("openid payments accounts consents");
    meta.grant_types = vec![GrantType::AuthorizationCode, GrantType::ClientCredentials];
    meta.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
    meta.jwks = Some(json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] }));
    server.add_client(meta, None).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let cert = url::form_urlencoded::byte_serialize(cert_pem.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    Brazil {
        server,
        live,
        key,
        jwk,
        cert,
        _dir: dir,
    }
}

impl Brazil {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.live.base)
    }

    /// A request through the proxy: with the client certificate.
    fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(path))
            .header(HEADER, &self.cert)
    }

    async fn token(&self, form: &[(&str, &str)]) -> Value {
        let mut form = form.to_vec();
        form.push(("client_id", CLIENT));
        let reply = self
            .call(reqwest::Method::POST, "/token")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        reply.json().await.unwrap()
    }

    /// A request object signed with `key` (the client's unless another is given).
    fn request_object(&self, scope: &str, key: Option<&SigningKey>) -> String {
        let claims = json!({
            "iss": CLIENT, "client_id": CLIENT, "aud": ISSUER,
            "iat": T0, "nbf": T0, "exp": T0 + 300, "jti": uuid::Uuid::new_v4().to_string(),
            "response_type": "code", "response_mode": "jwt",
            "redirect_uri": REDIRECT_URI, "scope": scope,
            "state": "st-br", "nonce": "n-br",
            "code_challenge": CHALLENGE, "code_challenge_method": "S256",
        });
        key.unwrap_or(&self.key)
            .sign(Some("oauth-authz-req+jwt"), claims.as_object().unwrap())
            .unwrap()
    }

    async fn par(&self, request: &str) -> (u16, Value) {
        let reply = self
            .call(reqwest::Method::POST, "/par")
            .form(&[("client_id", CLIENT), ("request", request)])
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap())
    }
}

fn jwt_claims(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn a_consent_scoped_payment_under_openbanking_br_consumes_the_consent() {
    let br = brazil().await;
    let admin = br
        .token(&[("grant_type", "client_credentials"), ("scope", "consents")])
        .await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let created = br
        .call(reqwest::Method::POST, CONSENTS)
        .bearer_auth(&admin)
        .header("x-fapi-interaction-id", INTERACTION)
        .json(&payment_body("150.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["x-fapi-interaction-id"], INTERACTION);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["data"]["status"], "AWAITING_AUTHORISATION");
    let consent = created["data"]["consentId"].as_str().unwrap().to_owned();

    // PAR with a PS256 request object naming the consent.
    let scope = format!("openid payments consent:{consent}");
    let (status, pushed) = br.par(&br.request_object(&scope, None)).await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", CLIENT), ("request_uri", request_uri)])
        .finish();
    let mut browser = Browser::new(&br.live);
    let login = browser.get(&format!("/authorize?{query}")).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let after = browser.login(&login, "alice", PASSWORD).await;
    let page = browser.get(&after.location().unwrap()).await;
    assert!(page.text.contains("Pay <strong>EUR 150.00</strong>"), "{}", page.text);
    let redirect = browser.decide(&page, "approve").await.redirect_params();
    let response = jwt_claims(&redirect["response"]);
    let code = response["code"]
        .as_str()
        .expect("a code in the JARM response")
        .to_owned();

    let tokens = br
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert!(jwt_claims(&access)["cnf"]["x5t#S256"].is_string(), "certificate-bound");
    assert!(tokens["scope"]
        .as_str()
        .unwrap()
        .contains(&format!("consent:{consent}")));
    assert!(claims(tokens["id_token"].as_str().unwrap())
        .get("openbanking_intent_id")
        .is_none());

    let pay = |key: &'static str, with_cert: bool| {
        let request = reqwest::Client::new()
            .post(br.url("/api/payments"))
            .bearer_auth(&access)
            .header("x-fapi-interaction-id", INTERACTION)
            .header("idempotency-key", key)
            .json(&payment("150.00"));
        if with_cert {
            request.header(HEADER, &br.cert)
        } else {
            request
        }
    };
    // Without the certificate the token is worthless.
    assert_eq!(pay("k-1", false).send().await.unwrap().status(), 401);
    let paid = pay("k-1", true).send().await.unwrap();
    assert_eq!(paid.status(), 201);
    assert_eq!(paid.headers()["x-fapi-interaction-id"], INTERACTION);
    let again = pay("k-2", true).send().await.unwrap();
    assert_eq!(again.status(), 409);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["error"], "payment_already_executed");

    let read = br
        .call(reqwest::Method::GET, &consent_path(&consent))
        .bearer_auth(&admin)
        .header("x-fapi-interaction-id", INTERACTION)
        .send()
        .await
        .unwrap();
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["data"]["status"], "CONSUMED", "{read}");
}

#[tokio::test]
async fn the_profile_refuses_other_algorithms_and_requests_without_a_consent() {
    let br = brazil().await;
    let admin = br
        .token(&[("grant_type", "client_credentials"), ("scope", "consents")])
        .await;
    let created = br
        .call(reqwest::Method::POST, CONSENTS)
        .bearer_auth(admin["access_token"].as_str().unwrap())
        .header("x-fapi-interaction-id", INTERACTION)
        .json(&payment_body("1.00"))
        .send()
        .await
        .unwrap();
    let created: Value = created.json().await.unwrap();
    let consent = created["data"]["consentId"].as_str().unwrap().to_owned();

    // No consent:{consentId} scope.
    let (status, body) = br.par(&br.request_object("openid payments", None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("consent:{consentId}"),
        "{body}"
    );

    // The same RSA key signing with RS256, and an ES256 key: only PS256 is accepted.
    let scope = format!("openid payments consent:{consent}");
    let mut rsa = br.jwk.clone();
    rsa.set_algorithm("RS256");
    let rs256 = SigningKey::from_private_jwk(&rsa, SigningAlg::RS256).unwrap();
    let es256 =
        SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256).unwrap();
    for key in [&rs256, &es256] {
        let (status, body) = br.par(&br.request_object(&scope, Some(key))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request_object")),
            "{body}"
        );
    }
    // Still awaiting authorisation: nothing above touched it, and it can be pushed.
    let stored = br.server.state.store.consent(&consent).await.unwrap().unwrap();
    assert_eq!(stored.status, "AwaitingAuthorisation");
    let (status, _) = br.par(&br.request_object(&scope, None)).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn openbanking_br_resource_calls_need_a_uuid_interaction_id() {
    let br = brazil().await;
    let admin = br
        .token(&[("grant_type", "client_credentials"), ("scope", "consents")])
        .await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    for sent in [None, Some("not-a-uuid")] {
        let mut request = br
            .call(reqwest::Method::POST, CONSENTS)
            .bearer_auth(&admin)
            .json(&payment_body("1.00"));
        if let Some(value) = sent {
            request = request.header("x-fapi-interaction-id", value);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 400, "{sent:?}");
        let made = reply.headers()["x-fapi-interaction-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "a fresh UUID: {made}");
        assert_ne!(Some(made.as_str()), sent);
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    // The same for the payments API.
    let reply = br
        .call(reqwest::Method::GET, "/api/payments?reference=x")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    assert!(reply.headers().contains_key("x-fapi-interaction-id"));
    // With one, it is echoed.
    let reply = br
        .call(reqwest::Method::GET, &consent_path("urn:outband:none"))
        .bearer_auth(&admin)
        .header("x-fapi-interaction-id", INTERACTION)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    assert_eq!(reply.headers()["x-fapi-interaction-id"], INTERACTION);
}
