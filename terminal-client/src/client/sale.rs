//! What the till sells: an [`Amount`] in integer minor units (never a float),
//! the payee, the customer, and the [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396)
//! `payment_initiation` details the bank shows on the customer's device.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use outband_protocol::{BindingMessage, LoginHint, Password};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest binding message the server accepts, in characters.
pub const MAX_BINDING_MESSAGE: usize = 64;
/// The largest amount a till accepts, in minor units (one billion in major units).
pub const MAX_MINOR_UNITS: u64 = 100_000_000_000;
/// Characters of the random part of a sale code: no 0/O, 1/I/L, so a customer
/// can read it off the till and compare it without doubt.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Length of the random part of a sale code.
const CODE_LENGTH: usize = 4;

/// Why a sale value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseSaleError {
    /// The amount is not a positive decimal with at most two fraction digits.
    #[error("amount {0:?} must be a positive decimal with at most 2 fraction digits, like 12.50")]
    Amount(String),
    /// The amount is zero.
    #[error("amount must be greater than zero")]
    ZeroAmount,
    /// The amount is larger than [`MAX_MINOR_UNITS`].
    #[error("amount {0:?} is too large")]
    AmountTooLarge(String),
    /// The currency is not three uppercase letters.
    #[error("currency {0:?} must be three uppercase letters (ISO 4217), like EUR")]
    Currency(String),
    /// The IBAN is malformed or its check digits are wrong.
    #[error("IBAN {0:?} is not valid")]
    Iban(String),
    /// The merchant prefix of the sale code is not 1 to 8 letters or digits.
    #[error("merchant prefix {0:?} must be 1 to 8 uppercase letters or digits")]
    Prefix(String),
    /// The customer hint is empty.
    #[error("customer must not be empty (an e-mail, phone number or username)")]
    Customer,
    /// A text field is empty or has control characters.
    #[error("{0} must not be empty or contain control characters")]
    Text(&'static str),
}

/// A money amount in minor units (cents): parsed from text, never from a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    /// An amount of `minor` units (1250 is 12.50); zero and amounts over
    /// [`MAX_MINOR_UNITS`] are refused.
    pub fn from_minor_units(minor: u64) -> Result<Self, ParseSaleError> {
        match minor {
            0 => Err(ParseSaleError::ZeroAmount),
            m if m > MAX_MINOR_UNITS => Err(ParseSaleError::AmountTooLarge(m.to_string())),
            m => Ok(Self(m)),
        }
    }

    /// The amount in minor units.
    pub fn minor_units(self) -> u64 {
        self.0
    }
}

impl FromStr for Amount {
    type Err = ParseSaleError;

    /// Parses `12`, `12.5` or `12.50`; refuses signs, exponents, separators,
    /// a third fraction digit and zero.
    fn from_str(text: &str) -> Result<Self, ParseSaleError> {
        let bad = || ParseSaleError::Amount(text.to_owned());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
            return Err(bad());
        }
        let too_large = || ParseSaleError::AmountTooLarge(text.to_owned());
        let whole: u64 = whole.parse().map_err(|_| too_large())?;
        let cents: u64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<u64>().map_err(|_| bad())? * 10,
            _ => fraction.parse::<u64>().map_err(|_| bad())?,
        };
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .ok_or_else(too_large)?;
        if minor > MAX_MINOR_UNITS {
            return Err(too_large());
        }
        Self::from_minor_units(minor)
    }
}

