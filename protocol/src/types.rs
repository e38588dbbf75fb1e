//! Plain (non-secret) protocol values.

use crate::macros::new_type;

new_type!(
    /// An OAuth client identifier ([RFC 6749 §2.2](https://www.rfc-editor.org/rfc/rfc6749#section-2.2)).
    ClientId
);
new_type!(
    /// The `sub` of an end-user: stable, never reassigned.
    Subject
);
new_type!(
    /// A JWT ID (`jti`, [RFC 7519 §4.1.7](https://www.rfc-editor.org/rfc/rfc7519#section-4.1.7)).
    Jti
);
new_type!(
    /// A key identifier (`kid`, [RFC 7517 §4.5](https://www.rfc-editor.org/rfc/rfc7517#section-4.5)).
    KeyId
);
new_type!(
    /// A `login_hint` ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)): a username, e-mail or phone number.
    LoginHint
);
new_type!(
    /// A CIBA `binding_message` ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)).
    BindingMessage
);

/// A space-delimited list of scopes ([RFC 6749 §3.3](https://www.rfc-editor.org/rfc/rfc6749#section-3.3)).
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(Scope::new)
    }
}

impl Scope {
    /// Builds a scope from its space-delimited form, normalising white space.
    pub fn new(value: impl AsRef<str>) -> Self {
        Self::from_iter(value.as_ref().split(' '))
    }

    /// The individual scope tokens, in order, without duplicates.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether `token` is one of the scopes.
    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|s| s == token)
    }

    /// Whether no scope is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The space-delimited form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.iter().all(|s| other.contains(s))
    }

    /// The tokens of `self` that `allowed` also has.
    pub fn intersect(&self, allowed: &Scope) -> Scope {
        Scope::from_iter(self.iter().filter(|s| allowed.contains(s)))
    }

    /// Whether every token is made of the characters RFC 6749 §3.3 allows
    /// (`%x21 / %x23-5B / %x5D-7E`).
    pub fn is_well_formed(&self) -> bool {
        self.iter().all(|token| {
            token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        })
    }
}

impl<'a> FromIterator<&'a str> for Scope {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut out: Vec<&str> = Vec::new();
        for token in iter {
            if !token.is_empty() && !out.contains(&token) {
                out.push(token);
            }
        }
        Scope(out.join(" "))
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Scope").field(&self.0).finish()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_normalises_and_deduplicates() {
        let scope = Scope::new("openid  payments openid ");
        assert_eq!(scope.as_str(), "openid payments");
        assert!(scope.contains("payments"));
        assert!(!scope.contains("pay"));
        assert!(Scope::new("openid").is_subset_of(&scope));
        assert!(!Scope::new("admin").is_subset_of(&scope));
    }

    #[test]
    fn scope_rejects_quote_and_backslash() {
        assert!(Scope::new("openid payments:read").is_well_formed());
        assert!(!Scope::new("open\"id").is_well_formed());
        assert!(!Scope::new("a\\b").is_well_formed());
    }
}
