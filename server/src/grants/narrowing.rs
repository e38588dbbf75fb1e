//! Narrowing `authorization_details` at the token endpoint
//! ([RFC 9396 §6.2](https://www.rfc-editor.org/rfc/rfc9396#section-6.2)):
//! a token request may carry `authorization_details` to get a token for part
//! of what the user approved, never more (`invalid_authorization_details`).
//!
//! An entry is *within* a granted one when both have the same fields, every
//! array holds a non-empty subset of the granted array's elements (`actions`,
//! `locations`, `access`, `accounts`, …) and every other value is equal. So a
//! payment can only be asked for exactly as approved, while an
//! `account_information` entry may drop `transactions` from `access` or
//! accounts from `accounts`; dropping a field is refused, as a missing field
//! may mean "all" (RFC 9396 §2.2).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::rar::CheckAuthorizationDetailsError;
use crate::store::ClientRecord;

/// Whether `requested` asks for no more than `granted`.
pub fn is_within(requested: &Value, granted: &Value) -> bool {
    match (requested, granted) {
        (Value::Object(r), Value::Object(g)) => {
            r.len() == g.len() && r.iter().all(|(k, rv)| g.get(k).is_some_and(|gv| is_within(rv, gv)))
        }
        (Value::Array(r), Value::Array(g)) => !r.is_empty() && r.iter().all(|item| g.contains(item)),
        (r, g) => r == g,
    }
}

fn refuse(why: String) -> Error {
    CheckAuthorizationDetailsError(why).into()
}

/// The `authorization_details` of new tokens: those `granted`, or the
/// `requested` part of them (a token request's parameter, JSON text).
pub fn narrow(requested: Option<&str>, granted: Option<&Value>, client: &ClientRecord) -> Result<Option<Value>> {
    let Some(text) = requested else {
        return Ok(granted.cloned());
    };
    let details = crate::rar::parse(Value::String(text.to_owned()))?;
    crate::rar::check(&details, client.metadata.authorization_details_types.as_deref())?;
    let granted: &[Value] = granted.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    if granted.is_empty() {
        return Err(refuse(
            "authorization_details: the user approved none; a token request can only narrow them".into(),
        ));
    }
    for (i, entry) in details.as_array().into_iter().flatten().enumerate() {
        if !granted.iter().any(|g| is_within(entry, g)) {
            return Err(refuse(format!(
                "authorization_details[{i}]: is not within what the user approved; a token request can narrow, never widen"
            )));
        }
    }
    Ok(Some(details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn within_means_same_fields_subset_arrays_equal_values() {
        let granted = json!({"type": "account_information", "access": ["balances", "transactions"],
                             "accounts": [{"iban": "A"}, {"iban": "B"}]});
        assert!(is_within(&granted, &granted));
        let fewer = json!({"type": "account_information", "access": ["balances"], "accounts": [{"iban": "B"}]});
        assert!(is_within(&fewer, &granted));
        let other_account = json!({"type": "account_information", "access": ["balances"], "accounts": [{"iban": "C"}]});
        assert!(!is_within(&other_account, &granted));
        let dropped_field = json!({"type": "account_information", "access": ["balances"]});
        assert!(
            !is_within(&dropped_field, &granted),
            "no accounts may mean all accounts"
        );
        let empty = json!({"type": "account_information", "access": [], "accounts": [{"iban": "A"}]});
        assert!(!is_within(&empty, &granted));
        let pay = json!({"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "5.00"}});
        let more = json!({"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "6.00"}});
        assert!(is_within(&pay, &pay));
        assert!(!is_within(&more, &pay));
    }
}
