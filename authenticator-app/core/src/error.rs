//! The one error type of the core. Each variant has a stable snake_case
//! [`Error::code`] for UIs and a sentence for people.

/// Everything that can go wrong in the authenticator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The code or link cannot be read (or a bare code came without an issuer).
    #[error("invalid invitation: {0}")]
    InvalidInvite(String),
    /// The issuer's signing key is not the one the invitation pinned: the link
    /// may point at an impostor.
    #[error("the server's signing key does not match the invitation: {0}")]
    IssuerKeyMismatch(String),
    /// A PIN that does not follow the rules (4 to 64 characters, no control characters).
    #[error("invalid PIN: {0}")]
    InvalidPin(String),
    /// The PIN does not open this account's key.
    #[error("wrong PIN")]
    WrongPin,
    /// No account with this id (or name) on this device.
    #[error("no such account: {0}")]
    UnknownAccount(String),
    /// Approving needs the PIN.
    #[error("a PIN is needed to approve")]
    PinRequired,
    /// The request uses number matching: type the number the terminal shows.
    #[error("this request needs the number shown on the terminal")]
    NumberMatchRequired,
    /// The request expired before the decision.
    #[error("the request has expired")]
    RequestExpired,
    /// The request was already decided, withdrawn or expired at the server (409).
    #[error("the request can no longer be decided: {0}")]
    RequestGone(String),
    /// This device was revoked at the server.
    #[error("this device was revoked at the server")]
    Revoked,
    /// The server has no live grant with this id for this user (already
    /// revoked, or never was).
    #[error("no such grant: {0}")]
    UnknownGrant(String),
    /// The server answered with an error.
    #[error("the server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Server {
        /// HTTP status.
        status: u16,
        /// OAuth error code.
        error: String,
        /// `error_description`.
        description: Option<String>,
    },
    /// The server could not be reached, or answered something unreadable.
    #[error("network error: {0}")]
    Network(String),
    /// A request from the server failed verification (signature, issuer, audience, expiry).
    #[error("verification failed: {0}")]
    Verification(String),
    /// The local data directory, key file or keyring failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl Error {
    /// A stable code per variant, for UIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInvite(_) => "invalid_invite",
            Self::IssuerKeyMismatch(_) => "issuer_key_mismatch",
            Self::InvalidPin(_) => "invalid_pin",
            Self::WrongPin => "wrong_pin",
            Self::UnknownAccount(_) => "unknown_account",
            Self::PinRequired => "pin_required",
            Self::NumberMatchRequired => "number_match_required",
            Self::RequestExpired => "request_expired",
            Self::RequestGone(_) => "request_gone",
            Self::Revoked => "revoked",
            Self::UnknownGrant(_) => "unknown_grant",
            Self::Server { .. } => "server",
            Self::Network(_) => "network",
            Self::Verification(_) => "verification",
            Self::Storage(_) => "storage",
        }
    }

    pub(crate) fn storage(context: &str, err: impl std::fmt::Display) -> Self {
        Self::Storage(format!("{context}: {err}"))
    }
}

impl From<reqwest::Error> for Error {
    fn from(err: reqwest::Error) -> Self {
        // Without the URL: it is the issuer's. With the innermost cause
        // ("Connection refused"), which says what actually went wrong.
        let err = err.without_url();
        let mut cause: &dyn std::error::Error = &err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        match cause.to_string() {
            inner if std::ptr::addr_eq(cause, &err) || inner.is_empty() => Self::Network(err.to_string()),
            inner => Self::Network(format!("{err} ({inner})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        assert_eq!(Error::WrongPin.code(), "wrong_pin");
        let err = Error::Server {
            status: 400,
            error: "invalid_grant".into(),
            description: Some("the code is not valid".into()),
        };
        assert_eq!(
            err.to_string(),
            "the server refused: invalid_grant (the code is not valid)"
        );
        assert_eq!(err.code(), "server");
    }
}
