//! Mutual TLS (RFC 8705) end to end over real TLS sockets on 127.0.0.1, with
//! certificates made at test time: a FAPI-CIBA till authenticating with
//! `tls_client_auth` gets certificate-bound tokens (`cnf.x5t#S256`) in poll and
//! ping mode and pays with the same certificate; the token is refused with
//! another certificate or none. Also `self_signed_tls_client_auth`, and the
//! `outband-pos` binary with `--client-cert`/`--client-key`/`--ca-file`.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use outband_protocol::jose::{sha256_b64url, SigningKey, UnverifiedJwt};
use outband_protocol::{
    ClientMetadata, DeliveryMode, ErrorCode, Profile, Scope, SigningAlg, TokenEndpointAuthMethod, TokenResponse,
    TokenType,
};
use outband_server::store::TestDecision;
use outband_terminal::{CancelToken, ClientAuth, ClientTls, NotificationListener, Outcome, PaymentError, RequestError};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};

use crate::support::{new_key, sale, TerminalServer, TestServer, T0};

/// The subject of till A's certificate, as registered (RFC 4514).
pub const DN_A: &str = "CN=till-a,O=Corner Cafe,C=DE";
pub const SCOPE: &str = "openid payments refunds";

/// A certificate and its key, PEM and DER.
struct Cert {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
    key: KeyPair,
}

/// The test PKI in a directory: a CA (`ca.pem`), the server's certificate for
/// 127.0.0.1 (`server.pem`, `server.key`), tills A and B issued by the CA, and
/// S, self-signed.
pub struct Pki {
    ca_pem: String,
    a: Cert,
    b: Cert,
    s: Cert,
    dir: tempfile::TempDir,
}

fn till_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec![format!("{cn}.cafe.test")]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "DE");
    params.distinguished_name.push(DnType::OrganizationName, "Corner Cafe");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn cert(certificate: &rcgen::Certificate, key: KeyPair) -> Cert {
    Cert {
        pem: certificate.pem(),
        key_pem: key.serialize_pem(),
        der: certificate.der().to_vec(),
        key,
    }
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Outband test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issue = |params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &ca, &ca_key).unwrap();
        cert(&certificate, key)
    };
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = issue(server_params);
    let s_key = KeyPair::generate().unwrap();
    let s = cert(&till_params("till-s").self_signed(&s_key).unwrap(), s_key);
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki {
        ca_pem: ca.pem(),
        a: issue(till_params("till-a")),
        b: issue(till_params("till-b")),
        s,
        dir,
    };
    pki.write("server.pem", &server.pem);
    pki.write("server.key", &server.key_pem);
    pki.write("ca.pem", &pki.ca_pem);
    for (name, cert) in [("a", &pki.a), ("b", &pki.b)] {
        pki.write(&format!("{name}.pem"), &cert.pem);
        pki.write(&format!("{name}.key"), &cert.key_pem);
    }
    pki
}

impl Pki {
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    /// `[tls]`: the server's own TLS listener, asking for client certificates.
    pub fn server_toml(&self) -> String {
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = \"optional\"\n",
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        )
    }

    /// The till's TLS: trusts the test CA, presents `cert` if given.
    fn tls(&self, cert: Option<&Cert>) -> ClientTls {
        let tls = ClientTls::new().with_root_certificates(&self.ca_pem).unwrap();
        match cert {
            Some(cert) => tls.with_client_certificate(&cert.pem, &cert.key_pem).unwrap(),
            None => tls,
        }
    }
}

/// A client builder for `id` on `server` with `tls` (and the tests' timer-free HTTP client).
fn client(server: &TestServer, id: &str, tls: &ClientTls) -> outband_terminal::CibaClientBuilder {
    let http = tls
        .apply(reqwest::Client::builder().pool_idle_timeout(None))
        .build()
        .unwrap();
    server
        .client(id)
        .set_client_auth(ClientAuth::TlsClientAuth)
        .set_tls(tls.clone())
        .set_http_client(http)
}

/// Registers FAPI-CIBA client `id` in `mode`: `tls_client_auth` with till A's
/// subject, request objects signed with `key`.
async fn add_fapi_ciba_till(
    server: &TestServer,
    id: &str,
    mode: DeliveryMode,
    endpoint: Option<&str>,
    key: &SigningKey,
) {
    let jwks = json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] });
    server
        .add_client(id, mode, endpoint, |meta: &mut ClientMetadata| {
            meta.profile = Profile::FapiCiba;
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::TlsClientAuth;
            meta.tls_client_auth_subject_dn = Some(DN_A.into());
            meta.tls_client_certificate_bound_access_tokens = true;
            meta.backchannel_authentication_request_signing_alg = Some(SigningAlg::ES256);
            meta.jwks = Some(jwks);
            meta.scope = Scope::new(SCOPE);
        })
        .await;
}

