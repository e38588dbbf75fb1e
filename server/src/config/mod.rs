//! Configuration: one TOML file (`--config`), overlaid by `OUTBAND_*` environment
//! variables (`OUTBAND_DATABASE_URL`, `OUTBAND_TOKENS__ACCESS_TOKEN_LIFETIME`: a
//! double underscore descends into a table), validated once into [`Settings`].
//!
//! Unknown keys are refused, and every error names the key at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use outband_protocol::{ClientMetadata, SigningAlg};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::auth::dpop::NoncePolicy;
use crate::observability::{MetricsConfig, MetricsSettings};
use crate::outbound::{DestinationPolicy, IpCidr, OutboundSettings};
use crate::rate_limit::{RateLimitConfig, RateLimitSettings};
use crate::registration::{RegistrationConfig, RegistrationSettings};
use crate::store::TestDecision;
use crate::tls::{TlsConfig, TlsSettings};

/// `OUTBAND_*` variables that belong to the command line, logging or the test
/// harness rather than to the configuration file; every other `OUTBAND_*`
/// variable must name a configuration key.
const NOT_CONFIG_KEYS: &[&str] = &["config", "log_format", "client_secret", "test_backend"];

/// Whether test-only features may be switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Test users, the admin decision endpoint and plain-http loopback callbacks are refused.
    Production,
    /// A developer's machine or a test run.
    Development,
}

/// The configuration file as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier: the base URL clients see (`https://`, or `http://` on loopback in development).
    pub issuer: String,
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://path`, a file path, `:memory:`, or `postgres://...`.
    pub database_url: String,
    /// File with the 32-byte key that seals the private signing keys in the database.
    /// Every server node sharing one database must be given the same file.
    pub key_file: PathBuf,
    /// Production or development.
    pub environment: Environment,
    /// Token lifetimes and formats.
    pub tokens: TokensConfig,
    /// Signing keys.
    pub keys: KeysConfig,
    /// Clients to create or update at start.
    pub clients: Vec<ClientConfig>,
    /// Users to create at start (if missing).
    pub users: Vec<UserConfig>,
    /// Outbound HTTP calls (jwks_uri, CIBA notifications).
    #[serde(default)]
    pub outbound: OutboundConfig,
    /// The resource API (`/api/...`).
    #[serde(default)]
    pub resource: ResourceConfig,
    /// The admin decision endpoint for automated tests (development only); off when absent.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// TLS on the listener and mutual TLS ([`crate::tls`]); plain HTTP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Dynamic client registration ([`crate::registration`]); off by default.
    #[serde(default)]
    pub registration: RegistrationConfig,
    /// Prometheus `/metrics` ([`crate::observability`]); off by default.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Per-client rate limits ([`crate::rate_limit`]); on by default, generously.
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
}

/// `[admin]`: switches on `POST /admin/v1/ciba/decision`, which approves or
/// denies a pending CIBA request for automated tests. Refused in production.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// A file holding the random admin bearer token (at least
    /// [`MIN_ADMIN_TOKEN_LENGTH`] characters; surrounding whitespace is ignored).
    pub token_file: PathBuf,
}

/// Shortest admin token accepted, in characters (`outband-server demo` writes 43).
pub const MIN_ADMIN_TOKEN_LENGTH: usize = 32;

/// `[outbound]`: the policy of every request the server sends.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// Milliseconds to establish a connection.
    pub connect_timeout_ms: u32,
    /// Milliseconds for a whole request, body included.
    pub timeout_ms: u32,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u32,
    /// A PEM file of extra CA certificates to trust (private PKI).
    pub ca_bundle: Option<PathBuf>,
    /// Host names (exact) or address ranges (CIDR) that may be reached even
    /// though they are not public, e.g. `["10.20.0.0/16", "bank-internal.example"]`.
    pub allow_private: Vec<String>,
    /// Plain http towards loopback destinations (development only).
    pub allow_insecure_http_loopback: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: crate::outbound::DEFAULT_CONNECT_TIMEOUT_MS,
            timeout_ms: crate::outbound::DEFAULT_TIMEOUT_MS,
            max_response_bytes: crate::outbound::DEFAULT_MAX_RESPONSE_BYTES,
            ca_bundle: None,
            allow_private: Vec::new(),
            allow_insecure_http_loopback: false,
        }
    }
}

