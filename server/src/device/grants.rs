//! The user's grants, seen from their authenticator: `GET /device/v1/grants`
//! lists the live grants of the device's user (what each application may do,
//! in plain words as well), `DELETE /device/v1/grants/{grant_id}` revokes one
//! and every token issued under it. The same store calls and wording as the
//! account page ([`crate::account`]); a grant of another user is answered like
//! an unknown one, so a device learns nothing about other users' grants.

use outband_protocol::ErrorCode;
use serde::Serialize;
use serde_json::Value;

use crate::authorize::pages::describe_scope;
use crate::error::{Error, Result};
use crate::grant_management::api::revoke_by_user;
use crate::payments::{PaymentInitiation, PAYMENT_INITIATION};
use crate::state::AppState;
use crate::store::{DeviceRecord, GrantRecord};

/// Longest `grant_id` looked up (ours are 43 characters); longer ones are unknown.
const MAX_GRANT_ID_LEN: usize = 128;

/// One grant as the device API shows it.
#[derive(Debug, Serialize)]
pub struct GrantSummary {
    /// The grant's public identifier.
    pub grant_id: String,
    /// The client that holds it.
    pub client_id: String,
    /// The client's name (its id when it has none or no longer exists).
    pub client_name: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The granted authorization details (RFC 9396), when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
    /// When it was created (unix seconds).
    pub created_at: i64,
    /// When it last changed (unix seconds).
    pub updated_at: i64,
    /// What the application may do, one plain-words line per scope and detail.
    pub description: Vec<String>,
}

/// `GET /device/v1/grants` answer.
#[derive(Debug, Serialize)]
pub struct GrantList {
    /// The user's live grants, most recently changed first.
    pub grants: Vec<GrantSummary>,
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such grant")
}

/// An authorization detail in plain words (the text of the consent page's
/// [`crate::authorize::pages::describe_detail`], without HTML).
pub fn describe_detail_text(detail: &Value) -> String {
    let kind = detail.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind == PAYMENT_INITIATION {
        if let Ok(p) = serde_json::from_value::<PaymentInitiation>(detail.clone()) {
            let mut text = format!(
                "pay {} {} to {}",
                p.instructed_amount.currency, p.instructed_amount.amount, p.creditor_name
            );
            if let Some(iban) = p
                .creditor_account
                .as_ref()
                .and_then(|a| a.get("iban"))
                .and_then(Value::as_str)
            {
                text.push_str(&format!(", account {iban}"));
            }
            if let Some(reference) = p.remittance_information_unstructured.as_deref() {
                text.push_str(&format!(", reference {reference}"));
            }
            return text;
        }
    }
    if kind == "account_information" {
        let access: Vec<&str> = detail
            .get("access")
            .and_then(Value::as_array)
            .map(|kinds| kinds.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return format!("see your accounts: {}", access.join(" and "));
    }
    format!("access of type \u{201c}{kind}\u{201d}")
}

async fn summary(state: &AppState, grant: GrantRecord) -> Result<GrantSummary> {
    let client_name = state
        .client(&grant.client_id)
        .await?
        .map_or_else(|| grant.client_id.to_string(), |c| c.metadata.display_name().to_owned());
    let scopes: Vec<String> = grant.scope.iter().map(str::to_owned).collect();
    let authorization_details = grant
        .authorization_details
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    let mut description: Vec<String> = scopes.iter().map(|s| describe_scope(s)).collect();
    if let Some(items) = authorization_details.as_ref().and_then(Value::as_array) {
        description.extend(items.iter().map(describe_detail_text));
    }
    Ok(GrantSummary {
        grant_id: grant.grant_id,
        client_id: grant.client_id.to_string(),
        client_name,
        scopes,
        authorization_details,
        created_at: grant.created_at,
        updated_at: grant.updated_at,
        description,
    })
}

/// The live grants of the device's user, most recently changed first.
pub async fn list(state: &AppState, device: &DeviceRecord) -> Result<GrantList> {
    let records = state.store.grants_of_subject(&device.subject).await?;
    let mut grants = Vec::with_capacity(records.len());
    for grant in records {
        grants.push(summary(state, grant).await?);
    }
    Ok(GrantList { grants })
}

/// Revokes the user's grant `grant_id` and every token of it. 404 `not_found`
/// for an unknown, already revoked or another user's grant (one answer for all).
pub async fn revoke(state: &AppState, device: &DeviceRecord, grant_id: &str) -> Result<()> {
    if grant_id.is_empty() || grant_id.len() > MAX_GRANT_ID_LEN {
        return Err(not_found());
    }
    if !revoke_by_user(state, &device.subject, grant_id).await? {
        return Err(not_found());
    }
    tracing::info!(device_id = %device.id, grant_id, "the user revoked a grant from a device");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_read_as_plain_words() {
        let payment = json!({
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Corner <Café>",
            "creditorAccount": {"iban": "DE89370400440532013000"},
            "remittanceInformationUnstructured": "Receipt 42",
        });
        assert_eq!(
            describe_detail_text(&payment),
            "pay EUR 12.50 to Corner <Café>, account DE89370400440532013000, reference Receipt 42"
        );
        let accounts = json!({"type": "account_information", "access": ["balances", "transactions"]});
        assert_eq!(
            describe_detail_text(&accounts),
            "see your accounts: balances and transactions"
        );
        assert_eq!(
            describe_detail_text(&json!({"type": "x"})),
            "access of type \u{201c}x\u{201d}"
        );
    }
}
