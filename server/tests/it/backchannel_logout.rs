//! OpenID Connect Back-Channel and Front-Channel Logout over real sockets: the
//! ID token's `sid`; a logout token POSTed to a receiver on 127.0.0.1 after
//! `/logout` (signature checked against `/jwks`, `typ: logout+jwt`, claims, no
//! `nonce`); a receiver that is down, then up, gets it after the retry; a
//! redirect from the receiver is not followed; refresh tokens without
//! `offline_access` are revoked, those of a grant that holds it (shared by
//! another session through a merge) stay; the front-channel iframe with `iss`
//! and `sid`, sandboxed, and the CSP that allows it; a re-login that keeps the
//! `sid` keeps its clients as long as the new session; a logout token that
//! cannot be made (deleted client) fails its row without holding up the next;
//! discovery; registration checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use outband_protocol::jose::{parse_jwk, verify_jwt, Jwk};
use outband_protocol::{Profile, SigningAlg};
use outband_server::ciba::delivery;
use serde_json::{json, Value};

use crate::browser_support::{authorize_path, claims, redeem, Browser, Live, PASSWORD, VERIFIER, WEB};
use crate::ciba_support::LOOPBACK_OUTBOUND;
use crate::support::{TestServer, ISSUER};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const FRONT: &str = "https://client.example/frontchannel-logout?from=op";

/// What a receiver saw: the Content-Type and the form body.
type Call = (Option<String>, String);

/// A client's `backchannel_logout_uri` that records what it receives and
/// answers with the statuses it is given, one per call (then 200).
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    statuses: Arc<Mutex<Vec<u16>>>,
    redirect_to: Arc<Mutex<Option<String>>>,
}