/// The access token's `cnf`.
fn cnf(tokens: &TokenResponse) -> Value {
    UnverifiedJwt::decode(tokens.access_token.secret()).unwrap().claims["cnf"].clone()
}

fn x5t(cert: &Cert) -> Value {
    json!({ "x5t#S256": sha256_b64url(&cert.der) })
}

fn sale_ref(reference: &str) -> outband_terminal::SaleRequest {
    let mut sale = sale("bob@example.com");
    sale.reference = Some(reference.into());
    sale
}

#[tokio::test(start_paused = true)]
async fn fapi_ciba_poll_pays_with_the_certificate_the_token_is_bound_to() {
    let pki = pki();
    let server = TestServer::start_tls(T0, &pki.server_toml());
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let key = Arc::new(new_key(SigningAlg::ES256));
    add_fapi_ciba_till(&server, "fapi-till", DeliveryMode::Poll, None, &key).await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;

    let metadata = client(&server, "fapi-till", &pki.tls(None))
        .build()
        .unwrap()
        .discover()
        .await
        .unwrap();
    let aliases = metadata.mtls_endpoint_aliases.clone().unwrap();
    assert_eq!(aliases["token_endpoint"], format!("{}/token", server.url));

    // Without a certificate, the bank does not know the till.
    let anonymous = client(&server, "fapi-till", &pki.tls(None))
        .set_request_object_key(Some(key.clone()))
        .build()
        .unwrap();
    match anonymous.start(sale_ref("INV-NONE")).await.unwrap_err() {
        RequestError::Oauth { status, error, .. } => {
            assert_eq!((status, error.error), (401, ErrorCode::InvalidClient));
        }
        other => panic!("expected invalid_client, got {other}"),
    }

    let till = client(&server, "fapi-till", &pki.tls(Some(&pki.a)))
        .set_request_object_key(Some(key.clone()))
        .build()
        .unwrap();
    assert!(till.uses_mutual_tls());
    let started = till.start(sale_ref("INV-MTLS")).await.unwrap();
    let Outcome::Approved(tokens) = till.wait(&started, &CancelToken::new()).await.unwrap() else {
        panic!("expected approval")
    };
    assert_eq!(
        tokens.token_type,
        TokenType::Bearer,
        "bound by the certificate, not DPoP"
    );
    assert_eq!(cnf(&tokens), x5t(&pki.a));

    // A stolen token is worthless with another certificate or none, and
    // spending it so does not use it up.
    for (thief, tls) in [("cert B", pki.tls(Some(&pki.b))), ("no cert", pki.tls(None))] {
        let other = client(&server, "fapi-till", &tls).build().unwrap();
        let err = other
            .execute_payment(&tokens, &started.sale, &started.reference, "stolen")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PaymentError::Api { status: 401, error, .. } if error == "invalid_token"),
            "{thief}: {err}"
        );
    }

    let payment = till
        .execute_payment(&tokens, &started.sale, &started.reference, "idem-1")
        .await
        .unwrap();
    assert_eq!(payment.status, "executed");
    assert_eq!(payment.instructed_amount.amount, "12.50");
    assert_eq!(payment.creditor_name, "Corner Café");
    assert_eq!(payment.remittance_information_unstructured.as_deref(), Some("INV-MTLS"));
    let receipt = till.receipt(&started, &tokens).unwrap().with_payment(payment.clone());
    assert_eq!(receipt.payment.unwrap().payment_id, payment.payment_id);

    // The merchant's own client-credentials tokens are bound too, and work.
    let merchant = till.client_credentials(Some(&Scope::new("payments"))).await.unwrap();
    assert_eq!(cnf(&merchant), x5t(&pki.a));
    let found = till.payments_by_reference("INV-MTLS").await.unwrap();
    assert_eq!(found.len(), 1, "paid once");
    assert_eq!(found[0].payment_id, payment.payment_id);
}

