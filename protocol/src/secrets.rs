//! Secret protocol values. `Debug` is redacted, there is no `Display`, and
//! equality is constant-time. The server stores only [`hash`](AccessToken::hash)es.

use crate::macros::new_secret_type;

new_secret_type!(
    /// An access token ([RFC 6749 §1.4](https://www.rfc-editor.org/rfc/rfc6749#section-1.4)).
    AccessToken
);
new_secret_type!(
    /// A refresh token ([RFC 6749 §1.5](https://www.rfc-editor.org/rfc/rfc6749#section-1.5)).
    RefreshToken
);
new_secret_type!(
    /// A client secret ([RFC 6749 §2.3.1](https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1)).
    ClientSecret
);
new_secret_type!(
    /// The bearer token a CIBA ping/push client gives for its notification endpoint
    /// ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)).
    ClientNotificationToken
);
new_secret_type!(
    /// The identifier of a CIBA authentication request
    /// ([CIBA Core §7.3](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.3)).
    /// It is a bearer value for the token endpoint, so it is treated as a secret.
    AuthReqId
);
new_secret_type!(
    /// A one-time activation code that enrolls an authenticator for a user.
    ActivationCode
);
new_secret_type!(
    /// A password typed by a person.
    Password
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        assert_eq!(format!("{:?}", AccessToken::new("abc")), "AccessToken([redacted])");
        assert_eq!(format!("{:?}", ClientSecret::new("abc")), "ClientSecret([redacted])");
        assert_eq!(format!("{:?}", RefreshToken::new("abc")), "RefreshToken([redacted])");
        assert_eq!(format!("{:?}", AuthReqId::new("abc")), "AuthReqId([redacted])");
        assert_eq!(
            format!("{:?}", ClientNotificationToken::new("abc")),
            "ClientNotificationToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", ActivationCode::new("abc")),
            "ActivationCode([redacted])"
        );
        assert_eq!(format!("{:?}", Password::new("abc")), "Password([redacted])");
    }

    #[test]
    fn secret_equality_and_hash() {
        assert_eq!(ClientSecret::new("s3cret"), ClientSecret::new("s3cret"));
        assert_ne!(ClientSecret::new("s3cret"), ClientSecret::new("s3cre7"));
        // SHA-256("abc"), base64url without padding.
        assert_eq!(
            AccessToken::new("abc").hash(),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}
