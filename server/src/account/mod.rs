//! The user's account page (`/account`): the grants they gave applications
//! (with a Revoke button each), their enrolled authenticators (Remove), and a
//! password change. Server-rendered, no JavaScript ([`pages`]).
//!
//! It uses the login session of the browser flows (`outband_session`,
//! [`crate::authorize::browser`]); without one it shows its own sign-in form.
//! CSRF: the forms of a signed-in page carry a token derived from the session
//! cookie's secret (`SHA-256("account\n" + session)`), which another site can
//! neither read nor guess; the sign-in form uses a double-submit cookie
//! (`outband_account`, path `/account`) whose hash the form must carry. Both
//! cookies are `SameSite=Lax`, so cross-site posts arrive without them anyway.

pub mod backchannel;
pub mod logout;
pub mod logout_pages;
pub mod pages;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use outband_protocol::{Password, Subject};
use serde_json::json;

use crate::authorize::browser::{self, LoginOutcome, SESSION_COOKIE, SESSION_LIFETIME};
use crate::authorize::request::Params;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{AuditEvent, BrowserSessionRecord, UserRecord};
use crate::tokens::random_token;
use pages::{AccountView, DeviceView, GrantView};

/// The double-submit cookie of the sign-in form.
pub const CSRF_COOKIE: &str = "outband_account";

/// The CSRF token of a signed-in page: bound to the session's secret.
fn session_csrf(session_value: &str) -> String {
    browser::hash(&format!("account\n{session_value}"))
}

/// The signed-in user of the request, with the session's CSRF token.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(BrowserSessionRecord, UserRecord, String)>> {
    let Some(value) = browser::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(browser::current_session(state, headers)
        .await?
        .map(|(session, user)| (session, user, session_csrf(&value))))
}

fn see_other(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static(location)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

fn stale_form() -> Response {
    crate::authorize::pages::error(
        StatusCode::BAD_REQUEST,
        "This form has expired or was not sent from this browser. Open your account page again.",
    )
}

/// What a finished action says on the page (`/account?done=…`).
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "grant-revoked" => Some("The application's access was revoked."),
        "device-removed" => Some("The authenticator was removed."),
        "password-changed" => Some("Your password was changed."),
        "signed-in" => Some("You are signed in."),
        _ => None,
    }
}

/// `GET /account`: the account page, or the sign-in form.
pub async fn show(state: &AppState, headers: &HeaderMap, query: &Params) -> Result<Response> {
    match signed_in(state, headers).await? {
        Some((_, user, csrf)) => {
            let done = notice(query.get("done").map(String::as_str));
            account_page(state, &user, &csrf, StatusCode::OK, done, None).await
        }
        None => sign_in_form(state, headers, StatusCode::OK, None),
    }
}

fn sign_in_form(state: &AppState, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Result<Response> {
    let (value, set) = match browser::cookie(headers, CSRF_COOKIE) {
        Some(value) => (value, None),
        None => {
            let value = random_token();
            let set = browser::set_cookie(state, CSRF_COOKIE, &value, "/account", SESSION_LIFETIME)?;
            (value, Some(set))
        }
    };
    let mut response = pages::login(status, &browser::hash(&value), error);
    if let Some(cookie) = set {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn account_page(
    state: &AppState,
    user: &UserRecord,
    csrf: &str,
    status: StatusCode,
    notice: Option<&str>,
    password_error: Option<&str>,
) -> Result<Response> {
    let grants = state.store.grants_of_subject(&user.subject).await?;
    let mut names = Vec::with_capacity(grants.len());
    for grant in &grants {
        let client = state.client(&grant.client_id).await?;
        names.push(client.map_or_else(|| grant.client_id.to_string(), |c| c.metadata.display_name().to_owned()));
    }
    let devices = state.store.devices_of_subject(&user.subject).await?;
    let view = AccountView {
        username: &user.username,
        grants: grants
            .iter()
            .zip(&names)
            .map(|(g, name)| GrantView {
                grant_id: &g.grant_id,
                client_name: name,
                scopes: g.scope.iter().collect(),
                authorization_details: g
                    .authorization_details
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok()),
                updated_at: g.updated_at,
            })
            .collect(),
        devices: devices
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .map(|d| DeviceView {
                id: &d.id,
                name: &d.name,
                created_at: d.created_at,
                last_seen_at: d.last_seen_at,
            })
            .collect(),
        csrf,
        notice,
        password_error,
    };
    Ok(pages::account(status, &view))
}

/// `POST /account/login`.
pub async fn login(state: &AppState, headers: &HeaderMap, address: &str, form: &Params) -> Result<Response> {
    let csrf_ok = browser::cookie(headers, CSRF_COOKIE)
        .zip(form.get("csrf"))
        .is_some_and(|(cookie, csrf)| browser::matches(&cookie, csrf));
    if !csrf_ok {
        return Ok(stale_form());
    }
    let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
        return sign_in_form(
            state,
            headers,
            StatusCode::OK,
            Some("Enter your username and password."),
        );
    };
    let user = match browser::check_login(state, username, Password::new(password.as_str()), address).await? {
        LoginOutcome::Success(user) => user,
        LoginOutcome::Failed => {
            return sign_in_form(state, headers, StatusCode::OK, Some("Wrong username or password."))
        }
        LoginOutcome::Throttled => {
            return sign_in_form(
                state,
                headers,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed attempts. Wait 15 minutes and try again."),
            )
        }
    };
    let cookie = browser::start_session(state, headers, &user.subject, state.now()).await?;
    let mut response = see_other("/account?done=signed-in");
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// The signed-in user of a form post whose CSRF token is right.
async fn form_user(state: &AppState, headers: &HeaderMap, form: &Params) -> Result<Option<(UserRecord, String)>> {
    let Some((_, user, csrf)) = signed_in(state, headers).await? else {
        return Ok(None);
    };
    let matches = form
        .get("csrf")
        .is_some_and(|sent| subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf.as_bytes()).into());
    Ok(matches.then_some((user, csrf)))
}

/// `POST /account/revoke-grant`: the user revokes one of their grants (and so
/// every token of it).
pub async fn revoke_grant(state: &AppState, headers: &HeaderMap, form: &Params) -> Result<Response> {
    let Some((user, _)) = form_user(state, headers, form).await? else {
        return Ok(stale_form());
    };
    let Some(grant_id) = form.get("grant_id") else {
        return Ok(see_other("/account"));
    };
    crate::grant_management::api::revoke_by_user(state, &user.subject, grant_id).await?;
    Ok(see_other("/account?done=grant-revoked"))
}

/// `POST /account/revoke-device`: the user removes one of their authenticators.
pub async fn revoke_device(state: &AppState, headers: &HeaderMap, form: &Params) -> Result<Response> {
    let Some((user, _)) = form_user(state, headers, form).await? else {
        return Ok(stale_form());
    };
    let Some(device_id) = form.get("device_id") else {
        return Ok(see_other("/account"));
    };
    let theirs = state
        .store
        .device(device_id)
        .await?
        .is_some_and(|d| d.subject == user.subject && d.revoked_at.is_none());
    if theirs && state.store.revoke_device(device_id, state.now()).await? {
        audit(
            state,
            &user.subject,
            "device.revoked",
            json!({ "device_id": device_id, "by": "user" }),
        )
        .await;
    }
    Ok(see_other("/account?done=device-removed"))
}

/// `POST /account/logout`: the Sign out button; ends this browser's session.
pub async fn sign_out(state: &AppState, headers: &HeaderMap, form: &Params) -> Result<Response> {
    let Some((session, _, csrf)) = signed_in(state, headers).await? else {
        // Not signed in (any more): nothing to end.
        return logout::signed_out_here(state, &[]);
    };
    let matches: bool = form
        .get("csrf")
        .is_some_and(|sent| subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf.as_bytes()).into());
    if !matches {
        return Ok(stale_form());
    }
    match logout::end_browser_session(state, &session, "user", None).await {
        Ok(frames) => logout::signed_out_here(state, &frames),
        Err(page) => Ok(page),
    }
}

