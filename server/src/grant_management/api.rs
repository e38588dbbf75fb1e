//! The grant management API ([FAPI Grant Management §6](https://openid.net/specs/fapi-grant-management.html)):
//! a client queries (`GET`, scope `grant_management_query`) or revokes
//! (`DELETE`, scope `grant_management_revoke`) one of its grants with an
//! access token of its own. Unknown and revoked grants are 404; another
//! client's grant is 403; a missing or bad token is 401 `invalid_token`.
//! Revoking a grant revokes every access and refresh token issued under it.

use http::StatusCode;
use outband_protocol::{ErrorCode, Subject};
use serde_json::{json, Map, Value};

use crate::auth::resource::ResourceAuth;
use crate::error::{Error, Result};
use crate::grant_management::{SCOPE_QUERY, SCOPE_REVOKE};
use crate::state::AppState;
use crate::store::{AuditEvent, GrantRecord};

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such grant")
}

/// The live grant `grant_id`, when the caller's client holds it.
async fn grant_of_caller(state: &AppState, auth: &ResourceAuth, grant_id: &str) -> Result<GrantRecord> {
    let grant = state
        .store
        .grant(grant_id)
        .await?
        .filter(|g| !g.revoked)
        .ok_or_else(not_found)?;
    if grant.client_id != *auth.client_id() {
        return Err(
            Error::new(ErrorCode::AccessDenied, "this grant belongs to another client")
                .with_status(StatusCode::FORBIDDEN),
        );
    }
    Ok(grant)
}

/// The §6.4 representation of a grant: `scopes`, `claims`, `authorization_details`.
pub fn representation(grant: &GrantRecord) -> Value {
    let mut body = Map::new();
    body.insert("scopes".into(), json!([{ "scope": grant.scope.as_str() }]));
    body.insert("claims".into(), json!(grant.claims));
    if let Some(details) = grant
        .authorization_details
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
    {
        body.insert("authorization_details".into(), details);
    }
    Value::Object(body)
}

/// `GET /grants/{grant_id}`.
pub async fn query(state: &AppState, auth: &ResourceAuth, grant_id: &str) -> Result<Value> {
    auth.require_scope(SCOPE_QUERY)?;
    let grant = grant_of_caller(state, auth, grant_id).await?;
    Ok(representation(&grant))
}

/// `DELETE /grants/{grant_id}`.
pub async fn revoke(state: &AppState, auth: &ResourceAuth, grant_id: &str) -> Result<()> {
    auth.require_scope(SCOPE_REVOKE)?;
    let grant = grant_of_caller(state, auth, grant_id).await?;
    if !state.store.revoke_grant(&grant.grant_id, state.now()).await? {
        return Err(not_found());
    }
    audit(state, &grant, "client").await;
    crate::consents::revoke_with_grant(state, &grant.grant_id).await
}

/// The account page's Revoke button: the user revokes one of their grants.
/// `false` when it is not theirs or no longer live.
pub async fn revoke_by_user(state: &AppState, subject: &Subject, grant_id: &str) -> Result<bool> {
    let Some(grant) = state
        .store
        .grant(grant_id)
        .await?
        .filter(|g| !g.revoked && g.subject == *subject)
    else {
        return Ok(false);
    };
    let revoked = state.store.revoke_grant(&grant.grant_id, state.now()).await?;
    if revoked {
        audit(state, &grant, "user").await;
        crate::consents::revoke_with_grant(state, &grant.grant_id).await?;
    }
    Ok(revoked)
}

async fn audit(state: &AppState, grant: &GrantRecord, by: &str) {
    let entry = AuditEvent {
        id: 0,
        at: state.now(),
        event: "grant.revoked".to_owned(),
        client_id: Some(grant.client_id.to_string()),
        subject: Some(grant.subject.to_string()),
        request_id: None,
        detail: json!({ "grant_id": grant.grant_id, "by": by }),
    };
    if let Err(err) = state.store.append_audit(&entry).await {
        tracing::warn!(error = %err, "could not write the audit log");
    }
}
