//! The domain records the [`Store`](super::Store) reads and writes. Row structs
//! stay private to the backends; these are what the rest of the server sees.

use outband_protocol::{ClientId, ClientMetadata, Scope, SigningAlg, Subject};
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch. Every timestamp in the store is one of these.
pub type UnixTime = i64;

/// A registered client.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// The metadata (stored as JSON).
    pub metadata: ClientMetadata,
    /// SHA-256 (base64url) of the client secret, for the secret-based methods.
    pub secret_hash: Option<String>,
    /// When it was registered.
    pub created_at: UnixTime,
}

impl ClientRecord {
    /// The client id.
    pub fn client_id(&self) -> &ClientId {
        &self.metadata.client_id
    }
}

/// What a test user's pending CIBA requests are answered with automatically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestDecision {
    /// Approve every request at once.
    Approve,
    /// Deny every request at once.
    Deny,
}

impl TestDecision {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "approve" => Some(Self::Approve),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// An end-user.
#[derive(Clone, PartialEq)]
pub struct UserRecord {
    /// Stable subject identifier (`sub`).
    pub subject: Subject,
    /// Unique login name.
    pub username: String,
    /// Unique e-mail address, when known.
    pub email: Option<String>,
    /// Unique phone number (E.164), when known.
    pub phone: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// argon2 PHC string, when the user has a password.
    pub password_hash: Option<String>,
    /// argon2 PHC string of the user's CIBA `user_code`, when set.
    pub user_code_hash: Option<String>,
    /// A locked user never gets tokens.
    pub locked: bool,
    /// Automatic CIBA decision for test users; `None` for real users.
    pub test_decision: Option<TestDecision>,
    /// When the user was created.
    pub created_at: UnixTime,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("subject", &self.subject)
            .field("username", &self.username)
            .field("locked", &self.locked)
            .finish_non_exhaustive()
    }
}

/// A signing key of the authorization server.
#[derive(Clone, PartialEq)]
pub struct KeyRecord {
    /// Key id, unique.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// The key set generation it belongs to (1 on first start, +1 per rotation).
    pub generation: i64,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    /// The private JWK sealed under the operator's key file (AES-256-GCM), base64url.
    pub private_jwk_sealed: String,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it stopped signing (a newer generation took over); `None` while current.
    pub retired_at: Option<UnixTime>,
    /// Until when a retired key stays published so tokens it signed still verify.
    pub publish_until: Option<UnixTime>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Access or refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token (JWT or opaque).
    Access,
    /// A refresh token.
    Refresh,
}

impl TokenKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "access" => Some(Self::Access),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// An issued token. Opaque tokens and refresh tokens are looked up by hash; JWT
/// access tokens are recorded by their `jti` (as `token_hash` = SHA-256 of the
/// whole JWT) so that revocation and introspection see them too.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    /// SHA-256 (base64url) of the token value.
    pub token_hash: String,
    /// Access or refresh.
    pub kind: TokenKind,
    /// The `jti` (JWT access tokens) or a random id.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The user, for user-bound grants.
    pub subject: Option<Subject>,
    /// Granted scope.
    pub scope: Scope,
    /// Granted authorization details (JSON text).
    pub authorization_details: Option<String>,
    /// The grant it belongs to, for cascade revocation.
    pub grant_id: Option<String>,
    /// DPoP key thumbprint it is bound to.
    pub cnf_jkt: Option<String>,
    /// Certificate thumbprint it is bound to.
    pub cnf_x5t: Option<String>,
    /// Issued at.
    pub issued_at: UnixTime,
    /// Expires at.
    pub expires_at: UnixTime,
    /// Revoked tokens are inactive even before they expire.
    pub revoked: bool,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number, assigned by the store (0 before insert).
    pub id: i64,
    /// When it happened.
    pub at: UnixTime,
    /// What happened, e.g. `token.issued`, `client.auth_failed`, `user.locked`.
    pub event: String,
    /// The client involved.
    pub client_id: Option<String>,
    /// The user involved.
    pub subject: Option<String>,
    /// The HTTP request id or CIBA request it belongs to.
    pub request_id: Option<String>,
    /// Anything else, never a secret.
    pub detail: serde_json::Value,
}

/// A filter over the audit log; every field narrows it.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this user.
    pub subject: Option<String>,
    /// Only this client.
    pub client_id: Option<String>,
    /// Only this request.
    pub request_id: Option<String>,
    /// From this time on (inclusive).
    pub since: Option<UnixTime>,
    /// Before this time (exclusive).
    pub until: Option<UnixTime>,
    /// At most this many, newest first.
    pub limit: u32,
}
