//! Mutual TLS client authentication and certificate-bound access tokens
//! ([RFC 8705](https://www.rfc-editor.org/rfc/rfc8705)). The certificate itself
//! arrives as a [`PeerCertificate`] ([`crate::tls::peer`]).
//!
//! - `tls_client_auth` (§2.1): the chain leads to a configured client CA, and
//!   the subject DN (`tls_client_auth_subject_dn`, compared RDN by RDN, types by
//!   OID, values case-insensitively) or a DNS SAN (`tls_client_auth_san_dns`)
//!   is the registered one.
//! - `self_signed_tls_client_auth` (§2.2): the certificate is the first of an
//!   `x5c` chain of a key in the client's JWKS (`jwks` or `jwks_uri`).
//! - Certificate-bound tokens (§3): `cnf.x5t#S256` is the base64url SHA-256 of
//!   the certificate's DER ([`thumbprint`]).

use outband_protocol::TokenEndpointAuthMethod;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::auth::client_auth::PeerCertificate;
use crate::auth::client_keys::client_public_keys;
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::ClientRecord;

/// `x5t#S256` of a certificate: base64url SHA-256 of its DER (RFC 8705 §3.1).
pub fn thumbprint(certificate: &PeerCertificate) -> String {
    outband_protocol::jose::sha256_b64url(&certificate.der)
}

/// Whether the client's access tokens are bound to its certificate: it
/// registered `tls_client_certificate_bound_access_tokens`, or its profile asks
/// for certificate-bound tokens.
pub fn binds_tokens(client: &ClientRecord) -> bool {
    client.metadata.tls_client_certificate_bound_access_tokens
        || Policy::of(client.metadata.profile).requires_certificate_bound_tokens()
}

/// Checks `certificate` for a client registered for `tls_client_auth` or
/// `self_signed_tls_client_auth`. Errors are descriptions for `invalid_client`.
pub async fn check_certificate(
    state: &AppState,
    client: &ClientRecord,
    certificate: Option<&PeerCertificate>,
) -> Result<(), String> {
    let method = client.metadata.token_endpoint_auth_method;
    let Some(certificate) = certificate else {
        return Err(format!(
            "{method} needs a client certificate (mutual TLS), and none was presented"
        ));
    };
    match method {
        TokenEndpointAuthMethod::TlsClientAuth => check_pki(state, client, certificate),
        TokenEndpointAuthMethod::SelfSignedTlsClientAuth => check_self_signed(state, client, certificate).await,
        other => Err(format!("{other} is not a certificate method")),
    }
}

fn check_pki(state: &AppState, client: &ClientRecord, certificate: &PeerCertificate) -> Result<(), String> {
    if state.settings.tls.as_ref().is_none_or(|tls| tls.client_ca.is_none()) {
        return Err("tls_client_auth needs a client CA on the server ([tls] client_ca_file)".into());
    }
    if !certificate.trusted {
        return Err("the client certificate is not issued by a trusted CA, or not valid now".into());
    }
    let (_, parsed) =
        X509Certificate::from_der(&certificate.der).map_err(|_| "the client certificate cannot be parsed")?;
    let metadata = &client.metadata;
    match (&metadata.tls_client_auth_subject_dn, &metadata.tls_client_auth_san_dns) {
        (Some(expected), _) => {
            let expected =
                parse_dn(expected).ok_or("the registered tls_client_auth_subject_dn is not an RFC 4514 DN")?;
            if subject_rdns(&parsed) == Some(expected) {
                Ok(())
            } else {
                Err("the client certificate's subject is not the registered tls_client_auth_subject_dn".into())
            }
        }
        (None, Some(expected)) => {
            let names = parsed
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| san.value.general_names.clone())
                .unwrap_or_default();
            let found = names
                .iter()
                .any(|name| matches!(name, GeneralName::DNSName(dns) if dns.eq_ignore_ascii_case(expected)));
            if found {
                Ok(())
            } else {
                Err("the client certificate has no DNS name equal to the registered tls_client_auth_san_dns".into())
            }
        }
        (None, None) => Err("the client registered no tls_client_auth_subject_dn or tls_client_auth_san_dns".into()),
    }
}

async fn check_self_signed(
    state: &AppState,
    client: &ClientRecord,
    certificate: &PeerCertificate,
) -> Result<(), String> {
    let keys = client_public_keys(state, client, None).await?;
    let registered = keys
        .iter()
        .filter_map(|key| key.x509_certificate_chain())
        .any(|chain| chain.first().is_some_and(|first| *first == certificate.der));
    if registered {
        Ok(())
    } else {
        Err("the client certificate is not one registered in the client's jwks (x5c)".into())
    }
}

