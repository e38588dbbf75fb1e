//! Passwords people choose, hashed with argon2id (DESIGN "Storage": never on a
//! per-request path; the browser login runs it on a blocking thread).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use outband_protocol::Password;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 8;

/// Hashes a password into a PHC string.
pub fn hash(password: &Password) -> Result<String, String> {
    if password.secret().chars().count() < MIN_LENGTH {
        return Err(format!("a password needs at least {MIN_LENGTH} characters"));
    }
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
}
