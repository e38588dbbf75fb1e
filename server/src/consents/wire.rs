//! The JSON of the consent API: the request body (Open Finance Brasil field
//! names, with the UK Open Banking spellings `Data`, `Permissions`,
//! `ExpirationDateTime` and `Risk` accepted as aliases) and the response, whose
//! status names follow the client's ecosystem (`docs/consents.md`).

use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{effective_status, Status, MAX_VALIDITY};
use crate::error::{Error, Result};
use crate::payments::rfc3339;
use crate::rar::{self, PAYMENT_INITIATION};
use crate::store::{ConsentRecord, UnixTime};

/// The permissions a consent may ask for: Open Finance Brasil's account
/// permissions and UK Open Banking's account-access permissions.
pub const PERMISSIONS: [&str; 13] = [
    "ACCOUNTS_READ",
    "ACCOUNTS_BALANCES_READ",
    "ACCOUNTS_TRANSACTIONS_READ",
    "RESOURCES_READ",
    "ReadAccountsBasic",
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsBasic",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
    "ReadBeneficiariesBasic",
    "ReadBeneficiariesDetail",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(alias = "Data")]
    data: Data,
    /// UK Open Banking's `Risk` block: accepted and not used.
    #[serde(default, alias = "Risk")]
    #[allow(dead_code)]
    risk: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Data {
    #[serde(default, alias = "Permissions")]
    permissions: Option<Vec<String>>,
    #[serde(default, alias = "ExpirationDateTime")]
    expiration_date_time: Option<String>,
    #[serde(default)]
    logged_user: Option<LoggedUser>,
    #[serde(default)]
    payment: Option<Map<String, Value>>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct LoggedUser {
    document: Document,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Document {
    identification: String,
    rel: String,
}

/// A validated creation request, ready to store.
#[derive(Debug)]
pub struct NewConsent {
    /// `accounts` or `payment`.
    pub kind: &'static str,
    /// JSON array.
    pub permissions: Option<String>,
    /// JSON object (payment_initiation without `type`).
    pub payment: Option<String>,
    /// JSON object.
    pub logged_user: Option<String>,
    /// Unix time.
    pub expires_at: Option<UnixTime>,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid_request(format!("consent request: {why}"))
}

/// Parses and checks a creation request: exactly one of `data.permissions`
/// (known, each once) and `data.payment` (a `payment_initiation` detail without
/// `type`, checked by [`crate::rar`]); `expirationDateTime` in the future and
/// within a year; `loggedUser.document` with `identification` and `rel`.
pub fn parse_request(body: &[u8], now: UnixTime) -> Result<NewConsent> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let data = envelope.data;
    let (kind, permissions, payment) = match (data.permissions, data.payment) {
        (Some(_), Some(_)) => return Err(bad("send data.permissions or data.payment, not both")),
        (None, None) => return Err(bad("data.permissions or data.payment is required")),
        (Some(permissions), None) => ("accounts", Some(check_permissions(permissions)?), None),
        (None, Some(payment)) => ("payment", None, Some(check_payment(payment)?)),
    };
    let expires_at = data
        .expiration_date_time
        .map(|text| {
            let at = OffsetDateTime::parse(&text, &Rfc3339)
                .map_err(|_| bad(format!("data.expirationDateTime {text:?} is not an RFC 3339 date-time")))?
                .unix_timestamp();
            if at <= now || at > now + MAX_VALIDITY {
                return Err(bad("data.expirationDateTime must be in the future and within a year"));
            }
            Ok(at)
        })
        .transpose()?;
    let logged_user = data
        .logged_user
        .map(|user| {
            let doc = &user.document;
            let ok =
                |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_alphanumeric());
            if !ok(&doc.identification, 11) || !ok(&doc.rel, 3) {
                return Err(bad(
                    "data.loggedUser.document needs identification (up to 11 letters or digits) and rel (e.g. CPF)",
                ));
            }
            serde_json::to_string(&user).map_err(|e| Error::internal(e.to_string()))
        })
        .transpose()?;
    Ok(NewConsent {
        kind,
        permissions,
        payment,
        logged_user,
        expires_at,
    })
}

fn check_permissions(permissions: Vec<String>) -> Result<String> {
    if permissions.is_empty() {
        return Err(bad("data.permissions must not be empty"));
    }
    for (i, permission) in permissions.iter().enumerate() {
        if !PERMISSIONS.contains(&permission.as_str()) {
            return Err(bad(format!("data.permissions[{i}]: unknown permission {permission:?}")));
        }
        if permissions.iter().take(i).any(|p| p == permission) {
            return Err(bad(format!("data.permissions[{i}]: {permission} is repeated")));
        }
    }
    serde_json::to_string(&permissions).map_err(|e| Error::internal(e.to_string()))
}