#[tokio::test]
async fn fapi_ciba_ping_redeems_and_pays_with_the_certificate() {
    let pki = pki();
    let listener = NotificationListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let server = TestServer::start_tls(T0, &pki.server_toml());
    let key = Arc::new(new_key(SigningAlg::ES256));
    add_fapi_ciba_till(&server, "ping-till", DeliveryMode::Ping, Some(&listener.url()), &key).await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;

    let till = client(&server, "ping-till", &pki.tls(Some(&pki.a)))
        .set_request_object_key(Some(key))
        .set_delivery_mode(DeliveryMode::Ping)
        .set_notification_listener(listener.clone())
        .build()
        .unwrap();
    let receipt = till.pay(sale_ref("INV-PING"), &CancelToken::new()).await.unwrap();
    assert_eq!(receipt.mode, DeliveryMode::Ping);
    assert_eq!(receipt.token.sub.as_deref(), Some("sub-bob"));
    let payment = receipt.payment.expect("the payment was executed");
    assert_eq!(payment.status, "executed");
    assert_eq!(payment.remittance_information_unstructured.as_deref(), Some("INV-PING"));
}

#[tokio::test(start_paused = true)]
async fn self_signed_tls_client_auth_pays_with_the_registered_certificate() {
    let pki = pki();
    let server = TestServer::start_tls(T0, &pki.server_toml());
    let point = pki.s.key.public_key_raw();
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        "x5c": [STANDARD.encode(&pki.s.der)],
    });
    server
        .add_client("self-till", DeliveryMode::Poll, None, |meta| {
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::SelfSignedTlsClientAuth;
            meta.tls_client_certificate_bound_access_tokens = true;
            meta.jwks = Some(json!({ "keys": [jwk] }));
            meta.scope = Scope::new(SCOPE);
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;

    // Till A's certificate is CA-issued, but not the one in the JWKS.
    let wrong = client(&server, "self-till", &pki.tls(Some(&pki.a)))
        .set_client_auth(ClientAuth::SelfSignedTlsClientAuth)
        .build()
        .unwrap();
    let err = wrong.client_credentials(None).await.unwrap_err();
    assert!(err.to_string().contains("invalid_client"), "{err}");

    let till = client(&server, "self-till", &pki.tls(Some(&pki.s)))
        .set_client_auth(ClientAuth::SelfSignedTlsClientAuth)
        .build()
        .unwrap();
    let receipt = till.pay(sale_ref("INV-SELF"), &CancelToken::new()).await.unwrap();
    assert_eq!(receipt.payment.expect("paid").status, "executed");
    let tokens = till.client_credentials(None).await.unwrap();
    assert_eq!(cnf(&tokens), x5t(&pki.s));
}

#[tokio::test]
async fn outband_pos_pays_with_its_client_certificate() {
    let pki = pki();
    let server = TestServer::start_tls(T0, &pki.server_toml());
    server
        .add_client("till-a", DeliveryMode::Poll, None, |meta| {
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::TlsClientAuth;
            meta.tls_client_auth_subject_dn = Some(DN_A.into());
            meta.tls_client_certificate_bound_access_tokens = true;
            meta.scope = Scope::new(SCOPE);
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    let data = tempfile::tempdir().unwrap();
    let pos = |cert: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_outband-pos"));
        for (name, _) in std::env::vars() {
            if name.starts_with("OUTBAND_POS_") {
                command.env_remove(name);
            }
        }
        command
            .args([
                "pay",
                "--amount",
                "12.50",
                "--currency",
                "EUR",
                "--customer",
                "bob@example.com",
            ])
            .args(["--reference", "R-MTLS", "--iban", "DE89370400440532013000", "--json"])
            .args([
                "--issuer",
                &server.url,
                "--client-id",
                "till-a",
                "--auth-method",
                "tls_client_auth",
            ])
            .args(["--ca-file", &pki.path("ca.pem")])
            .env("OUTBAND_POS_CLIENT_CERT", pki.path(&format!("{cert}.pem")))
            .env("OUTBAND_POS_CLIENT_KEY", pki.path(&format!("{cert}.key")))
            .env("OUTBAND_POS_DATA_DIR", data.path())
            .env("RUST_LOG", "off")
            .kill_on_drop(true);
        command
    };

    let out = pos("b").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid_client"), "{stderr}");

    let out = pos("a").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt["status"], "paid", "{receipt}");
    assert_eq!(receipt["payment"]["status"], "executed", "{receipt}");
    assert_eq!(receipt["payment"]["remittanceInformationUnstructured"], "R-MTLS");
}
