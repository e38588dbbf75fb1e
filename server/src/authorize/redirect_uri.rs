//! Redirect URIs: what a client may register, and when a request's
//! `redirect_uri` is one of them.
//!
//! Everything is compared exactly (string equality with the registered URI,
//! [RFC 9700 §4.1.3](https://www.rfc-editor.org/rfc/rfc9700#section-4.1.3)), with
//! one exception that native apps need
//! ([RFC 8252 §7.3](https://www.rfc-editor.org/rfc/rfc8252#section-7.3)): a
//! loopback redirect URI `http://127.0.0.1:{port}/{path}` or
//! `http://[::1]:{port}/{path}` matches a request naming *any* port (or none),
//! because the app learns its ephemeral port only when it starts listening.
//! Host, path and query must still be equal; `127.0.0.1` and `[::1]` are
//! different URIs (a client that may use either registers both).
//!
//! What may be registered ([`check_registered`]):
//! - `https` URIs, under every profile (for native apps: claimed `https`
//!   redirects, RFC 8252 §7.2, matched exactly);
//! - loopback `http` URIs with an IP literal (§7.3) and private-use URI schemes
//!   (§7.1) where [`Policy::allows_native_redirect_uris`] says so: any `oidc`
//!   client, and public clients (`token_endpoint_auth_method: none`) under
//!   `fapi1-baseline`;
//! - a private-use scheme must be a reverse domain name (`com.example.app`,
//!   RFC 8252 §7.1, "MUST use a URI scheme based on a domain name under their
//!   control, expressed in reverse order") and, having no naming authority, carry
//!   no authority part (`com.example.app:/cb`, not `com.example.app://cb`);
//! - `localhost` is *not* a loopback redirect (RFC 8252 §8.3: "NOT RECOMMENDED"):
//!   it never gets the any-port match, and where `https` is required it is refused
//!   with a hint to use `127.0.0.1` or `[::1]`. Plain `oidc` clients may still
//!   register `http://localhost...` as an ordinary, exactly matched `http` URI.
//! - no fragment (RFC 6749 §3.1.2).
//!
//! Errors name the field (`redirect_uris: ...`), so dynamic registration answers
//! them as `invalid_redirect_uri`.

use outband_protocol::{ClientMetadata, TokenEndpointAuthMethod};
use url::{Host, Url};

use crate::profile::Policy;
use crate::store::ClientRecord;

/// Whether `uri` is a loopback redirect URI of RFC 8252 §7.3: `http` with a
/// loopback IP literal host (never the name `localhost`).
pub fn is_loopback(uri: &Url) -> bool {
    uri.scheme() == "http"
        && match uri.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// Whether the scheme is a private-use one (neither `http` nor `https`).
fn is_private_use(uri: &Url) -> bool {
    !matches!(uri.scheme(), "http" | "https")
}

/// Checks every registered redirect URI of `metadata` (see the module docs).
/// The client's `post_logout_redirect_uris` (OpenID Connect RP-Initiated Logout
/// §3.1) follow the same rules as its `redirect_uris`.
pub fn check_registered(metadata: &ClientMetadata) -> Result<(), String> {
    check_list("redirect_uris", &metadata.redirect_uris, metadata)?;
    check_list(
        "post_logout_redirect_uris",
        &metadata.post_logout_redirect_uris,
        metadata,
    )
}

fn check_list(field: &str, uris: &[Url], metadata: &ClientMetadata) -> Result<(), String> {
    let policy = Policy::of(metadata.profile);
    let public = metadata.token_endpoint_auth_method == TokenEndpointAuthMethod::None;
    let profile = metadata.profile;
    let native_ok = policy.allows_native_redirect_uris(public);
    for uri in uris {
        if uri.fragment().is_some() {
            return Err(format!("{field}: {uri} must not have a fragment"));
        }
        if is_private_use(uri) {
            // RFC 8252 §7.1: a reverse domain name the app controls, which has a dot.
            let reverse_domain = uri.scheme().contains('.');
            if !reverse_domain {
                return Err(format!(
                    "{field}: {uri}: a private-use URI scheme must be a reverse domain name the app controls, such as com.example.app (RFC 8252 §7.1)"
                ));
            }
            if uri.host().is_some() {
                return Err(format!(
                    "{field}: {uri}: a private-use URI scheme has no authority; write {}:/path with a single slash (RFC 8252 §7.1)",
                    uri.scheme()
                ));
            }
            if !native_ok {
                return Err(native_only(field, uri, profile, policy));
            }
            continue;
        }
        if uri.scheme() == "https" || !policy.requires_https_redirect_uris() {
            continue;
        }
        if is_loopback(uri) {
            if !native_ok {
                return Err(native_only(field, uri, profile, policy));
            }
            continue;
        }
        if uri.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost")) {
            return Err(format!(
                "{field}: {uri}: use the loopback IP literal http://127.0.0.1 or http://[::1] instead of localhost (RFC 8252 §8.3), or https"
            ));
        }
        return Err(format!("{field}: {uri} must be https under the {profile} profile"));
    }
    Ok(())
}

