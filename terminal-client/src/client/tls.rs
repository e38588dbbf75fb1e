//! Mutual TLS on the till's side ([RFC 8705](https://www.rfc-editor.org/rfc/rfc8705)):
//! the client certificate the till presents on every call to the authorization
//! server and the payments API, and extra CAs it trusts for the server's own
//! certificate (a private PKI, or a test CA).
//!
//! With a certificate, the server can authenticate the till by it
//! (`tls_client_auth`, `self_signed_tls_client_auth`: [`ClientAuth`](super::auth::ClientAuth))
//! and binds its access tokens to it (`cnf.x5t#S256`); the payment call then
//! has to come over a connection made with the same certificate.

use std::path::{Path, PathBuf};

/// The PEM label every certificate starts with.
const CERTIFICATE_PEM: &str = "-----BEGIN CERTIFICATE-----";
/// What every PEM private key label ends with (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`).
const PRIVATE_KEY_PEM: &str = "PRIVATE KEY-----";

/// Why a certificate, key or CA file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadTlsError {
    /// A file could not be read.
    #[error("cannot read {what} file {path}")]
    Read {
        /// `client certificate`, `client key` or `CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{what} file {path}: {why}")]
    Invalid {
        /// `client certificate`, `client key` or `CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// PEM text (not from a file) does not hold what it should.
    #[error("{what}: {why}")]
    Pem {
        /// `client certificate`, `client key` or `CA`.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A certificate was given without its key, or the other way round.
    #[error("a client certificate needs its private key, and a key its certificate: give both")]
    Incomplete,
}

/// The till's TLS settings: its client certificate, if any, and extra trusted CAs.
#[derive(Clone, Default)]
pub struct ClientTls {
    identity: Option<reqwest::Identity>,
    roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_certificate", &self.identity.is_some())
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

impl ClientTls {
    /// No client certificate, no extra CAs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the PEM files: the client certificate chain (leaf first) and its
    /// private key (PKCS#8, SEC1 or PKCS#1), both or neither, and a bundle of
    /// extra CAs for the server's certificate.
    pub fn load(cert: Option<&Path>, key: Option<&Path>, ca: Option<&Path>) -> Result<Self, LoadTlsError> {
        let mut tls = Self::new();
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let (cert_pem, key_pem) = (read("client certificate", cert)?, read("client key", key)?);
                tls = tls
                    .with_client_certificate(&cert_pem, &key_pem)
                    .map_err(|err| in_file(err, |what| if what == "client key" { key } else { cert }))?;
            }
            (None, None) => {}
            _ => return Err(LoadTlsError::Incomplete),
        }
        if let Some(ca) = ca {
            let pem = read("CA", ca)?;
            tls = tls.with_root_certificates(&pem).map_err(|err| in_file(err, |_| ca))?;
        }
        Ok(tls)
    }

    /// Presents the certificate chain `cert_pem` (leaf first) with the private key `key_pem`.
    pub fn with_client_certificate(mut self, cert_pem: &str, key_pem: &str) -> Result<Self, LoadTlsError> {
        let invalid = |what, why: &str| LoadTlsError::Pem {
            what,
            why: why.to_owned(),
        };
        if !cert_pem.contains(CERTIFICATE_PEM) {
            return Err(invalid("client certificate", "no PEM certificate found"));
        }
        if !key_pem.contains(PRIVATE_KEY_PEM) {
            return Err(invalid("client key", "no PEM private key found"));
        }
        let identity = reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes())
            .map_err(|e| invalid("client certificate", &e.to_string()))?;
        self.identity = Some(identity);
        Ok(self)
    }

    /// Trusts the CAs of the PEM bundle `pem` for the server's certificate, in
    /// addition to the system's.
    pub fn with_root_certificates(mut self, pem: &str) -> Result<Self, LoadTlsError> {
        let invalid = |why: String| LoadTlsError::Pem { what: "CA", why };
        let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        if roots.is_empty() {
            return Err(invalid("no PEM certificate found".into()));
        }
        self.roots.extend(roots);
        Ok(self)
    }

    /// Whether the till presents a client certificate (and so uses the
    /// server's `mtls_endpoint_aliases`).
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }

    /// Adds the certificate and the CAs to an HTTP client under construction.
    pub fn apply(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        for root in &self.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
    }
}

/// A [`LoadTlsError::Pem`] of text read from a file, as [`LoadTlsError::Invalid`] naming the file.
fn in_file<'a>(err: LoadTlsError, path_of: impl Fn(&'static str) -> &'a Path) -> LoadTlsError {
    match err {
        LoadTlsError::Pem { what, why } => LoadTlsError::Invalid {
            what,
            path: path_of(what).to_owned(),
            why,
        },
        other => other,
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, LoadTlsError> {
    std::fs::read_to_string(path).map_err(|source| LoadTlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_what_they_should_be_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem").unwrap();
        let missing = dir.path().join("missing.pem");

        let err = ClientTls::load(Some(&junk), Some(&junk), None).unwrap_err();
        assert!(
            matches!(&err, LoadTlsError::Invalid { what: "client certificate", path, .. } if *path == junk),
            "{err}"
        );
        let err = ClientTls::load(Some(&missing), Some(&junk), None).unwrap_err();
        assert!(
            matches!(
                err,
                LoadTlsError::Read {
                    what: "client certificate",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            ClientTls::load(Some(&junk), None, None),
            Err(LoadTlsError::Incomplete)
        ));
        assert!(matches!(
            ClientTls::load(None, Some(&junk), None),
            Err(LoadTlsError::Incomplete)
        ));
        let err = ClientTls::load(None, None, Some(&junk)).unwrap_err();
        assert!(err.to_string().contains("CA file"), "{err}");
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let none = ClientTls::load(None, None, None).unwrap();
        assert!(!none.has_client_certificate());
    }
}
