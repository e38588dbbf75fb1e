//! Test support for public native clients (RFC 8252): a public client
//! registered with loopback and private-use redirect URIs, the code flow
//! through the real pages with any redirect URI, and token requests that
//! identify the client by `client_id` only, with or without a DPoP proof.

use std::collections::BTreeMap;

use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, ClientMetadata, GrantType, Profile, Scope, TokenEndpointAuthMethod};
use serde_json::{json, Value};

use crate::browser_support::{Browser, Live, CHALLENGE, VERIFIER};
use crate::device_support::proof;
use crate::support::TestServer;

/// The native app of these tests.
pub const APP: &str = "native-app";
/// Its registered loopback redirect URIs (RFC 8252 §7.3): IPv4 without a
/// port, IPv6 with one; both match any port.
pub const LOOPBACK_V4: &str = "http://127.0.0.1/callback";
pub const LOOPBACK_V6: &str = "http://[::1]:8400/callback";
/// Its private-use scheme redirect URI (RFC 8252 §7.1).
pub const PRIVATE_USE: &str = "com.example.app:/oauth2redirect";

impl TestServer {
    /// Registers the public native app [`APP`] under `profile`.
    pub async fn add_native_client(&self, profile: Profile) {
        let mut meta = ClientMetadata::new(ClientId::new(APP));
        meta.client_name = Some("Example App".into());
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        meta.scope = Scope::new("openid profile payments");
        meta.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        meta.redirect_uris = [LOOPBACK_V4, LOOPBACK_V6, PRIVATE_USE]
            .iter()
            .map(|u| url::Url::parse(u).unwrap())
            .collect();
        meta.profile = profile;
        outband_server::clients::validate(&meta, false).unwrap();
        self.add_client(meta, None).await;
    }
}

/// `/authorize?` for [`APP`] with `redirect_uri`, S256 PKCE, `state` and
/// `nonce`, and `extra` parameters (an empty value removes one).
pub fn native_authorize_path(redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut params: BTreeMap<&str, &str> = [
        ("client_id", APP),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile"),
        ("state", "st-native"),
        ("nonce", "n-native"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .collect();
    for (k, v) in extra {
        params.insert(k, v);
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    format!("/authorize?{query}")
}

/// The query parameters of a redirect to `redirect_uri` (which it must start with).
pub fn params_at(location: &str, redirect_uri: &str) -> BTreeMap<String, String> {
    assert!(
        location.starts_with(&format!("{redirect_uri}?")),
        "{location} is not at {redirect_uri}"
    );
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Logs alice in and approves: the code at `redirect_uri`.
pub async fn native_code(live: &Live, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut browser = Browser::new(live);
    let login = browser.get(&native_authorize_path(redirect_uri, extra)).await;
    let redirect = browser.login_and_approve(&login).await;
    assert_eq!(redirect.status, 303, "{}", redirect.text);
    let params = params_at(&redirect.location().unwrap(), redirect_uri);
    assert_eq!(params["state"], "st-native");
    params["code"].clone()
}

/// A token-endpoint DPoP proof by `key` (htu is the issuer's `/token`).
pub fn token_proof(server: &TestServer, key: &SigningKey) -> String {
    proof(key, server.state.now(), "POST", "/token", None, None, &json!({}))
}

/// `POST /token` over the socket without client authentication (a public
/// client names itself with `client_id`), with a DPoP proof when given.
pub async fn public_token(live: &Live, form: &[(&str, &str)], dpop: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{}/token", live.base)).form(form);
    if let Some(dpop) = dpop {
        request = request.header("DPoP", dpop);
    }
    let reply = request.send().await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

/// Redeems `code` for [`APP`] at `redirect_uri` with the test verifier.
pub async fn redeem_public(live: &Live, code: &str, redirect_uri: &str, dpop: Option<&str>) -> (u16, Value) {
    public_token(
        live,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", APP),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
        ],
        dpop,
    )
    .await
}

/// Refreshes `refresh_token` as [`APP`].
pub async fn refresh_public(live: &Live, refresh_token: &str, dpop: Option<&str>) -> (u16, Value) {
    public_token(
        live,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", APP),
            ("refresh_token", refresh_token),
        ],
        dpop,
    )
    .await
}