/// The error for a native-app redirect URI the client may not use.
fn native_only(field: &str, uri: &Url, profile: outband_protocol::Profile, policy: Policy) -> String {
    if policy.allows_native_redirect_uris(true) {
        format!(
            "{field}: {uri}: loopback and private-use redirect URIs are for public native clients (token_endpoint_auth_method none) under the {profile} profile; use https"
        )
    } else {
        format!("{field}: {uri} must be https under the {profile} profile")
    }
}

/// Whether `requested` is one of the client's registered redirect URIs: equal
/// to one, or (RFC 8252 §7.3) a registered loopback URI with another port.
pub fn is_registered(client: &ClientRecord, requested: &str) -> bool {
    client
        .metadata
        .redirect_uris
        .iter()
        .any(|registered| registered.as_str() == requested || loopback_match(registered, requested))
}

/// Whether `requested` is `registered` (a loopback URI) with any port: the
/// registered URI, with the requested port put in, must equal it exactly.
fn loopback_match(registered: &Url, requested: &str) -> bool {
    if !is_loopback(registered) {
        return false;
    }
    let Ok(parsed) = Url::parse(requested) else {
        return false;
    };
    if !is_loopback(&parsed) || parsed.fragment().is_some() {
        return false;
    }
    let mut expected = registered.clone();
    if expected.set_port(parsed.port()).is_err() {
        return false;
    }
    expected.as_str() == requested
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::{ClientId, Profile};

    fn client(uris: &[&str]) -> ClientRecord {
        let mut meta = ClientMetadata::new(ClientId::new("app"));
        meta.redirect_uris = uris.iter().map(|u| Url::parse(u).unwrap()).collect();
        crate::state::client_record(meta, None, 0)
    }

    #[test]
    fn loopback_matches_any_port_and_nothing_else() {
        let c = client(&["http://127.0.0.1/cb", "http://[::1]:8080/cb?x=1"]);
        for ok in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51004/cb",
            "http://[::1]:3/cb?x=1",
            "http://[::1]/cb?x=1",
        ] {
            assert!(is_registered(&c, ok), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:51004/cb/",
            "http://127.0.0.1:51004/other",
            "http://[::1]:51004/cb",
            "http://localhost:51004/cb",
            "https://127.0.0.1:51004/cb",
            "http://127.0.0.1:51004/cb#f",
            "http://user@127.0.0.1:51004/cb",
            "http://127.0.0.1:51004/cb?y=2",
            "http://[::1]:51004/cb?x=1&y=2",
        ] {
            assert!(!is_registered(&c, bad), "{bad}");
        }
    }

    #[test]
    fn other_uris_match_exactly() {
        let c = client(&[
            "https://app.example/cb",
            "com.example.app:/cb",
            "http://localhost:8000/cb",
        ]);
        assert!(is_registered(&c, "https://app.example/cb"));
        assert!(is_registered(&c, "com.example.app:/cb"));
        assert!(is_registered(&c, "http://localhost:8000/cb"));
        for bad in [
            "https://app.example:8443/cb",
            "https://APP.example/cb",
            "com.example.app:/cb/",
            "http://localhost:8001/cb",
        ] {
            assert!(!is_registered(&c, bad), "{bad}");
        }
    }

    fn meta(profile: Profile, public: bool, uris: &[&str]) -> ClientMetadata {
        let mut meta = ClientMetadata::new(ClientId::new("app"));
        meta.profile = profile;
        if public {
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        }
        meta.redirect_uris = uris.iter().map(|u| Url::parse(u).unwrap()).collect();
        meta
    }

    #[test]
    fn registration_rules() {
        let native = ["http://127.0.0.1/cb", "http://[::1]:7000/cb", "com.example.app:/cb"];
        assert!(check_registered(&meta(Profile::Fapi1Baseline, true, &native)).is_ok());
        assert!(check_registered(&meta(Profile::Oidc, true, &native)).is_ok());
        for uri in native {
            let err = check_registered(&meta(Profile::Fapi1Baseline, false, &[uri])).unwrap_err();
            assert!(err.contains("public native clients"), "{err}");
            let err = check_registered(&meta(Profile::Fapi2Security, false, &[uri])).unwrap_err();
            assert!(err.contains("must be https under the fapi2-security profile"), "{err}");
        }
        let err = check_registered(&meta(Profile::Fapi1Baseline, true, &["http://localhost:7000/cb"])).unwrap_err();
        assert!(err.contains("RFC 8252 §8.3"), "{err}");
        assert!(check_registered(&meta(Profile::Oidc, false, &["http://localhost:7000/cb"])).is_ok());
        for bad in ["myapp:/cb", "javascript:/alert(1)", "com.example.app://cb"] {
            let err = check_registered(&meta(Profile::Oidc, true, &[bad])).unwrap_err();
            assert!(
                err.starts_with("redirect_uris: ") && err.contains("RFC 8252 §7.1"),
                "{err}"
            );
        }
        let err = check_registered(&meta(Profile::Fapi1Baseline, true, &["https://a.example/cb#x"])).unwrap_err();
        assert!(err.contains("fragment"), "{err}");
    }
}
