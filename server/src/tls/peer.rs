//! The middleware that tells the rest of the server which client certificate a
//! request came with ([`PeerCertificate`] in the request extensions).
//!
//! - From a TCP peer in `trusted_proxies`: the certificate in
//!   `client_cert_header` (URL-encoded PEM, as nginx's
//!   `$ssl_client_escaped_cert`), or none when the header is absent, empty or
//!   unreadable. The proxy's own TLS certificate never counts.
//! - From any other peer: the chain of our own TLS handshake, if any; the header
//!   is removed unread, so a client cannot claim a certificate it does not hold.
//!
//! `trusted` says whether the chain leads to a configured client CA at the
//! clock's time ([`TlsSettings::chain_is_trusted`]).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use percent_encoding::percent_decode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::listener::PeerInfo;
use super::TlsSettings;
use crate::auth::PeerCertificate;
use crate::state::AppState;

/// Puts the request's client certificate into its extensions (see the module docs).
pub async fn peer_certificate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().remove::<PeerCertificate>();
    let Some(tls) = state.settings.tls.as_ref() else {
        return next.run(request).await;
    };
    let peer = request.extensions().get::<ConnectInfo<PeerInfo>>().map(|c| c.0.clone());
    let mut chain: Vec<CertificateDer<'static>> = peer.as_ref().map(|p| p.chain.to_vec()).unwrap_or_default();
    if let Some(name) = &tls.client_cert_header {
        let from_proxy = peer.as_ref().is_some_and(|p| is_trusted_proxy(tls, p));
        let forwarded = header_certificate(request.headers(), name);
        if request.headers_mut().remove(name).is_some() && !from_proxy {
            tracing::debug!(peer = ?peer.as_ref().map(|p| p.addr), "client certificate header from an untrusted peer ignored");
        }
        if from_proxy {
            chain = forwarded.into_iter().collect();
        }
    }
    if let Some(leaf) = chain.first() {
        let certificate = PeerCertificate {
            der: leaf.to_vec(),
            trusted: tls.chain_is_trusted(&chain, state.now()),
        };
        request.extensions_mut().insert(certificate);
    }
    next.run(request).await
}

fn is_trusted_proxy(tls: &TlsSettings, peer: &PeerInfo) -> bool {
    let ip = peer.addr.ip().to_canonical();
    tls.trusted_proxies.iter().any(|net| net.contains(ip))
}

/// The one certificate in header `name`: URL-encoded PEM. `None` when the
/// header is absent, repeated, empty (no certificate) or not a certificate.
fn header_certificate(headers: &HeaderMap, name: &axum::http::HeaderName) -> Option<CertificateDer<'static>> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let pem: Vec<u8> = percent_decode(value.as_bytes()).collect();
    if pem.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match CertificateDer::from_pem_slice(&pem) {
        Ok(certificate) => Some(certificate),
        Err(err) => {
            tracing::info!(error = %err, "the proxy's client certificate header is not a PEM certificate");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    #[test]
    fn header_values_that_are_not_one_certificate_are_none() {
        let name = HeaderName::from_static("x-ssl-client-cert");
        let mut headers = HeaderMap::new();
        assert!(header_certificate(&headers, &name).is_none());
        headers.insert(&name, HeaderValue::from_static(""));
        assert!(header_certificate(&headers, &name).is_none());
        headers.insert(&name, HeaderValue::from_static("-----BEGIN%20CERTIFICATE-----%0Anope"));
        assert!(header_certificate(&headers, &name).is_none());
        headers.append(&name, HeaderValue::from_static("x"));
        assert!(header_certificate(&headers, &name).is_none());
    }
}
