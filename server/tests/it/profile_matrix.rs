//! The per-profile conformance matrix: one test per row of the table in
//! docs/profiles.md, each driving a live server over HTTP and checking every
//! column of its row, what is allowed and what is refused with the error the
//! specification names. The rows below read like the table; a last test keeps
//! the table, the rows and the profiles of `profile.rs` in step.

use outband_protocol::{Profile, SigningAlg as A, TokenEndpointAuthMethod as M};
use serde_json::json;

use crate::browser_support::{REDIRECT_URI, VERIFIER};
use crate::profile_matrix_support::{
    refused, Answer, Matrix, Row, Sender, Via, APP, CERT_DN, EVERY_ALG, EVERY_METHOD, MTLS_APP, TLS_APP,
};
use crate::support::ISSUER;

const FAPI_METHODS: &[M] = &[M::PrivateKeyJwt, M::TlsClientAuth, M::SelfSignedTlsClientAuth];

static OIDC: Row = Row {
    profile: Profile::Oidc,
    unsigned_code: true,
    hybrid: true,
    par_required: false,
    pkce_required: false,
    pkce_required_pushed: false,
    plain_pkce: true,
    jar_required: false,
    algs: &[A::ES256, A::PS256, A::EdDSA, A::RS256],
    auth_methods: &EVERY_METHOD,
    sender: Sender::OnRequest,
    issuer_only_aud: false,
    nonce_and_state: false,
    https_redirect_uris: false,
    ciba_push: true,
    ciba_signed_required: false,
    binding_message_required: false,
};

static FAPI1_BASELINE: Row = Row {
    profile: Profile::Fapi1Baseline,
    pkce_required: true,
    pkce_required_pushed: true,
    plain_pkce: false,
    algs: &[A::ES256, A::PS256],
    auth_methods: &[M::PrivateKeyJwt, M::TlsClientAuth, M::SelfSignedTlsClientAuth, M::None],
    nonce_and_state: true,
    https_redirect_uris: true,
    ..OIDC
};

static FAPI1_ADVANCED: Row = Row {
    profile: Profile::Fapi1Advanced,
    unsigned_code: false,
    // FAPI 1.0 Part 2 §5.2.2 item 18: PKCE for pushed requests only.
    pkce_required: false,
    jar_required: true,
    auth_methods: FAPI_METHODS,
    sender: Sender::Certificate,
    // Pushed CIBA tokens could not be certificate-bound.
    ciba_push: false,
    ..FAPI1_BASELINE
};

static FAPI2_SECURITY: Row = Row {
    profile: Profile::Fapi2Security,
    unsigned_code: true,
    pkce_required: true,
    hybrid: false,
    par_required: true,
    jar_required: false,
    algs: &[A::ES256, A::PS256, A::EdDSA],
    sender: Sender::DpopOrCertificate,
    issuer_only_aud: true,
    nonce_and_state: false,
    ..FAPI1_ADVANCED
};

static FAPI2_MESSAGE_SIGNING: Row = Row {
    profile: Profile::Fapi2MessageSigning,
    jar_required: true,
    ..FAPI2_SECURITY
};

static FAPI_CIBA: Row = Row {
    profile: Profile::FapiCiba,
    ciba_signed_required: true,
    binding_message_required: true,
    ..FAPI1_ADVANCED
};

static OPENBANKING_BR: Row = Row {
    profile: Profile::OpenbankingBr,
    par_required: true,
    pkce_required: true,
    algs: &[A::PS256],
    auth_methods: &[M::PrivateKeyJwt, M::TlsClientAuth],
    ..FAPI1_ADVANCED
};

/// Every row, for the drift test.
static ROWS: [&Row; 7] = [
    &OIDC,
    &FAPI1_BASELINE,
    &FAPI1_ADVANCED,
    &FAPI2_SECURITY,
    &FAPI2_MESSAGE_SIGNING,
    &FAPI_CIBA,
    &OPENBANKING_BR,
];

fn allowed(ok: bool, code: &str) -> Answer {
    if ok {
        Answer::Login
    } else {
        refused(code)
    }
}

fn created(ok: bool, code: &str) -> (u16, Option<String>) {
    if ok {
        (201, None)
    } else {
        (400, Some(code.to_owned()))
    }
}

fn outcome(reply: &(u16, serde_json::Value)) -> (u16, Option<String>) {
    (reply.0, reply.1["error"].as_str().map(str::to_owned))
}