/// `POST /account/password`: current password, new password twice. The
/// current password is checked like a sign-in (failures count towards the same
/// limit), so a borrowed session cannot guess it.
pub async fn change_password(state: &AppState, headers: &HeaderMap, address: &str, form: &Params) -> Result<Response> {
    let Some((user, csrf)) = form_user(state, headers, form).await? else {
        return Ok(stale_form());
    };
    let (user, csrf) = (&user, csrf.as_str());
    let refuse = |why: &'static str| async move {
        account_page(state, user, csrf, StatusCode::BAD_REQUEST, None, Some(why)).await
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (current, new, confirm) = (
        field("current_password"),
        field("new_password"),
        field("confirm_password"),
    );
    if new != confirm {
        return refuse("The two new passwords differ.").await;
    }
    match browser::check_login(state, &user.username, Password::new(current), address).await? {
        LoginOutcome::Success(_) => {}
        LoginOutcome::Failed => return refuse("The current password is wrong.").await,
        LoginOutcome::Throttled => return refuse("Too many failed attempts. Wait 15 minutes and try again.").await,
    }
    let hashed = tokio::task::spawn_blocking(move || crate::password::hash(&Password::new(new)))
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    let Ok(hash) = hashed else {
        return refuse("The new password is too short.").await;
    };
    state.store.set_password_hash(&user.subject, Some(&hash)).await?;
    // Whoever else holds a session of this user is signed out; this browser
    // stays. Each session's clients get back-channel logout tokens (those
    // browsers are not here to show front-channel iframes), queued in the same
    // step that deletes the session.
    let others = match browser::cookie(headers, SESSION_COOKIE) {
        Some(value) => {
            state
                .store
                .other_browser_sessions(&user.subject, &browser::hash(&value))
                .await?
        }
        None => Vec::new(),
    };
    let (mut ended, mut failed) = (0usize, 0usize);
    for session in &others {
        match backchannel::end_session(state, session).await {
            Ok(done) => ended += usize::from(done.session_ended),
            Err(err) => {
                tracing::warn!(error = %err, "could not end another session of the user");
                failed += 1;
            }
        }
    }
    audit(
        state,
        &user.subject,
        "user.password_changed",
        json!({ "by": "user", "other_sessions_ended": ended, "other_sessions_not_ended": failed }),
    )
    .await;
    if failed > 0 {
        let why = "Your password was changed, but some of your other sign-ins could not be ended. \
                   Change it again to retry.";
        return account_page(state, user, csrf, StatusCode::INTERNAL_SERVER_ERROR, None, Some(why)).await;
    }
    Ok(see_other("/account?done=password-changed"))
}

pub(crate) async fn audit(state: &AppState, subject: &Subject, event: &str, detail: serde_json::Value) {
    let entry = AuditEvent {
        id: 0,
        at: state.now(),
        event: event.to_owned(),
        client_id: None,
        subject: Some(subject.to_string()),
        request_id: None,
        detail,
    };
    if let Err(err) = state.store.append_audit(&entry).await {
        tracing::warn!(error = %err, "could not write the audit log");
    }
}
