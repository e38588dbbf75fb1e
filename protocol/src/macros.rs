//! Newtype macros in the style of oauth2-rs: every protocol value gets its own
//! type, and secrets get a type whose `Debug` never shows the value.

/// A plain protocol value: a `String` newtype with `new`, `as_str`, `Deref`,
/// `Display` and transparent serde.
macro_rules! new_type {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Consumes the wrapper.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

/// A secret protocol value: `Debug` prints `Name([redacted])`, there is no
/// `Display`, reading the value takes `.secret()` and equality is constant-time.
macro_rules! new_secret_type {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret value.
            ///
            /// # Security Warning
            /// Never log or display the returned value.
            pub fn secret(&self) -> &str {
                &self.0
            }
            /// The SHA-256 of the value, base64url without padding: what the
            /// server stores instead of the value itself.
            pub fn hash(&self) -> String {
                $crate::jose::sha256_b64url(self.0.as_bytes())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                use subtle::ConstantTimeEq;
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}
    };
}

pub(crate) use new_secret_type;
pub(crate) use new_type;
