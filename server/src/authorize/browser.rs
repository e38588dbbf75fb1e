//! The browser side: cookies, login sessions, password checks and the
//! failed-login limit.
//!
//! - `outband_browser` (path `/authorize`) ties an authorization in progress to
//!   the browser that started it, so a sign-in form handed to someone else is
//!   useless (login CSRF); the forms also carry a CSRF token bound to the
//!   interaction.
//! - `outband_session` (path `/`) is the login session: a random value whose
//!   SHA-256 is stored with the user and the time they logged in (`auth_time`).
//!
//! Both are `HttpOnly; SameSite=Lax`, and `Secure` when the issuer is https.
//! Failed logins are counted per username and client address in the store (so
//! every node sees them): after [`MAX_FAILED_LOGINS`] in [`FAILED_LOGIN_WINDOW`]
//! seconds that pair is refused until the window passes. Unknown users, users
//! without a password and locked users fail exactly like a wrong password, after
//! the same argon2 work, so the page never tells whether a user exists.

use std::sync::OnceLock;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use outband_protocol::jose::sha256_b64url;
use outband_protocol::{Password, Subject};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{BrowserSessionRecord, UserRecord};
use crate::tls::listener::PeerInfo;
use crate::tokens::random_token;

/// The login session cookie.
pub const SESSION_COOKIE: &str = "outband_session";
/// The cookie that binds an authorization in progress to its browser.
pub const BROWSER_COOKIE: &str = "outband_browser";
/// How long a login session lasts, in seconds.
pub const SESSION_LIFETIME: i64 = 8 * 3600;
/// How long a user has between `/authorize` and their decision, in seconds.
pub const INTERACTION_LIFETIME: i64 = 600;
/// Failed logins allowed per username and address within the window.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// The failed-login window, in seconds.
pub const FAILED_LOGIN_WINDOW: i64 = 900;

/// SHA-256 (base64url) of a secret, as the store keeps it.
pub fn hash(secret: &str) -> String {
    sha256_b64url(secret.as_bytes())
}

/// Whether `secret` hashes to `stored`, in constant time.
pub fn matches(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

/// The value of cookie `name` in the request, when sent once.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned());
    match (found.next(), found.next()) {
        (Some(value), None) if !value.is_empty() => Some(value),
        _ => None,
    }
}

/// A `Set-Cookie` value for `name`.
pub fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> Result<HeaderValue> {
    let secure = if state.settings.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .map_err(|e| Error::internal(e.to_string()))
}

/// The browser's `outband_browser` value, and a `Set-Cookie` when it is new.
pub fn browser_id(state: &AppState, headers: &HeaderMap) -> Result<(String, Option<HeaderValue>)> {
    if let Some(id) = cookie(headers, BROWSER_COOKIE) {
        return Ok((id, None));
    }
    let id = random_token();
    let set = set_cookie(state, BROWSER_COOKIE, &id, "/authorize", SESSION_LIFETIME)?;
    Ok((id, Some(set)))
}

/// The request's live login session and its user (existing and not locked).
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(BrowserSessionRecord, UserRecord)>> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = state.store.browser_session(&hash(&value), state.now()).await? else {
        return Ok(None);
    };
    let user = state.store.user(&session.subject).await?.filter(|u| !u.locked);
    Ok(user.map(|user| (session, user)))
}

/// Starts a login session for `subject`; returns its `Set-Cookie`. When the
/// browser already holds a session of the same user (a new sign-in, e.g.
/// `prompt=login`), the new one replaces it and keeps its `sid` (and its
/// clients' records last as long as the new session), so the clients that
/// got ID tokens in it are still told when it ends.
pub async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    subject: &Subject,
    auth_time: i64,
) -> Result<HeaderValue> {
    let previous = current_session(state, headers)
        .await?
        .map(|(session, _)| session)
        .filter(|session| &session.subject == subject);
    let kept_sid = previous.as_ref().and_then(|session| session.sid.clone());
    let sid = kept_sid.clone().unwrap_or_else(crate::account::backchannel::new_sid);
    let value = random_token();
    let expires_at = auth_time + SESSION_LIFETIME;
    state
        .store
        .insert_browser_session(&BrowserSessionRecord {
            session_hash: hash(&value),
            subject: subject.clone(),
            auth_time,
            expires_at,
            sid: Some(sid),
        })
        .await?;
    if let Some(sid) = &kept_sid {
        // The session lasts longer now: so do its clients (else they are
        // purged at the old end, and a later logout would tell nobody).
        state.store.extend_session_clients(sid, expires_at).await?;
    }
    if let Some(previous) = previous {
        state.store.delete_browser_session(&previous.session_hash).await?;
    }
    set_cookie(state, SESSION_COOKIE, &value, "/", SESSION_LIFETIME)
}

/// The client address of a request: the TCP peer (`unknown` in-process).
#[derive(Clone, Debug)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<PeerInfo>>()
            .map_or_else(|| "unknown".to_owned(), |info| info.0.addr.ip().to_string());
        Ok(Self(addr))
    }
}

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The password is right.
    Success(Box<UserRecord>),
    /// Wrong username or password (which one is never said).
    Failed,
    /// Too many failures for this username from this address.
    Throttled,
}

/// A PHC string no password matches, checked for unknown users so that they
/// cost the same argon2 work as known ones.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| crate::password::hash(&Password::new(random_token())).unwrap_or_default())
}

/// Checks `password` for `username`, counting failures per username and `address`.
pub async fn check_login(state: &AppState, username: &str, password: Password, address: &str) -> Result<LoginOutcome> {
    let key = hash(&format!("{}\n{address}", username.to_lowercase()));
    let now = state.now();
    let window_start = now - FAILED_LOGIN_WINDOW;
    if state.store.login_failures(&key, window_start).await? >= MAX_FAILED_LOGINS {
        return Ok(LoginOutcome::Throttled);
    }
    let user = state.store.user_by_login_hint(username).await?;
    let stored = user
        .as_ref()
        .filter(|u| !u.locked)
        .and_then(|u| u.password_hash.clone());
    let known = stored.is_some();
    let verified = tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| decoy_hash().to_owned());
        crate::password::verify(&password, &stored)
    })
    .await
    .map_err(|e| Error::internal(e.to_string()))?;
    match user {
        Some(user) if known && verified => {
            state.store.clear_login_failures(&key).await?;
            Ok(LoginOutcome::Success(Box::new(user)))
        }
        _ => {
            state.store.record_login_failure(&key, now, window_start).await?;
            Ok(LoginOutcome::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_once() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; outband_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, "outband_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
        headers.append(header::COOKIE, HeaderValue::from_static("outband_session=other"));
        assert_eq!(cookie(&headers, "outband_session"), None, "two values: trust neither");
    }
}
