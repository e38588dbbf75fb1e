//! Rich Authorization Requests ([RFC 9396](https://www.rfc-editor.org/rfc/rfc9396)):
//! the authorization details types the server knows and the rules their content
//! must follow. Every endpoint that accepts `authorization_details` (today
//! `/bc-authorize`; `/authorize` and `/par` later) calls [`parse`] then [`check`].
//!
//! Known types (wire names as in RFC 9396's examples and the Berlin Group API):
//!
//! - `payment_initiation`: `instructedAmount` `{currency, amount}` (ISO 4217 code,
//!   a decimal string above zero with at most the currency's minor-unit
//!   decimals), `creditorName`, optional `creditorAccount` and `debtorAccount`
//!   (account references), optional `remittanceInformationUnstructured`, and
//!   optional point-of-sale data `merchantId`, `terminalId`, `merchantCategoryCode`.
//! - `account_information`: `access`, a list of `balances` and/or
//!   `transactions`, and optional `accounts` (account references; absent means
//!   the accounts the user picks).
//!
//! An account reference is an object with exactly one of `iban` (ISO 13616,
//! mod-97 check digits), `bban`, or `other` `{identification, schemeName}`, and
//! an optional `currency`. RFC 9396 §2.2's common fields (`locations`, `actions`,
//! `datatypes`, `identifier`, `privileges`) are accepted on every type. Anything
//! else, an unknown type, or a type the client may not use is
//! `invalid_authorization_details` (RFC 9396 §5) with a description that names
//! the entry and field. The details are checked, never rewritten: what the
//! client sent is what the user sees and what the token carries.

use outband_protocol::ErrorCode;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::payments::amount;

/// The `payment_initiation` type.
pub const PAYMENT_INITIATION: &str = "payment_initiation";
/// The `account_information` type.
pub const ACCOUNT_INFORMATION: &str = "account_information";
/// Every type the server knows (`authorization_details_types_supported`).
pub const KNOWN_TYPES: [&str; 2] = [PAYMENT_INITIATION, ACCOUNT_INFORMATION];
/// Most entries accepted in one request: each one is shown to the user.
pub const MAX_DETAILS: usize = 10;

/// RFC 9396 §2.2 fields allowed on every type.
const COMMON_FIELDS: [&str; 6] = ["type", "locations", "actions", "datatypes", "identifier", "privileges"];
const PAYMENT_FIELDS: [&str; 8] = [
    "instructedAmount",
    "creditorName",
    "creditorAccount",
    "debtorAccount",
    "remittanceInformationUnstructured",
    "merchantId",
    "terminalId",
    "merchantCategoryCode",
];
const ACCOUNT_FIELDS: [&str; 2] = ["access", "accounts"];
const ACCESS_KINDS: [&str; 2] = ["balances", "transactions"];
/// ISO 20022 `Max140Text`: names and remittance information.
const MAX_TEXT: usize = 140;
/// ISO 20022 `Max35Text`: identifiers.
const MAX_ID: usize = 35;

/// Why `authorization_details` were refused; the text names the entry and field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckAuthorizationDetailsError(pub String);

impl From<CheckAuthorizationDetailsError> for Error {
    fn from(err: CheckAuthorizationDetailsError) -> Self {
        Error::new(ErrorCode::InvalidAuthorizationDetails, err.0)
    }
}

type Checked<T = ()> = Result<T, CheckAuthorizationDetailsError>;

fn bad<T>(path: &str, why: impl std::fmt::Display) -> Checked<T> {
    Err(CheckAuthorizationDetailsError(format!("{path}: {why}")))
}

/// The parameter as received: JSON text (form parameters) or JSON already (a
/// request object's claim). It must be a non-empty array of at most
/// [`MAX_DETAILS`] entries.
pub fn parse(value: Value) -> Checked<Value> {
    let value = match value {
        Value::String(text) => {
            serde_json::from_str::<Value>(&text).or_else(|_| bad("authorization_details", "is not JSON"))?
        }
        other => other,
    };
    match value.as_array() {
        None => bad("authorization_details", "must be a JSON array"),
        Some(list) if list.is_empty() => bad("authorization_details", "must contain at least one entry"),
        Some(list) if list.len() > MAX_DETAILS => bad(
            "authorization_details",
            format!("at most {MAX_DETAILS} entries are accepted"),
        ),
        Some(_) => Ok(value),
    }
}

