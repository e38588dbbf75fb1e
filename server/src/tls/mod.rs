//! Mutual TLS ([RFC 8705](https://www.rfc-editor.org/rfc/rfc8705)) at the edge:
//! where the client certificate of a request comes from.
//!
//! - [`listener`]: the server terminates TLS itself (rustls) and asks for a client
//!   certificate. Any certificate is accepted in the handshake, which still proves
//!   that the client holds its private key; whether the chain leads to a
//!   configured client CA is decided per request (`tls_client_auth` needs it,
//!   `self_signed_tls_client_auth` does not).
//! - [`peer`]: the middleware that puts the certificate into the request as a
//!   [`PeerCertificate`](crate::auth::PeerCertificate): from the TLS connection,
//!   or from a header set by a TLS-terminating proxy, trusted only when the TCP
//!   peer is one of `trusted_proxies` (and stripped from every other request).
//!
//! Configuration: the `[tls]` table ([`TlsConfig`]), validated into [`TlsSettings`].

pub mod listener;
pub mod peer;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::HeaderName;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use serde::{Deserialize, Serialize};

use crate::config::LoadConfigError;
use crate::outbound::IpCidr;

/// Whether the TLS listener asks clients for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// Never ask: no mutual TLS on this listener.
    None,
    /// Ask, and accept connections without one (the token endpoint still needs
    /// one from clients that authenticate or bind tokens with it).
    Optional,
    /// Refuse connections without a certificate.
    Required,
}

/// `[tls]`: TLS on the listener and the client certificates of mutual TLS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain (leaf first). With `key_file`,
    /// the server listens with TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file with the server's private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Whether the listener asks for client certificates (default `"optional"`).
    #[serde(default = "optional_client_auth")]
    pub client_auth: ClientAuthMode,
    /// PEM file of the CAs that issue client certificates: a certificate
    /// chaining to one of them can authenticate with `tls_client_auth`.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Header in which a TLS-terminating proxy forwards the client certificate,
    /// URL-encoded PEM (nginx `$ssl_client_escaped_cert`), e.g. `"x-ssl-client-cert"`.
    #[serde(default)]
    pub client_cert_header: Option<String>,
    /// Address ranges (CIDR) of the proxies whose `client_cert_header` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Base URL of the mutual-TLS endpoints when they live elsewhere than the
    /// issuer (`mtls_endpoint_aliases` in discovery); the issuer when absent.
    #[serde(default)]
    pub mtls_base_url: Option<String>,
}

fn optional_client_auth() -> ClientAuthMode {
    ClientAuthMode::Optional
}

/// The validated `[tls]` table.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The listener's TLS configuration, when the server terminates TLS itself.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// Validates client certificate chains against `client_ca_file`.
    pub client_ca: Option<Arc<dyn ClientCertVerifier>>,
    /// The proxy's client-certificate header.
    pub client_cert_header: Option<HeaderName>,
    /// Proxies whose header is believed.
    pub trusted_proxies: Vec<IpCidr>,
    /// Base URL of the mutual-TLS endpoint aliases, without a trailing slash.
    pub mtls_base_url: Option<String>,
}

