//! The consent an authorization request names, at `/authorize` and `/par`:
//!
//! - Open Finance Brasil: the dynamic scope `consent:{consentId}` (one at most);
//!   a client of the `openbanking-br` profile must send it
//!   ([`crate::profile::Policy::requires_consent_scope`]).
//! - UK Open Banking: `claims` = `{"id_token": {"openbanking_intent_id":
//!   {"value": "<consentId>", "essential": true}}}` (or under `userinfo`); the ID
//!   token then carries the claim.
//!
//! The consent must exist, belong to the client and await authorisation.
//! Problems with the scope are `invalid_scope`, with the claim `invalid_request`.
//! On the user's decision the consent becomes `Authorised` (bound to the user
//! and to the grant of the tokens) or `Rejected`.

use outband_protocol::{Scope, Subject};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{effective_status, reason, Status, CONSENT_SCOPE_PREFIX};
use crate::authorize::request::Params;
use crate::error::{Error, Result};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{ClientRecord, ConsentRecord};

/// The UK Open Banking claim that names the consent ("intent").
pub const INTENT_CLAIM: &str = "openbanking_intent_id";

/// The consent an authorization request names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRef {
    /// The consent id.
    pub id: String,
    /// Whether it was named by the `openbanking_intent_id` claim (which the ID
    /// token then carries).
    #[serde(default)]
    pub intent_claim: bool,
    /// What the consent page shows of it (HTML, escaped; see [`describe`]).
    #[serde(default)]
    pub shown: String,
}

/// Whether `scope` is a `consent:{consentId}` scope (allowed beside the
/// client's registered scope: its consent is checked instead).
pub fn is_consent_scope(scope: &str) -> bool {
    scope.starts_with(CONSENT_SCOPE_PREFIX)
}

/// The consent id of the `claims` parameter's `openbanking_intent_id`, if any.
fn intent_id(params: &Params) -> Result<Option<String>> {
    let Some(text) = params.get("claims") else {
        return Ok(None);
    };
    let claims: Value =
        serde_json::from_str(text).map_err(|_| Error::invalid_request("claims is not a JSON object"))?;
    if !claims.is_object() {
        return Err(Error::invalid_request("claims is not a JSON object"));
    }
    let mut found = None;
    for member in ["id_token", "userinfo"] {
        let Some(request) = claims.get(member).and_then(|m| m.get(INTENT_CLAIM)) else {
            continue;
        };
        let value = request.get("value").and_then(Value::as_str).ok_or_else(|| {
            Error::invalid_request(format!("claims.{member}.{INTENT_CLAIM} needs a value: the consent id"))
        })?;
        if found.as_deref().is_some_and(|f: &str| f != value) {
            return Err(Error::invalid_request(format!(
                "claims name two different {INTENT_CLAIM} values"
            )));
        }
        found = Some(value.to_owned());
    }
    Ok(found)
}

/// Checks the consent that the request (`params`, with its validated `scope`)
/// names for `client`; `None` when it names none and the profile does not
/// require one.
pub async fn check(
    state: &AppState,
    client: &ClientRecord,
    params: &Params,
    scope: &Scope,
) -> Result<Option<ConsentRef>> {
    let mut scoped = scope.iter().filter(|s| is_consent_scope(s));
    let from_scope = scoped
        .next()
        .map(|s| s.trim_start_matches(CONSENT_SCOPE_PREFIX).to_owned());
    if scoped.next().is_some() {
        return Err(Error::invalid_scope("name one consent:{consentId} scope, not several"));
    }
    let from_claim = intent_id(params)?;
    if Policy::of(client.metadata.profile).requires_consent_scope() && from_scope.is_none() {
        return Err(Error::invalid_scope(format!(
            "this {} client must name its consent in the scope consent:{{consentId}}",
            client.metadata.profile
        )));
    }
    let reference = match (from_scope, from_claim) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid_request(format!(
                "the consent:{{consentId}} scope and the {INTENT_CLAIM} claim name different consents"
            )))
        }
        (Some(id), claim) => ConsentRef {
            id,
            intent_claim: claim.is_some(),
            shown: String::new(),
        },
        (None, Some(id)) => ConsentRef {
            id,
            intent_claim: true,
            shown: String::new(),
        },
    };
    let refuse = |why: String| {
        if reference.intent_claim {
            Error::invalid_request(why)
        } else {
            Error::invalid_scope(why)
        }
    };
    let record = state
        .store
        .consent(&reference.id)
        .await?
        .filter(|r| r.client_id == *client.client_id())
        .ok_or_else(|| refuse(format!("consent {} is unknown to this client", reference.id)))?;
    let (status, _) = effective_status(&record, state.now());
    if status != Status::AwaitingAuthorisation {
        return Err(refuse(format!(
            "consent {} is {}, not AwaitingAuthorisation",
            reference.id,
            status.as_str()
        )));
    }
    Ok(Some(ConsentRef {
        shown: describe(&record),
        ..reference
    }))
}

