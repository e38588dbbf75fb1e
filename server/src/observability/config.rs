//! `[metrics]`: whether and where `GET /metrics` is served.
//!
//! Off by default (the path answers 404 like any unknown one). When on, it is
//! never open to whoever reaches the public listener: either it is served on a
//! separate plain-HTTP listener (`listen`, meant for a loopback or private
//! address) and not on the main one, or it asks for a bearer token
//! (`token_file`), or both. A configuration with neither is refused.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{LoadConfigError, MIN_ADMIN_TOKEN_LENGTH};

/// `[metrics]` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// A separate address for `/metrics` (e.g. `127.0.0.1:9464`); the main
    /// listener then answers 404 for it.
    pub listen: Option<String>,
    /// A file holding the bearer token scrapers must present (at least
    /// [`MIN_ADMIN_TOKEN_LENGTH`] characters; surrounding whitespace is ignored).
    pub token_file: Option<PathBuf>,
}

/// The validated `[metrics]`, present only when enabled.
#[derive(Clone, Debug)]
pub struct MetricsSettings {
    /// The separate listener; `None`: `/metrics` is on the main listener.
    pub listen: Option<SocketAddr>,
    /// SHA-256 (base64url) of the bearer token; `None`: no token asked.
    pub token_hash: Option<String>,
}

fn invalid(key: &str, reason: impl Into<String>) -> LoadConfigError {
    LoadConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl MetricsConfig {
    /// `None` when disabled; refuses a `/metrics` that would be public.
    pub fn validate(&self, main_listen: SocketAddr) -> Result<Option<MetricsSettings>, LoadConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let listen = self
            .listen
            .as_deref()
            .map(|text| {
                let addr: SocketAddr = text.parse().map_err(|_| {
                    invalid(
                        "metrics.listen",
                        format!("{text:?} is not an address like 127.0.0.1:9464"),
                    )
                })?;
                if addr.port() == main_listen.port() && (addr.ip() == main_listen.ip() || addr.ip().is_unspecified()) {
                    return Err(invalid("metrics.listen", "must differ from the main `listen` address"));
                }
                Ok(addr)
            })
            .transpose()?;
        let token_hash = self.token_file.as_ref().map(read_token).transpose()?;
        if listen.is_none() && token_hash.is_none() {
            return Err(invalid(
                "metrics.enabled",
                "/metrics on the main listener would be public: set metrics.token_file (a bearer token for the scraper) or metrics.listen (a separate, private address)",
            ));
        }
        Ok(Some(MetricsSettings { listen, token_hash }))
    }
}

/// Reads the token file; returns the SHA-256 (base64url) of the token.
fn read_token(path: &PathBuf) -> Result<String, LoadConfigError> {
    const KEY: &str = "metrics.token_file";
    let text = std::fs::read_to_string(path).map_err(|e| invalid(KEY, format!("{}: {e}", path.display())))?;
    let token = text.trim();
    if token.chars().count() < MIN_ADMIN_TOKEN_LENGTH {
        return Err(invalid(
            KEY,
            format!(
                "{}: the token needs at least {MIN_ADMIN_TOKEN_LENGTH} characters (e.g. `openssl rand -base64 32`)",
                path.display()
            ),
        ));
    }
    Ok(outband_protocol::jose::sha256_b64url(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[metrics]` of a development configuration listening on 127.0.0.1:8080.
    fn validate(text: &str) -> Result<Option<MetricsSettings>, LoadConfigError> {
        let text = format!("environment = \"development\"\n[metrics]\n{text}");
        crate::config::Config::from_toml(&text)?
            .validate()
            .map(|settings| settings.metrics)
    }

    #[test]
    fn off_by_default_and_never_public() {
        assert!(validate("").unwrap().is_none());
        assert!(validate("listen = \"127.0.0.1:9464\"").unwrap().is_none());
        let err = validate("enabled = true").unwrap_err().to_string();
        assert!(err.contains("metrics.enabled") && err.contains("public"), "{err}");
    }

    #[test]
    fn listen_and_token_file_are_checked() {
        let settings = validate("enabled = true\nlisten = \"127.0.0.1:9464\"")
            .unwrap()
            .unwrap();
        assert_eq!(settings.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(settings.token_hash.is_none());
        for text in [
            "listen = \"localhost\"",
            "listen = \"127.0.0.1:8080\"",
            "listen = \"0.0.0.0:8080\"",
        ] {
            let err = validate(&format!("enabled = true\n{text}")).unwrap_err().to_string();
            assert!(err.contains("metrics.listen"), "{text}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef-metrics\n").unwrap();
        let with_token = format!("enabled = true\ntoken_file = {:?}", path.display().to_string());
        let settings = validate(&with_token).unwrap().unwrap();
        assert!(settings.listen.is_none() && settings.token_hash.is_some());
        std::fs::write(&path, "short").unwrap();
        let err = validate(&with_token).unwrap_err().to_string();
        assert!(
            err.contains("metrics.token_file") && err.contains("at least 32"),
            "{err}"
        );
    }
}