impl TlsSettings {
    /// Whether `chain` (leaf first) leads to a configured client CA at `now`
    /// (seconds since the epoch): what `tls_client_auth` requires.
    pub fn chain_is_trusted(&self, chain: &[CertificateDer<'static>], now: i64) -> bool {
        let (Some(verifier), Some((leaf, intermediates))) = (&self.client_ca, chain.split_first()) else {
            return false;
        };
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        verifier.verify_client_cert(leaf, intermediates, now).is_ok()
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> LoadConfigError {
    LoadConfigError::Invalid {
        key: format!("tls.{key}"),
        reason: reason.into(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsConfig {
    /// Reads the files and checks the values.
    pub fn validate(&self) -> Result<TlsSettings, LoadConfigError> {
        let client_ca = self.client_ca_file.as_ref().map(load_client_ca).transpose()?;
        let server = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(server_config(cert, key, self.client_auth)?),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("key_file", "needed with cert_file")),
            (None, Some(_)) => return Err(invalid("cert_file", "needed with key_file")),
        };
        let client_cert_header = self
            .client_cert_header
            .as_deref()
            .map(|name| {
                HeaderName::try_from(name.trim()).map_err(|_| invalid("client_cert_header", "not a header name"))
            })
            .transpose()?;
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|entry| {
                entry.trim().parse::<IpCidr>().map_err(|_| {
                    invalid(
                        "trusted_proxies",
                        format!("{entry:?} is not an address range like 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if client_cert_header.is_some() && trusted_proxies.is_empty() {
            return Err(invalid(
                "trusted_proxies",
                "client_cert_header needs the addresses of the proxies that set it",
            ));
        }
        if server.is_none() && client_cert_header.is_none() {
            return Err(invalid(
                "cert_file",
                "give cert_file and key_file (TLS on the listener), or client_cert_header (behind a proxy)",
            ));
        }
        let mtls_base_url = self
            .mtls_base_url
            .as_deref()
            .map(|base| {
                let url = url::Url::parse(base).map_err(|e| invalid("mtls_base_url", e.to_string()))?;
                if url.scheme() != "https" {
                    return Err(invalid("mtls_base_url", "must be https"));
                }
                Ok(url.as_str().trim_end_matches('/').to_owned())
            })
            .transpose()?;
        Ok(TlsSettings {
            server,
            client_ca,
            client_cert_header,
            trusted_proxies,
            mtls_base_url,
        })
    }
}

fn read_certificates(key: &str, path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, LoadConfigError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(invalid(key, format!("{}: no PEM certificate found", path.display())));
    }
    Ok(certificates)
}

fn load_client_ca(path: &PathBuf) -> Result<Arc<dyn ClientCertVerifier>, LoadConfigError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates("client_ca_file", path)? {
        roots
            .add(certificate)
            .map_err(|e| invalid("client_ca_file", format!("{}: {e}", path.display())))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| invalid("client_ca_file", format!("{}: {e}", path.display())))
}

fn server_config(
    cert: &PathBuf,
    key: &PathBuf,
    mode: ClientAuthMode,
) -> Result<Arc<rustls::ServerConfig>, LoadConfigError> {
    let chain = read_certificates("cert_file", cert)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| invalid("key_file", format!("{}: {e}", key.display())))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("cert_file", e.to_string()))?;
    let builder = match mode {
        ClientAuthMode::None => builder.with_no_client_auth(),
        ClientAuthMode::Optional | ClientAuthMode::Required => {
            builder.with_client_cert_verifier(listener::AnyClientCertificate::new(provider(), mode))
        }
    };
    let mut config = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| invalid("key_file", format!("{}: {e}", key.display())))?;
    // axum serves HTTP/1.1 here (its http2 feature is off).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn validate(tls: &str) -> Result<(), String> {
        let text = format!("environment = \"development\"\n[tls]\n{tls}");
        Config::from_toml(&text)
            .and_then(Config::validate)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn tls_errors_name_the_key() {
        for (tls, key) in [
            ("", "tls.cert_file"),
            ("cert_file = \"/nonexistent/server.pem\"", "tls.key_file"),
            ("key_file = \"/nonexistent/server.key\"", "tls.cert_file"),
            (
                "cert_file = \"/nonexistent/s.pem\"\nkey_file = \"/nonexistent/s.key\"",
                "tls.cert_file",
            ),
            ("client_cert_header = \"x-ssl-client-cert\"", "tls.trusted_proxies"),
            (
                "client_cert_header = \"x-ssl-client-cert\"\ntrusted_proxies = [\"10.0.0.0/33\"]",
                "tls.trusted_proxies",
            ),
            (
                "client_cert_header = \"bad header\"\ntrusted_proxies = [\"10.0.0.0/8\"]",
                "tls.client_cert_header",
            ),
            (
                "client_cert_header = \"x\"\ntrusted_proxies = [\"10.0.0.0/8\"]\nclient_ca_file = \"/nonexistent/ca.pem\"",
                "tls.client_ca_file",
            ),
            (
                "client_cert_header = \"x\"\ntrusted_proxies = [\"10.0.0.0/8\"]\nmtls_base_url = \"http://mtls.example\"",
                "tls.mtls_base_url",
            ),
            ("client_auth = \"sometimes\"", "client_auth"),
        ] {
            let err = validate(tls).unwrap_err();
            assert!(err.contains(key), "{tls}: {err}");
        }
        assert!(validate("client_cert_header = \"x-ssl-client-cert\"\ntrusted_proxies = [\"10.0.0.0/8\"]").is_ok());
    }
}