/// A distinguished name as RDNs in RFC 4514 order (the most specific first),
/// each a sorted list of (attribute type OID, lowercased value).
type Rdns = Vec<Vec<(String, String)>>;

/// The certificate's subject, in RFC 4514 order; `None` if a value is not text.
fn subject_rdns(certificate: &X509Certificate<'_>) -> Option<Rdns> {
    let mut rdns = Vec::new();
    for rdn in certificate.subject().iter_rdn() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let value = attribute.as_str().ok()?;
            attributes.push((attribute.attr_type().to_id_string(), value.trim().to_lowercase()));
        }
        attributes.sort();
        rdns.push(attributes);
    }
    rdns.reverse();
    Some(rdns)
}

/// The OIDs of the attribute type names RFC 4514 §3 lists (and `emailAddress`).
const ATTRIBUTE_TYPES: [(&str, &str); 11] = [
    ("cn", "2.5.4.3"),
    ("c", "2.5.4.6"),
    ("l", "2.5.4.7"),
    ("st", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("o", "2.5.4.10"),
    ("ou", "2.5.4.11"),
    ("serialnumber", "2.5.4.5"),
    ("dc", "0.9.2342.19200300.100.1.25"),
    ("uid", "0.9.2342.19200300.100.1.1"),
    ("emailaddress", "1.2.840.113549.1.9.1"),
];

/// Parses an RFC 4514 string (`CN=pos-1,O=Shop\, Inc.,C=DE`); `None` when it is
/// not one. Multi-valued RDNs (`+`) and escapes (`\,`, `\2C`) are understood;
/// hex-encoded (`#...`) values are not.
fn parse_dn(text: &str) -> Option<Rdns> {
    let mut rdns: Rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut bytes = text.trim().bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\\' => {
                let first = bytes.next()?;
                if first.is_ascii_hexdigit() {
                    let second = bytes.next()?;
                    let hex = [first, second];
                    current.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                } else {
                    // Marked so that `=`, `,` and `+` inside values survive the split.
                    current.extend_from_slice(&[0, first]);
                }
            }
            b',' | b'+' => {
                rdn.push(attribute(&current)?);
                current.clear();
                if byte == b',' {
                    rdns.push(std::mem::take(&mut rdn));
                }
            }
            _ => current.push(byte),
        }
    }
    rdn.push(attribute(&current)?);
    rdns.push(rdn);
    for rdn in &mut rdns {
        rdn.sort();
    }
    Some(rdns)
}

/// One `type=value` of a DN string (escaped bytes arrive as `0, byte`).
fn attribute(raw: &[u8]) -> Option<(String, String)> {
    let split = raw
        .iter()
        .enumerate()
        .position(|(i, b)| *b == b'=' && (i == 0 || raw.get(i - 1) != Some(&0)))?;
    let (name, value) = (raw.get(..split)?, raw.get(split + 1..)?);
    let name = std::str::from_utf8(name).ok()?.trim().to_ascii_lowercase();
    let oid = match ATTRIBUTE_TYPES.iter().find(|(short, _)| *short == name) {
        Some((_, oid)) => (*oid).to_owned(),
        None if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit() || b == b'.') => name,
        None => return None,
    };
    let mut unescaped = Vec::with_capacity(value.len());
    let mut escaped = false;
    for &b in value {
        if b == 0 && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        unescaped.push(b);
    }
    let value = String::from_utf8(unescaped).ok()?;
    if value.trim().is_empty() || value.trim_start().starts_with('#') {
        return None;
    }
    Some((oid, value.trim().to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_strings_parse_by_rdn_with_escapes() {
        let dn = parse_dn("CN=pos-1, O=Shop\\, Inc.+OU=Tills,C=DE").unwrap();
        assert_eq!(
            dn,
            vec![
                vec![("2.5.4.3".to_owned(), "pos-1".to_owned())],
                vec![
                    ("2.5.4.10".to_owned(), "shop, inc.".to_owned()),
                    ("2.5.4.11".to_owned(), "tills".to_owned())
                ],
                vec![("2.5.4.6".to_owned(), "de".to_owned())],
            ]
        );
        assert_eq!(
            parse_dn("cn=a\\2Cb").unwrap(),
            vec![vec![("2.5.4.3".into(), "a,b".into())]]
        );
        assert_eq!(parse_dn("2.5.4.3=x"), parse_dn("CN=X"));
        for bad in ["", "CN", "CN=", "nosuchtype=x", "CN=x,", "CN=#0403", "CN=a\\"] {
            assert!(parse_dn(bad).is_none(), "{bad}");
        }
    }
}
