//! [OpenID Connect RP-Initiated Logout 1.0](https://openid.net/specs/openid-connect-rpinitiated-1_0.html):
//! `GET`/`POST /logout` (discovery's `end_session_endpoint`), its confirmation
//! form `POST /logout/confirm`, and ending a browser session (the account
//! page's Sign out button uses it too).
//!
//! - `id_token_hint` must be an ID token this server issued: signature by one of
//!   our keys, `iss` our issuer, `typ: JWT` with `sub`, `aud` and `auth_time` (so
//!   an access token, a JARM response or a UserInfo JWT is no hint). An expired
//!   one is accepted (§4: the hint outlives the ID token's `exp`). Anything else
//!   is an error page, `400`, never a redirect (§4).
//! - The client is `client_id`, else the hint's `aud`; with both, `client_id`
//!   must be an audience of the hint (§2).
//! - `post_logout_redirect_uri` needs a client and must equal one of its
//!   registered `post_logout_redirect_uris` exactly (§3); else error page, `400`.
//!   `state` comes back on that redirect.
//! - The user is signed out at once only when the request is tied to the
//!   browser's session: a valid hint whose `sub` is the session's user (and a
//!   `logout_hint`, if sent, naming that same user). Otherwise (no hint, another
//!   user's hint) the user is asked on a page (§2: "MUST ask the End-User");
//!   its form carries a CSRF token bound to the session cookie's secret.
//! - Without a session there is nothing to end: a valid hint redirects at once;
//!   without one the signed-out page offers a link back instead of redirecting
//!   (§2: no post-logout redirection without a hint unless the OP has other
//!   means of confirming it; a click by the user is one).
//! - Signing out deletes the session row and clears `outband_session`. In the
//!   same store transaction the session's clients are told
//!   ([`super::backchannel`]: back-channel logout tokens queued, front-channel
//!   iframes on the signed-out page) and refresh tokens of its grants without
//!   `offline_access` are revoked; other tokens stay valid. If that fails,
//!   nothing changed: the user stays signed in and sees a page saying so
//!   (`500`), and can try again.
//! - `ui_locales` is accepted; the pages are English only.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use outband_protocol::jose::verify_jwt;
use outband_protocol::{ClientId, Subject};
use serde_json::{json, Value};
use url::Url;

use super::logout_pages::{self, Confirm};
use crate::authorize::browser::{self, SESSION_COOKIE};
use crate::authorize::request::Params;
use crate::error::{Error, Result};
use crate::keys::SERVER_ALGS;
use crate::state::AppState;
use crate::store::{BrowserSessionRecord, ClientRecord};

/// The longest `state`, `logout_hint`, `client_id` or `ui_locales` accepted.
const MAX_VALUE_LEN: usize = 2048;

/// A logout request that passed validation.
#[derive(Debug)]
struct Checked {
    /// The client the request is from, when named and known.
    client: Option<ClientRecord>,
    /// The user the `id_token_hint` names.
    hint_subject: Option<Subject>,
    /// The validated post-logout redirect URI.
    redirect: Option<String>,
    /// `state`, to return on the redirect.
    state: Option<String>,
}

impl Checked {
    fn client_name(&self) -> Option<&str> {
        self.client.as_ref().map(|c| c.metadata.display_name())
    }

    /// `post_logout_redirect_uri` with `state` added to its query.
    fn target(&self) -> Option<String> {
        let mut url = Url::parse(self.redirect.as_deref()?).ok()?;
        if let Some(state) = &self.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        Some(url.into())
    }
}

/// Why a request is refused (shown on the error page).
type Refusal = String;

/// The session's CSRF token for the confirmation form.
fn confirm_csrf(session_value: &str) -> String {
    browser::hash(&format!("logout\n{session_value}"))
}