async fn check_row(row: &'static Row) {
    let m = Matrix::new(row).await;
    response_types_and_modes(&m).await;
    par(&m).await;
    pkce(&m).await;
    request_objects(&m).await;
    nonce_and_state(&m).await;
    client_authentication(&m).await;
    sender_constraint_and_lifetimes(&m).await;
    assertion_rules(&m).await;
    registration_rules(&m).await;
    ciba(&m).await;
}

/// `code` answered unsigned, `code` with JARM, `code id_token`, `token`, and an
/// unknown response mode.
async fn response_types_and_modes(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let via = m.via();
    let unsigned = allowed(row.unsigned_code, "unsupported_response_type");
    for mode in [None, Some("query"), Some("form_post")] {
        let answer = m.authorize(&m.request(&[("response_mode", mode)]), via).await;
        assert_eq!(answer, unsigned, "{p}: code, response_mode {mode:?}");
    }
    for mode in ["jwt", "query.jwt", "form_post.jwt"] {
        let answer = m.authorize(&m.request(&[("response_mode", Some(mode))]), via).await;
        assert_eq!(answer, Answer::Login, "{p}: code, response_mode {mode}");
    }
    let hybrid = m.request(&[("response_type", Some("code id_token")), ("response_mode", None)]);
    let answer = m.authorize(&hybrid, via).await;
    assert_eq!(
        answer,
        allowed(row.hybrid, "unsupported_response_type"),
        "{p}: code id_token"
    );
    let implicit = m.request(&[("response_type", Some("token")), ("response_mode", None)]);
    let answer = m.authorize(&implicit, via).await;
    assert_eq!(answer, refused("unsupported_response_type"), "{p}: token");
    let answer = m.authorize(&m.request(&[("response_mode", Some("shout"))]), via).await;
    assert_eq!(answer, refused("invalid_request"), "{p}: response_mode shout");
}

/// A request not pushed first, when PAR is required: `invalid_request`.
async fn par(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let request = m.request(&[]);
    let direct = m.authorize(&request, Via::of(false, row.jar_required)).await;
    assert_eq!(direct, allowed(!row.par_required, "invalid_request"), "{p}: not pushed");
    let pushed = m.authorize(&request, Via::of(true, row.jar_required)).await;
    assert_eq!(pushed, Answer::Login, "{p}: pushed");
}

/// No `code_challenge` (a confidential client), sent to `/authorize` directly
/// (where PAR is not required) and pushed, and the `plain` method.
async fn pkce(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let without = m.request(&[("code_challenge", None), ("code_challenge_method", None)]);
    if !row.par_required {
        let answer = m.authorize(&without, Via::of(false, row.jar_required)).await;
        assert_eq!(answer, allowed(!row.pkce_required, "invalid_request"), "{p}: no PKCE");
    }
    for signed in [false, true] {
        if row.jar_required && !signed {
            continue;
        }
        let answer = m.authorize(&without, Via::of(true, signed)).await;
        let expected = allowed(!row.pkce_required_pushed, "invalid_request");
        assert_eq!(answer, expected, "{p}: no PKCE, pushed (signed: {signed})");
    }
    let plain = m.request(&[
        ("code_challenge", Some(VERIFIER)),
        ("code_challenge_method", Some("plain")),
    ]);
    let answer = m.authorize(&plain, m.via()).await;
    assert_eq!(answer, allowed(row.plain_pkce, "invalid_request"), "{p}: PKCE plain");
}

/// An unsigned request where JAR is required (`invalid_request`); request
/// objects signed with each algorithm, and with `none`
/// (`invalid_request_object` unless the profile allows the algorithm).
async fn request_objects(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let request = m.request(&[]);
    let unsigned = m.authorize(&request, Via::of(row.par_required, false)).await;
    assert_eq!(unsigned, allowed(!row.jar_required, "invalid_request"), "{p}: unsigned");
    let signed = Via::of(row.par_required, true);
    for alg in EVERY_ALG {
        let answer = m.authorize_signed(&request, signed, Some(alg)).await;
        let expected = allowed(row.algs.contains(&alg), "invalid_request_object");
        assert_eq!(answer, expected, "{p}: request object signed with {alg}");
    }
    let answer = m.authorize_signed(&request, signed, None).await;
    assert_eq!(
        answer,
        refused("invalid_request_object"),
        "{p}: request object with alg none"
    );
}