/// Checks every entry of `details` (an array, see [`parse`]) against its type;
/// `allowed` is the client's `authorization_details_types` (all known types when `None`).
pub fn check(details: &Value, allowed: Option<&[String]>) -> Checked {
    let Some(list) = details.as_array() else {
        return bad("authorization_details", "must be a JSON array");
    };
    for (i, entry) in list.iter().enumerate() {
        let path = format!("authorization_details[{i}]");
        let Some(map) = entry.as_object() else {
            return bad(&path, "must be a JSON object");
        };
        let kind = match map.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => return bad(&format!("{path}.type"), "must be a string"),
            None => return bad(&format!("{path}.type"), "is required"),
        };
        if !KNOWN_TYPES.contains(&kind) {
            return bad(
                &format!("{path}.type"),
                format!("unknown type {kind:?}; this server knows {}", KNOWN_TYPES.join(", ")),
            );
        }
        if allowed.is_some_and(|types| !types.iter().any(|t| t == kind)) {
            return bad(
                &format!("{path}.type"),
                format!("{kind} is not allowed for this client"),
            );
        }
        check_common(&path, map)?;
        match kind {
            PAYMENT_INITIATION => check_payment(&path, map)?,
            _ => check_account_information(&path, map)?,
        }
    }
    Ok(())
}

/// Whether every type in `types` is known (client registration).
pub fn unknown_type(types: &[String]) -> Option<&str> {
    types.iter().map(String::as_str).find(|t| !KNOWN_TYPES.contains(t))
}

fn only_fields(path: &str, map: &Map<String, Value>, allowed: &[&str]) -> Checked {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(field) => bad(&format!("{path}.{field}"), "is not a field of this type"),
        None => Ok(()),
    }
}

fn check_common(path: &str, map: &Map<String, Value>) -> Checked {
    for field in ["locations", "actions", "datatypes", "privileges"] {
        if let Some(value) = map.get(field) {
            let ok = value
                .as_array()
                .is_some_and(|items| items.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())));
            if !ok {
                return bad(&format!("{path}.{field}"), "must be an array of strings");
            }
        }
    }
    if map.contains_key("identifier") {
        text(path, map, "identifier", MAX_TEXT, true)?;
    }
    Ok(())
}

fn check_payment(path: &str, map: &Map<String, Value>) -> Checked {
    let allowed: Vec<&str> = COMMON_FIELDS.iter().chain(PAYMENT_FIELDS.iter()).copied().collect();
    only_fields(path, map, &allowed)?;
    let amount_path = format!("{path}.instructedAmount");
    let Some(instructed) = map.get("instructedAmount") else {
        return bad(&amount_path, "is required");
    };
    let Some(instructed) = instructed.as_object() else {
        return bad(&amount_path, "must be an object {currency, amount}");
    };
    only_fields(&amount_path, instructed, &["currency", "amount"])?;
    let currency = currency(&amount_path, instructed, true)?.unwrap_or_default();
    match instructed.get("amount") {
        Some(Value::String(text)) => {
            if amount::parse_minor(text, currency).is_none_or(|minor| minor <= 0) {
                return bad(
                    &format!("{amount_path}.amount"),
                    format!(
                        "{text:?} is not a decimal above zero with at most {} decimals for {currency}",
                        amount::minor_digits(currency)
                    ),
                );
            }
        }
        Some(_) => {
            return bad(
                &format!("{amount_path}.amount"),
                "must be a decimal string like \"12.50\"",
            )
        }
        None => return bad(&format!("{amount_path}.amount"), "is required"),
    }
    text(path, map, "creditorName", MAX_TEXT, true)?;
    text(path, map, "remittanceInformationUnstructured", MAX_TEXT, false)?;
    text(path, map, "merchantId", MAX_ID, false)?;
    text(path, map, "terminalId", MAX_ID, false)?;
    if let Some(code) = map.get("merchantCategoryCode") {
        if !code
            .as_str()
            .is_some_and(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()))
        {
            return bad(
                &format!("{path}.merchantCategoryCode"),
                "must be four digits (ISO 18245)",
            );
        }
    }
    for field in ["creditorAccount", "debtorAccount"] {
        if let Some(account) = map.get(field) {
            account_reference(&format!("{path}.{field}"), account)?;
        }
    }
    Ok(())
}