impl fmt::Display for Amount {
    /// Always two fraction digits: `12.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 currency code: three uppercase ASCII letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// The code, like `EUR`.
    pub fn as_str(&self) -> &str {
        // Only uppercase ASCII letters get in (see `from_str`), so this is UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The number of decimal places of the currency's minor unit (ISO 4217):
    /// 2 for most, 0 for JPY or KRW, 3 for KWD or BHD, 4 for CLF. [`Amount`]
    /// holds hundredths, so only currencies with 0 or 2 can be sold.
    pub fn minor_units(&self) -> u8 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = ParseSaleError;

    fn from_str(text: &str) -> Result<Self, ParseSaleError> {
        match <[u8; 3]>::try_from(text.as_bytes()) {
            Ok(code) if code.iter().all(u8::is_ascii_uppercase) => Ok(Self(code)),
            _ => Err(ParseSaleError::Currency(text.to_owned())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An IBAN (ISO 13616), stored without spaces, with valid check digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Iban(String);

impl<'de> Deserialize<'de> for Iban {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Iban {
    /// The IBAN without spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Iban {
    type Err = ParseSaleError;

    /// Accepts spaces between groups; checks length, country, and the mod-97 check digits.
    fn from_str(text: &str) -> Result<Self, ParseSaleError> {
        let compact: String = text
            .chars()
            .filter(|c| *c != ' ')
            .collect::<String>()
            .to_ascii_uppercase();
        let bad = || ParseSaleError::Iban(text.to_owned());
        let bytes = compact.as_bytes();
        let shape_ok = (15..=34).contains(&bytes.len())
            && bytes.iter().take(2).all(u8::is_ascii_uppercase)
            && bytes.iter().skip(2).take(2).all(u8::is_ascii_digit)
            && bytes.iter().all(u8::is_ascii_alphanumeric);
        if !shape_ok {
            return Err(bad());
        }
        // Move the first four characters to the end, letters become 10..35, mod 97 must be 1.
        let mut remainder: u32 = 0;
        for b in bytes.iter().skip(4).chain(bytes.iter().take(4)) {
            let value = match b {
                b'0'..=b'9' => u32::from(b - b'0'),
                _ => u32::from(b - b'A') + 10,
            };
            remainder = if value >= 10 {
                (remainder * 100 + value) % 97
            } else {
                (remainder * 10 + value) % 97
            };
        }
        if remainder == 1 {
            Ok(Self(compact))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for Iban {
    /// Groups of four, as printed on cards and statements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self
            .0
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        f.write_str(&groups.join(" "))
    }
}

/// One sale, as the till rings it up. (De)serializable for the sale journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleRequest {
    /// How much.
    pub amount: Amount,
    /// In which currency.
    pub currency: Currency,
    /// Who pays: the `login_hint` (e-mail, phone or username at the bank).
    pub customer: LoginHint,
    /// The payee's name, shown on the customer's device (`creditorName`).
    pub merchant: String,
    /// The payee's account (`creditorAccount`), when the till knows it.
    pub iban: Option<Iban>,
    /// The merchant's reference (`remittanceInformationUnstructured`); the sale
    /// code when not given.
    pub reference: Option<String>,
    /// The letters before the random part of the sale code; derived from the
    /// merchant's name when not given.
    pub prefix: Option<String>,
    /// How long the customer has to answer; the server's default when not given.
    #[serde(skip)]
    pub requested_expiry: Option<Duration>,
    /// The secret code the customer set at the bank and types at the till
    /// ([CIBA Core §7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)
    /// `user_code`): sent only to a server whose discovery says
    /// `backchannel_user_code_parameter_supported`. Never journaled.
    #[serde(skip)]
    pub user_code: Option<Password>,
}

impl SaleRequest {
    /// A sale with no IBAN, reference, prefix or expiry.
    pub fn new(amount: Amount, currency: Currency, customer: impl Into<String>, merchant: impl Into<String>) -> Self {
        Self {
            amount,
            currency,
            customer: LoginHint::new(customer.into()),
            merchant: merchant.into(),
            iban: None,
            reference: None,
            prefix: None,
            requested_expiry: None,
            user_code: None,
        }
    }

    /// Checks the free-text fields (the typed ones were checked when parsed).
    pub fn validate(&self) -> Result<(), ParseSaleError> {
        if self.customer.trim().is_empty() || self.customer.chars().any(char::is_control) {
            return Err(ParseSaleError::Customer);
        }
        let text_ok = |s: &str| !s.trim().is_empty() && !s.chars().any(char::is_control);
        if !text_ok(&self.merchant) {
            return Err(ParseSaleError::Text("merchant"));
        }
        if self.reference.as_deref().is_some_and(|r| !text_ok(r)) {
            return Err(ParseSaleError::Text("reference"));
        }
        if let Some(prefix) = &self.prefix {
            check_prefix(prefix)?;
        }
        if self.user_code.as_ref().is_some_and(|c| !text_ok(c.secret())) {
            return Err(ParseSaleError::Text("user code"));
        }
        Ok(())
    }

    /// `EUR 12.50`.
    pub fn display_amount(&self) -> String {
        format!("{} {}", self.currency, self.amount)
    }

    /// The prefix of the sale code: the given one, or up to four letters and
    /// digits of the merchant's name, uppercased (`Corner Café` → `CORN`).
    pub fn code_prefix(&self) -> String {
        if let Some(prefix) = &self.prefix {
            return prefix.clone();
        }
        let derived: String = self
            .merchant
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(4)
            .collect::<String>()
            .to_ascii_uppercase();
        if derived.is_empty() {
            "POS".to_owned()
        } else {
            derived
        }
    }

    /// A fresh sale code, `CAFE-7Q2K`: the prefix and four random characters a
    /// person can read aloud without confusing them.
    pub fn new_code(&self) -> String {
        let mut rng = rand::thread_rng();
        let random: String = (0..CODE_LENGTH)
            .map(|_| {
                let i = rng.gen_range(0..CODE_ALPHABET.len());
                CODE_ALPHABET.get(i).map_or('X', |b| char::from(*b))
            })
            .collect();
        format!("{}-{random}", self.code_prefix())
    }

    /// The binding message shown on the till and the customer's device:
    /// `CAFE-7Q2K · EUR 12.50` (at most [`MAX_BINDING_MESSAGE`] characters).
    pub fn binding_message(&self, code: &str) -> BindingMessage {
        let message = format!("{code} · {}", self.display_amount());
        let message = if message.chars().count() > MAX_BINDING_MESSAGE {
            // Only a huge prefix could do this (prefixes are checked to 8 characters).
            message.chars().take(MAX_BINDING_MESSAGE).collect()
        } else {
            message
        };
        BindingMessage::new(message)
    }

    /// The RFC 9396 `authorization_details` array: one `payment_initiation`
    /// entry. `reference` is the merchant's reference (or the sale code).
    pub fn authorization_details(&self, reference: &str) -> Value {
        let mut entry = json!({
            "type": PAYMENT_INITIATION,
            "instructedAmount": {
                "currency": self.currency.as_str(),
                "amount": self.amount.to_string(),
            },
            "creditorName": self.merchant,
            "remittanceInformationUnstructured": reference,
        });
        if let (Some(iban), Some(map)) = (&self.iban, entry.as_object_mut()) {
            map.insert("creditorAccount".into(), json!({ "iban": iban.as_str() }));
        }
        Value::Array(vec![entry])
    }
}

/// The RFC 9396 type of a payment.
pub const PAYMENT_INITIATION: &str = "payment_initiation";

fn check_prefix(prefix: &str) -> Result<(), ParseSaleError> {
    let ok = (1..=8).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ParseSaleError::Prefix(prefix.to_owned()))
    }
}

#[cfg(test)]
mod tests;