/// `openid` without `nonce`; no `openid` and no `state`.
async fn nonce_and_state(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let answer = m.authorize(&m.request(&[("nonce", None)]), m.via()).await;
    assert_eq!(
        answer,
        allowed(!row.nonce_and_state, "invalid_request"),
        "{p}: no nonce"
    );
    let scope = m.request(&[])["scope"].replace("openid ", "");
    let request = m.request(&[("scope", Some(&scope)), ("state", None)]);
    let answer = m.authorize(&request, m.via()).await;
    assert_eq!(
        answer,
        allowed(!row.nonce_and_state, "invalid_request"),
        "{p}: no state without openid"
    );
}

/// Every method at registration (`invalid_client_metadata` when not allowed);
/// at the token endpoint a client made past those checks with a secret gets
/// 401 `invalid_client` under FAPI, and `tls_client_auth` works where allowed.
async fn client_authentication(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    for method in EVERY_METHOD {
        let mut body = json!({
            "token_endpoint_auth_method": method.to_string(),
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT_URI],
            "scope": "openid payments",
        });
        match method {
            M::PrivateKeyJwt | M::SelfSignedTlsClientAuth => body["jwks"] = m.public_jwks(),
            M::TlsClientAuth => body["tls_client_auth_subject_dn"] = json!(CERT_DN),
            _ => {}
        }
        let reply = m.register(body).await;
        let expected = created(row.auth_methods.contains(&method), "invalid_client_metadata");
        assert_eq!(outcome(&reply), expected, "{p}: registering {method}: {}", reply.1);
    }
    let form = [("grant_type", "client_credentials"), ("scope", "payments")];
    let anonymous = m.token(&form, false, Vec::new).await;
    anonymous.assert_error(401, "invalid_client");
    m.add_raw_client("with-secret", M::ClientSecretBasic, Some("s3cret"))
        .await;
    let with_secret = m.token_basic(&form, "with-secret", "s3cret").await;
    if row.auth_methods.contains(&M::ClientSecretBasic) {
        assert_eq!(
            with_secret.status, 200,
            "{p}: client_secret_basic: {}",
            with_secret.json
        );
    } else {
        with_secret.assert_error(401, "invalid_client");
    }
    m.add_raw_client("with-cert", M::TlsClientAuth, None).await;
    let by_certificate = m
        .token(&form, true, || vec![("client_id".into(), "with-cert".into())])
        .await;
    if row.auth_methods.contains(&M::TlsClientAuth) {
        assert_eq!(
            by_certificate.status, 200,
            "{p}: tls_client_auth: {}",
            by_certificate.json
        );
    } else {
        by_certificate.assert_error(401, "invalid_client");
    }
    let no_certificate = m
        .token(&form, false, || vec![("client_id".into(), "with-cert".into())])
        .await;
    no_certificate.assert_error(401, "invalid_client");
}

/// Without a DPoP proof / without the certificate, when the profile requires
/// them; the token's binding; and the access token lifetime.
async fn sender_constraint_and_lifetimes(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let mut form = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        ("scope".to_owned(), "payments".to_owned()),
    ];
    form.extend(m.client_auth(m.alg(), json!({})));
    let bare = m.token_raw(&form, None, false).await;
    match row.sender {
        Sender::OnRequest => {
            assert_eq!(bare.status, 200, "{p}: {}", bare.json);
            assert_eq!(bare.json["token_type"], "Bearer", "{p}");
            assert!(Matrix::access_claims(&bare).get("cnf").is_none(), "{p}: unbound");
        }
        Sender::DpopOrCertificate => bare.assert_error(400, "invalid_dpop_proof"),
        Sender::Certificate => bare.assert_error(400, "invalid_request"),
    }
    let reply = m.client_credentials(m.alg(), json!({})).await;
    assert_eq!(reply.status, 200, "{p}: {}", reply.json);
    assert_eq!(reply.json["expires_in"], 300, "{p}: access tokens live 5 minutes");
    let cnf = &Matrix::access_claims(&reply)["cnf"];
    match row.sender {
        Sender::OnRequest => assert!(cnf.is_null(), "{p}: {cnf}"),
        Sender::DpopOrCertificate => {
            assert_eq!(reply.json["token_type"], "DPoP", "{p}");
            assert!(cnf["jkt"].is_string(), "{p}: {cnf}");
            assert!(cnf.get("x5t#S256").is_none(), "{p}: DPoP-bound only: {cnf}");
            certificate_bound_tokens(m).await;
        }
        Sender::Certificate => {
            assert_eq!(reply.json["token_type"], "Bearer", "{p}");
            assert!(cnf["x5t#S256"].is_string(), "{p}: {cnf}");
        }
    }
}