fn check_account_information(path: &str, map: &Map<String, Value>) -> Checked {
    let allowed: Vec<&str> = COMMON_FIELDS.iter().chain(ACCOUNT_FIELDS.iter()).copied().collect();
    only_fields(path, map, &allowed)?;
    let access_path = format!("{path}.access");
    let access = match map.get("access") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => {
            return bad(
                &access_path,
                "must be a non-empty array of \"balances\" and \"transactions\"",
            )
        }
        None => return bad(&access_path, "is required"),
    };
    for (i, kind) in access.iter().enumerate() {
        let kind = kind.as_str().unwrap_or_default();
        if !ACCESS_KINDS.contains(&kind) {
            return bad(
                &format!("{access_path}[{i}]"),
                "must be \"balances\" or \"transactions\"",
            );
        }
        if access.iter().take(i).any(|earlier| earlier.as_str() == Some(kind)) {
            return bad(&format!("{access_path}[{i}]"), format!("{kind} is given twice"));
        }
    }
    if let Some(accounts) = map.get("accounts") {
        let accounts_path = format!("{path}.accounts");
        let Some(items) = accounts.as_array().filter(|a| !a.is_empty() && a.len() <= MAX_DETAILS) else {
            return bad(
                &accounts_path,
                format!("must be an array of 1 to {MAX_DETAILS} account references"),
            );
        };
        for (i, account) in items.iter().enumerate() {
            account_reference(&format!("{accounts_path}[{i}]"), account)?;
        }
    }
    Ok(())
}

/// An account reference: exactly one of `iban`, `bban`, `other`, and an optional `currency`.
fn account_reference(path: &str, value: &Value) -> Checked {
    let Some(map) = value.as_object() else {
        return bad(path, "must be an object with iban, bban or other");
    };
    only_fields(path, map, &["iban", "bban", "other", "currency"])?;
    currency(path, map, false)?;
    let given: Vec<&str> = ["iban", "bban", "other"]
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    match given.as_slice() {
        ["iban"] => {
            let iban = map.get("iban").and_then(Value::as_str).unwrap_or_default();
            if !is_iban(iban) {
                return bad(&format!("{path}.iban"), format!("{iban:?} is not a valid IBAN"));
            }
        }
        ["bban"] => {
            let bban = map.get("bban").and_then(Value::as_str).unwrap_or_default();
            if !(1..=30).contains(&bban.len()) || !bban.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return bad(&format!("{path}.bban"), "must be 1 to 30 letters and digits");
            }
        }
        ["other"] => {
            let other_path = format!("{path}.other");
            let Some(other) = map.get("other").and_then(Value::as_object) else {
                return bad(&other_path, "must be an object {identification, schemeName}");
            };
            only_fields(&other_path, other, &["identification", "schemeName", "issuer"])?;
            text(&other_path, other, "identification", MAX_ID, true)?;
            text(&other_path, other, "schemeName", MAX_ID, true)?;
            text(&other_path, other, "issuer", MAX_ID, false)?;
        }
        _ => return bad(path, "must have exactly one of iban, bban or other"),
    }
    Ok(())
}

/// The `currency` member: an ISO 4217 code.
fn currency<'a>(path: &str, map: &'a Map<String, Value>, required: bool) -> Checked<Option<&'a str>> {
    match map.get("currency") {
        Some(Value::String(code)) if amount::is_currency(code) => Ok(Some(code)),
        Some(_) => bad(&format!("{path}.currency"), "must be an ISO 4217 code like \"EUR\""),
        None if required => bad(&format!("{path}.currency"), "is required"),
        None => Ok(None),
    }
}

/// A text member shown to people: not blank, at most `max` characters, no control characters.
fn text(path: &str, map: &Map<String, Value>, field: &str, max: usize, required: bool) -> Checked {
    let field_path = format!("{path}.{field}");
    match map.get(field) {
        None if required => bad(&field_path, "is required"),
        None => Ok(()),
        Some(Value::String(s)) if s.trim().is_empty() => bad(&field_path, "must not be blank"),
        Some(Value::String(s)) if s.chars().count() > max => {
            bad(&field_path, format!("is longer than {max} characters"))
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            bad(&field_path, "must not contain control characters")
        }
        Some(Value::String(_)) => Ok(()),
        Some(_) => bad(&field_path, "must be a string"),
    }
}