fn check_payment(mut payment: Map<String, Value>) -> Result<String> {
    if payment.contains_key("type") {
        return Err(bad("data.payment: send the payment without type"));
    }
    let mut detail = payment.clone();
    detail.insert("type".into(), json!(PAYMENT_INITIATION));
    let details = Value::Array(vec![Value::Object(detail)]);
    rar::check(&details, Some(&[PAYMENT_INITIATION.to_owned()]))
        .map_err(|e| bad(e.0.replace("authorization_details[0]", "data.payment")))?;
    // The resource API compares payments field by field; keep only what it reads.
    payment.retain(|k, _| {
        matches!(
            k.as_str(),
            "instructedAmount" | "creditorName" | "creditorAccount" | "remittanceInformationUnstructured"
        )
    });
    serde_json::to_string(&payment).map_err(|e| Error::internal(e.to_string()))
}

/// Which names the response uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// UK Open Banking status names (`AwaitingAuthorisation`, ...).
    Uk,
    /// Open Finance Brasil status names (`AWAITING_AUTHORISATION`, ...).
    Brazil,
}

fn json_text(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// The response body for `record`: `{data, links, meta}` as Open Finance Brasil
/// shapes it, with the status in `dialect`'s names.
pub fn render(record: &ConsentRecord, now: UnixTime, dialect: Dialect, self_url: &str) -> Value {
    let (status, rejection) = effective_status(record, now);
    let mut data = Map::new();
    data.insert("consentId".into(), json!(record.id));
    data.insert("creationDateTime".into(), json!(rfc3339(record.created_at)));
    let status_name = match dialect {
        Dialect::Uk => status.as_str(),
        Dialect::Brazil => status.brazil(),
    };
    data.insert("status".into(), json!(status_name));
    let updated = match status {
        Status::Rejected if record.status == Status::AwaitingAuthorisation.as_str() => record.authorise_by,
        Status::Expired => record.expires_at.unwrap_or(record.status_updated_at),
        _ => record.status_updated_at,
    };
    data.insert("statusUpdateDateTime".into(), json!(rfc3339(updated)));
    if let Some(at) = record.expires_at {
        data.insert("expirationDateTime".into(), json!(rfc3339(at)));
    }
    if let Some(permissions) = json_text(record.permissions.as_deref()) {
        data.insert("permissions".into(), permissions);
    }
    if let Some(payment) = json_text(record.payment.as_deref()) {
        data.insert("payment".into(), payment);
    }
    if let Some(user) = json_text(record.logged_user.as_deref()) {
        data.insert("loggedUser".into(), user);
    }
    if let Some(rejection) = rejection {
        data.insert(
            "rejection".into(),
            json!({"rejectedBy": rejection.by, "reason": {"code": rejection.reason}}),
        );
    }
    json!({
        "data": data,
        "links": {"self": self_url},
        "meta": {"totalRecords": 1, "totalPages": 1, "requestDateTime": rfc3339(now)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_one_kind_and_known_permissions() {
        let now = 1_800_000_000;
        let ok = parse_request(br#"{"data":{"permissions":["ACCOUNTS_READ","RESOURCES_READ"]}}"#, now).unwrap();
        assert_eq!(ok.kind, "accounts");
        let uk = parse_request(br#"{"Data":{"Permissions":["ReadBalances"]},"Risk":{}}"#, now).unwrap();
        assert_eq!(uk.permissions.as_deref(), Some("[\"ReadBalances\"]"));
        for bad in [
            &br#"{"data":{}}"#[..],
            br#"{"data":{"permissions":[]}}"#,
            br#"{"data":{"permissions":["ACCOUNTS_READ","ACCOUNTS_READ"]}}"#,
            br#"{"data":{"permissions":["STEAL_ALL"]}}"#,
            br#"{"data":{"permissions":["ACCOUNTS_READ"],"payment":{}}}"#,
            br#"{"data":{"permissions":["ACCOUNTS_READ"],"expirationDateTime":"2020-01-01T00:00:00Z"}}"#,
            br#"{"data":{"permissions":["ACCOUNTS_READ"],"extra":1}}"#,
            br#"{"data":{"payment":{"instructedAmount":{"currency":"EUR","amount":"1.005"},"creditorName":"x"}}}"#,
            br#"not json"#,
        ] {
            assert!(parse_request(bad, now).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let payment = parse_request(
            br#"{"data":{"payment":{"instructedAmount":{"currency":"EUR","amount":"12.50"},"creditorName":"Shop"}}}"#,
            now,
        )
        .unwrap();
        assert_eq!(payment.kind, "payment");
    }

    #[test]
    fn brazil_has_no_revoked_status() {
        assert_eq!(Status::Revoked.brazil(), "REJECTED");
        assert_eq!(Status::AwaitingAuthorisation.brazil(), "AWAITING_AUTHORISATION");
        assert_eq!(Status::Consumed.as_str(), "Consumed");
    }
}
