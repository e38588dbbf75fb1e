//! Rules every client registration must satisfy, whoever creates it (CLI,
//! configuration file, dynamic registration): the metadata must be coherent and
//! allowed by the client's profile.

use outband_protocol::{ClientMetadata, DeliveryMode, GrantType, TokenEndpointAuthMethod};

use crate::auth::client_auth::client_jwks;
use crate::profile::Policy;
use crate::state::client_record;

/// Checks `metadata` (and whether a secret is given) and says what is wrong,
/// naming the metadata field.
pub fn validate(metadata: &ClientMetadata, has_secret: bool) -> Result<(), String> {
    use TokenEndpointAuthMethod as M;
    let method = metadata.token_endpoint_auth_method;
    let policy = Policy::of(metadata.profile);
    if metadata.client_id.is_empty() || metadata.client_id.len() > 255 {
        return Err("client_id: must be 1 to 255 characters".into());
    }
    if !policy.allows_auth_method(method) {
        return Err(format!(
            "token_endpoint_auth_method: {method} is not allowed under the {} profile",
            metadata.profile
        ));
    }
    match method {
        M::ClientSecretBasic | M::ClientSecretPost if !has_secret => {
            return Err(format!("token_endpoint_auth_method: {method} needs a client secret"));
        }
        M::PrivateKeyJwt | M::SelfSignedTlsClientAuth if metadata.jwks.is_none() && metadata.jwks_uri.is_none() => {
            return Err(format!(
                "jwks: {method} needs the client's public keys (jwks or jwks_uri)"
            ));
        }
        M::TlsClientAuth
            if metadata.tls_client_auth_subject_dn.is_some() == metadata.tls_client_auth_san_dns.is_some() =>
        {
            // RFC 8705 §2.1.2: exactly one of the certificate matching parameters.
            return Err(
                "tls_client_auth_subject_dn: tls_client_auth needs exactly one of tls_client_auth_subject_dn and tls_client_auth_san_dns".into(),
            );
        }
        _ => {}
    }
    if let Some(alg) = metadata.token_endpoint_auth_signing_alg {
        if !policy.signing_algs().contains(&alg) {
            return Err(format!(
                "token_endpoint_auth_signing_alg: {alg} is not allowed under the {} profile",
                metadata.profile
            ));
        }
    }
    if metadata.jwks.is_some() {
        let probe = client_record(metadata.clone(), None, 0);
        let keys = client_jwks(&probe).map_err(|e| format!("jwks: {e}"))?;
        if keys.is_empty() {
            return Err("jwks: no usable key".into());
        }
        if keys.iter().any(outband_protocol::jose::is_private_jwk) {
            return Err("jwks: contains private key material; register public keys only".into());
        }
    }
    if metadata.allows_grant(GrantType::Ciba) {
        if method == M::None {
            return Err("token_endpoint_auth_method: the CIBA grant is for confidential clients only".into());
        }
        if metadata.backchannel_token_delivery_mode == Some(DeliveryMode::Push) && !policy.allows_ciba_push() {
            return Err(format!(
                "backchannel_token_delivery_mode: push is not allowed under the {} profile",
                metadata.profile
            ));
        }
        let bound = metadata.dpop_bound_access_tokens
            || policy.requires_sender_constrained_tokens()
            || metadata.tls_client_certificate_bound_access_tokens
            || policy.requires_certificate_bound_tokens();
        if metadata.backchannel_token_delivery_mode == Some(DeliveryMode::Push) && bound {
            // Pushed tokens reach the client without a token request, so there is
            // no DPoP proof or client certificate to bind them to.
            return Err(
                "backchannel_token_delivery_mode: push cannot deliver sender-constrained (DPoP- or certificate-bound) tokens; use poll or ping".into(),
            );
        }
        match metadata.backchannel_token_delivery_mode {
            None => return Err("backchannel_token_delivery_mode: required for the CIBA grant".into()),
            Some(DeliveryMode::Ping | DeliveryMode::Push)
                if metadata.backchannel_client_notification_endpoint.is_none() =>
            {
                return Err("backchannel_client_notification_endpoint: required for ping and push".into());
            }
            _ => {}
        }
    }
    check_public_client(metadata, has_secret)?;
    check_presentation(metadata)?;
    if metadata.allows_grant(GrantType::AuthorizationCode) && metadata.redirect_uris.is_empty() {
        // OpenID Connect Registration §2: REQUIRED; nowhere to send a code otherwise.
        return Err("redirect_uris: required for the authorization_code grant".into());
    }
    // https, and for native apps loopback and private-use URIs (RFC 8252 §7).
    crate::authorize::redirect_uri::check_registered(metadata)?;
    // Back- and Front-Channel Logout URIs.
    crate::account::backchannel::check_metadata(metadata)?;
    check_algs_and_types(metadata, policy)
}