/// ISO 13616: two letters, two check digits, up to 30 letters and digits, and
/// the whole, rotated by four and read with A=10 … Z=35, is 1 modulo 97.
/// Spaces between groups are allowed (the paper format).
pub fn is_iban(text: &str) -> bool {
    let compact: Vec<u8> = text.bytes().filter(|b| *b != b' ').collect();
    let shape_ok = (15..=34).contains(&compact.len())
        && compact.iter().take(2).all(u8::is_ascii_uppercase)
        && compact.iter().skip(2).take(2).all(u8::is_ascii_digit)
        && compact.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !shape_ok {
        return false;
    }
    let remainder = compact
        .iter()
        .skip(4)
        .chain(compact.iter().take(4))
        .fold(0u32, |acc, b| match b {
            b'0'..=b'9' => (acc * 10 + u32::from(b - b'0')) % 97,
            _ => (acc * 100 + u32::from(b - b'A') + 10) % 97,
        });
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment() -> Value {
        json!({
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Corner Café",
            "creditorAccount": {"iban": "DE89370400440532013000"},
            "remittanceInformationUnstructured": "CAFE-7Q2K",
        })
    }

    fn error(details: Value) -> String {
        check(&json!([details]), None).unwrap_err().0
    }

    #[test]
    fn ibans() {
        assert!(is_iban("DE89370400440532013000"));
        assert!(is_iban("GB82 WEST 1234 5698 7654 32"));
        assert!(!is_iban("DE89370400440532013001"));
        assert!(!is_iban("de89370400440532013000"));
        assert!(!is_iban("DE89"));
    }

    #[test]
    fn a_pos_payment_is_valid() {
        assert_eq!(check(&json!([payment()]), None), Ok(()));
        let mut pos = payment();
        pos["merchantId"] = json!("M-1");
        pos["terminalId"] = json!("T-9");
        pos["merchantCategoryCode"] = json!("5814");
        pos["debtorAccount"] = json!({"other": {"identification": "12345678", "schemeName": "SortCodeAccountNumber"}});
        assert_eq!(check(&json!([pos]), None), Ok(()));
    }

    #[test]
    fn payment_errors_name_the_field() {
        let cases = [
            ("/instructedAmount/amount", json!("0.00"), "instructedAmount.amount"),
            ("/instructedAmount/amount", json!("1.234"), "instructedAmount.amount"),
            ("/instructedAmount/amount", json!(12.5), "instructedAmount.amount"),
            ("/instructedAmount/currency", json!("euro"), "instructedAmount.currency"),
            ("/creditorName", json!(" "), "creditorName"),
            (
                "/creditorAccount",
                json!({"iban": "DE00370400440532013000"}),
                "creditorAccount.iban",
            ),
            (
                "/creditorAccount",
                json!({"iban": "DE89370400440532013000", "bban": "1"}),
                "creditorAccount",
            ),
            ("/merchantCategoryCode", json!("58"), "merchantCategoryCode"),
            ("/tip", json!("1.00"), "tip"),
        ];
        for (pointer, value, field) in cases {
            let mut details = payment();
            match details.pointer_mut(pointer) {
                Some(slot) => *slot = value,
                None => details[pointer.trim_start_matches('/')] = value,
            }
            let err = error(details);
            assert!(
                err.starts_with(&format!("authorization_details[0].{field}")),
                "{pointer}: {err}"
            );
        }
        let mut missing = payment();
        missing.as_object_mut().unwrap().remove("creditorName");
        assert!(error(missing).contains("creditorName: is required"));
    }

    #[test]
    fn account_information() {
        let ok = json!({"type": "account_information", "access": ["balances", "transactions"],
                        "accounts": [{"iban": "DE89370400440532013000"}]});
        assert_eq!(check(&json!([ok]), None), Ok(()));
        let err = error(json!({"type": "account_information", "access": ["standing_orders"]}));
        assert!(err.starts_with("authorization_details[0].access[0]"), "{err}");
        let err = error(json!({"type": "account_information"}));
        assert!(err.contains("access: is required"), "{err}");
    }

    #[test]
    fn types_and_shape() {
        assert!(error(json!({"type": "crypto_transfer"})).contains("unknown type"));
        let only_accounts = vec![ACCOUNT_INFORMATION.to_owned()];
        let err = check(&json!([payment()]), Some(&only_accounts)).unwrap_err().0;
        assert!(
            err.contains("payment_initiation is not allowed for this client"),
            "{err}"
        );
        assert!(parse(json!("[")).is_err());
        assert!(parse(json!([])).is_err());
        assert!(parse(json!({})).is_err());
        assert!(parse(json!(payment().to_string())).is_err());
        assert!(parse(json!(format!("[{}]", payment()))).is_ok());
    }
}
