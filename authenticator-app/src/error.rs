//! The one error type of the commands: what the webview receives when a command fails.
//!
//! It crosses IPC as `{"code": "wrong_pin", "message": "wrong PIN"}`: `code` is stable (the core's
//! [`outband_authenticator_core::Error::code`] or one of ours below) so the UI can react to it, and
//! `message` is a sentence for people. Neither ever contains key material or a PIN.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Whatever the core refused or failed at.
    #[error(transparent)]
    Core(#[from] outband_authenticator_core::Error),
    /// The two PINs typed at enrollment differ.
    #[error("the two PINs differ")]
    PinMismatch,
    /// No card with this id (already decided, withdrawn or expired).
    #[error("this request is no longer pending")]
    UnknownRequest,
    /// The account must be unlocked with its PIN first.
    #[error("unlock this account with its PIN first")]
    Locked,
    /// Input from the webview that makes no sense (empty name, bad base64, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// The app itself failed (settings file, autostart, a background task).
    #[error("{0}")]
    Internal(String),
}

impl CommandError {
    /// A stable snake_case code for the UI.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Core(err) => err.code(),
            Self::PinMismatch => "pin_mismatch",
            Self::UnknownRequest => "unknown_request",
            Self::Locked => "locked",
            Self::InvalidInput(_) => "invalid_input",
            Self::Internal(_) => "internal",
        }
    }

    pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }
}

impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut error = serializer.serialize_struct("CommandError", 2)?;
        error.serialize_field("code", self.code())?;
        error.serialize_field("message", &self.to_string())?;
        error.end()
    }
}

/// What every command returns.
pub type CommandResult<T> = Result<T, CommandError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let json = serde_json::to_value(CommandError::from(outband_authenticator_core::Error::WrongPin)).unwrap();
        assert_eq!(json, serde_json::json!({"code": "wrong_pin", "message": "wrong PIN"}));
        let json = serde_json::to_value(CommandError::PinMismatch).unwrap();
        assert_eq!(json["code"], "pin_mismatch");
    }
}