/// The links and logo the pages show must be absolute `https` URLs whose host is
/// an IP address or a plain DNS name (the logo's origin goes into the pages'
/// Content-Security-Policy, where `;` or `*` in a host would change it),
/// contacts must look like e-mail addresses, and the only subject type is `public`.
fn check_presentation(metadata: &ClientMetadata) -> Result<(), String> {
    for (field, value) in [
        ("client_uri", &metadata.client_uri),
        ("logo_uri", &metadata.logo_uri),
        ("policy_uri", &metadata.policy_uri),
        ("tos_uri", &metadata.tos_uri),
    ] {
        let Some(value) = value else { continue };
        let fit = url::Url::parse(value)
            .is_ok_and(|url| url.scheme() == "https" && crate::authorize::pages::csp_source(&url).is_some());
        if !fit || value.len() > 2048 {
            return Err(format!("{field}: {value} must be an absolute https URL"));
        }
    }
    if let Some(contact) = metadata
        .contacts
        .iter()
        .find(|c| c.len() > 254 || c.chars().any(char::is_control) || !c.contains('@'))
    {
        return Err(format!("contacts: {contact:?} is not an e-mail address"));
    }
    match metadata.subject_type.as_deref() {
        None | Some("public") => Ok(()),
        Some(other) => Err(format!(
            "subject_type: {other:?} is not supported; this server has only public subject identifiers"
        )),
    }
}

/// A public client (`token_endpoint_auth_method: none`, a native or browser
/// app that cannot keep a secret) has no secret and never uses the client
/// credentials grant ([RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4):
/// "MUST only be used by confidential clients").
fn check_public_client(metadata: &ClientMetadata, has_secret: bool) -> Result<(), String> {
    if metadata.token_endpoint_auth_method != TokenEndpointAuthMethod::None {
        return Ok(());
    }
    if has_secret {
        return Err("client_secret: a public client (token_endpoint_auth_method none) has no secret".into());
    }
    if metadata.allows_grant(GrantType::ClientCredentials) {
        return Err(
            "grant_types: client_credentials is for confidential clients, not a public client (token_endpoint_auth_method none)".into(),
        );
    }
    Ok(())
}

