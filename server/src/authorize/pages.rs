//! The server-rendered pages of the browser flows: login, consent and error.
//! Plain HTML forms with labelled fields; no JavaScript, and no external
//! resources but the client's registered logo (fetched without a `Referer`, so
//! nothing leaks the page's URL). Every value from a request or the database is
//! escaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use outband_protocol::ClientMetadata;

use crate::payments::{PaymentInitiation, PAYMENT_INITIATION};

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;\
line-height:1.5;color:#1b1b1b}label{display:block;margin-top:1rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{margin-top:1.5rem;margin-right:.5rem;padding:.6rem 1.2rem;font-size:1rem}\
.error{color:#a00000;font-weight:600}.detail{border:1px solid #888;padding:.5rem 1rem;margin:.5rem 0}";

/// The pages' Content-Security-Policy: no scripts, nothing framed, forms only to us.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// A complete page with `status`, never cached, never framed.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Lets the forms of `response` (a [`page`]) lead to `redirect_uri` as well. Browsers
/// apply `form-action` to the redirects that follow a form submission (CSP Level 3
/// §6.4.1; Chromium blocks them), so the consent page, whose POST answers with a `303`
/// to the client's redirect URI, must name that URI's origin (or, for a private-use
/// scheme of a native app, the scheme).
pub(crate) fn allow_form_target(response: &mut Response, redirect_uri: &str) {
    let Ok(url) = url::Url::parse(redirect_uri) else {
        return;
    };
    let source = match url.scheme() {
        "http" | "https" => match csp_source(&url) {
            Some(source) => source,
            None => return,
        },
        scheme => format!("{scheme}:"),
    };
    let csp = current_csp(response).replace("form-action 'self'", &format!("form-action 'self' {source}"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The Content-Security-Policy `response` carries (a [`page`]'s, maybe extended).
fn current_csp(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(CSP)
        .to_owned()
}

/// The origin of an `http(s)` `url` as a Content-Security-Policy source, when its
/// host is an IP address or a DNS name of letters, digits, `-` and `.` only: URL
/// parsing lets `;`, `*` or `'` through in a host, which would change the policy.
pub fn csp_source(url: &url::Url) -> Option<String> {
    let plain = match url.host()? {
        url::Host::Domain(name) => name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => true,
    };
    plain.then(|| url.origin().ascii_serialization())
}

/// Lets `response` (a [`page`]) show the client's logo: images from its origin only.
fn allow_logo(response: &mut Response, logo_uri: &str) {
    let Some(source) = url::Url::parse(logo_uri).ok().as_ref().and_then(csp_source) else {
        return;
    };
    let csp = format!("{}; img-src {source}", current_csp(response));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Who asks, as the pages show it: the name, and the logo and links the client
/// registered (RFC 7591 §2: `logo_uri`, `client_uri`, `policy_uri`, `tos_uri`).
#[derive(Clone, Copy, Debug)]
pub struct ClientInfo<'a> {
    /// The application's name.
    pub name: &'a str,
    metadata: Option<&'a ClientMetadata>,
}

impl<'a> ClientInfo<'a> {
    /// A registered client.
    pub fn of(metadata: &'a ClientMetadata) -> Self {
        Self {
            name: metadata.display_name(),
            metadata: Some(metadata),
        }
    }

    /// A client known only by its id (deleted meanwhile).
    pub fn named(name: &'a str) -> Self {
        Self { name, metadata: None }
    }

    fn logo_uri(&self) -> Option<&'a str> {
        self.metadata.and_then(|m| m.logo_uri.as_deref())
    }

    /// The logo and the links, as HTML (empty when the client registered none).
    fn header_html(&self) -> String {
        let Some(metadata) = self.metadata else {
            return String::new();
        };
        let logo = self
            .logo_uri()
            .map(|uri| {
                format!(
                    "<p><img src=\"{}\" alt=\"{} logo\" referrerpolicy=\"no-referrer\" \
                     style=\"max-height:4rem;max-width:12rem\"></p>",
                    escape(uri),
                    escape(self.name)
                )
            })
            .unwrap_or_default();
        let links: Vec<String> = [
            (&metadata.client_uri, "Website"),
            (&metadata.policy_uri, "Privacy policy"),
            (&metadata.tos_uri, "Terms of service"),
        ]
        .into_iter()
        .filter_map(|(uri, label)| {
            uri.as_deref().map(|uri| {
                format!(
                    "<li><a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{} of {}</a></li>",
                    escape(uri),
                    label,
                    escape(self.name)
                )
            })
        })
        .collect();
        let links = if links.is_empty() {
            String::new()
        } else {
            format!("<ul class=\"client-links\">{}</ul>", links.concat())
        };
        format!("{logo}{links}")
    }

    /// Finishes a page about this client: its logo may be loaded.
    fn finish(&self, mut response: Response) -> Response {
        if let Some(uri) = self.logo_uri() {
            allow_logo(&mut response, uri);
        }
        response
    }
}

/// An error the user sees (nothing can be sent back to the application).
pub fn error(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in problem",
        &format!(
            "<h1>Something is wrong with this sign-in</h1><p role=\"alert\">{}</p>\
             <p>Go back to the application and start again.</p>",
            escape(message)
        ),
    )
}

/// What the login form needs.
#[derive(Debug)]
pub struct LoginForm<'a> {
    /// The application.
    pub client: ClientInfo<'a>,
    /// The interaction id.
    pub interaction: &'a str,
    /// The CSRF token.
    pub csrf: &'a str,
    /// Username to fill in.
    pub username: Option<&'a str>,
    /// An error to show above the form.
    pub error: Option<&'a str>,
}

/// The login page.
pub fn login(status: StatusCode, form: &LoginForm<'_>) -> Response {
    let error = form
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let described = if form.error.is_some() {
        " aria-describedby=\"login-error\""
    } else {
        ""
    };
    let body = format!(
        "<h1>Sign in</h1>{header}<p>{client} asks you to sign in.</p>{error}\
         <form method=\"post\" action=\"/authorize/login\">\
         <input type=\"hidden\" name=\"interaction\" value=\"{interaction}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{username}\"{described}>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{described}>\
         <button type=\"submit\">Sign in</button></form>",
        header = form.client.header_html(),
        client = escape(form.client.name),
        interaction = escape(form.interaction),
        csrf = escape(form.csrf),
        username = escape(form.username.unwrap_or_default()),
    );
    form.client.finish(page(status, "Sign in", &body))
}

/// What the consent form needs.
#[derive(Debug)]
pub struct ConsentForm<'a> {
    /// The application.
    pub client: ClientInfo<'a>,
    /// Who is logged in.
    pub username: &'a str,
    /// The requested scopes.
    pub scopes: Vec<&'a str>,
    /// The requested authorization details.
    pub authorization_details: Option<&'a Value>,
    /// The lodging-intent consent the request names, already in plain words
    /// (escaped HTML, [`crate::consents::authorize::describe`]).
    pub consent: Option<&'a str>,
    /// The interaction id.
    pub interaction: &'a str,
    /// The CSRF token.
    pub csrf: &'a str,
}

/// The consent page.
pub fn consent(form: &ConsentForm<'_>) -> Response {
    let scopes: String = form
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let details: String = form
        .authorization_details
        .and_then(Value::as_array)
        .map(|items| items.iter().map(describe_detail).collect())
        .unwrap_or_default();
    let details = format!("{details}{}", form.consent.unwrap_or_default());
    let details = if details.is_empty() {
        String::new()
    } else {
        format!("<h2>It also asks you to approve</h2>{details}")
    };
    let body = format!(
        "<h1>Allow access?</h1>{header}<p>You are signed in as <strong>{user}</strong>.</p>\
         <p><strong>{client}</strong> asks to:</p><ul>{scopes}</ul>{details}\
         <form method=\"post\" action=\"/authorize/consent\">\
         <input type=\"hidden\" name=\"interaction\" value=\"{interaction}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        header = form.client.header_html(),
        user = escape(form.username),
        client = escape(form.client.name),
        interaction = escape(form.interaction),
        csrf = escape(form.csrf),
    );
    form.client.finish(page(StatusCode::OK, "Allow access?", &body))
}

/// A scope in plain words.
pub(crate) fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "know who you are (your user id)".into(),
        "profile" => "see your name and username".into(),
        "email" => "see your e-mail address".into(),
        "phone" => "see your phone number".into(),
        "offline_access" => "keep access while you are not using it".into(),
        "payments" => "make payments you approve".into(),
        "refunds" => "refund payments made to it".into(),
        "accounts" => "see your accounts and balances".into(),
        "consents" => "ask you for consents".into(),
        s if crate::consents::authorize::is_consent_scope(s) => "act on the consent below".into(),
        other => format!("use the permission \u{201c}{other}\u{201d}"),
    }
}

