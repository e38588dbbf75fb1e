//! `[registration]`: whether `POST /register` is served and what it asks of
//! callers (an initial access token, a software statement signed by a trusted
//! directory).

use std::path::{Path, PathBuf};

use outband_protocol::jose::{is_private_jwk, parse_jwk, Jwk};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::LoadConfigError;

/// Shortest initial access token accepted, in characters.
pub const MIN_INITIAL_ACCESS_TOKEN_LENGTH: usize = 32;

/// `[registration]` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Serve `POST /register` and `/register/{client_id}` (off by default).
    pub enabled: bool,
    /// A file holding the initial access token callers must send as
    /// `Authorization: Bearer` ([RFC 7591 §3](https://www.rfc-editor.org/rfc/rfc7591#section-3));
    /// open registration when absent.
    pub initial_access_token_file: Option<PathBuf>,
    /// A JWK Set file with the public keys of the directories whose software
    /// statements are trusted.
    pub software_statement_jwks_file: Option<PathBuf>,
    /// Refuse registrations without a trusted software statement.
    pub require_software_statement: bool,
}

/// `[registration]` validated (present only when enabled).
#[derive(Clone, Debug)]
pub struct RegistrationSettings {
    /// SHA-256 (base64url) of the initial access token, when one is required.
    pub initial_access_token_hash: Option<String>,
    /// The trusted directories' public keys; no statement is accepted when empty.
    pub software_statement_keys: Vec<Jwk>,
    /// Whether a software statement is required.
    pub require_software_statement: bool,
}

fn invalid(key: &str, reason: impl Into<String>) -> LoadConfigError {
    LoadConfigError::Invalid {
        key: format!("registration.{key}"),
        reason: reason.into(),
    }
}

impl RegistrationConfig {
    /// Reads the files; `None` when registration is off.
    pub fn validate(&self) -> Result<Option<RegistrationSettings>, LoadConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let initial_access_token_hash = self
            .initial_access_token_file
            .as_deref()
            .map(read_initial_access_token)
            .transpose()?;
        let software_statement_keys = match &self.software_statement_jwks_file {
            Some(path) => read_directory_keys(path)?,
            None if self.require_software_statement => {
                return Err(invalid(
                    "require_software_statement",
                    "needs registration.software_statement_jwks_file (the keys that sign the statements)",
                ))
            }
            None => Vec::new(),
        };
        Ok(Some(RegistrationSettings {
            initial_access_token_hash,
            software_statement_keys,
            require_software_statement: self.require_software_statement,
        }))
    }
}

fn read_initial_access_token(path: &Path) -> Result<String, LoadConfigError> {
    const KEY: &str = "initial_access_token_file";
    let text = std::fs::read_to_string(path).map_err(|e| invalid(KEY, format!("{}: {e}", path.display())))?;
    let token = text.trim();
    if token.chars().count() < MIN_INITIAL_ACCESS_TOKEN_LENGTH {
        return Err(invalid(
            KEY,
            format!(
                "{}: the token needs at least {MIN_INITIAL_ACCESS_TOKEN_LENGTH} characters (e.g. `openssl rand -base64 32`)",
                path.display()
            ),
        ));
    }
    Ok(outband_protocol::jose::sha256_b64url(token.as_bytes()))
}

fn read_directory_keys(path: &Path) -> Result<Vec<Jwk>, LoadConfigError> {
    const KEY: &str = "software_statement_jwks_file";
    let fail = |why: String| invalid(KEY, format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let document: Value = serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("a JWK Set needs a \"keys\" array".into()))?;
    let keys = keys
        .iter()
        .map(|k| parse_jwk(k).map_err(|e| fail(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(fail("no key".into()));
    }
    if keys.iter().any(is_private_jwk) {
        return Err(fail(
            "contains private key material; give the directory's public keys only".into(),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_enabled_and_named_errors() {
        assert!(RegistrationConfig::default().validate().unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("iat");
        std::fs::write(&short, "short").unwrap();
        let config = RegistrationConfig {
            enabled: true,
            initial_access_token_file: Some(short),
            ..RegistrationConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("registration.initial_access_token_file"), "{err}");
        let config = RegistrationConfig {
            enabled: true,
            require_software_statement: true,
            ..RegistrationConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("registration.require_software_statement"), "{err}");
        let private = outband_protocol::SigningAlg::ES256.generate_private_jwk().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            serde_json::json!({ "keys": [Value::Object(private.as_ref().clone())] }).to_string(),
        )
        .unwrap();
        let config = RegistrationConfig {
            enabled: true,
            software_statement_jwks_file: Some(jwks),
            ..RegistrationConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("private key material"), "{err}");
    }
}
