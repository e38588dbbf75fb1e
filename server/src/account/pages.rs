//! The account pages' HTML: the sign-in form, and the account page with the
//! user's grants, devices and the password form. Plain forms with labels, no
//! JavaScript; every value is escaped (the page frame and the plain-words
//! descriptions are the consent page's, [`crate::authorize::pages`]).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use crate::authorize::pages::{describe_detail, describe_scope, escape, page};

/// A grant as the account page shows it.
#[derive(Debug)]
pub struct GrantView<'a> {
    /// The grant id (the Revoke form's value).
    pub grant_id: &'a str,
    /// The application's name.
    pub client_name: &'a str,
    /// Granted scopes.
    pub scopes: Vec<&'a str>,
    /// Granted authorization details (a JSON array).
    pub authorization_details: Option<Value>,
    /// Last change, unix time.
    pub updated_at: i64,
}

/// A device as the account page shows it.
#[derive(Debug)]
pub struct DeviceView<'a> {
    /// Device id (the Revoke form's value).
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Enrolled, unix time.
    pub created_at: i64,
    /// Last call, unix time.
    pub last_seen_at: Option<i64>,
}

/// What the account page shows.
#[derive(Debug)]
pub struct AccountView<'a> {
    /// Who is signed in.
    pub username: &'a str,
    /// Their live grants.
    pub grants: Vec<GrantView<'a>>,
    /// Their live devices.
    pub devices: Vec<DeviceView<'a>>,
    /// The forms' CSRF token.
    pub csrf: &'a str,
    /// A confirmation of what was just done.
    pub notice: Option<&'a str>,
    /// Why the password form was refused.
    pub password_error: Option<&'a str>,
}

/// A unix time as a UTC date and time.
fn when(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

fn grant_html(grant: &GrantView<'_>, csrf: &str) -> String {
    let scopes: String = grant
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let details: String = grant
        .authorization_details
        .as_ref()
        .and_then(Value::as_array)
        .map(|items| items.iter().map(describe_detail).collect())
        .unwrap_or_default();
    let client = escape(grant.client_name);
    format!(
        "<li class=\"detail\"><h3>{client}</h3><p>Allowed to:</p><ul>{scopes}</ul>{details}\
         <p>Last changed {when}.</p>\
         <form method=\"post\" action=\"/account/revoke-grant\">{csrf}\
         <input type=\"hidden\" name=\"grant_id\" value=\"{id}\">\
         <button type=\"submit\">Revoke access of {client}</button></form></li>",
        when = when(grant.updated_at),
        csrf = csrf_field(csrf),
        id = escape(grant.grant_id),
    )
}

fn device_html(device: &DeviceView<'_>, csrf: &str) -> String {
    let name = escape(device.name);
    let seen = device
        .last_seen_at
        .map_or_else(|| "never used yet".to_owned(), |t| format!("last used {}", when(t)));
    format!(
        "<li class=\"detail\"><h3>{name}</h3><p>Enrolled {enrolled}, {seen}.</p>\
         <form method=\"post\" action=\"/account/revoke-device\">{csrf}\
         <input type=\"hidden\" name=\"device_id\" value=\"{id}\">\
         <button type=\"submit\">Remove device {name}</button></form></li>",
        enrolled = when(device.created_at),
        csrf = csrf_field(csrf),
        id = escape(device.id),
    )
}

/// The account page.
pub fn account(status: StatusCode, view: &AccountView<'_>) -> Response {
    let notice = view
        .notice
        .map(|n| format!("<p role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    let grants = if view.grants.is_empty() {
        "<p>No application has access to your account.</p>".to_owned()
    } else {
        let items: String = view.grants.iter().map(|g| grant_html(g, view.csrf)).collect();
        format!("<ul>{items}</ul>")
    };
    let devices = if view.devices.is_empty() {
        "<p>No authenticator is enrolled.</p>".to_owned()
    } else {
        let items: String = view.devices.iter().map(|d| device_html(d, view.csrf)).collect();
        format!("<ul>{items}</ul>")
    };
    let (password_error, described) = match view.password_error {
        Some(e) => (
            format!(
                "<p class=\"error\" role=\"alert\" id=\"password-error\">{}</p>",
                escape(e)
            ),
            " aria-describedby=\"password-error\"",
        ),
        None => (String::new(), ""),
    };
    let body = format!(
        "<h1>Your account</h1><p>You are signed in as <strong>{user}</strong>.</p>{notice}\
         <form method=\"post\" action=\"/account/logout\">{csrf}<button type=\"submit\">Sign out</button></form>\
         <section aria-labelledby=\"grants\"><h2 id=\"grants\">Applications you allowed</h2>{grants}</section>\
         <section aria-labelledby=\"devices\"><h2 id=\"devices\">Your authenticators</h2>{devices}</section>\
         <section aria-labelledby=\"password\"><h2 id=\"password\">Change your password</h2>{password_error}\
         <form method=\"post\" action=\"/account/password\">{csrf}\
         <label for=\"current_password\">Current password</label>\
         <input type=\"password\" id=\"current_password\" name=\"current_password\" autocomplete=\"current-password\" required{described}>\
         <label for=\"new_password\">New password (at least {min} characters)</label>\
         <input type=\"password\" id=\"new_password\" name=\"new_password\" autocomplete=\"new-password\" minlength=\"{min}\" required{described}>\
         <label for=\"confirm_password\">New password again</label>\
         <input type=\"password\" id=\"confirm_password\" name=\"confirm_password\" autocomplete=\"new-password\" minlength=\"{min}\" required{described}>\
         <button type=\"submit\">Change password</button></form></section>",
        user = escape(view.username),
        csrf = csrf_field(view.csrf),
        min = crate::password::MIN_LENGTH,
    );
    page(status, "Your account", &body)
}

/// The sign-in form of the account page.
pub fn login(status: StatusCode, csrf: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to your account</h1>{error}\
         <form method=\"post\" action=\"/account/login\">{csrf}\
         <label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        csrf = csrf_field(csrf),
    );
    page(status, "Sign in", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(when(1_800_000_000), "2027-01-15 08:00 UTC");
    }
}