/// `GET`/`POST /logout`.
pub async fn end_session(state: &AppState, headers: &HeaderMap, params: &Params) -> Result<Response> {
    let checked = match check(state, params).await? {
        Ok(checked) => checked,
        Err(why) => return Ok(logout_pages::error(&why)),
    };
    let Some((session, user)) = browser::current_session(state, headers).await? else {
        return finish(state, &checked, checked.hint_subject.is_some(), &[]);
    };
    let logout_hint_ok = match params.get("logout_hint") {
        None => true,
        Some(hint) => state
            .store
            .user_by_login_hint(hint.trim())
            .await?
            .is_some_and(|named| named.subject == user.subject),
    };
    let tied = checked.hint_subject.as_ref() == Some(&session.subject) && logout_hint_ok;
    if tied {
        let frames = match end_browser_session(
            state,
            &session,
            "rp",
            checked.client.as_ref().map(ClientRecord::client_id),
        )
        .await
        {
            Ok(frames) => frames,
            Err(page) => return Ok(page),
        };
        return finish(state, &checked, true, &frames);
    }
    let Some(value) = browser::cookie(headers, SESSION_COOKIE) else {
        return finish(state, &checked, false, &[]);
    };
    let csrf = confirm_csrf(&value);
    let mut page = logout_pages::confirm(&Confirm {
        username: &user.username,
        client_name: checked.client_name(),
        client_id: checked.client.as_ref().map(|c| c.client_id().as_str()),
        redirect: checked.redirect.as_deref(),
        state: checked.state.as_deref(),
        csrf: &csrf,
    });
    if let Some(uri) = &checked.redirect {
        crate::authorize::pages::allow_form_target(&mut page, uri);
    }
    Ok(page)
}

/// `POST /logout/confirm`: the user's answer on the confirmation page.
pub async fn confirm(state: &AppState, headers: &HeaderMap, form: &Params) -> Result<Response> {
    let checked = match check_confirmed(state, form).await? {
        Ok(checked) => checked,
        Err(why) => return Ok(logout_pages::error(&why)),
    };
    let Some((session, _)) = browser::current_session(state, headers).await? else {
        // Already signed out (expired, or another tab): nothing to end.
        return finish(state, &checked, false, &[]);
    };
    let csrf_ok = browser::cookie(headers, SESSION_COOKIE)
        .zip(form.get("csrf"))
        .is_some_and(|(value, sent)| {
            subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), confirm_csrf(&value).as_bytes()).into()
        });
    if !csrf_ok {
        return Ok(logout_pages::stale_form());
    }
    if form.get("decision").map(String::as_str) != Some("logout") {
        return Ok(logout_pages::still_signed_in(checked.client_name()));
    }
    let frames = match end_browser_session(
        state,
        &session,
        "user",
        checked.client.as_ref().map(ClientRecord::client_id),
    )
    .await
    {
        Ok(frames) => frames,
        Err(page) => return Ok(page),
    };
    // The user confirmed on our page: that confirms the redirection too.
    finish(state, &checked, true, &frames)
}

/// Ends `session` (the row; the caller clears the cookie) and logs it. Its
/// clients are told in the same step (back-channel logout tokens queued,
/// refresh tokens of grants without `offline_access` revoked;
/// [`super::backchannel`]); returns their front-channel logout URLs for the
/// signed-out page. When that fails nothing changed, the session included:
/// `Err` is the page that says so (the user can try again).
pub(crate) async fn end_browser_session(
    state: &AppState,
    session: &BrowserSessionRecord,
    by: &str,
    client_id: Option<&ClientId>,
) -> std::result::Result<Vec<Url>, Response> {
    match super::backchannel::end_session(state, session).await {
        Ok(ended) => {
            if ended.session_ended {
                let detail = json!({ "by": by, "client_id": client_id.map(ClientId::as_str) });
                super::audit(state, &session.subject, "user.signed_out", detail).await;
            }
            Ok(ended.frames)
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not end a browser session");
            Err(logout_pages::not_signed_out())
        }
    }
}

/// The `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie(state: &AppState) -> Result<HeaderValue> {
    browser::set_cookie(state, SESSION_COOKIE, "", "/", 0)
}

/// The answer once signed out: the redirect (when `redirect_ok`), else the
/// signed-out page (with a link back when there is a validated URI). With
/// front-channel logout `frames`, the redirect becomes a page that loads them
/// and then moves on.
fn finish(state: &AppState, checked: &Checked, redirect_ok: bool, frames: &[Url]) -> Result<Response> {
    let target = checked.target();
    let mut response = match (&target, redirect_ok) {
        (Some(target), true) if !frames.is_empty() => {
            logout_pages::signed_out_then_redirect(checked.client_name(), target, frames)
        }
        (Some(target), true) => {
            let location = HeaderValue::from_str(target).map_err(|e| Error::internal(e.to_string()))?;
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response()
        }
        (link, _) => logout_pages::signed_out(checked.client_name(), link.as_deref(), frames),
    };
    response.headers_mut().append(header::SET_COOKIE, clear_cookie(state)?);
    Ok(response)
}

