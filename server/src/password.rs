//! Passwords people choose, and CIBA user codes (the secret a user tells the
//! shop assistant), both hashed with argon2id (DESIGN "Storage": never on a
//! per-request path; the browser login runs it on a blocking thread).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use outband_protocol::Password;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;
/// Shortest CIBA `user_code` accepted: a PIN-like code typed at a till, so
/// shorter than a password; argon2 and the user's lock keep guessing slow.
pub const MIN_USER_CODE_LENGTH: usize = 4;

/// Hashes a password into a PHC string.
pub fn hash(password: &Password) -> Result<String, String> {
    if password.secret().chars().count() < MIN_LENGTH {
        return Err(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    hash_unchecked(password)
}

/// Hashes a CIBA `user_code` ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1))
/// into a PHC string; check it with [`verify`].
pub fn hash_user_code(code: &Password) -> Result<String, String> {
    if code.secret().chars().count() < MIN_USER_CODE_LENGTH {
        return Err(format!("a user code needs at least {MIN_USER_CODE_LENGTH} characters"));
    }
    hash_unchecked(code)
}

fn hash_unchecked(password: &Password) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify(password: &Password, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.secret().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let stored = hash(&Password::new("correct horse")).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(&Password::new("correct horse"), &stored));
        assert!(!verify(&Password::new("wrong horse"), &stored));
        assert!(!verify(&Password::new("correct horse"), "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(hash(&Password::new("short")).is_err());
    }

    #[test]
    fn user_codes_need_four_characters() {
        let err = hash_user_code(&Password::new("123")).unwrap_err();
        assert!(err.contains("at least 4"), "{err}");
        let stored = hash_user_code(&Password::new("4711")).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(&Password::new("4711"), &stored));
        assert!(!verify(&Password::new("4712"), &stored));
    }
}
