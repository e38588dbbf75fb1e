//! The sign-out pages ([`super::logout`]): the confirmation form, "you are
//! signed out", "you are still signed in" and the error page. Plain HTML
//! forms, no JavaScript, every value escaped; the frame is the browser flows'
//! (`crate::authorize::pages::page`).

use std::collections::BTreeSet;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use url::Url;

use crate::authorize::pages::{escape, page};

/// What the confirmation page needs.
#[derive(Debug)]
pub struct Confirm<'a> {
    /// Who is signed in.
    pub username: &'a str,
    /// The application asking, when known.
    pub client_name: Option<&'a str>,
    /// Its client_id (carried to the confirmation).
    pub client_id: Option<&'a str>,
    /// The validated post-logout redirect URI.
    pub redirect: Option<&'a str>,
    /// The request's `state`.
    pub state: Option<&'a str>,
    /// The form's CSRF token.
    pub csrf: &'a str,
}

fn hidden(name: &str, value: Option<&str>) -> String {
    value
        .map(|v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(v)))
        .unwrap_or_default()
}

/// "Sign out?": the user decides.
pub fn confirm(view: &Confirm<'_>) -> Response {
    let asking = view
        .client_name
        .map(|name| format!("<p><strong>{}</strong> asks to sign you out.</p>", escape(name)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign out?</h1><p>You are signed in as <strong>{user}</strong>.</p>{asking}\
         <form method=\"post\" action=\"/logout/confirm\">{csrf}{client}{redirect}{state}\
         <button type=\"submit\" name=\"decision\" value=\"logout\">Sign out</button>\
         <button type=\"submit\" name=\"decision\" value=\"stay\">Stay signed in</button></form>",
        user = escape(view.username),
        csrf = hidden("csrf", Some(view.csrf)),
        client = hidden("client_id", view.client_id),
        redirect = hidden("post_logout_redirect_uri", view.redirect),
        state = hidden("state", view.state),
    );
    page(StatusCode::OK, "Sign out?", &body)
}

/// "You are signed out", with a link back to the application when there is a
/// validated post-logout redirect URI, and an invisible iframe per
/// front-channel logout URI of the session's clients
/// ([Front-Channel Logout §3](https://openid.net/specs/openid-connect-frontchannel-1_0.html#OPLogout)).
pub fn signed_out(client_name: Option<&str>, link: Option<&str>, frames: &[Url]) -> Response {
    let back = match link {
        Some(href) => format!(
            "<p><a href=\"{}\">Return to {}</a></p>",
            escape(href),
            escape(client_name.unwrap_or("the application"))
        ),
        None => String::new(),
    };
    let mut response = page(
        StatusCode::OK,
        "Signed out",
        &format!(
            "<h1>You are signed out</h1><p role=\"status\">You are signed out of this server.</p>{back}{}",
            iframes(frames)
        ),
    );
    allow_frames(&mut response, frames);
    response
}

/// Signed out, on the way back to the application: the front-channel logout
/// iframes load, then the page moves on by itself after a moment (a
/// `<meta http-equiv="refresh">`, no JavaScript) or when the user follows the
/// link. Best effort: the page does not (cannot, without script) wait for the
/// frames, so a client page slower than `FRAME_SECONDS` may not finish;
/// back-channel logout is the reliable way.
pub fn signed_out_then_redirect(client_name: Option<&str>, target: &str, frames: &[Url]) -> Response {
    let body = format!(
        "<meta http-equiv=\"refresh\" content=\"{FRAME_SECONDS};url={url}\">\
         <h1>You are signed out</h1><p role=\"status\">You are signed out of this server.</p>\
         <p><a href=\"{url}\">Continue to {name}</a></p>{frames}",
        url = escape(target),
        name = escape(client_name.unwrap_or("the application")),
        frames = iframes(frames),
    );
    let mut response = page(StatusCode::OK, "Signed out", &body);
    allow_frames(&mut response, frames);
    response
}

/// Seconds the front-channel iframes get before the page moves on.
const FRAME_SECONDS: u32 = 2;

/// One invisible iframe per front-channel logout URI, sandboxed: the client's
/// page may run scripts and use its own cookies and storage (its origin), but
/// may not navigate this window, open pop-ups or submit forms.
fn iframes(frames: &[Url]) -> String {
    frames
        .iter()
        .map(|url| {
            format!(
                "<iframe class=\"frontchannel-logout\" src=\"{}\" title=\"Signing out of {}\" \
                 sandbox=\"allow-scripts allow-same-origin\" width=\"0\" height=\"0\" hidden></iframe>",
                escape(url.as_str()),
                escape(url.host_str().unwrap_or("an application")),
            )
        })
        .collect()
}

/// Adds the frames' origins to the page's CSP `frame-src` (the pages' policy
/// is `default-src 'none'`, which would block them).
fn allow_frames(response: &mut Response, frames: &[Url]) {
    let origins: BTreeSet<String> = frames.iter().map(|u| u.origin().ascii_serialization()).collect();
    if origins.is_empty() {
        return;
    }
    let current = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let sources: Vec<String> = origins.into_iter().collect();
    let csp = format!("{current}; frame-src {}", sources.join(" "));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The user chose to stay signed in.
pub fn still_signed_in(client_name: Option<&str>) -> Response {
    let app = client_name
        .map(|n| format!(" You may need to sign out of {} separately.", escape(n)))
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Still signed in",
        &format!("<h1>You are still signed in</h1><p role=\"status\">Nothing was changed.{app}</p>"),
    )
}

/// A sign-out request that cannot be honoured: `400`, never a redirect.
pub fn error(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-out problem",
        &format!(
            "<h1>This sign-out request cannot be completed</h1><p role=\"alert\">{}</p>\
             <p>You were not signed out. Go back to the application and try again.</p>",
            escape(message)
        ),
    )
}

/// Signing out failed (the store could not record it): nothing changed, the
/// user is still signed in and may try again. `500`.
pub fn not_signed_out() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-out failed",
        "<h1>You are still signed in</h1><p role=\"alert\">The sign-out could not be completed. \
         Nothing was changed; please try again.</p>",
    )
}

/// A confirmation form without its CSRF token (or from another browser).
pub fn stale_form() -> Response {
    error("This form has expired or was not sent from this browser.")
}