/// FAPI 2's other sender constraint (FAPI 2.0 Security Profile §5.3.2.1, RFC
/// 8705 §3): a client registered with `tls_client_certificate_bound_access_tokens`
/// gets certificate-bound tokens over mutual TLS without a DPoP proof, whether
/// it authenticates with `private_key_jwt` or `tls_client_auth`; without its
/// certificate it is refused, and a certificate alone does not bind the tokens
/// of a client that did not register for it. A full code flow, its refresh and
/// UserInfo on such tokens; a request with both a proof and the certificate
/// gets a token bound to both.
async fn certificate_bound_tokens(m: &Matrix) {
    let p = m.row.profile;
    let credentials = |client: &str| {
        let mut form = vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "payments".to_owned()),
        ];
        form.extend(m.client_auth_of(client, m.alg(), json!({})));
        form
    };
    let certificate_only = m.token_raw(&credentials(APP), None, true).await;
    certificate_only.assert_error(400, "invalid_dpop_proof");
    assert!(
        certificate_only.json["error_description"]
            .as_str()
            .unwrap()
            .contains("tls_client_certificate_bound_access_tokens"),
        "{p}: {}",
        certificate_only.json
    );
    let x5t_only = json!({ "x5t#S256": m.cert_x5t });
    for (client, without_certificate) in [(MTLS_APP, (400, "invalid_request")), (TLS_APP, (401, "invalid_client"))] {
        let (status, code) = without_certificate;
        m.token_raw(&credentials(client), None, false)
            .await
            .assert_error(status, code);
        let reply = m.token_raw(&credentials(client), None, true).await;
        assert_eq!(reply.status, 200, "{p} {client}: {}", reply.json);
        assert_eq!(reply.json["token_type"], "Bearer", "{p} {client}");
        assert_eq!(Matrix::access_claims(&reply)["cnf"], x5t_only, "{p} {client}");
    }
    // Both a DPoP proof and the certificate: bound to both.
    let both = m
        .token(
            &[("grant_type", "client_credentials"), ("scope", "payments")],
            true,
            || m.client_auth_of(MTLS_APP, m.alg(), json!({})),
        )
        .await;
    assert_eq!(both.status, 200, "{p}: {}", both.json);
    assert_eq!(both.json["token_type"], "DPoP", "{p}");
    let cnf = &Matrix::access_claims(&both)["cnf"];
    assert_eq!(cnf["x5t#S256"], m.cert_x5t, "{p}: {cnf}");
    assert!(cnf["jkt"].is_string(), "{p}: {cnf}");

    // The code flow on certificate-bound tokens.
    let code = m.code_of(MTLS_APP).await;
    // A fresh client assertion for each request (its jti is single use).
    let form = |fields: &[(&str, &str)]| {
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        form.extend(m.client_auth_of(MTLS_APP, m.alg(), json!({})));
        form
    };
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    // Refused before the grant runs, so the code is still good.
    m.token_raw(&form(&redeem), None, false)
        .await
        .assert_error(400, "invalid_request");
    let tokens = m.token_raw(&form(&redeem), None, true).await;
    assert_eq!(tokens.status, 200, "{p}: {}", tokens.json);
    assert_eq!(tokens.json["token_type"], "Bearer", "{p}");
    assert_eq!(Matrix::access_claims(&tokens)["cnf"], x5t_only, "{p}");
    let access = tokens.json["access_token"].as_str().unwrap();
    let (status, body, _) = m.userinfo("Bearer", access, true).await;
    assert_eq!(status, 200, "{p}: UserInfo over mutual TLS: {body}");
    assert!(body["sub"].is_string(), "{p}: {body}");
    let (status, _, challenge) = m.userinfo("Bearer", access, false).await;
    assert_eq!(status, 401, "{p}: UserInfo without the certificate");
    assert!(challenge.contains("invalid_token"), "{p}: {challenge}");
    let (status, _, _) = m.userinfo("DPoP", access, true).await;
    assert_eq!(status, 401, "{p}: a certificate-bound token is not DPoP-bound");
    let refresh_token = tokens.json["refresh_token"].as_str().unwrap();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    m.token_raw(&form(&refresh), None, false)
        .await
        .assert_error(400, "invalid_request");
    let refreshed = m.token_raw(&form(&refresh), None, true).await;
    assert_eq!(refreshed.status, 200, "{p}: {}", refreshed.json);
    assert_eq!(refreshed.json["token_type"], "Bearer", "{p}");
    assert_eq!(Matrix::access_claims(&refreshed)["cnf"], x5t_only, "{p}");
}