/// The algorithms the client asks the server to use or accept, and its RAR types.
fn check_algs_and_types(metadata: &ClientMetadata, policy: Policy) -> Result<(), String> {
    if metadata.jwks.is_some() && metadata.jwks_uri.is_some() {
        // RFC 7591 §2: "MUST NOT both be present".
        return Err("jwks_uri: give jwks or jwks_uri, not both".into());
    }
    let profile = metadata.profile;
    if let Some(alg) = metadata.backchannel_authentication_request_signing_alg {
        if !policy.signing_algs().contains(&alg) {
            return Err(format!(
                "backchannel_authentication_request_signing_alg: {alg} is not allowed under the {profile} profile"
            ));
        }
    }
    if let Some(alg) = metadata.request_object_signing_alg {
        if !policy.signing_algs().contains(&alg) {
            return Err(format!(
                "request_object_signing_alg: {alg} is not allowed under the {profile} profile"
            ));
        }
    }
    for value in metadata.response_types.iter().flatten() {
        let Some(response_type) = crate::authorize::response::ResponseType::parse(value) else {
            return Err(format!(
                "response_types: {value:?} is not served; use \"code\" or \"code id_token\""
            ));
        };
        if response_type.has_id_token() && !policy.allows_hybrid_flow() {
            return Err(format!(
                "response_types: {value:?} (the hybrid flow) is not allowed under the {profile} profile"
            ));
        }
    }
    if let Some(alg) = metadata.id_token_signed_response_alg {
        if !policy.signing_algs().contains(&alg) || !crate::keys::SERVER_ALGS.contains(&alg) {
            return Err(format!(
                "id_token_signed_response_alg: {alg} is not available under the {profile} profile"
            ));
        }
    }
    // JARM §3, OpenID Connect Registration §2 and RFC 9701 §6: algs the server signs with for the client.
    for (field, alg) in [
        (
            "authorization_signed_response_alg",
            metadata.authorization_signed_response_alg,
        ),
        ("userinfo_signed_response_alg", metadata.userinfo_signed_response_alg),
        (
            "introspection_signed_response_alg",
            metadata.introspection_signed_response_alg,
        ),
    ] {
        if let Some(alg) = alg {
            if !policy.allows_response_signing_alg(alg) || !crate::keys::SERVER_ALGS.contains(&alg) {
                return Err(format!("{field}: {alg} is not available under the {profile} profile"));
            }
        }
    }
    if let Some(unknown) = metadata
        .authorization_details_types
        .as_deref()
        .and_then(crate::rar::unknown_type)
    {
        return Err(format!(
            "authorization_details_types: unknown type {unknown:?}; this server knows {}",
            crate::rar::KNOWN_TYPES.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::{ClientId, Profile};

    #[test]
    fn secret_methods_need_a_secret() {
        let meta = ClientMetadata::new(ClientId::new("a"));
        assert!(validate(&meta, false)
            .unwrap_err()
            .starts_with("token_endpoint_auth_method"));
        assert!(validate(&meta, true).is_ok());
    }

    #[test]
    fn fapi_refuses_secrets() {
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.profile = Profile::Fapi2Security;
        assert!(validate(&meta, true)
            .unwrap_err()
            .contains("not allowed under the fapi2-security profile"));
    }

    #[test]
    fn private_key_jwt_needs_keys() {
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        assert!(validate(&meta, false).unwrap_err().starts_with("jwks"));
    }

    #[test]
    fn private_keys_are_refused() {
        let private = outband_protocol::SigningAlg::ES256.generate_private_jwk().unwrap();
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        meta.jwks = Some(serde_json::json!({ "keys": [serde_json::Value::Object(private.as_ref().clone())] }));
        assert!(validate(&meta, false).unwrap_err().contains("private key material"));
    }

    #[test]
    fn ciba_is_for_confidential_clients_and_fapi_ciba_has_no_push() {
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.grant_types = vec![GrantType::Ciba];
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        assert!(validate(&meta, false).unwrap_err().contains("confidential"));
        meta.profile = Profile::FapiCiba;
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        meta.jwks_uri = Some(url::Url::parse("https://client.example/jwks").unwrap());
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Push);
        meta.backchannel_client_notification_endpoint = Some(url::Url::parse("https://client.example/cb").unwrap());
        assert!(validate(&meta, false)
            .unwrap_err()
            .contains("push is not allowed under the fapi-ciba profile"));
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Ping);
        assert!(validate(&meta, false).is_ok());
    }

    #[test]
    fn push_cannot_deliver_sender_constrained_tokens() {
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.grant_types = vec![GrantType::Ciba];
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Push);
        meta.backchannel_client_notification_endpoint = Some(url::Url::parse("https://client.example/cb").unwrap());
        assert!(validate(&meta, true).is_ok());
        meta.dpop_bound_access_tokens = true;
        assert!(validate(&meta, true).unwrap_err().contains("push cannot deliver"));
        meta.dpop_bound_access_tokens = false;
        meta.tls_client_certificate_bound_access_tokens = true;
        assert!(validate(&meta, true).unwrap_err().contains("push cannot deliver"));
    }

    #[test]
    fn tls_client_auth_needs_exactly_one_certificate_match() {
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::TlsClientAuth;
        assert!(validate(&meta, false)
            .unwrap_err()
            .starts_with("tls_client_auth_subject_dn"));
        meta.tls_client_auth_subject_dn = Some("CN=a".into());
        assert!(validate(&meta, false).is_ok());
        meta.tls_client_auth_san_dns = Some("a.example".into());
        assert!(validate(&meta, false).is_err());
    }

    #[test]
    fn ciba_needs_a_mode_and_an_endpoint_for_ping() {
        let mut meta = ClientMetadata::new(ClientId::new("a"));
        meta.grant_types = vec![GrantType::Ciba];
        assert!(validate(&meta, true)
            .unwrap_err()
            .starts_with("backchannel_token_delivery_mode"));
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Ping);
        assert!(validate(&meta, true)
            .unwrap_err()
            .starts_with("backchannel_client_notification_endpoint"));
    }
}