/// `[tokens]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Access token lifetime in seconds.
    pub access_token_lifetime: u32,
    /// Refresh token lifetime in seconds.
    pub refresh_token_lifetime: u32,
    /// ID token lifetime in seconds.
    pub id_token_lifetime: u32,
    /// Algorithm of JWT access tokens.
    pub access_token_alg: SigningAlg,
    /// The `aud` of JWT access tokens: the resource server(s) that accept them.
    pub access_token_audience: Option<String>,
    /// Whether DPoP proofs at the token endpoint must carry a server nonce
    /// ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)): `"required"` or
    /// `"optional"` (the default). FAPI 2 clients are always asked for one
    /// ([`crate::profile::Policy::requires_dpop_nonce`]).
    #[serde(default = "optional_nonce")]
    pub dpop_nonce: NoncePolicy,
    /// Seconds after a refresh token is rotated during which presenting it
    /// again re-rotates once instead of revoking the grant (a client retrying a
    /// refresh whose answer it lost; `grants::refresh_grace`). `0` turns it off.
    #[serde(default = "default_refresh_grace")]
    pub refresh_grace_seconds: u32,
}

/// The default `[tokens] refresh_grace_seconds`.
fn default_refresh_grace() -> u32 {
    10
}

/// `[resource]`: the resource API the server hosts (`/api/payments`, `/api/accounts`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Whether DPoP proofs at the resource API must carry a server nonce
    /// ([RFC 9449 §9](https://www.rfc-editor.org/rfc/rfc9449#section-9)): `"required"` or
    /// `"optional"` (the default). Tokens of FAPI 2 clients always need one.
    #[serde(default = "optional_nonce")]
    pub dpop_nonce: NoncePolicy,
}

impl Default for ResourceConfig {
    fn default() -> Self {
        Self {
            dpop_nonce: NoncePolicy::Optional,
        }
    }
}

fn optional_nonce() -> NoncePolicy {
    NoncePolicy::Optional
}

/// `[keys]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// How long a retired key stays published after a rotation, in seconds.
    /// Must exceed the longest token lifetime signed by it.
    pub rotation_overlap: u32,
}

/// A `[[clients]]` entry: client metadata plus, for secret-based methods, the secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The client secret (for `client_secret_basic`/`client_secret_post`). Prefer `client_secret_file`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The metadata.
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

