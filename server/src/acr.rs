//! Authentication context classes (`acr`,
//! [OpenID Connect Core §2](https://openid.net/specs/openid-connect-core-1_0.html#IDToken)):
//! how strongly the user was authenticated, and which requested `acr` values
//! (`acr_values`, [§3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest);
//! `claims.id_token.acr`, [§5.5.1.1](https://openid.net/specs/openid-connect-core-1_0.html#acrSemantics);
//! CIBA Core §7.1 `acr_values`) an authentication satisfies.
//!
//! Two levels, ranked: a password at the browser ([`Level::Password`]) and a
//! decision on an enrolled device unlocked with its PIN ([`Level::Device`]).
//! Each has our own name, and the Open Finance Brasil levels of assurance map
//! onto them (`loa2`: password; `loa3`: the device, a second factor). A higher
//! level satisfies every value of a lower one. Values we do not know are
//! satisfied by nothing (they are never an error: `acr_values` is voluntary).

/// A password at the browser's login page.
pub const PASSWORD: &str = "urn:outband:acr:pwd";
/// A decision on an enrolled device, unlocked with its PIN (possession and knowledge).
pub const DEVICE: &str = "urn:outband:acr:device";
/// Open Finance Brasil level of assurance 2 (satisfied by a password).
pub const BR_LOA2: &str = "urn:brasil:openbanking:loa2";
/// Open Finance Brasil level of assurance 3 (satisfied by the device).
pub const BR_LOA3: &str = "urn:brasil:openbanking:loa3";

/// Every value the server understands, as discovery lists them (`acr_values_supported`).
pub const SUPPORTED: [&str; 4] = [PASSWORD, DEVICE, BR_LOA2, BR_LOA3];

/// How the user authenticated, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A password at the browser.
    Password,
    /// An enrolled device with its PIN.
    Device,
}

impl Level {
    /// The level's own `acr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => PASSWORD,
            Self::Device => DEVICE,
        }
    }

    /// The level a requested `acr` value needs; `None` for a value we do not know.
    pub fn required_by(value: &str) -> Option<Self> {
        match value {
            PASSWORD | BR_LOA2 => Some(Self::Password),
            DEVICE | BR_LOA3 => Some(Self::Device),
            _ => None,
        }
    }

    /// Whether an authentication at this level satisfies the requested `value`.
    pub fn satisfies(self, value: &str) -> bool {
        Self::required_by(value).is_some_and(|needed| self >= needed)
    }

    /// The `acr` to report: the first of `requested` this level satisfies,
    /// else the level's own value.
    pub fn choose<'a>(self, requested: impl IntoIterator<Item = &'a str>) -> &'a str {
        requested
            .into_iter()
            .find(|value| self.satisfies(value))
            .unwrap_or(self.as_str())
    }
}

/// The values of a space-separated `acr_values` parameter, in order of preference.
pub fn split(acr_values: Option<&str>) -> impl Iterator<Item = &str> {
    acr_values.unwrap_or_default().split(' ').filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rank_and_map_the_brasil_names() {
        assert!(Level::Device.satisfies(PASSWORD));
        assert!(Level::Device.satisfies(BR_LOA3));
        assert!(Level::Password.satisfies(BR_LOA2));
        assert!(!Level::Password.satisfies(DEVICE));
        assert!(!Level::Password.satisfies(BR_LOA3));
        assert!(!Level::Device.satisfies("urn:example:unknown"));
    }

    #[test]
    fn the_first_satisfied_value_wins_else_the_own_one() {
        let asked = split(Some("urn:example:x  urn:brasil:openbanking:loa3 urn:outband:acr:pwd"));
        assert_eq!(Level::Password.choose(asked), PASSWORD);
        let asked = split(Some("urn:brasil:openbanking:loa3 urn:outband:acr:pwd"));
        assert_eq!(Level::Device.choose(asked), BR_LOA3);
        assert_eq!(Level::Device.choose(split(None)), DEVICE);
        assert_eq!(Level::Password.choose(split(Some("urn:example:x"))), PASSWORD);
    }
}
