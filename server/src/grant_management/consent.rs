//! Remembered consent: a request the user already approved needs no consent
//! page, so `prompt=none` can succeed
//! ([OpenID Connect Core §3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest)).
//! A request is covered when one live grant of the same user and client holds
//! every requested scope and every requested authorization detail (each within
//! a granted one, [`crate::grants::narrowing::is_within`]).

use outband_protocol::{ClientId, Scope, Subject};
use serde_json::Value;

use crate::error::Result;
use crate::grant_management::{GrantAction, GrantRequest};
use crate::grants::narrowing::is_within;
use crate::state::AppState;
use crate::store::GrantRecord;

/// The OpenID Connect claims a scope releases (what UserInfo and the ID token carry).
pub fn claims_of(scope: &Scope) -> Vec<String> {
    let mut claims = Vec::new();
    for item in scope.iter() {
        let names: &[&str] = match item {
            "openid" => &["sub"],
            "profile" => &["name", "preferred_username"],
            "email" => &["email"],
            "phone" => &["phone_number"],
            _ => &[],
        };
        claims.extend(names.iter().map(|n| (*n).to_owned()));
    }
    claims
}

/// Whether `grant` holds everything requested.
pub fn grant_covers(grant: &GrantRecord, scope: &Scope, details: Option<&Value>) -> bool {
    if !scope.is_subset_of(&grant.scope) {
        return false;
    }
    let Some(requested) = details.and_then(Value::as_array) else {
        return true;
    };
    let granted: Vec<Value> = grant
        .authorization_details
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    requested.iter().all(|r| granted.iter().any(|g| is_within(r, g)))
}

/// Whether the user already approved all of this for this client: one of
/// their live grants with it covers the request (the named grant, for
/// `merge` and `replace`).
pub async fn is_remembered(
    state: &AppState,
    client_id: &ClientId,
    subject: &Subject,
    scope: &Scope,
    details: Option<&Value>,
    request: Option<&GrantRequest>,
) -> Result<bool> {
    let named = request
        .filter(|r| r.action != GrantAction::Create)
        .and_then(|r| r.grant_id.as_deref());
    let grants = state.store.grants_of_client_user(client_id, subject).await?;
    Ok(grants
        .iter()
        .filter(|g| named.is_none_or(|id| id == g.grant_id))
        .any(|g| grant_covers(g, scope, details)))
}
