//! `acr_values`, `acr` and the `claims` request parameter (OpenID Connect Core
//! §3.1.2.1, §5.5, §5.5.1.1): the ID token reports the first requested acr the
//! sign-in satisfies, an essential acr it cannot meet is `access_denied`,
//! requested claims reach the ID token and UserInfo only among those the
//! approved scope releases (remembered consent too), a requested `sub` value
//! names the only user to answer for, and the grant keeps the UserInfo claims
//! as grant management's `replace` and `merge` say; from `/authorize`, `/par`
//! and request objects; CIBA's `acr_values` likewise.

use outband_protocol::{DeliveryMode, Profile};
use serde_json::{json, Value};

use crate::browser_support::{authorize_path, claims as jwt_claims, redeem, Browser, Live, VERIFIER, WEB};
use crate::jar::{request_object, signer};
use crate::jarm::fragment_params;
use crate::par::push;
use crate::support::{TestServer, ISSUER};
use crate::userinfo::userinfo;

const PWD: &str = "urn:outband:acr:pwd";
const DEVICE: &str = "urn:outband:acr:device";
const LOA2: &str = "urn:brasil:openbanking:loa2";
const LOA3: &str = "urn:brasil:openbanking:loa3";

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_password_user("alice").await;
    server
}

/// Signs alice in through `path` and redeems the code; returns the token response.
async fn tokens_via(live: &Live, path: &str) -> Value {
    let mut browser = Browser::new(live);
    let login = browser.get(path).await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    let (status, tokens) = redeem(live, WEB, &params["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// The ID token claims of a browser sign-in with `extra` request parameters.
async fn id_token(live: &Live, extra: &[(&str, &str)]) -> Value {
    let tokens = tokens_via(live, &authorize_path(WEB, extra)).await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

/// The error redirect `/authorize` answers at once (no login page).
async fn refused(live: &Live, path: &str) -> std::collections::BTreeMap<String, String> {
    let page = Browser::new(live).get(path).await;
    assert!(!page.text.contains("Password"), "no login page: {}", page.text);
    page.redirect_params()
}

#[tokio::test]
async fn acr_values_pick_the_first_value_a_password_satisfies() {
    let server = server().await;
    let live = server.live().await;

    let plain = id_token(&live, &[]).await;
    assert!(plain.get("acr").is_none(), "not asked, not sent: {plain}");
    assert!(plain["auth_time"].is_i64());

    let asked = id_token(&live, &[("acr_values", &format!("{LOA3} {LOA2} {PWD}"))]).await;
    assert_eq!(
        asked["acr"], LOA2,
        "loa3 needs the device; loa2 is the first a password meets"
    );
    assert!(asked["auth_time"].is_i64());

    let unknown = id_token(&live, &[("acr_values", &format!("urn:example:gold {DEVICE}"))]).await;
    assert_eq!(
        unknown["acr"], PWD,
        "none satisfiable (voluntary): the sign-in's own acr"
    );

    let as_claim = id_token(&live, &[("claims", r#"{"id_token": {"acr": null}}"#)]).await;
    assert_eq!(as_claim["acr"], PWD, "acr requested as a claim is always sent");

    // The hybrid flow's front-channel ID token reports it too.
    let mut browser = Browser::new(&live);
    let hybrid = [("response_type", "code id_token"), ("acr_values", LOA2)];
    let login = browser.get(&authorize_path(WEB, &hybrid)).await;
    let params = fragment_params(&browser.login_and_approve(&login).await);
    assert_eq!(jwt_claims(&params["id_token"])["acr"], LOA2);
}

#[tokio::test]
async fn an_essential_acr_a_password_cannot_meet_is_access_denied() {
    let server = server().await;
    let live = server.live().await;
    let essential = json!({"id_token": {"acr": {"essential": true, "values": [DEVICE, LOA3]}}}).to_string();
    let params = refused(&live, &authorize_path(WEB, &[("claims", &essential)])).await;
    assert_eq!(params["error"], "access_denied");
    assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-123", ISSUER));
    assert!(!params.contains_key("code"));

    // In the requested response mode: fragment here.
    let page = Browser::new(&live)
        .get(&authorize_path(
            WEB,
            &[("claims", &essential), ("response_mode", "fragment")],
        ))
        .await;
    let params = fragment_params(&page);
    assert_eq!(params["error"], "access_denied");
    assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-123", ISSUER));

    // Essential with a value the password meets: that value.
    let single = json!({"id_token": {"acr": {"essential": true, "value": LOA2}}}).to_string();
    let claims = id_token(&live, &[("claims", &single), ("acr_values", PWD)]).await;
    assert_eq!(claims["acr"], LOA2, "the essential claim wins over acr_values");

    // Voluntary values that cannot be met are no failure.
    let voluntary = json!({"id_token": {"acr": {"values": [DEVICE]}}}).to_string();
    assert_eq!(id_token(&live, &[("claims", &voluntary)]).await["acr"], PWD);
}

#[tokio::test]
async fn requested_claims_select_among_those_the_scope_releases() {
    let server = server().await;
    let live = server.live().await;
    let request = json!({
        "id_token": {"email": null, "preferred_username": {"essential": true}, "name": null},
        "userinfo": {"email": {"essential": true}, "preferred_username": null},
    })
    .to_string();
    let tokens = tokens_via(
        &live,
        &authorize_path(WEB, &[("scope", "openid email"), ("claims", &request)]),
    )
    .await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id["email"], "alice@example.com",
        "scope email, asked for in the ID token: {id}"
    );
    assert!(
        id.get("preferred_username").is_none(),
        "essential, but outside the approved scope (no profile): {id}"
    );
    assert!(id.get("name").is_none());
    assert!(id.get("acr").is_none(), "acr was not asked");

    let access = tokens["access_token"].as_str().unwrap();
    let (status, info) = userinfo(&live, Some(access), false).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info, json!({"sub": "sub-alice", "email": "alice@example.com"}));

    // A refreshed access token of the same grant answers the same.
    let reply = reqwest::Client::new()
        .post(format!("{}/token", live.base))
        .basic_auth(WEB, Some(format!("{WEB}-secret")))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let refreshed: Value = reply.json().await.unwrap();
    let (_, info) = userinfo(&live, refreshed["access_token"].as_str(), true).await;
    assert_eq!(info, json!({"sub": "sub-alice", "email": "alice@example.com"}));

    // Scope `openid` only: the same claims request adds nothing, at either place.
    let narrow = tokens_via(
        &live,
        &authorize_path(WEB, &[("scope", "openid"), ("claims", &request)]),
    )
    .await;
    let id = jwt_claims(narrow["id_token"].as_str().unwrap());
    for name in ["email", "preferred_username", "name"] {
        assert!(id.get(name).is_none(), "{name} is outside scope openid: {id}");
    }
    let (_, info) = userinfo(&live, narrow["access_token"].as_str(), false).await;
    assert_eq!(info, json!({"sub": "sub-alice"}));
}

#[tokio::test]
async fn remembered_consent_releases_no_claim_beyond_the_approved_scope() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_path(WEB, &[("scope", "openid")])).await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    assert_eq!(redeem(&live, WEB, &params["code"], Some(VERIFIER)).await.0, 200);

    // prompt=none, the same scope: no page, but the claims request adds nothing.
    let request = json!({"id_token": {"email": null, "phone_number": null, "name": null, "preferred_username": null}});
    let silent = [
        ("scope", "openid"),
        ("prompt", "none"),
        ("claims", &request.to_string()),
    ];
    let page = browser.get(&authorize_path(WEB, &silent)).await;
    let params = page.redirect_params();
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("remembered consent: {params:?}"));
    let (status, tokens) = redeem(&live, WEB, code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    for name in ["email", "phone_number", "name", "preferred_username"] {
        assert!(id.get(name).is_none(), "{name} was never approved: {id}");
    }
    assert_eq!(id["sub"], "sub-alice");
    let (_, info) = userinfo(&live, tokens["access_token"].as_str(), false).await;
    assert_eq!(info, json!({"sub": "sub-alice"}));
}

#[tokio::test]
async fn a_requested_sub_value_names_the_only_user_to_answer_for() {
    let server = server().await;
    server.add_password_user("bob").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_path(WEB, &[("scope", "openid")])).await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    let (_, tokens) = redeem(&live, WEB, &params["code"], Some(VERIFIER)).await;
    let alices_hint = tokens["id_token"].as_str().unwrap().to_owned();
    let sub = |value: &str| json!({"id_token": {"sub": {"value": value}}}).to_string();

    // Alice is signed in; the request names bob: no answer for alice.
    let for_bob = sub("sub-bob");
    let silent = [("scope", "openid"), ("prompt", "none"), ("claims", &for_bob)];
    let params = browser.get(&authorize_path(WEB, &silent)).await.redirect_params();
    assert_eq!(params["error"], "login_required", "{params:?}");
    assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-123", ISSUER));
    assert!(!params.contains_key("code"));

    // Without prompt=none alice's session does not count; signing in as alice again is login_required.
    let login = browser
        .get(&authorize_path(WEB, &[("scope", "openid"), ("claims", &for_bob)]))
        .await;
    assert!(login.text.contains("Password"), "the login page: {}", login.text);
    let params = browser.login_and_approve(&login).await.redirect_params();
    assert_eq!(params["error"], "login_required", "{params:?}");
    assert!(!params.contains_key("code"));

    // Her own sub is answered at once.
    let for_alice = sub("sub-alice");
    let silent = [("scope", "openid"), ("prompt", "none"), ("claims", &for_alice)];
    let params = browser.get(&authorize_path(WEB, &silent)).await.redirect_params();
    assert!(params.contains_key("code"), "{params:?}");

    // A sub value and an id_token_hint that disagree: invalid_request.
    let both = [
        ("scope", "openid"),
        ("claims", &for_bob),
        ("id_token_hint", &alices_hint),
    ];
    let params = refused(&live, &authorize_path(WEB, &both)).await;
    assert_eq!(params["error"], "invalid_request", "{params:?}");
    let agree = [
        ("scope", "openid"),
        ("prompt", "none"),
        ("claims", &for_alice),
        ("id_token_hint", &alices_hint),
    ];
    assert!(browser
        .get(&authorize_path(WEB, &agree))
        .await
        .redirect_params()
        .contains_key("code"));

    let not_a_string = json!({"id_token": {"sub": {"value": 42}}}).to_string();
    let params = refused(&live, &authorize_path(WEB, &[("claims", &not_a_string)])).await;
    assert_eq!(params["error"], "invalid_request");
}

#[tokio::test]
async fn replace_resets_and_merge_adds_the_grants_userinfo_claims() {
    let server = server().await;
    let live = server.live().await;
    let asking = |names: &[&str]| {
        let userinfo: serde_json::Map<String, Value> = names.iter().map(|n| ((*n).to_owned(), Value::Null)).collect();
        json!({ "userinfo": userinfo }).to_string()
    };
    let both = asking(&["email", "preferred_username"]);
    let first = tokens_via(
        &live,
        &authorize_path(WEB, &[("scope", "openid profile email"), ("claims", &both)]),
    )
    .await;
    let grant_id = first["grant_id"].as_str().unwrap().to_owned();
    let stored = |grant_id: String| {
        let store = server.state.store.clone();
        async move { store.userinfo_claims(&grant_id).await.unwrap() }
    };
    assert_eq!(stored(grant_id.clone()).await, ["email", "preferred_username"]);

    // Replace with scope openid and no claims: the earlier UserInfo claims go too (Grant Management §3.3).
    let replace = [
        ("scope", "openid"),
        ("grant_management_action", "replace"),
        ("grant_id", &grant_id),
    ];
    let replaced = tokens_via(&live, &authorize_path(WEB, &replace)).await;
    assert_eq!(replaced["grant_id"], grant_id.as_str());
    let (_, info) = userinfo(&live, replaced["access_token"].as_str(), false).await;
    assert_eq!(info, json!({"sub": "sub-alice"}), "nothing of the replaced grant");
    assert!(stored(grant_id.clone()).await.is_empty());

    // Merge: what each authorization asked for is added to the grant's.
    let email = asking(&["email"]);
    let merge_email = [
        ("scope", "openid email"),
        ("claims", &email),
        ("grant_management_action", "merge"),
        ("grant_id", &grant_id),
    ];
    tokens_via(&live, &authorize_path(WEB, &merge_email)).await;
    let username = asking(&["preferred_username"]);
    let merge_profile = [
        ("scope", "openid profile"),
        ("claims", &username),
        ("grant_management_action", "merge"),
        ("grant_id", &grant_id),
    ];
    let merged = tokens_via(&live, &authorize_path(WEB, &merge_profile)).await;
    assert_eq!(stored(grant_id.clone()).await, ["email", "preferred_username"]);
    let (_, info) = userinfo(&live, merged["access_token"].as_str(), false).await;
    assert_eq!(
        info,
        json!({"sub": "sub-alice", "email": "alice@example.com", "preferred_username": "alice"}),
        "the merged grant's UserInfo claims"
    );
    let grant = server.state.store.grant(&grant_id).await.unwrap().unwrap();
    assert_eq!(grant.scope.as_str(), "openid email profile");
    assert_eq!(
        grant.claims,
        ["sub", "email", "name", "preferred_username"],
        "what the grant query reports holds every claim asked for"
    );
}

#[tokio::test]
async fn malformed_claims_are_invalid_request() {
    let server = server().await;
    let live = server.live().await;
    for bad in [
        "{not json",
        "[]",
        r#""id_token""#,
        r#"{"id_token": ["email"]}"#,
        r#"{"userinfo": {"email": true}}"#,
        r#"{"id_token": {"acr": {"essential": "yes"}}}"#,
        r#"{"id_token": {"acr": {"values": "urn:outband:acr:pwd"}}}"#,
    ] {
        let params = refused(&live, &authorize_path(WEB, &[("claims", bad)])).await;
        assert_eq!(params["error"], "invalid_request", "{bad}");
        assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-123", ISSUER));

        let (status, body) = push(&live, WEB, &[("claims", bad)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn pushed_and_signed_requests_carry_acr_and_claims() {
    let server = server().await;
    let live = server.live().await;
    let request = json!({"id_token": {"email": null}}).to_string();
    let pushed_params = [("scope", "openid email"), ("claims", &request), ("acr_values", LOA2)];
    let (status, pushed) = push(&live, WEB, &pushed_params).await;
    assert_eq!(status, 201, "{pushed}");
    let path = crate::par::authorize_with(WEB, pushed["request_uri"].as_str().unwrap());
    let tokens = tokens_via(&live, &path).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        (id["acr"].as_str(), id["email"].as_str()),
        (Some(LOA2), Some("alice@example.com"))
    );

    // A request object holds `claims` as a JSON object.
    let key = signer(&server).await;
    let essential = json!({"id_token": {"acr": {"essential": true, "values": [LOA3]}}});
    let object = request_object(&key.key, json!({ "claims": essential }));
    let params = refused(&live, &crate::jar::authorize_with(&object, &[])).await;
    assert_eq!(params["error"], "access_denied");
    assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-jar", ISSUER));
    let object = request_object(&key.key, json!({ "claims": {"id_token": "email"} }));
    let params = refused(&live, &crate::jar::authorize_with(&object, &[])).await;
    assert_eq!(params["error"], "invalid_request");
}

#[tokio::test]
async fn ciba_acr_values_pick_the_first_value_the_device_satisfies() {
    let server = TestServer::new().await;
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    let mut device = server.enrolled_device("alice").await;
    for (acr_values, expected) in [
        (Some(format!("urn:example:gold {LOA3} {PWD}")), LOA3),
        (Some(PWD.to_owned()), PWD),
        (Some("urn:example:gold".to_owned()), DEVICE),
        (None, DEVICE),
    ] {
        let mut body = "scope=openid%20payments&login_hint=alice".to_owned();
        if let Some(values) = &acr_values {
            let encoded: String = url::form_urlencoded::byte_serialize(values.as_bytes()).collect();
            body.push_str(&format!("&acr_values={encoded}"));
        }
        let started = server.bc_authorize("pos", &body).await;
        assert_eq!(
            started.status, 200,
            "unsupported acr_values are no error: {}",
            started.text
        );
        let auth_req_id = started.json["auth_req_id"].as_str().unwrap().to_owned();
        let record = server.ciba_request(&auth_req_id).await;
        let reply = device.decide(&server, &record.id, &record.request_jwt, "approve").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        server.clock.advance(5);
        let tokens = server.poll("pos", &auth_req_id).await;
        assert_eq!(tokens.status, 200, "{}", tokens.text);
        let id = jwt_claims(tokens.json["id_token"].as_str().unwrap());
        assert_eq!(id["acr"], expected, "{acr_values:?}");
    }
}

#[tokio::test]
async fn discovery_lists_the_acr_values_and_claims() {
    let server = TestServer::new().await;
    let doc = server.get("/.well-known/openid-configuration").await.json;
    assert_eq!(doc["acr_values_supported"], json!([PWD, DEVICE, LOA2, LOA3]));
    assert_eq!(doc["claims_parameter_supported"], true);
    let claims = doc["claims_supported"].as_array().unwrap();
    for name in [
        "acr",
        "amr",
        "auth_time",
        "sub",
        "name",
        "email",
        "phone_number",
        "preferred_username",
    ] {
        assert!(claims.contains(&json!(name)), "{name}: {doc}");
    }
}