/// An authorization detail in plain words.
pub(crate) fn describe_detail(detail: &Value) -> String {
    let kind = detail.get("type").and_then(Value::as_str).unwrap_or_default();
    let payment = (kind == PAYMENT_INITIATION)
        .then(|| serde_json::from_value::<PaymentInitiation>(detail.clone()).ok())
        .flatten();
    let text = match payment {
        Some(p) => {
            let account = p
                .creditor_account
                .as_ref()
                .and_then(|a| a.get("iban"))
                .and_then(Value::as_str)
                .map(|iban| format!("<br>Account: {}", escape(iban)))
                .unwrap_or_default();
            let reference = p
                .remittance_information_unstructured
                .as_deref()
                .map(|r| format!("<br>Reference: {}", escape(r)))
                .unwrap_or_default();
            format!(
                "Pay <strong>{} {}</strong> to <strong>{}</strong>{account}{reference}",
                escape(&p.instructed_amount.currency),
                escape(&p.instructed_amount.amount),
                escape(&p.creditor_name),
            )
        }
        None if kind == "account_information" => {
            let access: Vec<&str> = detail
                .get("access")
                .and_then(Value::as_array)
                .map(|kinds| kinds.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("See your accounts: {}", escape(&access.join(" and ")))
        }
        None => format!("Access of type \u{201c}{}\u{201d}", escape(kind)),
    };
    format!("<p class=\"detail\">{text}</p>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_may_lead_to_the_redirect_uri() {
        let csp = |uri: &str| {
            let mut response = page(StatusCode::OK, "t", "b");
            allow_form_target(&mut response, uri);
            response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert!(csp("https://client.example:8443/cb?x=1").contains("form-action 'self' https://client.example:8443;"));
        assert!(csp("http://127.0.0.1:4000/cb").contains("form-action 'self' http://127.0.0.1:4000;"));
        assert!(csp("com.example.app:/cb").contains("form-action 'self' com.example.app:;"));
        assert!(csp("https://client.example/cb").contains("frame-ancestors 'none'"));
        // A host that would add a directive leaves the policy as it was.
        assert!(csp("https://a.example;script-src/cb").contains("form-action 'self';"));
    }

    #[test]
    fn only_plain_hosts_become_policy_sources() {
        let source = |uri: &str| csp_source(&url::Url::parse(uri).unwrap());
        assert_eq!(
            source("https://cdn.shop.example:8443/l.png").as_deref(),
            Some("https://cdn.shop.example:8443")
        );
        assert_eq!(source("https://[::1]/l.png").as_deref(), Some("https://[::1]"));
        assert_eq!(source("https://192.0.2.1/l.png").as_deref(), Some("https://192.0.2.1"));
        for odd in [
            "https://a.example;sandbox/l.png",
            "https://*.example/l.png",
            "https://a'b.example/",
        ] {
            assert_eq!(source(odd), None, "{odd}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn payments_in_plain_words() {
        let detail = serde_json::json!({
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Corner <Café>",
            "creditorAccount": {"iban": "DE89370400440532013000"}
        });
        let text = describe_detail(&detail);
        assert!(
            text.contains("Pay <strong>EUR 12.50</strong> to <strong>Corner &lt;Café&gt;</strong>"),
            "{text}"
        );
        assert!(text.contains("DE89370400440532013000"));
    }
}