/// A `[[users]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub username: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Automatic CIBA decision (development only).
    #[serde(default)]
    pub test_decision: Option<TestDecision>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://outband.db".into(),
            key_file: PathBuf::from("outband.key"),
            environment: Environment::Production,
            tokens: TokensConfig {
                access_token_lifetime: 300,
                refresh_token_lifetime: 30 * 24 * 3600,
                id_token_lifetime: 300,
                access_token_alg: SigningAlg::ES256,
                access_token_audience: None,
                dpop_nonce: NoncePolicy::Optional,
                refresh_grace_seconds: default_refresh_grace(),
            },
            keys: KeysConfig {
                rotation_overlap: 24 * 3600,
            },
            clients: Vec::new(),
            users: Vec::new(),
            outbound: OutboundConfig::default(),
            resource: ResourceConfig::default(),
            admin: None,
            tls: None,
            registration: RegistrationConfig::default(),
            metrics: MetricsConfig::default(),
            rate_limits: RateLimitConfig::default(),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadConfigError {
    /// The file could not be read or parsed, or a key is unknown or of the wrong type.
    #[error("{0}")]
    Parse(String),
    /// A value is present but not acceptable.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> LoadConfigError {
    LoadConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the defaults, then the file (when given), then `OUTBAND_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, LoadConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(LoadConfigError::Parse(format!(
                    "configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("OUTBAND_").ignore(NOT_CONFIG_KEYS).split("__"));
        figment
            .extract()
            .map_err(|e| LoadConfigError::Parse(describe_figment_error(e)))
    }

    /// Parses a TOML text over the defaults (no environment): for tests and `demo`.
    pub fn from_toml(text: &str) -> Result<Self, LoadConfigError> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| LoadConfigError::Parse(describe_figment_error(e)))
    }

    /// Validates into [`Settings`].
    pub fn validate(self) -> Result<Settings, LoadConfigError> {
        let issuer = Url::parse(&self.issuer).map_err(|e| invalid("issuer", e.to_string()))?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(invalid("issuer", "must not have a query or fragment"));
        }
        let loopback = is_loopback(&issuer);
        match issuer.scheme() {
            "https" => {}
            "http" if loopback && self.environment == Environment::Development => {}
            "http" => {
                return Err(invalid(
                    "issuer",
                    "must be https (plain http is allowed only for a loopback host with environment = \"development\")",
                ))
            }
            other => return Err(invalid("issuer", format!("unsupported scheme {other}"))),
        }
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
            )
        })?;
        if self.database_url.trim().is_empty() {
            return Err(invalid("database_url", "must not be empty"));
        }
        let t = &self.tokens;
        for (key, value) in [
            ("tokens.access_token_lifetime", t.access_token_lifetime),
            ("tokens.refresh_token_lifetime", t.refresh_token_lifetime),
            ("tokens.id_token_lifetime", t.id_token_lifetime),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1 second"));
            }
        }
        if self.keys.rotation_overlap < t.access_token_lifetime.max(t.id_token_lifetime) {
            return Err(invalid(
                "keys.rotation_overlap",
                "must be at least the longest access or ID token lifetime, or tokens would stop verifying after a rotation",
            ));
        }
        if self.environment == Environment::Production {
            if let Some(user) = self.users.iter().find(|u| u.test_decision.is_some()) {
                return Err(invalid(
                    "users.test_decision",
                    format!(
                        "user {} has an automatic decision, which is refused in production",
                        user.username
                    ),
                ));
            }
        }
        let mut clients = Vec::with_capacity(self.clients.len());
        for client in self.clients {
            let secret = match (&client.client_secret, &client.client_secret_file) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "clients.client_secret",
                        "give client_secret or client_secret_file, not both",
                    ))
                }
                (Some(secret), None) => Some(secret.clone()),
                (None, Some(path)) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| invalid("clients.client_secret_file", format!("{}: {e}", path.display())))?
                        .trim()
                        .to_owned(),
                ),
                (None, None) => None,
            };
            clients.push((client.metadata, secret));
        }
        let outbound = validate_outbound(&self.outbound, self.environment)?;
        let admin_token_hash = self
            .admin
            .as_ref()
            .map(|admin| validate_admin(admin, self.environment))
            .transpose()?;
        let tls = self.tls.as_ref().map(TlsConfig::validate).transpose()?;
        let registration = self.registration.validate()?;
        let metrics = self.metrics.validate(listen)?;
        let rate_limits = self.rate_limits.validate()?;
        let audience = t
            .access_token_audience
            .clone()
            .unwrap_or_else(|| issuer_string(&issuer));
        Ok(Settings {
            issuer: issuer_string(&issuer),
            listen,
            database_url: self.database_url,
            key_file: self.key_file,
            environment: self.environment,
            access_token_lifetime: i64::from(t.access_token_lifetime),
            refresh_token_lifetime: i64::from(t.refresh_token_lifetime),
            id_token_lifetime: i64::from(t.id_token_lifetime),
            access_token_alg: t.access_token_alg,
            access_token_audience: audience,
            token_dpop_nonce: t.dpop_nonce,
            refresh_grace_seconds: i64::from(t.refresh_grace_seconds),
            resource_dpop_nonce: self.resource.dpop_nonce,
            rotation_overlap: i64::from(self.keys.rotation_overlap),
            clients,
            users: self.users,
            outbound,
            admin_token_hash,
            tls,
            registration,
            metrics,
            rate_limits,
        })
    }
}

fn validate_outbound(config: &OutboundConfig, environment: Environment) -> Result<OutboundSettings, LoadConfigError> {
    for (key, value) in [
        ("outbound.connect_timeout_ms", config.connect_timeout_ms),
        ("outbound.timeout_ms", config.timeout_ms),
        ("outbound.max_response_bytes", config.max_response_bytes),
    ] {
        if value == 0 {
            return Err(invalid(key, "must be greater than 0"));
        }
    }
    if config.allow_insecure_http_loopback && environment == Environment::Production {
        return Err(invalid(
            "outbound.allow_insecure_http_loopback",
            "plain http is refused in production (set environment = \"development\" to use it)",
        ));
    }
    let mut policy = DestinationPolicy {
        insecure_http_loopback: config.allow_insecure_http_loopback,
        ..DestinationPolicy::default()
    };
    for entry in &config.allow_private {
        let entry = entry.trim();
        let is_name = !entry.is_empty()
            && entry.chars().any(|c| c.is_ascii_alphabetic())
            && entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
        // A name holds a letter and no ':' or '/'; anything else must be an address or a range.
        if is_name && entry.parse::<std::net::IpAddr>().is_err() {
            policy.hosts.push(crate::outbound::policy::normalize_host(entry));
        } else {
            let network: IpCidr = entry.parse().map_err(|_| {
                invalid(
                    "outbound.allow_private",
                    format!("{entry:?} is neither a host name nor an address range like 10.0.0.0/8"),
                )
            })?;
            policy.networks.push(network);
        }
    }
    let ca_certificates = match &config.ca_bundle {
        None => Vec::new(),
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| invalid("outbound.ca_bundle", format!("{}: {e}", path.display())))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid("outbound.ca_bundle", format!("{}: {e}", path.display())))?;
            if certificates.is_empty() {
                return Err(invalid(
                    "outbound.ca_bundle",
                    format!("{}: no PEM certificate found", path.display()),
                ));
            }
            certificates
        }
    };
    Ok(OutboundSettings {
        connect_timeout: std::time::Duration::from_millis(u64::from(config.connect_timeout_ms)),
        timeout: std::time::Duration::from_millis(u64::from(config.timeout_ms)),
        max_response_bytes: config.max_response_bytes as usize,
        ca_bundle: config.ca_bundle.clone(),
        ca_certificates,
        policy,
    })
}

/// Reads the admin token file; returns the SHA-256 (base64url) of the token.
fn validate_admin(admin: &AdminConfig, environment: Environment) -> Result<String, LoadConfigError> {
    const KEY: &str = "admin.token_file";
    if environment == Environment::Production {
        return Err(invalid(
            KEY,
            "the admin decision endpoint is refused in production (remove [admin], or set environment = \"development\")",
        ));
    }
    let path = &admin.token_file;
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

/// The issuer as clients must see it: no trailing slash on a bare host.
fn issuer_string(url: &Url) -> String {
    let text = url.as_str();
    if url.path() == "/" {
        text.trim_end_matches('/').to_owned()
    } else {
        text.to_owned()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                format!("configuration: {}", e.kind)
            } else {
                format!("configuration key `{key}`: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The validated configuration, handed to `AppState`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Issuer identifier, without a trailing slash.
    pub issuer: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Sealing key file.
    pub key_file: PathBuf,
    /// Production or development.
    pub environment: Environment,
    /// Seconds.
    pub access_token_lifetime: i64,
    /// Seconds.
    pub refresh_token_lifetime: i64,
    /// Seconds.
    pub id_token_lifetime: i64,
    /// JWT access token algorithm.
    pub access_token_alg: SigningAlg,
    /// JWT access token audience.
    pub access_token_audience: String,
    /// Server nonces in DPoP proofs at the token endpoint (`[tokens] dpop_nonce`).
    pub token_dpop_nonce: NoncePolicy,
    /// `[tokens] refresh_grace_seconds`.
    pub refresh_grace_seconds: i64,
    /// Server nonces in DPoP proofs at the resource API (`[resource] dpop_nonce`).
    pub resource_dpop_nonce: NoncePolicy,
    /// Seconds a retired key stays published.
    pub rotation_overlap: i64,
    /// Clients from the file, with their secrets.
    pub clients: Vec<(ClientMetadata, Option<String>)>,
    /// Users from the file.
    pub users: Vec<UserConfig>,
    /// The outbound HTTP policy.
    pub outbound: OutboundSettings,
    /// SHA-256 (base64url) of the admin bearer token; `None` keeps the admin
    /// decision endpoint off (it answers 404).
    pub admin_token_hash: Option<String>,
    /// TLS and mutual TLS; `None`: plain HTTP and no client certificates.
    pub tls: Option<TlsSettings>,
    /// Dynamic client registration; `None` keeps `/register` off (404).
    pub registration: Option<RegistrationSettings>,
    /// `[metrics]`; `None` keeps `/metrics` off (404).
    pub metrics: Option<MetricsSettings>,
    /// `[rate_limits]`.
    pub rate_limits: RateLimitSettings,
}

impl Settings {
    /// An absolute URL under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Whether test-only features are allowed.
    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }
}

#[cfg(test)]
mod tests;