/// The user's decision on the consent `reference`: approval authorises it for
/// `subject` and the tokens of `grant_id`; denial rejects it. `false` when an
/// approval came too late (the consent is no longer awaiting authorisation):
/// the caller then refuses the authorization.
pub async fn decide(
    state: &AppState,
    reference: &ConsentRef,
    subject: &Subject,
    grant_id: &str,
    approved: bool,
) -> Result<bool> {
    let now = state.now();
    if approved {
        let done = state
            .store
            .authorise_consent(&reference.id, subject, grant_id, reference.intent_claim, now)
            .await?;
        if done {
            tracing::info!(consent_id = %reference.id, "consent authorised");
        }
        return Ok(done);
    }
    state
        .store
        .move_consent(
            &reference.id,
            Status::AwaitingAuthorisation.as_str(),
            Status::Rejected.as_str(),
            Some(reason::USER_REJECTED),
            now,
        )
        .await?;
    Ok(false)
}

/// The `openbanking_intent_id` claim for the ID token of `grant_id`, when its
/// consent was named by that claim.
pub async fn intent_claim(state: &AppState, grant_id: &str) -> Result<Option<String>> {
    Ok(state
        .store
        .consent_by_grant(grant_id)
        .await?
        .filter(|c| c.intent_claim)
        .map(|c| c.id))
}

/// The consent in plain words for the consent page (HTML-escaped).
pub fn describe(record: &ConsentRecord) -> String {
    use crate::authorize::pages::escape;
    let mut text = String::new();
    if let Some(payment) = record
        .payment
        .as_deref()
        .and_then(|p| serde_json::from_str::<crate::payments::PaymentInitiation>(p).ok())
    {
        text.push_str(&format!(
            "Pay <strong>{} {}</strong> to <strong>{}</strong>",
            escape(&payment.instructed_amount.currency),
            escape(&payment.instructed_amount.amount),
            escape(&payment.creditor_name)
        ));
        if let Some(iban) = payment
            .creditor_account
            .as_ref()
            .and_then(|a| a.get("iban"))
            .and_then(Value::as_str)
        {
            text.push_str(&format!("<br>Account: {}", escape(iban)));
        }
        if let Some(reference) = &payment.remittance_information_unstructured {
            text.push_str(&format!("<br>Reference: {}", escape(reference)));
        }
        text.push_str("<br>Once: this consent pays once.");
    }
    if let Some(permissions) = record
        .permissions
        .as_deref()
        .and_then(|p| serde_json::from_str::<Vec<String>>(p).ok())
    {
        let words: Vec<String> = permissions.iter().map(|p| escape(permission_words(p))).collect();
        text.push_str(&format!("See your account data: {}", words.join("; ")));
    }
    if let Some(at) = record.expires_at {
        text.push_str(&format!("<br>Until {}", escape(&crate::payments::rfc3339(at))));
    }
    format!(
        "<p class=\"detail\" id=\"consent\">{text}<br><small>Consent {}</small></p>",
        escape(&record.id)
    )
}

fn permission_words(permission: &str) -> &str {
    match permission {
        "ACCOUNTS_READ" | "ReadAccountsBasic" => "your accounts",
        "ReadAccountsDetail" => "your accounts with their numbers",
        "ACCOUNTS_BALANCES_READ" | "ReadBalances" => "their balances",
        "ACCOUNTS_TRANSACTIONS_READ" | "ReadTransactionsBasic" | "ReadTransactionsDetail" => "their transactions",
        "ReadTransactionsCredits" => "money coming in",
        "ReadTransactionsDebits" => "money going out",
        "RESOURCES_READ" => "which of your products it can see",
        "ReadBeneficiariesBasic" | "ReadBeneficiariesDetail" => "the people you pay",
        other => other,
    }
}