impl Receiver {
    /// Listens on `listener` (so a test can pick the port first).
    fn serve(&self, listener: tokio::net::TcpListener) {
        let state = self.clone();
        let app = Router::new().route(
            "/logout",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    state.calls.lock().unwrap().push((content_type, body));
                    let status = {
                        let mut statuses = state.statuses.lock().unwrap();
                        if statuses.is_empty() {
                            200
                        } else {
                            statuses.remove(0)
                        }
                    };
                    if status == 302 {
                        let target = state.redirect_to.lock().unwrap().clone().unwrap();
                        return (StatusCode::FOUND, [("location", target)]).into_response();
                    }
                    StatusCode::from_u16(status).unwrap().into_response()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }

    async fn start(statuses: &[u16]) -> (Self, String) {
        let receiver = Self {
            statuses: Arc::new(Mutex::new(statuses.to_vec())),
            ..Self::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/logout", listener.local_addr().unwrap());
        receiver.serve(listener);
        (receiver, url)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until it has seen `n` calls.
    async fn wait_for(&self, n: usize) -> Vec<Call> {
        for _ in 0..200 {
            if self.calls().len() >= n {
                return self.calls();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver saw {} calls, expected {n}", self.calls().len());
    }
}

/// A server with the web client, registered with `edit`; alice; the outbound
/// policy lets the server call 127.0.0.1.
async fn setup(edit: impl FnOnce(&mut outband_protocol::ClientMetadata)) -> (TestServer, Live) {
    let server = TestServer::with_config(LOOPBACK_OUTBOUND).await;
    server.add_web_client(WEB, Profile::Oidc, edit).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    (server, live)
}

/// Logs alice in through the real pages, approves, redeems `scope`: the tokens.
async fn sign_in(live: &Live, browser: &mut Browser, scope: &str) -> Value {
    sign_in_with(live, browser, &[("scope", scope)]).await
}

/// [`sign_in`] with the authorization request's parameters `extra`.
async fn sign_in_with(live: &Live, browser: &mut Browser, extra: &[(&str, &str)]) -> Value {
    let login = browser.get(&authorize_path(WEB, extra)).await;
    let after_login = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(after_login.status, 303, "{}", after_login.text);
    let consent = browser.get(&after_login.location().unwrap()).await;
    let done = browser.decide(&consent, "approve").await;
    let code = done.redirect_params()["code"].clone();
    let (status, tokens) = redeem(live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn logout(browser: &mut Browser, id_token: &str) -> crate::browser_support::Page {
    let page = browser
        .post("/logout", &[("id_token_hint", id_token), ("client_id", WEB)])
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("You are signed out"), "{}", page.text);
    page
}

/// The server's public keys, read from `/jwks` over HTTP.
async fn jwks(live: &Live) -> Vec<Jwk> {
    let body: Value = reqwest::get(format!("{}/jwks", live.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| parse_jwk(k).unwrap())
        .collect()
}

fn logout_token(call: &Call) -> String {
    assert_eq!(call.0.as_deref(), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(call.1.as_bytes()).into_owned().collect();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "logout_token");
    form[0].1.clone()
}

async fn refresh(live: &Live, refresh_token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/token", live.base))
        .basic_auth(WEB, Some(format!("{WEB}-secret")))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn discovery_advertises_back_and_front_channel_logout() {
    let server = TestServer::new().await;
    let reply = server.get("/.well-known/openid-configuration").await;
    for name in [
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ] {
        assert_eq!(reply.json[name], json!(true), "{name}");
    }
    assert!(reply.json["claims_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("sid")));
}

#[tokio::test]
async fn logout_sends_a_signed_logout_token_with_the_id_tokens_sid() {
    let (receiver, url) = Receiver::start(&[]).await;
    let (_server, live) = setup(|m| {
        m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap());
        m.backchannel_logout_session_required = true;
    })
    .await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = claims(id_token)["sid"].as_str().unwrap().to_owned();
    assert!(sid.len() >= 32, "a random session id: {sid}");
    // A second sign-in in the same browser (a new password check) keeps the sid.
    let again = sign_in(&live, &mut browser, "openid").await;
    assert_eq!(claims(again["id_token"].as_str().unwrap())["sid"], json!(sid));
    assert!(receiver.calls().is_empty(), "nothing before the logout");

    logout(&mut browser, id_token).await;
    let calls = receiver.wait_for(1).await;
    let token = logout_token(&calls[0]);
    let verified = verify_jwt(&token, &jwks(&live).await, &[SigningAlg::RS256, SigningAlg::ES256]).unwrap();
    assert_eq!(verified.header["typ"], "logout+jwt");
    let c = &verified.claims;
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["aud"], WEB);
    assert_eq!(c["sid"], json!(sid));
    assert_eq!(c["sub"], claims(id_token)["sub"]);
    assert_eq!(c["events"], json!({ EVENT: {} }));
    assert!(c.get("nonce").is_none(), "a logout token never has a nonce");
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(exp > iat && exp - iat <= 300, "short-lived: {iat}..{exp}");
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // One token per client and session, even though the client signed in twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.calls().len(), 1);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_token_after_the_retry() {
    // A port nobody listens on yet.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let url = format!("http://{addr}/logout");
    let (server, live) = setup(|m| m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap())).await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    logout(&mut browser, tokens["id_token"].as_str().unwrap()).await;
    // The first attempt fails (connection refused) and is scheduled again
    // (by this call or by the live server's own worker).
    let mut pending = Vec::new();
    for _ in 0..100 {
        delivery::deliver_due(&server.state).await.unwrap();
        pending = server.state.store.pending_notifications(10).await.unwrap();
        if pending.first().is_some_and(|n| n.last_error.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending.len(), 1, "still queued");
    assert_eq!(pending[0].kind.as_str(), "backchannel_logout");
    assert!(pending[0].attempts >= 1 && pending[0].last_error.is_some());

    let receiver = Receiver::default();
    receiver.serve(tokio::net::TcpListener::bind(addr).await.unwrap());
    server.clock.advance(delivery::backoff(pending[0].attempts));
    delivery::deliver_due(&server.state).await.unwrap();
    let calls = receiver.wait_for(1).await;
    let token = logout_token(&calls[0]);
    let c = claims(&token);
    assert_eq!(c["aud"], WEB);
    assert!(
        c["exp"].as_i64().unwrap() > server.state.now(),
        "signed when sent, so not expired"
    );
    for _ in 0..100 {
        if server.state.store.pending_notifications(10).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery was never marked delivered");
}

#[tokio::test]
async fn a_redirect_from_the_receiver_is_not_followed() {
    let (elsewhere, elsewhere_url) = Receiver::start(&[]).await;
    let (receiver, url) = Receiver::start(&[302]).await;
    *receiver.redirect_to.lock().unwrap() = Some(elsewhere_url);
    let (server, live) = setup(|m| m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap())).await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    logout(&mut browser, tokens["id_token"].as_str().unwrap()).await;
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(elsewhere.calls().is_empty(), "the redirect target is never called");
    let pending = server.state.store.pending_notifications(10).await.unwrap();
    assert_eq!(pending.len(), 1, "a redirect is retried later, not delivered");
    assert!(
        pending[0].last_error.as_deref().unwrap().contains("302"),
        "{:?}",
        pending[0].last_error
    );
}

#[tokio::test]
async fn logout_revokes_refresh_tokens_without_offline_access() {
    let (server, live) = setup(|m| m.scope = outband_protocol::Scope::new("openid offline_access profile")).await;
    let mut browser = Browser::new(&live);
    let online = sign_in(&live, &mut browser, "openid profile").await;
    let offline = sign_in(&live, &mut browser, "openid offline_access").await;
    logout(&mut browser, online["id_token"].as_str().unwrap()).await;
    assert_eq!(
        refresh(&live, online["refresh_token"].as_str().unwrap()).await,
        400,
        "revoked with the session"
    );
    assert_eq!(
        refresh(&live, offline["refresh_token"].as_str().unwrap()).await,
        200,
        "offline_access outlives the session"
    );
    drop(server);
}

#[tokio::test]
async fn the_signed_out_page_frames_the_front_channel_logout_uri() {
    let (_server, live) = setup(|m| {
        m.frontchannel_logout_uri = Some(url::Url::parse(FRONT).unwrap());
        m.frontchannel_logout_session_required = true;
    })
    .await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = claims(id_token)["sid"].as_str().unwrap().to_owned();
    let page = logout(&mut browser, id_token).await;
    let expected = url::Url::parse_with_params(FRONT, &[("iss", ISSUER), ("sid", sid.as_str())]).unwrap();
    let src = format!("src=\"{}\"", expected.as_str().replace('&', "&amp;"));
    assert!(page.text.contains(&src), "{src} in {}", page.text);
    assert!(!page.text.contains("<script"), "works without JavaScript");
    // Sandboxed: the client's page runs with its own origin but cannot navigate this window.
    let frame = &page.text[page.text.find("<iframe").unwrap()..];
    let frame = &frame[..frame.find('>').unwrap()];
    assert!(
        frame.contains(" sandbox=\"allow-scripts allow-same-origin\""),
        "{frame}"
    );
    assert!(!frame.contains("allow-top-navigation"), "{frame}");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-src https://client.example"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    // With a post-logout redirect: the frames load, then a meta refresh and a link move on.
    let tokens = sign_in(&live, &mut browser, "openid").await;
    let page = browser
        .get(&format!(
            "/logout?id_token_hint={}&post_logout_redirect_uri={}",
            tokens["id_token"].as_str().unwrap(),
            url::form_urlencoded::byte_serialize(crate::browser_support::REDIRECT_URI.as_bytes()).collect::<String>()
        ))
        .await;
    // The web client registered no post_logout_redirect_uris: an error page, no frames.
    assert_eq!(page.status, 400, "{}", page.text);
    assert!(!page.text.contains("<iframe"));
}

#[tokio::test]
async fn a_redirecting_logout_loads_the_frames_first() {
    const AFTER: &str = "https://client.example/bye";
    let (_server, live) = setup(|m| {
        m.frontchannel_logout_uri = Some(url::Url::parse(FRONT).unwrap());
        m.post_logout_redirect_uris = vec![url::Url::parse(AFTER).unwrap()];
    })
    .await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    let page = browser
        .post(
            "/logout",
            &[
                ("id_token_hint", tokens["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", AFTER),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    // Without frontchannel_logout_session_required: the URI as registered.
    assert!(page.text.contains(&format!("src=\"{}\"", FRONT)), "{}", page.text);
    assert!(
        page.text
            .contains("<meta http-equiv=\"refresh\" content=\"2;url=https://client.example/bye?state=s1\">"),
        "{}",
        page.text
    );
    assert!(page.text.contains("href=\"https://client.example/bye?state=s1\""));
}

#[tokio::test]
async fn registration_checks_the_logout_metadata() {
    let server = TestServer::with_config("[registration]\nenabled = true\n").await;
    let register = |body: Value| {
        let request = axum::http::Request::post("/register")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        server.send(request)
    };
    let client = |profile: &str, extra: Value| {
        let mut body = json!({
            "redirect_uris": ["https://rp.example/cb"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": if profile == "oidc" { "client_secret_basic" } else { "none" },
            "profile": profile,
            "scope": "openid",
        });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let ok = register(client(
        "oidc",
        json!({
            "backchannel_logout_uri": "https://rp.example/bc-logout",
            "backchannel_logout_session_required": true,
            "frontchannel_logout_uri": "https://rp.example/fc-logout",
            "frontchannel_logout_session_required": true,
        }),
    ))
    .await;
    assert_eq!(ok.status.as_u16(), 201, "{}", ok.text);
    assert_eq!(ok.json["backchannel_logout_uri"], "https://rp.example/bc-logout");
    assert_eq!(ok.json["backchannel_logout_session_required"], true);
    assert_eq!(ok.json["frontchannel_logout_uri"], "https://rp.example/fc-logout");
    assert_eq!(ok.json["frontchannel_logout_session_required"], true);

    for (profile, field, uri) in [
        ("oidc", "backchannel_logout_uri", "https://rp.example/bc#frag"),
        ("oidc", "backchannel_logout_uri", "/relative"),
        ("oidc", "backchannel_logout_uri", "http://rp.example/bc"),
        ("fapi1-baseline", "frontchannel_logout_uri", "http://rp.example/fc"),
        ("oidc", "frontchannel_logout_uri", "https://rp.example/fc#frag"),
        ("oidc", "frontchannel_logout_uri", "https://other.example/fc"),
    ] {
        let refused = register(client(profile, json!({ field: uri }))).await;
        refused.assert_error(400, "invalid_client_metadata");
        assert!(
            refused.json["error_description"].as_str().unwrap().contains(field),
            "{uri}: {}",
            refused.text
        );
    }
}

#[test]
fn the_cli_registers_logout_uris() {
    let env = crate::cli_support::CliEnv::new();
    let add = |id: &'static str, uri: &'static str| {
        [
            "clients",
            "add",
            "--id",
            id,
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://rp.example/cb",
            "--backchannel-logout-uri",
            uri,
            "--backchannel-logout-session-required",
            "--frontchannel-logout-uri",
            "https://rp.example/fc",
        ]
    };
    env.ok(&add("rp", "https://rp.example/bc"));
    let shown = crate::cli_support::json(&env.ok(&["clients", "show", "rp"]));
    assert_eq!(shown["backchannel_logout_uri"], "https://rp.example/bc");
    assert_eq!(shown["backchannel_logout_session_required"], true);
    assert_eq!(shown["frontchannel_logout_uri"], "https://rp.example/fc");
    let err = env.fails(&add("bad", "https://rp.example/bc#x"));
    assert!(err.contains("backchannel_logout_uri: "), "{err}");
}

#[tokio::test]
async fn the_account_pages_sign_out_and_a_password_change_send_logout_tokens() {
    let (receiver, url) = Receiver::start(&[]).await;
    let (_server, live) = setup(|m| {
        m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap());
        m.frontchannel_logout_uri = Some(url::Url::parse(FRONT).unwrap());
    })
    .await;
    let mut here = Browser::new(&live);
    let mut elsewhere = Browser::new(&live);
    let tokens_here = sign_in(&live, &mut here, "openid").await;
    let tokens_elsewhere = sign_in(&live, &mut elsewhere, "openid").await;
    let sid_here = claims(tokens_here["id_token"].as_str().unwrap())["sid"].clone();
    let sid_elsewhere = claims(tokens_elsewhere["id_token"].as_str().unwrap())["sid"].clone();
    assert_ne!(sid_here, sid_elsewhere, "one sid per browser session");

    // A password change here ends the other browser's session: its client is told.
    let page = here.get("/account").await;
    let changed = here
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "new secret pass"),
                ("confirm_password", "new secret pass"),
                ("csrf", &page.hidden("csrf")),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text);
    let calls = receiver.wait_for(1).await;
    assert_eq!(claims(&logout_token(&calls[0]))["sid"], sid_elsewhere);

    // The Sign out button: a logout token for this session, and the frame.
    let page = here.get("/account").await;
    let done = here.post("/account/logout", &[("csrf", &page.hidden("csrf"))]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains(&format!("src=\"{FRONT}\"")), "{}", done.text);
    let calls = receiver.wait_for(2).await;
    assert_eq!(claims(&logout_token(&calls[1]))["sid"], sid_here);
}

#[tokio::test]
async fn a_queued_logout_token_survives_a_restart() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let url = format!("http://{addr}/logout");
    let (server, live) = setup(|m| m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap())).await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    logout(&mut browser, tokens["id_token"].as_str().unwrap()).await;
    drop(live);
    // A new node over the same database, once the receiver is up, delivers it.
    let receiver = Receiver::default();
    receiver.serve(tokio::net::TcpListener::bind(addr).await.unwrap());
    let restarted = outband_server::state::AppState::build(
        (*server.state.settings).clone(),
        server.state.store.clone(),
        server.clock.clone(),
    )
    .await
    .unwrap();
    server.clock.advance(600);
    delivery::deliver_due(&restarted).await.unwrap();
    let calls = receiver.wait_for(1).await;
    assert_eq!(claims(&logout_token(&calls[0]))["aud"], WEB);
}

#[tokio::test]
async fn the_hybrid_flows_id_token_carries_the_sessions_sid_too() {
    let (_server, live) = setup(|_| {}).await;
    let mut browser = Browser::new(&live);
    let login = browser
        .get(&authorize_path(WEB, &[("response_type", "code id_token")]))
        .await;
    let params = crate::jarm::fragment_params(&browser.login_and_approve(&login).await);
    let front = claims(&params["id_token"]);
    let (status, tokens) = redeem(&live, WEB, &params["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    let back = claims(tokens["id_token"].as_str().unwrap());
    assert!(front["sid"].as_str().is_some_and(|s| !s.is_empty()), "{front}");
    assert_eq!(front["sid"], back["sid"]);
}

#[tokio::test]
async fn a_grant_that_holds_offline_access_keeps_its_refresh_tokens_at_logout() {
    let (_server, live) = setup(|m| m.scope = outband_protocol::Scope::new("openid offline_access profile")).await;
    let mut first = Browser::new(&live);
    let offline = sign_in(&live, &mut first, "openid offline_access").await;
    let grant_id = offline["grant_id"].as_str().unwrap().to_owned();
    // Another session adds to the same grant without asking for offline_access.
    let mut second = Browser::new(&live);
    let merged = sign_in_with(
        &live,
        &mut second,
        &[
            ("scope", "openid profile"),
            ("grant_management_action", "merge"),
            ("grant_id", &grant_id),
        ],
    )
    .await;
    assert_eq!(merged["grant_id"], grant_id.as_str());
    logout(&mut second, merged["id_token"].as_str().unwrap()).await;
    // The grant (shared by both sessions) holds offline_access: §2.7, not revoked.
    assert_eq!(refresh(&live, offline["refresh_token"].as_str().unwrap()).await, 200);
}

#[tokio::test]
async fn a_re_login_keeping_the_sid_keeps_its_clients_until_the_new_end() {
    let (receiver, url) = Receiver::start(&[]).await;
    let (server, live) = setup(|m| m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap())).await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = claims(id_token)["sid"].as_str().unwrap().to_owned();
    let lifetime = outband_server::authorize::browser::SESSION_LIFETIME;
    server.clock.advance(lifetime - 60);
    // Signing in again (prompt=login) keeps the sid; no new code is issued.
    let login = browser
        .get(&authorize_path(WEB, &[("scope", "openid"), ("prompt", "login")]))
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let after_login = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(after_login.status, 303, "{}", after_login.text);
    let new_end = server.state.now() + lifetime;
    let rows = server.state.store.session_clients(&sid).await.unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.expires_at == new_end), "{rows:?}");
    // Past the first sign-in's end, expired rows are purged: the client stays.
    server.clock.advance(120);
    server
        .state
        .store
        .purge_expired_browser_rows(server.state.now(), 0)
        .await
        .unwrap();
    logout(&mut browser, id_token).await;
    let calls = receiver.wait_for(1).await;
    assert_eq!(claims(&logout_token(&calls[0]))["sid"], sid.as_str());
}

#[tokio::test]
async fn a_logout_for_a_deleted_client_fails_and_the_next_one_is_still_delivered() {
    use outband_protocol::ClientId;
    use outband_server::store::{NewNotification, NotificationKind};
    let (receiver, url) = Receiver::start(&[]).await;
    // No live server: no worker delivers behind the test's back.
    let server = TestServer::with_config(LOOPBACK_OUTBOUND).await;
    server
        .add_web_client(WEB, Profile::Oidc, |m| {
            m.backchannel_logout_uri = Some(url::Url::parse(&url).unwrap())
        })
        .await;
    server.add_web_client("gone", Profile::Oidc, |_| {}).await;
    let sealer = server.state.keys.sealer();
    let now = server.state.now();
    for (client, due_at) in [("gone", now - 1), (WEB, now)] {
        let body = json!({ "sub": "alice", "sid": "s1", "jti": format!("jti-{client}") });
        let queued = NewNotification {
            kind: NotificationKind::BackchannelLogout,
            client_id: ClientId::new(client),
            ciba_request_id: format!("logout:test-{client}"),
            endpoint: url.clone(),
            bearer_sealed: sealer.seal(b"").unwrap(),
            body_sealed: sealer.seal(body.to_string().as_bytes()).unwrap(),
            due_at,
        };
        server.state.store.enqueue_notification(&queued).await.unwrap().unwrap();
    }
    assert!(server.state.store.delete_client(&ClientId::new("gone")).await.unwrap());

    assert_eq!(delivery::deliver_due(&server.state).await.unwrap(), 2);
    let calls = receiver.wait_for(1).await;
    assert_eq!(claims(&logout_token(&calls[0]))["aud"], WEB);
    let failed = server.state.store.failed_notifications(10).await.unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].client_id.as_str(), "gone");
    let reason = failed[0].last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("no logout token") && reason.contains("gone"),
        "{reason}"
    );
    // Never claimed again.
    server.clock.advance(3600);
    assert_eq!(delivery::deliver_due(&server.state).await.unwrap(), 0);
    assert_eq!(receiver.calls().len(), 1);
}