/// The signed-out page after the account page's Sign out button (with the
/// front-channel logout `frames` of the ended session).
pub(crate) fn signed_out_here(state: &AppState, frames: &[Url]) -> Result<Response> {
    let mut response = logout_pages::signed_out(None, None, frames);
    response.headers_mut().append(header::SET_COOKIE, clear_cookie(state)?);
    Ok(response)
}

fn too_long(params: &Params) -> Option<Refusal> {
    [
        "state",
        "logout_hint",
        "client_id",
        "ui_locales",
        "post_logout_redirect_uri",
    ]
    .into_iter()
    .find(|name| params.get(*name).is_some_and(|v| v.len() > MAX_VALUE_LEN))
    .map(|name| format!("The parameter {name} is too long."))
}

/// Validates a logout request (§2, §3, §4). `Ok(Err(_))` is a refusal for the page.
async fn check(state: &AppState, params: &Params) -> Result<std::result::Result<Checked, Refusal>> {
    if let Some(why) = too_long(params) {
        return Ok(Err(why));
    }
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => match verify_hint(state, token) {
            Ok(hint) => Some(hint),
            Err(why) => return Ok(Err(why)),
        },
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(given), Some((_, audiences))) if !audiences.iter().any(|a| a == given) => {
            return Ok(Err(
                "The id_token_hint was not issued to the client_id of this request.".into(),
            ))
        }
        (Some(given), _) => Some(given.clone()),
        (None, Some((_, audiences))) if audiences.len() == 1 => audiences.first().cloned(),
        (None, _) => None,
    };
    let checked = validated(
        state,
        client_id,
        params.get("post_logout_redirect_uri"),
        params.get("state"),
    )
    .await?;
    Ok(checked.map(|checked| Checked {
        hint_subject: hint.map(|(subject, _)| subject),
        ..checked
    }))
}

/// Validates the confirmation form's copy of the request (it came through the
/// browser, so it is checked again).
async fn check_confirmed(state: &AppState, form: &Params) -> Result<std::result::Result<Checked, Refusal>> {
    if let Some(why) = too_long(form) {
        return Ok(Err(why));
    }
    validated(
        state,
        form.get("client_id").cloned(),
        form.get("post_logout_redirect_uri"),
        form.get("state"),
    )
    .await
}

/// The client, and the redirect URI when it is one of the client's.
async fn validated(
    state: &AppState,
    client_id: Option<String>,
    redirect: Option<&String>,
    logout_state: Option<&String>,
) -> Result<std::result::Result<Checked, Refusal>> {
    let client = match &client_id {
        Some(id) => state.client(&ClientId::new(id.as_str())).await?,
        None => None,
    };
    if let Some(uri) = redirect {
        let Some(client) = &client else {
            return Ok(Err(if client_id.is_some() {
                "The application of this sign-out request is unknown.".into()
            } else {
                "A post_logout_redirect_uri needs an id_token_hint or a client_id.".into()
            }));
        };
        let registered = client
            .metadata
            .post_logout_redirect_uris
            .iter()
            .any(|r| r.as_str() == uri.as_str());
        if !registered {
            return Ok(Err(
                "The post_logout_redirect_uri is not registered for this application.".into(),
            ));
        }
    }
    Ok(Ok(Checked {
        client,
        hint_subject: None,
        redirect: redirect.cloned(),
        state: logout_state.cloned(),
    }))
}

/// An ID token this server issued (expired or not): its `sub` and audiences.
/// Also what `/authorize` checks an `id_token_hint` with.
pub(crate) fn verify_hint(state: &AppState, token: &str) -> std::result::Result<(Subject, Vec<String>), Refusal> {
    let bad = || "The id_token_hint is not an ID token of this server.".to_owned();
    let verified = verify_jwt(token, &state.keys.public_keys(), &SERVER_ALGS).map_err(|_| bad())?;
    let typ_ok = verified
        .header
        .get("typ")
        .and_then(Value::as_str)
        .is_none_or(|t| t.eq_ignore_ascii_case("JWT"));
    let claims = &verified.claims;
    let issuer_ok = claims.get("iss").and_then(Value::as_str) == Some(state.settings.issuer.as_str());
    if !typ_ok || !issuer_ok || !claims.get("auth_time").is_some_and(Value::is_i64) {
        return Err(bad());
    }
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let subject = claims.get("sub").and_then(Value::as_str).map(Subject::new);
    match subject {
        Some(subject) if !audiences.is_empty() => Ok((subject, audiences)),
        _ => Err(bad()),
    }
}