/// Client assertions: each algorithm, the audiences accepted, and the 10-minute lifetime.
async fn assertion_rules(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let status = |ok: bool| if ok { 200 } else { 401 };
    for alg in EVERY_ALG {
        let reply = m.client_credentials(alg, json!({})).await;
        assert_eq!(
            reply.status,
            status(row.algs.contains(&alg)),
            "{p}: assertion signed with {alg}: {}",
            reply.json
        );
    }
    let token_endpoint = format!("{ISSUER}/token");
    for (aud, ok) in [
        (json!(ISSUER), true),
        (json!([ISSUER]), !row.issuer_only_aud),
        (json!(token_endpoint), !row.issuer_only_aud),
        (
            json!([token_endpoint, "https://elsewhere.example"]),
            !row.issuer_only_aud,
        ),
        (json!("https://elsewhere.example"), false),
    ] {
        let reply = m.client_credentials(m.alg(), json!({ "aud": aud })).await;
        assert_eq!(reply.status, status(ok), "{p}: assertion aud {aud}: {}", reply.json);
        if !ok {
            reply.assert_error(401, "invalid_client");
        }
    }
    let long = m
        .client_credentials(m.alg(), json!({ "exp": crate::support::T0 + 601 }))
        .await;
    long.assert_error(401, "invalid_client");
}

/// Redirect URIs (`https` under FAPI), the ID token algorithm, and the hybrid
/// response type at registration.
async fn registration_rules(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    let base = || {
        json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": m.public_jwks(),
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT_URI],
        })
    };
    let mut http = base();
    http["redirect_uris"] = json!(["http://client.example/cb"]);
    let reply = m.register(http).await;
    assert_eq!(
        outcome(&reply),
        created(!row.https_redirect_uris, "invalid_redirect_uri"),
        "{p}: http redirect URI"
    );
    let mut rs256 = base();
    rs256["id_token_signed_response_alg"] = json!("RS256");
    let reply = m.register(rs256).await;
    let expected = created(row.algs.contains(&A::RS256), "invalid_client_metadata");
    assert_eq!(outcome(&reply), expected, "{p}: RS256 ID tokens: {}", reply.1);
    let mut hybrid = base();
    hybrid["response_types"] = json!(["code id_token"]);
    let reply = m.register(hybrid).await;
    assert_eq!(
        outcome(&reply),
        created(row.hybrid, "invalid_client_metadata"),
        "{p}: response_types code id_token: {}",
        reply.1
    );
}

/// CIBA: delivery modes at registration, unsigned and signed `/bc-authorize`, `binding_message`.
async fn ciba(m: &Matrix) {
    let (row, p) = (m.row, m.row.profile);
    for (mode, ok) in [("poll", true), ("ping", true), ("push", row.ciba_push)] {
        let mut body = json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": m.public_jwks(),
            "grant_types": ["urn:openid:params:grant-type:ciba"],
            "scope": "openid payments",
            "backchannel_token_delivery_mode": mode,
        });
        if mode != "poll" {
            body["backchannel_client_notification_endpoint"] = json!("https://client.example/ciba");
        }
        let reply = m.register(body).await;
        assert_eq!(
            outcome(&reply),
            created(ok, "invalid_client_metadata"),
            "{p}: CIBA {mode}: {}",
            reply.1
        );
    }
    let unsigned = m
        .bc_authorize(&[
            ("scope", "openid payments"),
            ("login_hint", "alice"),
            ("binding_message", "MATRIX-1"),
        ])
        .await;
    let expected = if row.ciba_signed_required {
        (400, Some("invalid_request".to_owned()))
    } else {
        (200, None)
    };
    assert_eq!(
        outcome(&unsigned),
        expected,
        "{p}: unsigned /bc-authorize: {}",
        unsigned.1
    );
    let unbound = m
        .bc_authorize(&[("scope", "openid payments"), ("login_hint", "alice")])
        .await;
    let expected = if row.ciba_signed_required { 400 } else { 200 };
    assert_eq!(unbound.0, expected, "{p}: no binding_message: {}", unbound.1);

    let signed = m.ciba_object(m.alg(), json!({}));
    let reply = m.bc_authorize(&[("request", &signed)]).await;
    assert_eq!(reply.0, 200, "{p}: signed /bc-authorize: {}", reply.1);
    assert!(reply.1["auth_req_id"].is_string(), "{p}");
    let without = m.ciba_object(m.alg(), json!({ "binding_message": null }));
    let reply = m.bc_authorize(&[("request", &without)]).await;
    let expected = if row.binding_message_required {
        (400, Some("invalid_request".to_owned()))
    } else {
        (200, None)
    };
    assert_eq!(
        outcome(&reply),
        expected,
        "{p}: signed, no binding_message: {}",
        reply.1
    );
    let details = json!([{ "type": "payment_initiation", "instructedAmount": { "currency": "EUR", "amount": "1.00" }, "creditorName": "Kiosk" }]);
    let with_details = m.ciba_object(
        m.alg(),
        json!({ "binding_message": null, "authorization_details": details }),
    );
    let reply = m.bc_authorize(&[("request", &with_details)]).await;
    assert_eq!(
        reply.0, 200,
        "{p}: authorization_details instead of binding_message: {}",
        reply.1
    );
    let rs256 = m.ciba_object(A::RS256, json!({}));
    let reply = m.bc_authorize(&[("request", &rs256)]).await;
    let expected = if row.algs.contains(&A::RS256) {
        (200, None)
    } else {
        (400, Some("invalid_request".to_owned()))
    };
    assert_eq!(
        outcome(&reply),
        expected,
        "{p}: CIBA request object signed with RS256: {}",
        reply.1
    );
}

#[tokio::test]
async fn profile_oidc() {
    check_row(&OIDC).await;
}

#[tokio::test]
async fn profile_fapi1_baseline() {
    check_row(&FAPI1_BASELINE).await;
}

#[tokio::test]
async fn profile_fapi1_advanced() {
    check_row(&FAPI1_ADVANCED).await;
}

#[tokio::test]
async fn profile_fapi2_security() {
    check_row(&FAPI2_SECURITY).await;
}

#[tokio::test]
async fn profile_fapi2_message_signing() {
    check_row(&FAPI2_MESSAGE_SIGNING).await;
}

#[tokio::test]
async fn profile_fapi_ciba() {
    check_row(&FAPI_CIBA).await;
}

#[tokio::test]
async fn profile_openbanking_br() {
    check_row(&OPENBANKING_BR).await;
}

/// Every profile `profile.rs` names has a row in docs/profiles.md and one
/// here, and the table names no other.
#[test]
fn every_profile_has_a_row_in_the_docs_and_here() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join("docs/profiles.md")).unwrap();
    let policy = std::fs::read_to_string(root.join("server/src/profile.rs")).unwrap();
    let table: Vec<String> = docs
        .lines()
        .skip_while(|line| !line.starts_with("## The table"))
        .skip(1)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| line.split('|').nth(1))
        .map(|cell| cell.trim().trim_matches('`').to_owned())
        .filter(|name| name != "profile" && !name.starts_with("---"))
        .collect();
    let mut named: Vec<String> = policy
        .match_indices("Profile::")
        .map(|(at, _)| {
            policy[at + "Profile::".len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .collect();
    named.sort();
    named.dedup();
    let mut profiles: Vec<String> = named
        .iter()
        .map(|variant| {
            let profile = ROWS
                .iter()
                .map(|row| row.profile)
                .find(|profile| format!("{profile:?}") == *variant)
                .unwrap_or_else(|| panic!("Profile::{variant} has no row in profile_matrix.rs"));
            profile.to_string()
        })
        .collect();
    profiles.sort();
    let mut documented = table.clone();
    documented.sort();
    assert_eq!(documented, profiles, "the table in docs/profiles.md: {table:?}");
    assert_eq!(ROWS.len(), profiles.len(), "one row per profile");
}
